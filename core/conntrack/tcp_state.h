// Per-flow TCP tracking state, the userspace twin of the kernel's struct ip_ct_tcp.
// Held inside a flow entry and replicated whole to peers (so a promoted backup keeps strict
// window checks). Plain data; TcpTracker (tcp_tracker.h) is the only code that changes it.
#pragma once

#include <cstdint>

namespace ctsync {

// Numbering matches the kernel's enum tcp_conntrack (TCP_CONNTRACK_*).
enum class TcpState : uint8_t {
  kNone = 0,
  kSynSent = 1,
  kSynRecv = 2,
  kEstablished = 3,
  kFinWait = 4,
  kCloseWait = 5,
  kLastAck = 6,
  kTimeWait = 7,
  kClose = 8,
  kSynSent2 = 9,
  kMax = 10,
  kIgnore = 11,
  kRetrans = 12,
  kUnack = 13,
};

// IP_CT_TCP_FLAG_* bits kept per direction.
inline constexpr uint8_t kTcpFlagWindowScale = 0x01;
inline constexpr uint8_t kTcpFlagSackPerm = 0x02;
inline constexpr uint8_t kTcpFlagCloseInit = 0x04;
inline constexpr uint8_t kTcpFlagBeLiberal = 0x08;
inline constexpr uint8_t kTcpFlagDataUnacknowledged = 0x10;
inline constexpr uint8_t kTcpFlagMaxackSet = 0x20;
inline constexpr uint8_t kTcpFlagChallengeAck = 0x40;
inline constexpr uint8_t kTcpFlagSackPermSeen = 0x80;

// One direction's window-tracking data (kernel: struct ip_ct_tcp_state).
// Two-byte aligned: 18 bytes instead of 20, so both directions take 36 bytes of every Flow
// (the words of the second land on odd half-words, which x86-64 and arm64 load at full speed).
struct __attribute__((packed, aligned(2))) TcpDirState {
  uint32_t td_end = 0;     // max of seq + len
  uint32_t td_maxend = 0;  // max of ack + max(win, 1)
  uint32_t td_maxwin = 0;  // max(win)
  uint32_t td_maxack = 0;  // max of ack
  uint8_t td_scale = 0;    // window scale factor
  uint8_t flags = 0;       // kTcpFlag* bits
  friend bool operator==(const TcpDirState&, const TcpDirState&) = default;
};

struct TcpConnState {
  TcpDirState seen[2];  // indexed by Direction
  TcpState state = TcpState::kNone;
  uint8_t last_dir = 0;     // direction of the last packet (for retransmission detection)
  uint8_t retrans = 0;      // number of retransmitted packets
  uint8_t last_index = 0;   // index of the last packet (TCP_*_SET)
  uint32_t last_seq = 0;    // last sequence number seen in last_dir
  uint32_t last_ack = 0;    // last ack
  uint32_t last_end = 0;    // last seq + len
  uint16_t last_win = 0;    // last window advertised in last_dir
  uint8_t last_wscale = 0;  // for SYN/ACK window-scale tracking when in SYN_SENT2
  uint8_t last_flags = 0;   // last flags for the SYN/ACK in SYN_SENT2
  friend bool operator==(const TcpConnState&, const TcpConnState&) = default;
};
static_assert(sizeof(TcpConnState) == 56, "TcpConnState grew: re-check the Flow layout");

}  // namespace ctsync

// The TCP connection tracker: the userspace twin of Linux 6.18's
// net/netfilter/nf_conntrack_proto_tcp.c (tcp_error, tcp_new, nf_conntrack_tcp_packet,
// tcp_in_window). Pure functions over a flow's TcpConnState: no allocation, no clock, no
// globals. The state table and every rule it follows are documented in tcp_rules.md.
//
// Owner: the conntrack pipeline calls these for TCP packets of the flow it holds; the flow
// table owns the TcpConnState. Thread rules: a TcpConnState is changed only by the thread
// that owns the flow's shard; the functions themselves keep no state and are thread-safe.
//
// Calling order (mirrors the kernel, which runs tcp_new and then the packet function for
// the first packet of a flow):
//   1. TcpCheckHeader(seg): non-null reason => packet INVALID (no entry is touched/created).
//   2. New (unconfirmed) entry: TcpNew(state, seg, settings); false => packet INVALID and
//      the new entry is dropped. Then, for every packet including that first one:
//   3. TcpPacket(state, seg, ctx, settings) and apply the TcpResult (see its comments).
//   4. After a kAccept for a reply-direction packet that did not kill the entry, the
//      caller sets IPS_SEEN_REPLY. (The kernel sets it in nf_conntrack_in after the
//      protocol handler ran, so ctx.seen_reply must be the value *before* this packet.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/conntrack/tcp_state.h"
#include "core/conntrack/tuple.h"
#include "core/net/tcp_flags.h"
#include "core/util/clock.h"

namespace ctsync {

struct ConntrackSettings;

// Bit of TcpConnState::last_flags that tcp_state.h does not name: the kernel's
// IP_CT_TCP_SIMULTANEOUS_OPEN (same value as CLOSE_INIT, but only ever used in last_flags).
inline constexpr uint8_t kTcpLastFlagSimultaneousOpen = 0x04;

// Number of entries of TcpSettings::timeouts (kernel TCP_CONNTRACK_TIMEOUT_MAX).
inline constexpr int kTcpTimeoutCount = 14;

// What the tracker needs from a parsed TCP packet (all in host byte order).
struct TcpSegment {
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint16_t window = 0;  // raw, unscaled
  uint8_t flags = 0;    // kTcp* bits
  // TCP payload bytes: IP payload length minus data_offset_words * 4 (link padding excluded).
  uint32_t payload_len = 0;
  uint8_t data_offset_words = 5;  // the header's doff field
  // Options as the kernel's tcp_options()/tcp_sack() read them; TcpParseOptions fills these.
  std::optional<uint8_t> wscale;  // raw shift count of a well-formed window-scale option
  bool sack_perm = false;
  uint8_t sack_count = 0;  // blocks of the first well-formed SACK option (<= 4)
  uint32_t sack_right_edge[4] = {0, 0, 0, 0};
};

// Fills seg.wscale / sack_perm / sack_count / sack_right_edge from the option bytes that
// follow the fixed 20-byte header (len = doff*4 - 20), with the kernel's parsing quirks:
// EOL or a malformed length stops parsing, only the first well-formed SACK option counts,
// and a lone aligned timestamp option carries no SACK. Never reads past opts + len.
void TcpParseOptions(const uint8_t* opts, size_t len, TcpSegment& seg);

// Builds a TcpSegment from a TCP header and its payload: `tcp` points at the header and
// tcp_len is the IP payload length (link padding excluded). Options are parsed with
// TcpParseOptions. nullopt = ok; "truncated packet" when fewer than 20 or doff*4 bytes are
// present (the kernel's tcp_error check), in which case `out` is unspecified.
std::optional<const char*> TcpSegmentFromBytes(const uint8_t* tcp, size_t tcp_len, TcpSegment& out);

// The per-namespace TCP sysctls (kernel defaults). Timeouts are indexed by TcpState,
// including TcpState::kRetrans and TcpState::kUnack.
struct TcpSettings {
  bool loose = true;                // net.netfilter.nf_conntrack_tcp_loose
  bool be_liberal = false;          // net.netfilter.nf_conntrack_tcp_be_liberal
  bool ignore_invalid_rst = false;  // net.netfilter.nf_conntrack_tcp_ignore_invalid_rst
  uint8_t max_retrans = 3;          // net.netfilter.nf_conntrack_tcp_max_retrans
  Nanos timeouts[kTcpTimeoutCount] = {
      120 * kNanosPerSecond,     // kNone: the kernel makes slot 0 equal SYN_SENT's
      120 * kNanosPerSecond,     // kSynSent      nf_conntrack_tcp_timeout_syn_sent
      60 * kNanosPerSecond,      // kSynRecv      nf_conntrack_tcp_timeout_syn_recv
      432000 * kNanosPerSecond,  // kEstablished  nf_conntrack_tcp_timeout_established
      120 * kNanosPerSecond,     // kFinWait      nf_conntrack_tcp_timeout_fin_wait
      60 * kNanosPerSecond,      // kCloseWait    nf_conntrack_tcp_timeout_close_wait
      30 * kNanosPerSecond,      // kLastAck      nf_conntrack_tcp_timeout_last_ack
      120 * kNanosPerSecond,     // kTimeWait     nf_conntrack_tcp_timeout_time_wait
      10 * kNanosPerSecond,      // kClose        nf_conntrack_tcp_timeout_close
      120 * kNanosPerSecond,     // kSynSent2     (no sysctl; kernel default)
      0,                         // kMax          unused
      0,                         // kIgnore       unused
      300 * kNanosPerSecond,     // kRetrans      nf_conntrack_tcp_timeout_max_retrans
      300 * kNanosPerSecond,     // kUnack        nf_conntrack_tcp_timeout_unacknowledged
  };

  Nanos timeout(TcpState s) const { return timeouts[static_cast<int>(s)]; }
};

// Builds TcpSettings from the engine-wide sysctl mirror.
TcpSettings TcpSettingsFrom(const ConntrackSettings& s);

// The flow-level facts the kernel reads from ct->status, plus time.
struct TcpPacketContext {
  Direction dir = Direction::kOriginal;
  bool seen_reply = false;  // IPS_SEEN_REPLY before this packet
  bool assured = false;     // IPS_ASSURED before this packet
  bool confirmed = false;   // entry already in the table (informational; see file comment)
  Nanos now = 0;
  // Absolute expiry of the entry before this packet (needed by the kernel's
  // nf_tcp_handle_invalid, which shortens a dead-looking ASSURED entry). 0 = unknown.
  Nanos expires_at = 0;
  // nf_ct_seq_offset(ct, !dir, ack - 1): the sequence adjustment a NAT helper applied to
  // the other direction; subtracted from ack and SACK edges. 0 without seqadj.
  int32_t ack_offset = 0;
};

struct TcpResult {
  enum class Verdict {
    kAccept,   // packet belongs to the flow (ctstate NEW/ESTABLISHED as usual)
    kInvalid,  // packet is INVALID: ctstate INVALID, count `invalid`; state unchanged
               // (except the window/timeout bookkeeping the kernel also keeps)
    kRepeat,   // kill the entry and re-evaluate the packet as a new connection
  };
  Verdict verdict = Verdict::kAccept;
  // When refresh_timeout: entry expiry = ctx.now + timeout. When false, leave the timer
  // alone (ignored packets, a retransmitted SYN before any reply, invalid packets).
  Nanos timeout = 0;
  bool refresh_timeout = false;
  bool set_assured = false;  // set IPS_ASSURED (and emit the ASSURED event)
  bool kill = false;         // destroy the entry after forwarding this packet
  TcpState old_state = TcpState::kNone;
  TcpState new_state = TcpState::kNone;
  // Why the packet was invalid or ignored (static string, for logs/counters); null if the
  // packet was accepted normally.
  const char* invalid_reason = nullptr;
};

// tcp_error minus the checksum: header length and flag-combination validity.
// nullopt = ok, else the reason. The caller must also have checked that the segment holds
// data_offset_words * 4 bytes ("truncated packet") before building the TcpSegment.
std::optional<const char*> TcpCheckHeader(const TcpSegment& seg);

// tcp_new: may this packet create a connection? Initialises `state` (fully overwritten)
// for a SYN or, with settings.loose, a mid-stream pick-up. false = INVALID, no entry.
bool TcpNew(TcpConnState& state, const TcpSegment& seg, const TcpSettings& settings);

// nf_conntrack_tcp_packet (after tcp_error/tcp_new): state table, window tracking,
// RST/SYN special cases, timeout and ASSURED decisions.
TcpResult TcpPacket(TcpConnState& state, const TcpSegment& seg, const TcpPacketContext& ctx,
                    const TcpSettings& settings);

// "SYN_SENT", "ESTABLISHED", ... as conntrack -L prints; "UNKNOWN" outside kNone..kSynSent2.
const char* TcpStateName(TcpState s);

// tcp_can_early_drop: states an early drop (table full) may evict.
bool TcpCanEarlyDrop(TcpState s);

}  // namespace ctsync

// The ctsync datagram: a fixed 32-byte header, a protobuf payload (ctsync/sync.proto) and an
// HMAC-SHA256 tag (full 32 bytes) over header + payload. The same framing is used on UDP
// (one datagram) and TCP (one length-prefixed frame).
//
//   off size field
//     0    4 magic "CTSY"
//     4    1 version (kWireVersion)
//     5    1 message type (MsgType)
//     6    2 flags (kFlag*)
//     8    4 node id of the sender
//    12    8 incarnation of the sender (chosen at start, grows across restarts)
//    20    8 datagram sequence number (1, 2, ... per incarnation; replay protection)
//    28    4 payload length
//    32    n payload
//  32+n   32 HMAC-SHA256(key, bytes [0, 32+n))
// All integers big-endian.
//
// DatagramVerifier is the receive gate: nothing of a datagram is believed before its tag
// checks out, and the replay window is updated only for authentic datagrams, so forged
// traffic cannot disturb the state of real peers. Every rejection has one DropReason and
// bumps one counter.
//
// Thread rules: EncodeDatagram and ParseHeader are stateless; a DatagramVerifier belongs to
// the thread that runs the replicator.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "core/util/clock.h"

namespace ctsync::sync {

inline constexpr uint8_t kWireMagic[4] = {'C', 'T', 'S', 'Y'};
// Version 2: DATA carries compact flow records (Batch.records). Version 1 nodes refuse
// version 2 datagrams (bad_version, counted) rather than misread them; version 2 nodes still
// read version 1 datagrams (FlowUpdate messages). During a rolling upgrade the old node
// therefore hears nothing from the new one until it is upgraded too and resyncs.
inline constexpr uint8_t kWireVersion = 2;
inline constexpr uint8_t kMinWireVersion = 1;
inline constexpr size_t kHeaderSize = 32;
inline constexpr size_t kTagSize = 32;
inline constexpr size_t kWireOverhead = kHeaderSize + kTagSize;
// Largest payload accepted (a TCP frame can exceed a UDP datagram; a resync batch never
// needs more).
inline constexpr uint32_t kMaxPayload = 1u << 20;

enum class MsgType : uint8_t {
  kData = 1,           // proto::Batch
  kAck = 2,            // proto::Ack
  kNack = 3,           // proto::Nack
  kAlive = 4,          // proto::Alive
  kResyncRequest = 5,  // proto::ResyncRequest
  kResyncDone = 6,     // proto::ResyncDone
};
inline constexpr uint8_t kMaxMsgType = 6;

// Header flags.
inline constexpr uint16_t kFlagRetransmit = 1u << 0;   // DATA sent again after a nack
inline constexpr uint16_t kFlagAckRequest = 1u << 1;  // DATA: please ack now (flow control)

struct WireHeader {
  MsgType type = MsgType::kData;
  uint16_t flags = 0;
  uint32_t node_id = 0;
  uint64_t incarnation = 0;
  uint64_t seq = 0;
  uint32_t payload_len = 0;  // filled by EncodeDatagram / ParseHeader
};

// Why a received datagram was dropped. One list, declared once: the enum, the names and the
// counters all come from it.
#define CTSYNC_SYNC_DROP_REASONS(X)                                                    \
  X(kTooShort, "too_short")             /* shorter than header + tag */               \
  X(kBadMagic, "bad_magic")                                                           \
  X(kBadVersion, "bad_version")                                                       \
  X(kBadType, "bad_type")                                                             \
  X(kBadLength, "bad_length")           /* payload length disagrees with the size */  \
  X(kBadHmac, "bad_hmac")               /* forged, corrupted, or an unknown key */    \
  X(kOwnNode, "own_node")               /* our own multicast echo */                  \
  X(kOldIncarnation, "old_incarnation") /* from a previous life of the peer */        \
  X(kReplay, "replay")                  /* sequence number already seen */            \
  X(kTooOld, "too_old")                 /* below the replay window */                 \
  X(kBadPayload, "bad_payload")         /* authentic but the payload does not parse */

enum class DropReason : uint8_t {
#define CTSYNC_X(name, text) name,
  CTSYNC_SYNC_DROP_REASONS(CTSYNC_X)
#undef CTSYNC_X
      kCount
};
inline constexpr size_t kNumDropReasons = static_cast<size_t>(DropReason::kCount);

const char* DropReasonName(DropReason r);

struct DropCounters {
  std::array<uint64_t, kNumDropReasons> count{};
  void Add(DropReason r) { ++count[static_cast<size_t>(r)]; }
  uint64_t operator[](DropReason r) const { return count[static_cast<size_t>(r)]; }
  uint64_t Total() const;
};

// Frames `payload` and appends the datagram to *out (header.payload_len is ignored).
void EncodeDatagram(const WireHeader& header, absl::Span<const uint8_t> payload,
                    absl::Span<const uint8_t> key, std::string* out);

// Structural checks only (size, magic, version, type, length); no authentication.
std::optional<DropReason> ParseHeader(absl::Span<const uint8_t> datagram, WireHeader* header);

// The shared key, and the previous one during a rotation. `previous_key_until` is on the
// clock whose time is passed to Verify (monotonic in the replicator).
struct KeyConfig {
  std::string key;
  std::string previous_key;
  Nanos previous_key_until = 0;
};

// Sliding replay window over one incarnation's datagram sequence numbers: remembers at least
// the last kSize - 64 numbers below the highest seen; anything older is kTooOld.
class ReplayWindow {
 public:
  static constexpr uint64_t kSize = 4096;
  // nullopt when `seq` is new and inside the window.
  std::optional<DropReason> Check(uint64_t seq) const;
  void Accept(uint64_t seq);
  uint64_t highest() const { return highest_; }

 private:
  bool Bit(uint64_t seq) const { return bits_[(seq / 64) % kWords] >> (seq % 64) & 1; }
  static constexpr size_t kWords = kSize / 64;
  std::array<uint64_t, kWords> bits_{};
  uint64_t highest_ = 0;
};

struct VerifiedDatagram {
  WireHeader header;
  absl::Span<const uint8_t> payload;  // points into the datagram given to Verify
  bool new_incarnation = false;       // first datagram of this (node, incarnation)
  bool previous_key = false;          // authenticated with the previous key
};

class DatagramVerifier {
 public:
  DatagramVerifier(uint32_t own_node_id, KeyConfig keys)
      : own_node_id_(own_node_id), keys_(std::move(keys)) {}

  // nullopt and *out filled when the datagram is authentic and fresh; otherwise the reason
  // (also counted). `now` decides whether the previous key is still accepted.
  std::optional<DropReason> Verify(absl::Span<const uint8_t> datagram, Nanos now,
                                   VerifiedDatagram* out);

  // Rotation: the current key becomes the previous one until `previous_until`.
  void RotateKey(std::string new_key, Nanos previous_until);
  const KeyConfig& keys() const { return keys_; }

  // Counts a drop decided after Verify (e.g. kBadPayload).
  void CountDrop(DropReason r) { drops_.Add(r); }
  const DropCounters& drops() const { return drops_; }
  // Incarnation currently accepted for `node` (0 if never heard).
  uint64_t IncarnationOf(uint32_t node) const;

 private:
  struct PeerWindow {
    uint64_t incarnation = 0;
    ReplayWindow window;
  };
  std::optional<DropReason> Drop(DropReason r) {
    drops_.Add(r);
    return r;
  }

  uint32_t own_node_id_;
  KeyConfig keys_;
  absl::flat_hash_map<uint32_t, PeerWindow> peers_;
  DropCounters drops_;
};

}  // namespace ctsync::sync

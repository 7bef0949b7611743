// Converts flow events to the compact sync message FlowUpdate and back. The Flow itself goes
// through proto/flow_codec.h (the one Flow <-> proto conversion); this layer only leaves out
// what a receiver can rebuild (the reply tuple's parts that merely mirror the original, the
// per-flow wall clock that equals the batch's) and restores it before decoding.
//
// Stateless; any thread.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "core/conntrack/flow_events.h"
#include "ctsync/sync.pb.h"
#include "proto/flow_codec.h"

namespace ctsync::sync {

// FlowUpdate.implied bits: fields left out of FlowUpdate.flow.
inline constexpr uint32_t kImpliedReplyFamilyProto = 1u << 0;  // = original's
inline constexpr uint32_t kImpliedReplySrc = 1u << 1;          // = original dst
inline constexpr uint32_t kImpliedReplyDst = 1u << 2;          // = original src
inline constexpr uint32_t kImpliedReplySport = 1u << 3;        // = original dport
inline constexpr uint32_t kImpliedReplyDport = 1u << 4;        // = original sport
inline constexpr uint32_t kImpliedWallTime = 1u << 5;  // = batch wall time; created by age
inline constexpr uint32_t kImpliedFamily = 1u << 6;    // from the address length
inline constexpr uint32_t kImpliedTcpPacked = 1u << 7;  // flow.tcp is in tcp_packed

// A decoded peer event as the owner receives it.
struct PeerFlowUpdate {
  uint32_t peer = 0;  // node id of the sender
  FlowEventType type = FlowEventType::kNew;
  bool resync = false;         // part of a full dump
  codec::DecodedFlow decoded;  // NEW / UPDATE
  Tuple original;              // every type: the key
  uint16_t zone = 0;
};

// `now` / `wall_now` are the sender's clocks when the batch is built; `batch_wall_ms` is
// the wall time written in the batch.
void EncodeFlowUpdate(const FlowEvent& e, Nanos now, Nanos wall_now, int64_t batch_wall_ms,
                      proto::FlowUpdate* out);

// `age` is how old the batch is by the receiver's reckoning (clamped at zero by the codec).
absl::Status DecodeFlowUpdate(const proto::FlowUpdate& in, int64_t batch_wall_ms, Nanos now,
                              Nanos age, PeerFlowUpdate* out);

}  // namespace ctsync::sync

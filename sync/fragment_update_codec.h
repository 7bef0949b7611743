// Fragment queue replication (issue #5): the reassembler's DefragEvents <-> FragmentUpdate
// messages (ctsync/sync.proto), and the checks a peer's message passes before it reaches
// the engine. A peer's message that fails them is refused with a reason (the replicator
// counts it as bad_fragments); the frame itself is checked again by Defragmenter::Import.
//
// Kept apart from the flow codecs (flow_update_codec, flow_record_codec): fragments are raw
// frames, not flow state. Stateless; any thread. ApplyFragmentUpdate runs on the thread
// that owns the Defragmenter (the datapath).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "core/packet/defrag.h"
#include "core/util/clock.h"
#include "ctsync/sync.pb.h"

namespace ctsync::sync {

// Largest frame accepted: a 65535-byte IP datagram behind Ethernet with two VLAN tags.
inline constexpr size_t kMaxFragmentFrame = 65535 + 14 + 8;

// A peer's fragment queue event, checked.
struct PeerFragmentUpdate {
  uint32_t peer = 0;  // node id of the sender
  DefragEvent::Kind kind = DefragEvent::Kind::kQueued;
  // kGone: the queue. kQueued: only key.zone is set (the frame holds the rest).
  FragmentQueueKey key;
  std::vector<uint8_t> frame;  // kQueued
  Nanos lifetime = 0;          // kQueued: what is left of the queue's life on arrival
};

// `now` is the sender's clock (the one e.deadline is on).
void EncodeFragmentUpdate(const DefragEvent& e, Nanos now, proto::FragmentUpdate* out);

// `age`: how old the batch is by the receiver's reckoning; taken off the lifetime.
absl::Status DecodeFragmentUpdate(const proto::FragmentUpdate& in, Nanos age,
                                  PeerFragmentUpdate* out);

// Applies `u` to the backup's reassembler. Returns true when it changed a queue.
bool ApplyFragmentUpdate(const PeerFragmentUpdate& u, Defragmenter& defrag, Nanos now);

}  // namespace ctsync::sync

// Replicator: the sync protocol engine of one node. It turns local flow events into
// authenticated DATA datagrams (batched up to the MTU), keeps them in a bounded
// retransmission queue until every live peer has acknowledged them, and on the receive side
// verifies, orders and de-duplicates peers' streams, acknowledges them, nacks gaps, detects
// dead and restarted peers, and asks for (and serves) a full resync when a stream cannot be
// repaired. Decoded peer flows go to the owner through a callback (see external_apply.h for
// the function that applies them to an engine).
//
// The protocol is described in sync/README.md.
//
// Owner: the daemon's sync thread (the one running the Asio io_context). Every method must be
// called from that thread; the callbacks run on it too. Time comes from the injected Clock;
// nothing here sleeps or starts threads, so tests drive it with a ManualClock and a fake
// send function.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/conntrack/flow_events.h"
#include "google/protobuf/arena.h"
#include "core/util/clock.h"
#include "ctsync/sync.pb.h"
#include "sync/flow_record_codec.h"
#include "sync/flow_update_codec.h"
#include "sync/fragment_update_codec.h"
#include "sync/sync_filter.h"
#include "sync/wire.h"

namespace ctsync::sync {

enum class ReplicationMode : uint8_t {
  kReliable = 0,    // acks, nacks, retransmission, resync (conntrackd FT-FW)
  kBestEffort = 1,  // send once; resync only on join or request (conntrackd NOTRACK)
  kRefresh = 2,     // best effort plus a full dump every refresh_interval (conntrackd ALARM)
};

struct ReplicatorOptions {
  uint32_t node_id = 0;  // must be non-zero and unique in the cluster
  // Identifies this run of the node; must grow across restarts. 0: the wall clock at Create.
  uint64_t incarnation = 0;
  KeyConfig keys;
  ReplicationMode mode = ReplicationMode::kReliable;
  // Largest datagram, header and tag included: 1500-byte Ethernet minus IPv4 and UDP.
  size_t mtu = 1472;
  // A partly filled batch leaves at the latest this long after its first event.
  Nanos flush_delay = 1 * kNanosPerMilli;
  // Receivers acknowledge at least this often while data arrives ...
  Nanos ack_interval = 20 * kNanosPerMilli;
  // ... or every this many DATA datagrams, whichever comes first.
  uint64_t ack_every = 64;
  // A gap survives this long (reordering tolerance) before it is nacked; also the interval
  // between repeated nacks for the same gap.
  Nanos nack_delay = 10 * kNanosPerMilli;
  Nanos alive_interval = 100 * kNanosPerMilli;
  // A peer is dead after this long without any authentic datagram.
  Nanos peer_dead_after = 1 * kNanosPerSecond;
  // Retransmission queue bounds; beyond them the oldest DATA is dropped (a peer that still
  // needed it resyncs).
  size_t queue_max_datagrams = 65536;
  size_t queue_max_bytes = 64u << 20;
  // Flow control: DATA bytes a live peer has not acknowledged before backlogged() says
  // "pause". Keep it below the receivers' socket buffer (4 MiB by default), or a burst is
  // dropped there and repaired by retransmission.
  size_t send_window_bytes = 2u << 20;
  // Receivers also acknowledge after this many bytes of DATA (large datagrams: a count of
  // datagrams alone would let the sender's window run dry before the first ack).
  size_t ack_every_bytes = 256u << 10;
  // Out-of-order DATA held per peer while waiting for a gap to fill.
  size_t reorder_max = 8192;
  // Flow control of a resync dump: unacknowledged DATA datagrams in flight (reliable mode),
  // or datagrams per Tick (other modes).
  size_t dump_window = 2048;
  size_t dump_chunk_flows = 256;  // flows asked from the dump source per call
  // A resync request is repeated until the dump starts arriving.
  Nanos resync_retry = 1 * kNanosPerSecond;
  // kRefresh: period of the full dump.
  Nanos refresh_interval = 15 * kNanosPerSecond;
  // The age of a batch (receiver's wall clock minus the sender's) is clamped to this, so
  // clock skew between nodes cannot expire replicated flows early.
  Nanos max_batch_age = 2 * kNanosPerSecond;
  SyncFilter send_filter;
  SyncFilter accept_filter;
};

// Counters, one list. Names are also the stat names printed by ctsyncctl.
#define CTSYNC_REPLICATOR_COUNTERS(X)                                                  \
  X(datagrams_sent) X(bytes_sent) X(data_sent) X(events_sent) X(events_filtered_out)    \
  X(retransmits) X(acks_sent) X(nacks_sent) X(alives_sent) X(resync_requests_sent)      \
  X(resyncs_served) X(dump_flows_sent) X(datagrams_received) X(data_received)           \
  X(events_received) X(events_filtered_in) X(bad_flows) X(duplicates)                   \
  X(reorder_overflow) X(queue_overflow) X(nack_unavailable) X(gaps_skipped)             \
  X(peers_joined) X(peers_restarted) X(peers_dead) X(acks_received) X(nacks_received)   \
  X(resync_requests_received) X(fragments_sent) X(fragments_received) X(bad_fragments)    \
  X(fragments_ignored)

struct ReplicatorStats {
#define CTSYNC_X(name) uint64_t name = 0;
  CTSYNC_REPLICATOR_COUNTERS(CTSYNC_X)
#undef CTSYNC_X
  // Calls fn(name, value) for every counter, in list order.
  template <typename Fn>
  void ForEach(Fn fn) const {
#define CTSYNC_X(name) fn(#name, name);
    CTSYNC_REPLICATOR_COUNTERS(CTSYNC_X)
#undef CTSYNC_X
  }
};

struct PeerEvent {
  enum class Kind : uint8_t { kJoined, kRestarted, kDead, kRecovered, kResyncDone };
  Kind kind;
  uint32_t node_id = 0;
  uint64_t incarnation = 0;
};

struct PeerInfo {
  uint32_t node_id = 0;
  uint64_t incarnation = 0;
  bool alive = false;
  uint64_t delivered = 0;    // their stream: highest DATA applied in order
  uint64_t acked_ours = 0;   // our stream: their cumulative ack
  size_t pending = 0;        // their DATA held out of order
  bool resync_wanted = false;
};

class Replicator {
 public:
  // Hands a finished datagram to the transport (which copies it if it needs to).
  using SendFn = std::function<void(absl::Span<const uint8_t>)>;
  // A peer's flow, accepted by the filter, to apply to the local engine.
  using ApplyFn = std::function<void(const PeerFlowUpdate&)>;
  // The same for a run of updates from one batch, in order (lets the owner prefetch, see
  // ExternalCache::ApplyBatch). The updates are valid during the call only.
  using ApplyBatchFn = std::function<void(absl::Span<const PeerFlowUpdate>)>;
  // Resync source: appends up to `max` local flows, starting at *cursor (0 = beginning),
  // to *out (type kNew) and advances *cursor. Returns false once the dump is complete (the
  // flows appended by that call are still sent).
  using DumpFn =
      std::function<bool(uint64_t* cursor, size_t max, std::vector<FlowEvent>* out)>;
  using PeerEventFn = std::function<void(const PeerEvent&)>;
  // A peer's fragment queue event (checked, see fragment_update_codec.h) for the owner to
  // apply to its reassembler (ApplyFragmentUpdate).
  using ApplyFragmentFn = std::function<void(const PeerFragmentUpdate&)>;

  struct Callbacks {
    SendFn send;            // required
    ApplyFn apply;          // required
    ApplyBatchFn apply_batch;  // optional: used instead of `apply` when set
    DumpFn dump;            // optional: without it, resync requests are counted and ignored
    PeerEventFn peer_event;  // optional
    // optional: without it, peers' fragment updates are counted (fragments_ignored)
    ApplyFragmentFn apply_fragment;
  };

  static absl::StatusOr<std::unique_ptr<Replicator>> Create(const ReplicatorOptions& options,
                                                            Callbacks callbacks,
                                                            const Clock& clock);

  // Queues one local event (send filter applied). Batches leave when full, on Flush, or
  // from Tick after flush_delay.
  void Publish(const FlowEvent& e);
  // Queues one event of the local reassembler (Defragmenter::PopEvent). Fragment events
  // travel in DATA batches of their own, reliably like flow events, and are not part of
  // resync dumps (a queue lives 30 to 60 s). A fragment too large for the mtu leaves alone
  // in a larger datagram (the IP layer of the sync link fragments it).
  void PublishFragment(const DefragEvent& e);
  void Flush();

  // One received datagram (UDP datagram or TCP frame). Returns true when it was authentic
  // and fresh from a peer (the transport layer uses that for link liveness).
  bool OnDatagram(absl::Span<const uint8_t> datagram);

  // Timers: flush, acks, nacks, alives, peer liveness, resync requests, dump pacing,
  // refresh. Call every few milliseconds.
  void Tick();

  // Commands.
  // Asks every known peer for a full dump: alive ones now, silent ones when heard again,
  // and (with no peer known yet) the peers that join until one dump completes.
  void RequestResync();
  void StartDump();             // send our whole internal cache ("bulk", conntrackd -B)
  void RotateKey(std::string new_key, Nanos previous_valid_for);

  const ReplicatorStats& stats() const { return stats_; }
  const DropCounters& drops() const { return verifier_.drops(); }
  std::vector<PeerInfo> Peers() const;
  uint64_t incarnation() const { return incarnation_; }
  uint64_t last_stream_seq() const { return next_stream_seq_ - 1; }
  size_t queue_datagrams() const { return queue_.size(); }
  size_t queue_bytes() const { return queue_bytes_; }
  bool dump_active() const { return dump_.active; }
  // True when the peers are a send window behind (or the retransmission queue is half
  // full): an owner producing events faster than peers acknowledge them should pause (flow
  // control for bulk replication).
  bool backlogged() const {
    return Reliable() && (queue_.size() * 2 >= options_.queue_max_datagrams ||
                          queue_bytes_ * 2 >= options_.queue_max_bytes ||
                          queue_bytes_ >= options_.send_window_bytes);
  }

 private:
  struct BatchBuilder {
    std::string body;  // flow records (Batch.records, sync/flow_record_codec.h)
    RecordContext ctx;  // delta-coding state of the records so far
    size_t events = 0;
    int64_t wall_ms = 0;
    Nanos wall = 0;
    Nanos started = 0;
    bool resync = false;
  };
  struct FragmentBatch {
    std::string body;  // Batch.fragments entries, tag and length included
    size_t count = 0;
    int64_t wall_ms = 0;
    Nanos started = 0;
  };
  struct Retained {
    uint64_t stream_seq;
    std::string payload;
    Nanos last_sent = 0;  // first send or latest retransmission
  };
  struct Peer {
    uint32_t node_id = 0;
    uint64_t incarnation = 0;
    Nanos last_heard = 0;
    bool alive = false;
    // Their stream, as we receive it.
    bool stream_known = false;
    uint64_t delivered = 0;
    uint64_t highest_seen = 0;  // from DATA or their alive's last_stream_seq
    uint64_t highest_data = 0;  // from DATA only
    Nanos last_data = 0;
    std::map<uint64_t, proto::Batch> pending;
    Nanos gap_since = -1;
    Nanos last_nack = 0;
    uint64_t acked_sent = 0;
    size_t bytes_since_ack = 0;  // DATA payload delivered since our last ack
    Nanos last_ack = 0;
    bool resync_wanted = false;  // we asked for a dump and it has not started arriving
    Nanos resync_asked = 0;
    // Our stream, as they acknowledge it.
    uint64_t acked_ours = 0;
  };
  struct DumpState {
    bool active = false;
    bool again = false;  // another request came in during this dump
    uint64_t cursor = 0;
    uint64_t flows = 0;
    uint64_t first_seq = 0;
  };

  Replicator(const ReplicatorOptions& options, Callbacks callbacks, const Clock& clock,
             uint64_t incarnation);

  size_t BodyLimit() const;
  void Append(BatchBuilder& b, const FlowEvent& e, Nanos now);
  void FlushBuilder(BatchBuilder& b);
  void FlushFragments();
  // Sends a finished DATA payload (stream_seq `seq`) and keeps it for retransmission.
  void SendData(uint64_t seq, std::string payload);
  void SendDatagram(MsgType type, uint16_t flags, absl::Span<const uint8_t> payload);
  void SendMessage(MsgType type, const google::protobuf::MessageLite& m);
  void SendAlive();
  // False when the datagram was sent too recently to be missing yet (not resent).
  bool Retransmit(uint64_t stream_seq, Nanos now);
  void TrimQueue();

  Peer& PeerFor(const VerifiedDatagram& v, Nanos now);
  void OnData(Peer& p, const proto::Batch& batch, Nanos now);
  void Deliver(Peer& p, const proto::Batch& batch);
  void DrainPending(Peer& p);
  void OnAlive(Peer& p, const proto::Alive& a, Nanos now);
  void OnAck(Peer& p, const proto::Ack& a);
  void OnNack(Peer& p, const proto::Nack& n);
  void SkipTo(Peer& p, uint64_t oldest_retained);
  void SendAck(Peer& p, Nanos now);
  void MaybeNack(Peer& p, Nanos now);
  void AskResync(Peer& p, Nanos now);
  void WantResync(Peer& p, Nanos now);
  void PumpDump(size_t max_datagrams);
  void Notify(PeerEvent::Kind kind, const Peer& p);
  bool Reliable() const { return options_.mode == ReplicationMode::kReliable; }

  ReplicatorOptions options_;
  Callbacks callbacks_;
  const Clock& clock_;
  uint64_t incarnation_;
  DatagramVerifier verifier_;

  uint64_t next_dgram_seq_ = 1;
  uint64_t next_stream_seq_ = 1;
  bool resync_on_join_ = false;  // RequestResync found no peer: ask those that join
  BatchBuilder live_;
  BatchBuilder dump_batch_;
  FragmentBatch frags_;
  std::deque<Retained> queue_;
  size_t queue_bytes_ = 0;
  DumpState dump_;
  Nanos last_alive_ = 0;
  Nanos last_refresh_ = 0;
  absl::flat_hash_map<uint32_t, Peer> peers_;
  ReplicatorStats stats_;

  // Received DATA is parsed into this arena (reset per datagram): one allocation block
  // instead of one per event and sub-message.
  google::protobuf::Arena rx_arena_;
  // Scratch buffers reused across calls (no allocation per event).
  proto::Flow scratch_flow_;
  proto::FragmentUpdate scratch_fragment_;
  PeerFragmentUpdate scratch_peer_fragment_;
  PeerFlowUpdate scratch_peer_update_;
  std::vector<PeerFlowUpdate> pending_apply_;  // accepted updates for apply_batch
  std::string out_;
  std::vector<FlowEvent> dump_events_;
};

}  // namespace ctsync::sync

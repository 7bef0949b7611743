// ExternalCache: applies peers' flows (Replicator output) to this node's ConntrackEngine and
// remembers which table entries were learnt from a peer. The "external cache" of conntrackd
// is thus the live table itself: a learnt flow is already hashed and on the timer wheel,
// so promotion (Commit) copies nothing; it only forgets the marks, in O(1), by moving to a
// new generation.
//
// The mark is two bytes of the Flow itself (Flow::learnt_generation, learnt_peer), so it
// costs no memory beyond the entry, is cleared when the table hands the slot to another
// flow, and travels in every event's copy of the flow: an event tells by itself whether
// its flow was learnt, also after the slot was freed.
//
// Local flows win: an update for a tuple that this node tracks itself is refused (counted),
// never applied over the local state.
//
// Owner: the datapath thread that owns the engine. Every method must run on that thread
// (the daemon posts decoded updates there). Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "absl/types/span.h"
#include "core/conntrack/conntrack_engine.h"
#include "sync/flow_update_codec.h"

namespace ctsync::sync {

#define CTSYNC_EXTERNAL_COUNTERS(X)                                                       \
  X(inserted) X(updated) X(replaced) X(destroyed) X(local_conflicts) X(unknown_destroy) \
  X(expired_on_arrival) X(table_full) X(insert_errors) X(commits) X(flushed)

struct ExternalStats {
#define CTSYNC_X(name) uint64_t name = 0;
  CTSYNC_EXTERNAL_COUNTERS(CTSYNC_X)
#undef CTSYNC_X
  template <typename Fn>
  void ForEach(Fn fn) const {
#define CTSYNC_X(name) fn(#name, name);
    CTSYNC_EXTERNAL_COUNTERS(CTSYNC_X)
#undef CTSYNC_X
  }
};

class ExternalCache {
 public:
  enum class Result : uint8_t {
    kInserted,
    kUpdated,
    kReplaced,       // the NAT binding changed: the old entry went, a new one came
    kDestroyed,
    kLocalConflict,  // the tuple belongs to a local flow: left alone
    kUnknown,        // DESTROY for a flow we do not hold
    kExpired,        // arrived with no lifetime left
    kTableFull,
    kInsertError,    // e.g. the reply tuple clashes with another flow
  };

  explicit ExternalCache(ConntrackEngine& engine);

  Result Apply(const PeerFlowUpdate& u, Nanos now);
  // Apply for a run of updates (one received batch), in order, with the same results. The
  // table's buckets and chains for every update's tuples are prefetched first (FlowTable::
  // FindBatch), so the cache misses of a 1M-entry table overlap instead of queueing.
  // `on_result`, when given, sees each update's result.
  void ApplyBatch(absl::Span<const PeerFlowUpdate> us, Nanos now,
                  const std::function<void(const PeerFlowUpdate&, Result)>& on_result = {});

  bool IsExternal(FlowIndex idx) const;
  // Whether the flow an event carries (its copy, taken when the event was emitted) was
  // learnt from a peer and not yet committed: its events must not go back out.
  bool WasExternal(const Flow& copy) const {
    return copy.learnt_generation == generation_;
  }
  std::optional<uint32_t> PeerOf(FlowIndex idx) const;

  // Promotion (conntrackd -c): every learnt flow becomes a local one. O(1) in the flows
  // learnt; it also clears the stale marks of 1/254 of the table's used slots.
  // The owner sorts the events already queued before it commits: they carry the marks of
  // the generation that ends here.
  void Commit();

  // Demotion, or a start as backup: every flow this node holds becomes provisional, as if
  // learnt from `peer` — the active peer's updates then replace it, it is never sent out,
  // and a later promotion makes it local again. O(table).
  size_t AdoptLocal(uint32_t peer);
  // Removes learnt flows (conntrackd -f external), all or one peer's. O(table capacity).
  size_t Flush(Nanos now);
  size_t FlushPeer(uint32_t node_id, Nanos now);
  // O(table capacity).
  size_t CountExternal() const;

  const ExternalStats& stats() const { return stats_; }

 private:
  // Commits within which every used slot's stale mark is cleared: a generation's marks go
  // stale at the commit that ends it and would read as current 255 commits later.
  static constexpr FlowIndex kSweepCommits = 254;
  void MarkLearnt(Flow& f, uint8_t peer_slot) const {
    f.learnt_generation = generation_;
    f.learnt_peer = peer_slot;
  }
  void SweepStaleMarks();
  uint8_t PeerSlot(uint32_t node_id);
  Result Insert(const PeerFlowUpdate& u, Nanos now);
  void UpdateInPlace(FlowIndex idx, const codec::DecodedFlow& d, Nanos now);
  void ApplyHelperState(FlowIndex idx, const codec::DecodedFlow& d);
  void ResolveMaster(FlowIndex idx, const codec::DecodedFlow& d, Nanos now);
  template <typename Pred>
  size_t KillIf(Nanos now, Pred pred);

  ConntrackEngine& engine_;
  // ApplyBatch's prefetch keys, reused.
  std::vector<Tuple> batch_tuples_;
  std::vector<uint16_t> batch_zones_;
  std::vector<FlowLookup> batch_found_;
  std::vector<uint32_t> peer_ids_;  // slot -> node id
  uint8_t generation_ = 1;  // never 0, the mark of a local flow
  FlowIndex sweep_cursor_ = 0;
  ExternalStats stats_;
};

}  // namespace ctsync::sync

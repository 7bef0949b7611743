#include "sync/external_apply.h"

#include <algorithm>

namespace ctsync::sync {

ExternalCache::ExternalCache(ConntrackEngine& engine) : engine_(engine) {}

bool ExternalCache::IsExternal(FlowIndex idx) const {
  const FlowTable& t = engine_.table();
  return t.IsConfirmed(idx) && WasExternal(t.flow(idx));
}

std::optional<uint32_t> ExternalCache::PeerOf(FlowIndex idx) const {
  if (!IsExternal(idx)) return std::nullopt;
  return peer_ids_[engine_.table().flow(idx).learnt_peer];
}

uint8_t ExternalCache::PeerSlot(uint32_t node_id) {
  for (size_t i = 0; i < peer_ids_.size(); ++i) {
    if (peer_ids_[i] == node_id) return static_cast<uint8_t>(i);
  }
  // A cluster has a handful of nodes; the 8-bit slot is never the limit in practice, and
  // if it were, sharing the last slot only blurs FlushPeer, never correctness of Commit.
  if (peer_ids_.size() <= 0xff) peer_ids_.push_back(node_id);
  return static_cast<uint8_t>(peer_ids_.size() - 1);
}

size_t ExternalCache::AdoptLocal(uint32_t peer) {
  const uint8_t slot = PeerSlot(peer);
  size_t n = 0;
  FlowTable& table = engine_.table();
  table.ForEach([&](FlowIndex idx, const Flow& f) {
    if (WasExternal(f)) return;
    MarkLearnt(table.flow(idx), slot);
    ++n;
  });
  return n;
}

ExternalCache::Result ExternalCache::Apply(const PeerFlowUpdate& u, Nanos now) {
  FlowTable& table = engine_.table();
  const FlowLookup found = table.Find(u.original, u.zone);
  const bool ours = found.found() && found.dir == Direction::kOriginal;
  if (found.found() && (!ours || !IsExternal(found.idx))) {
    ++stats_.local_conflicts;
    return Result::kLocalConflict;
  }
  if (u.type == FlowEventType::kDestroy) {
    if (!found.found()) {
      ++stats_.unknown_destroy;
      return Result::kUnknown;
    }
    engine_.Kill(found.idx, now);
    ++stats_.destroyed;
    return Result::kDestroyed;
  }
  if (u.decoded.remaining <= 0) {
    ++stats_.expired_on_arrival;
    return Result::kExpired;
  }
  if (!found.found()) return Insert(u, now);
  Flow& f = table.flow(found.idx);
  if (f.tuple[1] != u.decoded.flow.tuple[1]) {
    // The table never re-keys a confirmed entry; a changed binding is a new entry.
    engine_.Kill(found.idx, now);
    const Result r = Insert(u, now);
    if (r != Result::kInserted) return r;
    --stats_.inserted;
    ++stats_.replaced;
    return Result::kReplaced;
  }
  UpdateInPlace(found.idx, u.decoded, now);
  ++stats_.updated;
  return Result::kUpdated;
}

void ExternalCache::ApplyBatch(absl::Span<const PeerFlowUpdate> us, Nanos now,
                               const std::function<void(const PeerFlowUpdate&, Result)>& on_result) {
  // Warm-up only: the lookups are redone by Apply (an earlier update of the batch may change
  // what a later one finds), but they then hit the cache. Replies are warmed too, for
  // Confirm's clash check of a new flow's reply tuple.
  batch_tuples_.clear();
  batch_zones_.clear();
  for (const PeerFlowUpdate& u : us) {
    batch_tuples_.push_back(u.original);
    batch_zones_.push_back(u.zone);
    if (u.type != FlowEventType::kDestroy) {
      batch_tuples_.push_back(u.decoded.flow.tuple[1]);
      batch_zones_.push_back(u.zone);
    }
  }
  batch_found_.resize(batch_tuples_.size());
  engine_.table().FindBatch(batch_tuples_, batch_zones_, absl::MakeSpan(batch_found_));
  for (const PeerFlowUpdate& u : us) {
    const Result r = Apply(u, now);
    if (on_result) on_result(u, r);
  }
}

ExternalCache::Result ExternalCache::Insert(const PeerFlowUpdate& u, Nanos now) {
  // Marked before the insert, so that the NEW event already carries the mark.
  Flow learnt = u.decoded.flow;
  MarkLearnt(learnt, PeerSlot(u.peer));
  absl::StatusOr<FlowIndex> idx = engine_.Insert(learnt, &u.decoded.counters, now);
  if (!idx.ok()) {
    if (absl::IsResourceExhausted(idx.status())) {
      ++stats_.table_full;
      return Result::kTableFull;
    }
    ++stats_.insert_errors;
    return Result::kInsertError;
  }
  FlowTable& table = engine_.table();
  if (u.decoded.seq_adjust) table.MutableSeqAdjust(*idx) = *u.decoded.seq_adjust;
  ApplyHelperState(*idx, u.decoded);
  ResolveMaster(*idx, u.decoded, now);
  ++stats_.inserted;
  return Result::kInserted;
}

void ExternalCache::UpdateInPlace(FlowIndex idx, const codec::DecodedFlow& d, Nanos now) {
  FlowTable& table = engine_.table();
  Flow& f = table.flow(idx);
  f.status = (d.flow.status & ~kIpsDying) | kIpsConfirmed;
  f.mark = d.flow.mark;
  f.tcp = d.flow.tcp;
  f.helper = d.flow.helper;
  if (FlowAccounting* a = table.accounting(idx)) *a = d.counters;
  table.SetTimeout(idx, d.flow.expires);
  if (d.seq_adjust) table.MutableSeqAdjust(idx) = *d.seq_adjust;
  ApplyHelperState(idx, d);
  if (f.master == kNoFlow) ResolveMaster(idx, d, now);
}

void ExternalCache::ApplyHelperState(FlowIndex idx, const codec::DecodedFlow& d) {
  if (d.flow.helper == FlowHelper::kNone) return;
  if (d.ftp_state) engine_.table().MutableFtpState(idx) = *d.ftp_state;
  // A helper flow's update carries its pending expectation (or none): it replaces ours, so
  // a promoted backup relates the data connection the old active announced.
  ExpectationTable& exps = engine_.expectations();
  exps.RemoveMaster(idx);
  if (d.expectation) {
    Expectation e = *d.expectation;
    e.master = idx;
    exps.Add(e, /*max_per_master=*/1);
  }
}

void ExternalCache::ResolveMaster(FlowIndex idx, const codec::DecodedFlow& d, Nanos now) {
  if (!d.master_tuple) return;
  FlowTable& table = engine_.table();
  Flow& f = table.flow(idx);
  const FlowLookup m = table.Find(*d.master_tuple, f.zone);
  if (!m.found() || m.idx == idx) return;
  f.master = m.idx;
  ++table.flow(m.idx).child_count;
  // The peer's data connection consumed the expectation there; it goes here too.
  engine_.expectations().Take(f.tuple[0], f.zone, now);
}

void ExternalCache::Commit() {
  ++stats_.commits;
  if (++generation_ == 0) generation_ = 1;
  SweepStaleMarks();
}

// A promoted flow keeps the generation it was learnt in, and would read as learnt again
// when the 8-bit generation comes round, 255 commits later. Right after a commit every mark
// is stale, so each commit clears those of the next 1/254 of the slots ever used: the slots
// marked in any generation are all swept before it comes back, and no single commit walks
// the whole table (a wrap-time walk would cost ~9 ms at 1M flows, inside the takeover).
void ExternalCache::SweepStaleMarks() {
  FlowTable& table = engine_.table();
  const FlowIndex used = table.high_water();
  if (used == 0) return;
  const FlowIndex slice = (used + kSweepCommits - 1) / kSweepCommits;
  for (FlowIndex n = 0; n < slice; ++n) {
    if (sweep_cursor_ >= used) sweep_cursor_ = 0;
    Flow& f = table.flow(sweep_cursor_++);
    // Written only where set: most slots carry no mark, and their lines stay clean.
    if (f.learnt_generation != 0) f.learnt_generation = 0;
  }
}

template <typename Pred>
size_t ExternalCache::KillIf(Nanos now, Pred pred) {
  std::vector<FlowIndex> doomed;
  engine_.table().ForEach([&](FlowIndex idx, const Flow& f) {
    if (WasExternal(f) && pred(f)) doomed.push_back(idx);
  });
  for (FlowIndex idx : doomed) engine_.Kill(idx, now);
  const size_t n = doomed.size();
  stats_.flushed += n;
  return n;
}

size_t ExternalCache::Flush(Nanos now) {
  return KillIf(now, [](const Flow&) { return true; });
}

size_t ExternalCache::FlushPeer(uint32_t node_id, Nanos now) {
  return KillIf(now, [&](const Flow& f) { return peer_ids_[f.learnt_peer] == node_id; });
}

size_t ExternalCache::CountExternal() const {
  size_t n = 0;
  engine_.table().ForEach([&](FlowIndex, const Flow& f) { n += WasExternal(f); });
  return n;
}

}  // namespace ctsync::sync

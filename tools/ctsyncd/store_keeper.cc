#include "tools/ctsyncd/store_keeper.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>

#include "absl/strings/str_format.h"

namespace ctsync::daemon {
namespace {

void Add(const storage::FlowStoreCounters& c, storage::FlowStoreCounters* sum) {
  sum->enqueued += c.enqueued;
  sum->dropped_queue_full += c.dropped_queue_full;
  sum->rejected += c.rejected;
  sum->committed += c.committed;
  sum->coalesced += c.coalesced;
  sum->batches += c.batches;
  sum->write_errors += c.write_errors;
  sum->lost_to_errors += c.lost_to_errors;
  sum->syncs += c.syncs;
  sum->sync_errors += c.sync_errors;
  sum->rewrites += c.rewrites;
  sum->snapshots += c.snapshots;
  sum->snapshot_errors += c.snapshot_errors;
}

bool NeedsRewrite(const storage::FlowStore& s) {
  return s.needs_full_rewrite(storage::Stream::kLive) ||
         s.needs_full_rewrite(storage::Stream::kExternal);
}

}  // namespace

StoreKeeper::StoreKeeper(StoreKeeperOptions options, Hooks hooks, const Clock& clock)
    : options_(std::move(options)), hooks_(std::move(hooks)), clock_(clock) {}

StoreKeeper::~StoreKeeper() { (void)Close(); }

absl::Status StoreKeeper::Open() {
  absl::StatusOr<std::unique_ptr<storage::FlowStore>> s = storage::FlowStore::Create(options_.store);
  if (!s.ok()) {
    MarkUnhealthy(std::string(s.status().message()), clock_.Now());
    return s.status();
  }
  absl::MutexLock l(&mu_);
  store_ = std::move(*s);
  return absl::OkStatus();
}

std::shared_ptr<storage::FlowStore> StoreKeeper::store() const {
  absl::MutexLock l(&mu_);
  return store_;
}

storage::FlowStoreCounters StoreKeeper::counters() const {
  absl::MutexLock l(&mu_);
  storage::FlowStoreCounters sum = closed_;
  if (store_) Add(store_->counters(), &sum);
  return sum;
}

void StoreKeeper::MarkUnhealthy(const std::string& why, Nanos now) {
  if (healthy()) {
    healthy_.store(false, std::memory_order_relaxed);
    // A store that failed again right after a reopen keeps the grown backoff: each reopen
    // copies the table on the datapath.
    if (backoff_ == 0) backoff_ = options_.retry_min;
    next_attempt_ = now + backoff_;
  }
  if (why == last_error_) return;  // said once; the counters carry on
  last_error_ = why;
  hooks_.error(absl::StrFormat(
      "store %s: %s; flows keep being forwarded and replicated, the store is reopened and "
      "rewritten from the table when it can be (next try in %.1f s)",
      options_.store.path, why, static_cast<double>(backoff_) / kNanosPerSecond));
}

void StoreKeeper::Check() {
  const Nanos now = clock_.Now();
  std::shared_ptr<storage::FlowStore> s = store();
  if (s) {
    const storage::FlowStoreCounters c = s->counters();
    const uint64_t errors = c.write_errors + c.sync_errors;
    if (errors == errors_seen_ && backoff_ != 0 && healthy() &&
        c.committed + c.rewrites > progress_at_reopen_) {
      backoff_ = 0;  // the disk takes writes again: the next failure starts afresh
    }
    if (errors > errors_seen_) {
      errors_seen_ = errors;
      // Flush hands back the first error since the previous one (RocksDB's reason: no
      // space, read-only file system, ...); it returns at once when the disk refuses writes.
      const absl::Status st = s->Flush();
      MarkUnhealthy(st.ok() ? absl::StrFormat("%u failed batches, %u events not stored",
                                              c.write_errors, c.lost_to_errors)
                            : std::string(st.message()),
                    now);
    }
  }
  // Read even while the store is closed: a reopen rewrites from the table anyway, which
  // covers what the ring dropped until then.
  if (hooks_.events_dropped) {
    const uint64_t dropped = hooks_.events_dropped();
    if (dropped != ring_drops_seen_) {
      ring_drops_seen_ = dropped;
      ring_gap_ = true;
    }
  }
  if (!healthy()) {
    s.reset();  // Reopen waits for every holder to let go
    if (now >= next_attempt_) Reopen(now);
    return;
  }
  if (s && (NeedsRewrite(*s) || ring_gap_) && now >= next_rewrite_) {
    next_rewrite_ = now + options_.rewrite_interval;
    const storage::FlowStoreCounters c = s->counters();
    hooks_.info(absl::StrFormat(
        "store %s: %u events dropped by its queue, %u by the engine's event ring so far: "
        "rewriting it from the table",
        options_.store.path, c.dropped_queue_full, ring_drops_seen_));
    RewriteFromTable(s, /*install=*/false);
  }
}

void StoreKeeper::Reopen(Nanos now) {
  std::shared_ptr<storage::FlowStore> old;
  {
    absl::MutexLock l(&mu_);
    old = std::move(store_);
    store_ = nullptr;
  }
  if (old) {
    // The datapath's drain in flight, the metrics and the control socket hold it only for
    // a call: wait for them, so that RocksDB's lock on the directory is free to take again.
    hooks_.on_datapath([] {});
    while (old.use_count() > 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    (void)old->Close();  // its errors were reported already
    absl::MutexLock l(&mu_);
    Add(old->counters(), &closed_);
    old.reset();
  }
  absl::StatusOr<std::unique_ptr<storage::FlowStore>> opened =
      storage::FlowStore::Create(options_.store);
  backoff_ = std::min(2 * backoff_, options_.retry_max);
  next_attempt_ = now + backoff_;
  if (!opened.ok()) {
    const std::string why(opened.status().message());
    if (why != last_error_) {
      last_error_ = why;
      hooks_.error(absl::StrFormat("store %s: reopening failed: %s (next try in %.1f s)",
                                   options_.store.path, why,
                                   static_cast<double>(backoff_) / kNanosPerSecond));
    }
    return;
  }
  std::shared_ptr<storage::FlowStore> fresh = std::move(*opened);
  const storage::FlowStoreCounters c = fresh->counters();
  progress_at_reopen_ = c.committed + c.rewrites;
  RewriteFromTable(fresh, /*install=*/true);
  // A rewrite the disk refuses again shows up in the next Check as a new error.
  errors_seen_ = 0;
  last_error_.clear();
  healthy_.store(true, std::memory_order_relaxed);
  reopens_.fetch_add(1, std::memory_order_relaxed);
}

void StoreKeeper::RewriteFromTable(const std::shared_ptr<storage::FlowStore>& s, bool install) {
  ring_gap_ = false;  // the copy below holds whatever the ring dropped before it
  size_t live_count = 0, external_count = 0;
  hooks_.on_datapath([&] {
    std::vector<proto::Flow> live, external;
    hooks_.table(&live, &external);
    live_count = live.size();
    external_count = external.size();
    s->RewriteStream(storage::Stream::kLive, std::move(live));
    s->RewriteStream(storage::Stream::kExternal, std::move(external));
    if (install) {
      absl::MutexLock l(&mu_);
      store_ = s;
    }
  });
  table_rewrites_.fetch_add(1, std::memory_order_relaxed);
  hooks_.info(absl::StrFormat("store %s: %s, rewritten from the table (%u live, %u external flows)",
                              options_.store.path, install ? "reopened" : "complete again",
                              live_count, external_count));
}

void StoreKeeper::RewriteNow() {
  if (std::shared_ptr<storage::FlowStore> s = store(); s && healthy()) {
    RewriteFromTable(s, /*install=*/false);
  }
}

absl::Status StoreKeeper::Close() {
  std::shared_ptr<storage::FlowStore> s;
  {
    absl::MutexLock l(&mu_);
    s = std::move(store_);
    store_ = nullptr;
  }
  if (!s) return absl::OkStatus();
  const absl::Status st = s->Close();
  absl::MutexLock l(&mu_);
  Add(s->counters(), &closed_);
  return st;
}

}  // namespace ctsync::daemon

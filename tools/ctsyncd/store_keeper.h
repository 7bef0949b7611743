// StoreKeeper: the daemon's hold on its flow store, so that the store heals by itself
// instead of silently lagging the table once something went wrong:
//  - events dropped because the store's queue was full (a burst above what the disk
//    absorbs), or before that by the engine's event ring, leave the store incomplete: the
//    keeper rewrites it from the table;
//  - write or sync errors (disk full, file system turned read-only) are reported once per
//    distinct reason; the keeper then closes the store and reopens it with backoff, and
//    once it opens again rewrites it from the table;
//  - a store that cannot be opened at start is retried the same way, so a full or
//    read-only disk does not keep the firewall from starting.
// The datapath never waits for the store; a rewrite copies the table on the datapath
// thread (a pause of the order of the copy: ~0.1 s per 500k flows), at most every
// rewrite_interval.
//
// Threads: Check() and Close() on one thread (the daemon's main thread); store(),
// healthy() and counters() from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "core/util/clock.h"
#include "ctsync/flow.pb.h"
#include "storage/flow_store.h"

namespace ctsync::daemon {

struct StoreKeeperOptions {
  storage::FlowStoreOptions store;
  Nanos retry_min = 5 * kNanosPerSecond;    // first reopen attempt after an error
  Nanos retry_max = 300 * kNanosPerSecond;  // backoff doubles up to this
  Nanos rewrite_interval = 5 * kNanosPerSecond;  // at most one overflow rewrite per interval
};

class StoreKeeper {
 public:
  struct Hooks {
    // Runs fn on the thread that owns the engine and returns once it ran.
    std::function<void(absl::FunctionRef<void()>)> on_datapath;
    // Called through on_datapath: every flow of the table, as the two streams of the store.
    // Events the engine has not handed to the store yet must be drained first (they are
    // older than this copy).
    std::function<void(std::vector<proto::Flow>* live, std::vector<proto::Flow>* external)>
        table;
    std::function<void(const std::string&)> error;
    std::function<void(const std::string&)> info;
    // Optional, from any thread: how many events the engine's ring has dropped so far.
    // Those never reached the store, so a rise calls for a rewrite from the table too.
    std::function<uint64_t()> events_dropped;
  };

  StoreKeeper(StoreKeeperOptions options, Hooks hooks, const Clock& clock);
  ~StoreKeeper();

  // First open, before the datapath runs. On failure the keeper retries from Check() and
  // the error is returned for the caller to report (the store starts out unhealthy).
  absl::Status Open();
  // The open store, or null while it is closed; hold the pointer only for a call.
  std::shared_ptr<storage::FlowStore> store() const;
  // Reports new errors, rewrites after dropped events, reopens after errors. Cheap when
  // there is nothing to do; call it every few tens of milliseconds.
  void Check();
  // Writes the whole table now (at shutdown: every record then carries the flow's exact
  // remaining time, so the next start ages it by the downtime alone). Needs the datapath.
  void RewriteNow();
  absl::Status Close();

  bool healthy() const { return healthy_.load(std::memory_order_relaxed); }
  // Summed over every store opened so far (a reopen does not reset the metrics).
  storage::FlowStoreCounters counters() const;
  uint64_t reopens() const { return reopens_.load(std::memory_order_relaxed); }
  uint64_t table_rewrites() const { return table_rewrites_.load(std::memory_order_relaxed); }

 private:
  void MarkUnhealthy(const std::string& why, Nanos now);
  void Reopen(Nanos now);
  // Writes the whole table into `s`; with `install`, makes `s` the store in the same step
  // on the datapath, so no event falls between the copy and the switch.
  void RewriteFromTable(const std::shared_ptr<storage::FlowStore>& s, bool install);

  const StoreKeeperOptions options_;
  const Hooks hooks_;
  const Clock& clock_;

  mutable absl::Mutex mu_;
  std::shared_ptr<storage::FlowStore> store_ ABSL_GUARDED_BY(mu_);
  storage::FlowStoreCounters closed_ ABSL_GUARDED_BY(mu_);  // of stores closed so far

  std::atomic<bool> healthy_{true};
  std::atomic<uint64_t> reopens_{0};
  std::atomic<uint64_t> table_rewrites_{0};
  // Check()'s thread only.
  uint64_t errors_seen_ = 0;
  std::string last_error_;
  Nanos backoff_ = 0;  // 0: no failure since the store last took writes
  uint64_t progress_at_reopen_ = 0;  // committed + rewrites of the store just reopened
  Nanos next_attempt_ = 0;
  Nanos next_rewrite_ = 0;
  uint64_t ring_drops_seen_ = 0;
  bool ring_gap_ = false;  // the ring dropped events since the last rewrite
};

}  // namespace ctsync::daemon

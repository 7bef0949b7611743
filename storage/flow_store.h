// FlowStore: the durable copy of the node's flows, a RocksDB store fed by the engine's
// event stream (live flows) and by sync (the external cache learnt from peers), written
// behind the packet path. Owned by the daemon; storage/README.md explains the layout, the
// sync policy and the crash guarantees.
//
// Thread rules: Enqueue*, RewriteStream, counters() and needs_full_rewrite() are safe from
// any thread and never wait for the disk (a short mutex hold to append to the queue). One
// writer thread, owned by the store, drains the queue in batches (one WriteBatch each).
// Restore, Flush, TakeSnapshot and Close may be called from any one control thread; they
// wait for the disk. Create/destroy from the owner.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/conntrack/flow_events.h"
#include "core/util/clock.h"
#include "core/util/huge_pages.h"
#include "ctsync/flow.pb.h"
#include "rocksdb/write_batch.h"
#include "storage/internal/store_db.h"
#include "storage/record_format.h"
#include "storage/restore.h"
#include "storage/snapshot.h"

namespace ctsync::storage {

// How often the write-ahead log reaches the disk: the trade of durability against write
// cost. Every policy survives a crash of the process (kill -9): each batch is in the WAL
// file, in the kernel's page cache, before it counts as committed. They differ on a crash
// of the machine (power, kernel panic):
enum class SyncPolicy : uint8_t {
  kNone,        // the kernel writes back when it likes (~30 s): cheapest, widest window
  kEveryBatch,  // fsync each batch before it commits: nothing committed is ever lost
  kInterval,    // fsync at most every sync_interval: loses at most that window
};

struct FlowStoreOptions {
  std::string path;        // the store directory (RocksDB); required
  std::string node_id;     // written to the meta column family; required
  Clock* clock = nullptr;  // required: sync timing, event wall times
  SyncPolicy sync = SyncPolicy::kInterval;
  Nanos sync_interval = 100 * kNanosPerMilli;  // kInterval only
  size_t queue_capacity = 1 << 20;             // events waiting for the writer; then drops
  // Events per WriteBatch, at most: a batch is one queue block, cut to whole huge pages.
  size_t max_batch = 8192;
  // How long the writer waits for a batch to fill before writing a partial one (real
  // time: this only paces the thread, it decides nothing).
  Nanos max_batch_delay = 2 * kNanosPerMilli;
  bool create_if_missing = true;
  size_t write_buffer_bytes = 64 << 20;
  // Called on the writer thread after each batch is committed under the sync policy,
  // with the number of events committed since Create. For tests and acknowledgements.
  std::function<void(uint64_t committed_events)> on_commit;
  // Snapshots: <snapshot_root>/snapshots/<time>-<seq>/. Empty root: no snapshots.
  std::string snapshot_root;
  size_t snapshot_retain = 5;   // complete snapshots kept (newest first)
  Nanos snapshot_interval = 0;  // 0: no scheduled snapshots
  bool snapshot_on_close = true;
};

// Named counters of the store (one list, as the other modules keep theirs).
struct FlowStoreCounters {
  uint64_t enqueued = 0;            // events accepted into the queue
  uint64_t dropped_queue_full = 0;  // events refused: the queue was full
  uint64_t rejected = 0;            // events refused: a proto flow without a valid tuple
  uint64_t committed = 0;           // events written (and synced as the policy says)
  uint64_t coalesced = 0;           // of those, superseded by a later event in their batch
  uint64_t batches = 0;
  uint64_t write_errors = 0;    // batches RocksDB refused (disk full, read-only, ...)
  uint64_t lost_to_errors = 0;  // events in those batches
  uint64_t syncs = 0;           // explicit WAL syncs (kInterval, Flush)
  uint64_t sync_errors = 0;
  uint64_t rewrites = 0;  // full stream rewrites applied
  uint64_t snapshots = 0;
  uint64_t snapshot_errors = 0;
};

class FlowStore {
 public:
  static absl::StatusOr<std::unique_ptr<FlowStore>> Create(const FlowStoreOptions& options);
  // Close() if not yet closed (errors are then only counted).
  ~FlowStore();
  FlowStore(const FlowStore&) = delete;
  FlowStore& operator=(const FlowStore&) = delete;

  // Queues an engine event (NEW/UPDATE put the flow, DESTROY deletes it). False when the
  // queue is full: the event is counted in dropped_queue_full and the stream is marked as
  // needing a full rewrite (the owner then calls RewriteStream with the whole table).
  bool Enqueue(Stream stream, const FlowEvent& event);
  // Same for many events under one lock; returns how many were accepted (a prefix).
  size_t EnqueueBatch(Stream stream, absl::Span<const FlowEvent> events);
  // A flow already in message form (e.g. learnt from a peer). DESTROY needs only the tuple.
  bool EnqueueProto(Stream stream, FlowEventType type, const proto::Flow& flow);
  // Replaces the whole stream with `flows` in one atomic batch, ordered after everything
  // queued before. Never refused (it supersedes what was dropped). Clears the stream's
  // needs_full_rewrite mark.
  void RewriteStream(Stream stream, std::vector<proto::Flow> flows);
  bool needs_full_rewrite(Stream stream) const;

  // Waits until everything queued before the call is written and synced to disk, whatever
  // the policy. Returns the error of the last failed batch since the previous Flush, if any.
  absl::Status Flush();

  // Reads every record back (normally once, at start, before the feed starts): see
  // restore.h for the time rules. Corrupt records are counted and named, never fatal.
  absl::StatusOr<RestoredFlows> Restore(Nanos now, Nanos wall_now) const;
  // The same without holding every flow in memory: a reader thread walks the store, worker
  // threads decode, and sink(stream, flows) gets the flows on the calling thread a chunk at
  // a time (live before external, key order within each), so the caller can insert them
  // into the engine while the rest is still being read. Returns the counts and named
  // errors (its flow vectors are empty).
  absl::StatusOr<RestoredFlows> Restore(Nanos now, Nanos wall_now, RestoreSink sink) const;

  // A consistent point-in-time copy of the store (a RocksDB checkpoint) with its manifest,
  // then retention. Takes what was committed at the call; call Flush() first to include
  // everything queued. `reason` goes into the manifest ("command", "schedule", ...).
  absl::StatusOr<SnapshotInfo> TakeSnapshot(const std::string& reason);

  // Drains the queue, stops the writer and the scheduler, syncs, takes the shutdown
  // snapshot (snapshot_on_close) and closes the store. Idempotent.
  absl::Status Close();

  FlowStoreCounters counters() const;
  const std::string& node_id() const { return options_.node_id; }
  const FlowStoreOptions& options() const { return options_; }

 private:
  enum class OpKind : uint8_t { kEvent, kProto, kRewrite };
  struct Op;
  // A queue block; huge pages, because a burst after a quiet spell fills fresh blocks and
  // with 4 KiB pages the producer would fault ~700 times per block.
  using Block = std::vector<Op, HugePageAllocator<Op>>;
  FlowStore(const FlowStoreOptions& options, internal::StoreDb db);
  void WriterLoop();
  void SchedulerLoop(Nanos first_deadline);
  void WriteOps(Block& ops);
  absl::Status SyncWal();
  // A new slot at the tail of the queue, or nullptr (counted, rewrite marked) when full.
  Op* PushLocked(OpKind kind, Stream stream);

  FlowStoreOptions options_;
  internal::StoreDb db_;
  const size_t block_ops_;  // ops per queue block (see BlockOps)

  mutable std::mutex mu_;
  std::condition_variable work_cv_;      // writer waits here
  std::condition_variable done_cv_;      // Flush waits here
  // The queue: blocks of up to block_ops_ ops, handed to the writer a few at a time and
  // recycled, so that pushing writes into memory already mapped (and often cached) and
  // never moves what is queued, whatever the depth.
  struct QueuedBlock {
    std::unique_ptr<Block> ops;
    size_t counted = 0;  // ops that count toward queue_capacity
  };
  std::deque<QueuedBlock> queue_;                    // guarded by mu_
  std::vector<std::unique_ptr<Block>> free_blocks_;  // guarded by mu_
  size_t queued_events_ = 0;             // guarded by mu_ (rewrites count 0 toward capacity)
  uint64_t pushed_ops_ = 0;              // guarded by mu_
  uint64_t processed_ops_ = 0;           // guarded by mu_
  uint64_t sync_requested_through_ = 0;  // guarded by mu_: Flush wants a sync
  uint64_t synced_through_ = 0;          // guarded by mu_
  bool stop_ = false;                    // guarded by mu_
  bool needs_rewrite_[kStreamCount] = {false, false};  // guarded by mu_
  absl::Status pending_error_;                         // guarded by mu_: for the next Flush
  FlowStoreCounters counters_;                         // guarded by mu_

  std::mutex snapshot_mu_;  // one snapshot at a time
  std::mutex sched_mu_;
  std::condition_variable sched_cv_;
  bool sched_stop_ = false;  // guarded by sched_mu_
  bool closed_ = false;      // control thread only

  // Writer thread only (and Close, after the writer has stopped).
  bool wal_failed_ = false;  // the last write failed; RocksDB must Resume before the next
  // Writer thread only: per-batch scratch kept across batches to avoid allocations.
  std::vector<std::string> batch_keys_;
  std::vector<bool> batch_skip_;
  absl::flat_hash_set<std::string_view> seen_keys_;
  rocksdb::WriteBatch batch_;  // cleared, not freed, between batches

  std::thread writer_;
  std::thread scheduler_;
};

}  // namespace ctsync::storage

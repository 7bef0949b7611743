#include "storage/flow_store.h"

#include <pthread.h>

#include <optional>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "proto/flow_codec.h"
#include "proto/flow_wire.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_batch.h"
#include "storage/rocksdb_status.h"

namespace ctsync::storage {
namespace fs = std::filesystem;

// One queued piece of work. Engine events carry the Flow copy and are encoded by the
// writer (off the producer's thread); messages from peers and rewrites arrive encoded.
struct FlowStore::Op {
  using Kind = OpKind;
  Kind kind = Kind::kEvent;
  Stream stream = Stream::kLive;
  FlowEventType type = FlowEventType::kNew;
  Nanos time = 0;
  Flow flow;
  // What a FlowEvent carried beside the flow: NAT sequence adjustment, the master of a
  // RELATED flow, the FTP helper's line state and pending expectation (a restored control
  // connection must parse the next command and relate the data connection as before), the
  // counters (nf_conntrack_acct=1). Rare or optional, so out of line: every byte of an Op is
  // memory a burst makes the kernel zero.
  struct Extras {
    std::optional<FlowAccounting> counters;
    std::optional<SeqAdjust> seq_adjust;
    std::optional<Tuple> master;
    std::optional<FtpLineState> ftp_state;
    std::optional<Expectation> expectation;
  };
  std::unique_ptr<Extras> extras;
  std::unique_ptr<proto::Flow> message;               // kProto
  std::unique_ptr<std::vector<proto::Flow>> rewrite;  // kRewrite
};

absl::StatusOr<std::unique_ptr<FlowStore>> FlowStore::Create(const FlowStoreOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("flow store: path is empty");
  if (options.node_id.empty()) return absl::InvalidArgumentError("flow store: node_id is empty");
  if (options.clock == nullptr) return absl::InvalidArgumentError("flow store: no clock");
  if (options.queue_capacity == 0 || options.max_batch == 0)
    return absl::InvalidArgumentError("flow store: queue_capacity and max_batch must be > 0");
  if (options.sync == SyncPolicy::kInterval && options.sync_interval <= 0)
    return absl::InvalidArgumentError("flow store: sync_interval must be > 0");
  std::error_code ec;
  if (options.create_if_missing) fs::create_directories(options.path, ec);
  absl::StatusOr<internal::StoreDb> db =
      internal::OpenStoreDb(options.path, {.read_only = false,
                                           .create_if_missing = options.create_if_missing,
                                           .write_buffer_bytes = options.write_buffer_bytes});
  if (!db.ok()) return db.status();
  const std::string version = internal::ReadMeta(*db, kMetaFormatVersion);
  uint32_t v = 0;
  if (!version.empty() && (!absl::SimpleAtoi(version, &v) || v > kStoreFormatVersion))
    return absl::FailedPreconditionError(absl::StrCat("flow store ", options.path,
                                                      ": format version '", version,
                                                      "' is newer than ", kStoreFormatVersion));
  const std::string stored_node = internal::ReadMeta(*db, kMetaNodeId);
  if (!stored_node.empty() && stored_node != options.node_id)
    return absl::FailedPreconditionError(absl::StrCat("flow store ", options.path,
                                                      " belongs to node '", stored_node, "', not '",
                                                      options.node_id, "'"));
  rocksdb::WriteBatch meta;
  meta.Put(db->meta(), kMetaNodeId, options.node_id);
  meta.Put(db->meta(), kMetaFormatVersion, std::to_string(kStoreFormatVersion));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (absl::Status s = FromRocksDb(db->db->Write(wo, &meta), "write store meta"); !s.ok()) return s;
  if (!options.snapshot_root.empty()) {
    fs::create_directories(fs::path(options.snapshot_root) / kSnapshotsDir, ec);
    if (ec)
      return absl::UnavailableError(
          absl::StrCat("create snapshot folder in ", options.snapshot_root, ": ", ec.message()));
  }
  return std::unique_ptr<FlowStore>(new FlowStore(options, *std::move(db)));
}

namespace {

// Ops per queue block: max_batch, cut down to fill whole huge pages when the block is big
// enough to live on them (a block of 2.1 MiB would fault in 4 MiB).
size_t BlockOps(size_t max_batch, size_t op_bytes) {
  const size_t bytes = max_batch * op_bytes;
  if (bytes < HugePageAllocator<char>::kMinBytes) return max_batch;
  const size_t pages = std::max<size_t>(1, bytes / kHugePageBytes);
  return std::min(max_batch, pages * kHugePageBytes / op_bytes);
}

}  // namespace

FlowStore::FlowStore(const FlowStoreOptions& options, internal::StoreDb db)
    : options_(options), db_(std::move(db)), block_ops_(BlockOps(options.max_batch, sizeof(Op))) {
  writer_ = std::thread([this] { WriterLoop(); });
  if (options_.snapshot_interval > 0 && !options_.snapshot_root.empty()) {
    // The first deadline counts from now, not from when the thread gets to run.
    const Nanos first = options_.clock->Now() + options_.snapshot_interval;
    scheduler_ = std::thread([this, first] { SchedulerLoop(first); });
  }
}

FlowStore::~FlowStore() { (void)Close(); }

FlowStore::Op* FlowStore::PushLocked(OpKind kind, Stream stream) {
  const bool counts = kind != OpKind::kRewrite;
  if (counts && queued_events_ >= options_.queue_capacity) {
    ++counters_.dropped_queue_full;
    needs_rewrite_[static_cast<int>(stream)] = true;
    return nullptr;
  }
  ++counters_.enqueued;
  ++pushed_ops_;
  if (queue_.empty() || queue_.back().ops->size() >= block_ops_) {
    if (!free_blocks_.empty()) {
      queue_.push_back({std::move(free_blocks_.back())});
      free_blocks_.pop_back();
    } else {
      queue_.push_back({std::make_unique<Block>()});
      queue_.back().ops->reserve(block_ops_);
    }
  }
  if (counts) {
    ++queued_events_;
    ++queue_.back().counted;
  }
  // Built in place: the event is copied once, straight into the queue.
  Op& op = queue_.back().ops->emplace_back();
  op.kind = kind;
  op.stream = stream;
  return &op;
}

bool FlowStore::Enqueue(Stream stream, const FlowEvent& event) {
  return EnqueueBatch(stream, absl::MakeConstSpan(&event, 1)) == 1;
}

size_t FlowStore::EnqueueBatch(Stream stream, absl::Span<const FlowEvent> events) {
  size_t accepted = 0;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return 0;
    for (const FlowEvent& e : events) {
      Op* op = PushLocked(OpKind::kEvent, stream);
      if (op == nullptr) {
        // The rest would be refused too; count them all so the drop is visible.
        counters_.dropped_queue_full += events.size() - accepted - 1;
        break;
      }
      op->type = e.type;
      op->time = e.time;
      op->flow = e.flow;
      if (e.has_counters || e.has_seq_adjust || e.has_master || e.has_ftp_state ||
          e.has_expectation) {
        op->extras = std::make_unique<Op::Extras>();
        Op::Extras& x = *op->extras;
        if (e.has_counters) x.counters = e.counters;
        if (e.has_seq_adjust) x.seq_adjust = e.seq_adjust;
        if (e.has_master) x.master = e.master;
        if (e.has_ftp_state) x.ftp_state = e.ftp_state;
        if (e.has_expectation) x.expectation = e.expectation;
      }
      ++accepted;
    }
    wake = queued_events_ >= block_ops_;
  }
  if (wake) work_cv_.notify_one();
  return accepted;
}

bool FlowStore::EnqueueProto(Stream stream, FlowEventType type, const proto::Flow& flow) {
  std::string key;
  bool wake = false;
  bool ok = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return false;
    if (!FlowKeyOf(flow, &key).ok()) {
      ++counters_.rejected;
      return false;
    }
    if (Op* op = PushLocked(OpKind::kProto, stream)) {
      op->type = type;
      op->message = std::make_unique<proto::Flow>(flow);
      ok = true;
    }
    wake = queued_events_ >= block_ops_;
  }
  if (wake) work_cv_.notify_one();
  return ok;
}

void FlowStore::RewriteStream(Stream stream, std::vector<proto::Flow> flows) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    Op* op = PushLocked(OpKind::kRewrite, stream);  // never refused: counts 0 toward capacity
    op->rewrite = std::make_unique<std::vector<proto::Flow>>(std::move(flows));
    needs_rewrite_[static_cast<int>(stream)] = false;
  }
  work_cv_.notify_one();
}

bool FlowStore::needs_full_rewrite(Stream stream) const {
  std::lock_guard<std::mutex> lock(mu_);
  return needs_rewrite_[static_cast<int>(stream)];
}

FlowStoreCounters FlowStore::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

void FlowStore::WriterLoop() {
  // Named so that top -H, perf and the benchmark can tell the writer from its producers.
  pthread_setname_np(pthread_self(), "ctsync-store");
  std::vector<std::unique_ptr<Block>> blocks;
  // The writer takes at most kBlocksPerRound blocks at a time and hands them back before
  // taking more, so a deep backlog's blocks return for reuse as they are written instead of
  // all at once after the whole queue.
  constexpr size_t kBlocksPerRound = 4;
  // Blocks kept for reuse after a drain. A backlog (the producer ahead of the writer) keeps
  // all of its blocks while it lasts: handing them back and allocating fresh ones made the
  // producer fault in every page of every block again, ~40% of its CPU per event. Once the
  // queue has stayed shallow for kSpareHold, the burst's extra blocks go back to the system.
  constexpr size_t kSpareBlocks = 8;
  constexpr Nanos kSpareHold = 2 * kNanosPerSecond;
  std::vector<std::unique_ptr<Block>> release;
  const auto delay = std::chrono::nanoseconds(options_.max_batch_delay);
  Nanos last_sync = options_.clock->Now();
  Nanos last_deep = last_sync;  // when the queue last held more than kSpareBlocks blocks
  for (;;) {
    uint64_t taken_through = 0;  // ops up to here are written once this round is done
    bool sync_wanted = false;    // a Flush waits for a sync of what this round writes
    bool deep = false;
    bool drained = false;
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait_for(lock, delay, [&] {
        return stop_ || queued_events_ >= block_ops_ ||
               sync_requested_through_ > synced_through_;
      });
      deep = queue_.size() > kSpareBlocks;
      taken_through = processed_ops_;
      while (!queue_.empty() && blocks.size() < kBlocksPerRound) {
        QueuedBlock& q = queue_.front();
        queued_events_ -= q.counted;
        taken_through += q.ops->size();
        blocks.push_back(std::move(q.ops));
        queue_.pop_front();
      }
      drained = queue_.empty();
      sync_wanted = sync_requested_through_ > synced_through_ &&
                    taken_through >= sync_requested_through_;
      stopping = stop_;
    }
    size_t done = 0;
    for (auto& block : blocks) {
      WriteOps(*block);
      done += block->size();
      block->clear();
    }
    const Nanos now = options_.clock->Now();
    bool synced = false;
    if (options_.sync != SyncPolicy::kEveryBatch &&
        (sync_wanted || (stopping && drained) ||
         (options_.sync == SyncPolicy::kInterval && now - last_sync >= options_.sync_interval))) {
      (void)SyncWal();
      last_sync = now;
      synced = true;
    }
    if (deep) last_deep = now;
    {
      std::lock_guard<std::mutex> lock(mu_);
      processed_ops_ += done;
      for (auto& block : blocks) free_blocks_.push_back(std::move(block));
      blocks.clear();
      if (now - last_deep >= kSpareHold) {
        while (free_blocks_.size() > kSpareBlocks) {
          release.push_back(std::move(free_blocks_.back()));
          free_blocks_.pop_back();
        }
      }
      if (synced || options_.sync == SyncPolicy::kEveryBatch) {
        synced_through_ = std::max(synced_through_, taken_through);
      }
    }
    done_cv_.notify_all();
    release.clear();  // unmapping takes a while: not under the lock
    if (stopping) {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.empty()) return;
    }
  }
}

void FlowStore::WriteOps(Block& ops) {
  if (ops.empty()) return;
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync == SyncPolicy::kEveryBatch;
  const Nanos wall_offset = options_.clock->WallNanos() - options_.clock->Now();
  std::string key, value;
  proto::Flow msg;
  // Larger than any key (16 or 40 bytes): the end of a whole-stream DeleteRange.
  const std::string key_space_end(64, '\xff');
  size_t i = 0;
  while (i < ops.size()) {
    rocksdb::WriteBatch& batch = batch_;
    batch.Clear();
    const size_t end = std::min(ops.size(), i + options_.max_batch);
    // A rewrite closes the batch: it goes in last, superseding what precedes it.
    size_t stop = i;
    while (stop < end && ops[stop].kind != Op::Kind::kRewrite) ++stop;
    const bool with_rewrite = stop < end;
    uint64_t events = stop - i + (with_rewrite ? 1 : 0);

    // Coalescing: within a batch only the last event of a flow matters (NEW, UPDATEs and
    // DESTROY of a short flow, or a burst of state changes, become one write).
    const size_t n = stop - i;
    if (batch_keys_.size() < n) batch_keys_.resize(n);
    batch_skip_.assign(n, false);
    for (size_t j = 0; j < n; ++j) {
      Op& op = ops[i + j];
      std::string& k = batch_keys_[j];
      k.clear();
      if (op.kind == Op::Kind::kEvent) {
        AppendFlowKey(op.flow.zone, op.flow.tuple[0], &k);
      } else {
        (void)FlowKeyOf(*op.message, &k);  // validated at enqueue
      }
      k.push_back(static_cast<char>(op.stream));  // same tuple, other stream: another key
    }
    seen_keys_.clear();  // frees a large table: reserve once instead of growing it
    seen_keys_.reserve(n);
    uint64_t coalesced = 0;
    for (size_t j = n; j-- > 0;) {
      if (!seen_keys_.insert(std::string_view(batch_keys_[j])).second) {
        batch_skip_[j] = true;
        ++coalesced;
      }
    }

    for (size_t j = 0; j < n; ++j) {
      if (batch_skip_[j]) continue;
      Op& op = ops[i + j];
      rocksdb::ColumnFamilyHandle* cf = db_.stream(op.stream);
      const std::string_view k(batch_keys_[j].data(), batch_keys_[j].size() - 1);
      if (op.type == FlowEventType::kDestroy) {
        batch.Delete(cf, rocksdb::Slice(k.data(), k.size()));
        continue;
      }
      // The body is written after four bytes for the checksum, which SealFlowValue fills in.
      // It leaves out the original tuple: the key holds it (format version 2).
      value.assign(kFlowValueHeaderBytes, '\0');
      if (op.kind == Op::Kind::kEvent) {
        const Op::Extras* x = op.extras.get();
        const codec::FlowExtras extras{
            x && x->seq_adjust ? &*x->seq_adjust : nullptr,
            x && x->master ? &*x->master : nullptr, x && x->ftp_state ? &*x->ftp_state : nullptr,
            x && x->expectation ? &*x->expectation : nullptr,
            x && x->counters ? &*x->counters : nullptr};
        if (!codec::AppendFlowWire(op.flow, op.time, op.time + wall_offset, extras, &value,
                                   /*with_original=*/false)) {
          codec::FlowToProto(op.flow, op.time, op.time + wall_offset, extras, &msg);
          msg.clear_original();
          msg.AppendToString(&value);
        }
      } else {
        op.message->clear_original();  // its key was taken above
        op.message->AppendToString(&value);
      }
      SealFlowValue(k, &value);
      batch.Put(cf, rocksdb::Slice(k.data(), k.size()), value);
    }
    uint64_t rewrites = 0;
    if (with_rewrite) {
      Op& op = ops[stop];
      rocksdb::ColumnFamilyHandle* cf = db_.stream(op.stream);
      ++rewrites;
      batch.DeleteRange(cf, "", key_space_end);
      for (proto::Flow& f : *op.rewrite) {
        if (!FlowKeyOf(f, &key).ok()) continue;
        f.clear_original();  // the key holds it (format version 2)
        value.assign(kFlowValueHeaderBytes, '\0');
        f.AppendToString(&value);
        SealFlowValue(key, &value);
        batch.Put(cf, key, value);
      }
      ++stop;
    }
    i = stop;
    batch.Put(db_.meta(), kMetaLastWallMs,
              std::to_string(options_.clock->WallNanos() / kNanosPerMilli));
    if (wal_failed_) {
      // After a failed WAL write RocksDB refuses writes until it has recovered (and the
      // Debian build asserts if the broken WAL is used again): try, once per batch.
      wal_failed_ = !db_.db->Resume().ok();
    }
    rocksdb::Status s = db_.db->Write(wo, &batch);
    // A whole-stream rewrite can make the batch hundreds of MB: do not keep that around.
    if (batch.GetDataSize() > (64u << 20)) batch_ = rocksdb::WriteBatch();
    if (!s.ok()) wal_failed_ = true;
    uint64_t committed = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++counters_.batches;
      if (s.ok()) {
        counters_.committed += events;
        counters_.coalesced += coalesced;
        counters_.rewrites += rewrites;
        committed = counters_.committed;
      } else {
        ++counters_.write_errors;
        counters_.lost_to_errors += events;
        // The store no longer matches the table: the owner must rewrite it.
        for (bool& b : needs_rewrite_) b = true;
        // The first error since the last Flush is the one that explains the others.
        if (pending_error_.ok()) pending_error_ = FromRocksDb(s, "write flow batch");
      }
    }
    // Under kEveryBatch `committed` is on disk; under the other policies it is in the
    // kernel's page cache (safe from a process crash) until the next sync.
    if (s.ok() && options_.on_commit) options_.on_commit(committed);
  }
}

absl::Status FlowStore::SyncWal() {
  absl::Status s = wal_failed_
                       ? absl::UnavailableError("sync write-ahead log: the store is failing writes")
                       : FromRocksDb(db_.db->SyncWAL(), "sync write-ahead log");
  std::lock_guard<std::mutex> lock(mu_);
  ++counters_.syncs;
  if (!s.ok()) {
    ++counters_.sync_errors;
    if (pending_error_.ok()) pending_error_ = s;
  }
  return s;
}

absl::Status FlowStore::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!writer_.joinable()) return absl::FailedPreconditionError("flow store is closed");
  const uint64_t target = pushed_ops_;
  sync_requested_through_ = std::max(sync_requested_through_, target);
  work_cv_.notify_one();
  done_cv_.wait(lock, [&] {
    return (processed_ops_ >= target && synced_through_ >= target) || !writer_.joinable();
  });
  absl::Status s = std::move(pending_error_);
  pending_error_ = absl::OkStatus();
  return s;
}

absl::StatusOr<RestoredFlows> FlowStore::Restore(Nanos now, Nanos wall_now) const {
  std::vector<codec::DecodedFlow> flows[kStreamCount];
  // Growing a vector of 1M ~300-byte flows by doubling copies it over and over: reserve
  // RocksDB's estimate of the record count (capped: it is only an estimate).
  for (Stream s : {Stream::kLive, Stream::kExternal}) {
    uint64_t estimate = 0;
    if (db_.db->GetIntProperty(db_.stream(s), "rocksdb.estimate-num-keys", &estimate))
      flows[static_cast<int>(s)].reserve(std::min<uint64_t>(estimate, 1 << 24));
  }
  absl::StatusOr<RestoredFlows> out =
      Restore(now, wall_now, [&](Stream s, absl::Span<codec::DecodedFlow> run) {
        std::vector<codec::DecodedFlow>& v = flows[static_cast<int>(s)];
        v.insert(v.end(), std::make_move_iterator(run.begin()), std::make_move_iterator(run.end()));
      });
  if (out.ok())
    for (int i = 0; i < kStreamCount; ++i) out->flows[i] = std::move(flows[i]);
  return out;
}

absl::StatusOr<RestoredFlows> FlowStore::Restore(Nanos now, Nanos wall_now,
                                                 RestoreSink sink) const {
  // Restore happens before the datapath starts, so every core is ours: one reads, the
  // caller consumes (inserts into the engine), the rest decode, and the caller decodes too
  // whenever the next chunk is not ready. On two cores the reader and the one worker share
  // a core, so the caller takes a good part of the decoding.
  const unsigned cores = std::max(2u, std::thread::hardware_concurrency());
  // Eight chunks of 8192 flows in flight: enough to ride out scheduling hiccups, small
  // enough to stay in cache-sized memory instead of a vector of every flow.
  ParallelRestoreCollector collector(now, wall_now, std::clamp(cores - 2, 1u, 6u), 8);
  Nanos read_cpu = 0;
  std::thread reader([&] {
    pthread_setname_np(pthread_self(), "ctsync-rst-read");  // for top -H and perf
    const Nanos cpu0 = ThreadCpuNow();
    for (Stream s : {Stream::kLive, Stream::kExternal}) {
      absl::Status st =
          internal::ForEachRawRecord(db_, s, [&](std::string_view k, std::string_view v) {
            collector.AddRecord(s, k, v);
            return true;
          });
      // RocksDB's own corruption (a bad block) stops the walk: report it, keep what was read.
      if (!st.ok()) collector.AddError(std::string(st.message()));
    }
    read_cpu = ThreadCpuNow() - cpu0;
    collector.EndInput();
  });
  RestoredFlows out = collector.Consume(sink);
  reader.join();
  out.read_cpu = read_cpu;
  return out;
}

absl::StatusOr<SnapshotInfo> FlowStore::TakeSnapshot(const std::string& reason) {
  if (options_.snapshot_root.empty())
    return absl::FailedPreconditionError("flow store: no snapshot_root configured");
  std::lock_guard<std::mutex> guard(snapshot_mu_);
  auto fail = [&](absl::Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    ++counters_.snapshot_errors;
    return s;
  };
  absl::StatusOr<std::vector<SnapshotInfo>> existing = ListSnapshots(options_.snapshot_root);
  if (!existing.ok()) return fail(existing.status());
  uint64_t seq = 1;
  for (const SnapshotInfo& s : *existing) seq = std::max(seq, s.sequence + 1);
  const Nanos wall = options_.clock->WallNanos();
  SnapshotInfo info;
  info.name = SnapshotName(wall, seq);
  info.sequence = seq;
  info.path = (fs::path(options_.snapshot_root) / kSnapshotsDir / info.name).string();
  rocksdb::Checkpoint* raw = nullptr;
  if (absl::Status s =
          FromRocksDb(rocksdb::Checkpoint::Create(db_.db.get(), &raw), "create checkpoint object");
      !s.ok())
    return fail(s);
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // RocksDB copies into "<path>.tmp" and renames when done: a crash leaves only the .tmp.
  // Flushing the memtables first (log_size_for_flush = 0) keeps the WAL copy small.
  if (absl::Status s = FromRocksDb(checkpoint->CreateCheckpoint(info.path, 0),
                                   absl::StrCat("checkpoint into ", info.path));
      !s.ok())
    return fail(s);
  proto::SnapshotManifest& m = info.manifest;
  m.set_format_version(kStoreFormatVersion);
  m.set_node_id(options_.node_id);
  m.set_wall_time_ms(wall / kNanosPerMilli);
  m.set_sequence(seq);
  m.set_reason(reason);
  if (absl::Status s = DescribeCheckpoint(info.path, &m); !s.ok()) return fail(s);
  if (absl::Status s = WriteManifest(info.path, m); !s.ok()) return fail(s);
  info.complete = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++counters_.snapshots;
  }
  if (absl::Status s = ApplyRetention(options_.snapshot_root, options_.snapshot_retain); !s.ok())
    return fail(s);
  return info;
}

void FlowStore::SchedulerLoop(Nanos next) {
  std::unique_lock<std::mutex> lock(sched_mu_);
  while (!sched_stop_) {
    // Polls the injected clock so a manual clock drives the schedule in tests.
    sched_cv_.wait_for(lock, std::chrono::milliseconds(20));
    if (sched_stop_) break;
    if (options_.clock->Now() < next) continue;
    lock.unlock();
    (void)TakeSnapshot("schedule");
    lock.lock();
    next = options_.clock->Now() + options_.snapshot_interval;
  }
}

absl::Status FlowStore::Close() {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  if (scheduler_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(sched_mu_);
      sched_stop_ = true;
    }
    sched_cv_.notify_all();
    scheduler_.join();
  }
  absl::Status result = Flush();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_one();
  if (writer_.joinable()) writer_.join();
  done_cv_.notify_all();
  if (options_.snapshot_on_close && !options_.snapshot_root.empty()) {
    absl::StatusOr<SnapshotInfo> snap = TakeSnapshot("shutdown");
    if (!snap.ok() && result.ok()) result = snap.status();
  }
  // Flushed memtables make the next start read SSTs instead of replaying the WAL.
  absl::Status s = wal_failed_ ? absl::OkStatus()
                               : FromRocksDb(db_.db->Flush(rocksdb::FlushOptions(), db_.handles),
                                             "flush store at close");
  if (result.ok()) result = s;
  s = db_.Close();
  if (result.ok()) result = s;
  return result;
}

}  // namespace ctsync::storage

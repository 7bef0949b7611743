#include "storage/restore.h"

#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "storage/flow_source.h"

namespace ctsync::storage {

Nanos ThreadCpuNow() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<Nanos>(ts.tv_sec) * kNanosPerSecond + ts.tv_nsec;
}

Nanos RecordAge(Nanos wall_now, int64_t record_wall_ms) {
  constexpr Nanos kMax = std::numeric_limits<Nanos>::max();
  int64_t age_ms = 0;
  if (__builtin_sub_overflow(wall_now / kNanosPerMilli, record_wall_ms, &age_ms)) {
    // Only a record_wall_ms near the int64 limits gets here.
    return record_wall_ms < 0 ? kMax : 0;
  }
  if (age_ms <= 0) return 0;
  if (age_ms > kMax / kNanosPerMilli) return kMax;
  return age_ms * kNanosPerMilli;
}

void RestoredFlows::Append(RestoredFlows&& more) {
  for (int i = 0; i < kStreamCount; ++i) {
    if (flows[i].empty()) {
      flows[i] = std::move(more.flows[i]);
    } else {
      flows[i].insert(flows[i].end(), std::make_move_iterator(more.flows[i].begin()),
                      std::make_move_iterator(more.flows[i].end()));
    }
  }
  expired += more.expired;
  corrupt += more.corrupt;
  read_cpu += more.read_cpu;
  decode_cpu += more.decode_cpu;
  for (std::string& e : more.errors) {
    if (errors.size() >= kMaxNamedErrors) break;
    errors.push_back(std::move(e));
  }
}

void RestoreCollector::AddError(std::string error) {
  ++out_.corrupt;
  if (out_.errors.size() < RestoredFlows::kMaxNamedErrors) out_.errors.push_back(std::move(error));
}

void RestoreCollector::AddRecord(Stream s, std::string_view key, std::string_view value) {
  if (absl::Status st = DecodeFlowValue(key, value, &scratch_); !st.ok()) {
    AddError(absl::StrCat(StreamName(s), " record ", DescribeFlowKey(key), ": ", st.message()));
    return;
  }
  AddFlow(s, scratch_);
}

void RestoreCollector::AddFlow(Stream s, const proto::Flow& msg) {
  const Nanos age = RecordAge(wall_now_, msg.wall_time_ms());
  std::vector<codec::DecodedFlow>& out = out_.flows[static_cast<int>(s)];
  codec::DecodedFlow& decoded = out.emplace_back();
  if (absl::Status st = codec::FlowFromProto(msg, now_, age, &decoded); !st.ok()) {
    out.pop_back();
    std::string key;
    const std::string name = FlowKeyOf(msg, &key).ok() ? DescribeFlowKey(key) : "(bad tuple)";
    AddError(absl::StrCat(StreamName(s), " record ", name, ": ", st.message()));
    return;
  }
  if (decoded.remaining <= 0) {
    out.pop_back();
    ++out_.expired;
  }
}

void RestoredFlows::Clear() {
  for (auto& f : flows) f.clear();
  expired = 0;
  corrupt = 0;
  read_cpu = 0;
  decode_cpu = 0;
  errors.clear();
}

RestoreCollector::RestoreCollector(Nanos now, Nanos wall_now, RestoredFlows reuse)
    : now_(now), wall_now_(wall_now), out_(std::move(reuse)) {
  out_.Clear();
}

// A run of raw records in one buffer (copying them out of RocksDB's iterator is cheap next
// to decoding them), then their decoded result. Chunks are reused once consumed, so a
// streamed restore touches the same few megabytes over and over.
struct ParallelRestoreCollector::Chunk {
  static constexpr size_t kRecords = 8192;
  struct Entry {
    Stream stream;
    uint32_t key_at, key_len, value_at, value_len;
  };
  std::string bytes;
  std::vector<Entry> entries;
  RestoredFlows result;
  bool decoded = false;
};

ParallelRestoreCollector::ParallelRestoreCollector(Nanos now, Nanos wall_now, unsigned workers,
                                                   size_t max_in_flight)
    : now_(now),
      wall_now_(wall_now),
      max_in_flight_(max_in_flight),
      current_(std::make_unique<Chunk>()) {
  for (unsigned i = 0; i < std::max(1u, workers); ++i) {
    threads_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "ctsync-rst-dec");  // for top -H and perf
      Work();
    });
  }
}

ParallelRestoreCollector::~ParallelRestoreCollector() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_)
    if (t.joinable()) t.join();
}

void ParallelRestoreCollector::AddRecord(Stream s, std::string_view key, std::string_view value) {
  Chunk& c = *current_;
  const auto at = static_cast<uint32_t>(c.bytes.size());
  c.bytes.append(key.data(), key.size());
  c.bytes.append(value.data(), value.size());
  c.entries.push_back({s, at, static_cast<uint32_t>(key.size()),
                       at + static_cast<uint32_t>(key.size()),
                       static_cast<uint32_t>(value.size())});
  if (c.entries.size() >= Chunk::kRecords || c.bytes.size() >= (64u << 20)) Submit();
}

void ParallelRestoreCollector::AddError(std::string error) {
  std::lock_guard<std::mutex> lock(mu_);
  errors_.push_back(std::move(error));
}

void ParallelRestoreCollector::Submit() {
  if (current_->entries.empty()) return;
  std::unique_lock<std::mutex> lock(mu_);
  if (max_in_flight_ > 0)
    space_cv_.wait(lock, [&] { return chunks_.size() < max_in_flight_; });
  Chunk* c = current_.get();
  c->decoded = false;
  chunks_.push_back(std::move(current_));
  pending_.push_back(c);
  if (!free_.empty()) {
    current_ = std::move(free_.back());
    free_.pop_back();
  } else {
    current_ = std::make_unique<Chunk>();
  }
  lock.unlock();
  cv_.notify_all();  // workers and the consumer share the condition variable
}

void ParallelRestoreCollector::EndInput() {
  Submit();
  {
    std::lock_guard<std::mutex> lock(mu_);
    ended_ = true;
  }
  cv_.notify_all();
}

void ParallelRestoreCollector::Work() {
  for (;;) {
    Chunk* c = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return done_ || !pending_.empty(); });
      if (pending_.empty()) return;
      c = pending_.front();
      pending_.pop_front();
    }
    Decode(c);
  }
}

void ParallelRestoreCollector::Decode(Chunk* c) {
  const Nanos cpu0 = ThreadCpuNow();
  RestoreCollector collector(now_, wall_now_, std::move(c->result));
  collector.Reserve(Stream::kLive, c->entries.size());
  for (const Chunk::Entry& e : c->entries) {
    collector.AddRecord(e.stream, std::string_view(c->bytes).substr(e.key_at, e.key_len),
                        std::string_view(c->bytes).substr(e.value_at, e.value_len));
  }
  c->result = collector.Finish();
  c->entries.clear();
  // Unbounded (Finish) mode keeps every chunk until the end: give the raw bytes back now.
  if (max_in_flight_ == 0) {
    std::string().swap(c->bytes);
  } else {
    c->bytes.clear();
  }
  const Nanos cpu = ThreadCpuNow() - cpu0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    c->decoded = true;
    decode_cpu_ += cpu;
  }
  cv_.notify_all();
}

RestoredFlows ParallelRestoreCollector::Consume(RestoreSink sink) {
  RestoredFlows out;
  for (;;) {
    std::unique_ptr<Chunk> c;
    {
      std::unique_lock<std::mutex> lock(mu_);
      for (;;) {
        if ((!chunks_.empty() && chunks_.front()->decoded) || (ended_ && chunks_.empty())) break;
        if (!pending_.empty()) {
          // The next chunk is not decoded yet: decode one here rather than wait. On two
          // cores the reader and the one worker share a core while this thread's inserts
          // leave part of the other idle; this balances the stages.
          Chunk* p = pending_.front();
          pending_.pop_front();
          lock.unlock();
          Decode(p);
          lock.lock();
          continue;
        }
        cv_.wait(lock);
      }
      if (chunks_.empty()) break;
      c = std::move(chunks_.front());
      chunks_.pop_front();
    }
    space_cv_.notify_one();
    RestoredFlows& r = c->result;
    for (int i = 0; i < kStreamCount; ++i)
      if (!r.flows[i].empty()) sink(static_cast<Stream>(i), absl::MakeSpan(r.flows[i]));
    out.expired += r.expired;
    out.corrupt += r.corrupt;
    for (std::string& e : r.errors)
      if (out.errors.size() < RestoredFlows::kMaxNamedErrors) out.errors.push_back(std::move(e));
    r.Clear();
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(std::move(c));
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (std::string& e : errors_) {
    ++out.corrupt;
    if (out.errors.size() < RestoredFlows::kMaxNamedErrors) out.errors.push_back(std::move(e));
  }
  errors_.clear();
  out.decode_cpu = decode_cpu_;  // every chunk is decoded by now
  return out;
}

RestoredFlows ParallelRestoreCollector::Finish() {
  EndInput();
  std::vector<codec::DecodedFlow> flows[kStreamCount];
  RestoredFlows out = Consume([&](Stream s, absl::Span<codec::DecodedFlow> run) {
    std::vector<codec::DecodedFlow>& v = flows[static_cast<int>(s)];
    v.insert(v.end(), std::make_move_iterator(run.begin()), std::make_move_iterator(run.end()));
  });
  for (int i = 0; i < kStreamCount; ++i) out.flows[i] = std::move(flows[i]);
  return out;
}

absl::StatusOr<RestoredFlows> RestoreFromPath(const std::string& path, Nanos now, Nanos wall_now) {
  absl::StatusOr<std::unique_ptr<FlowSource>> src = FlowSource::Open(path);
  if (!src.ok()) return src.status();
  RestoreCollector collector(now, wall_now);
  absl::Status s = (*src)->ForEach([&](const SourceRecord& r) {
    if (r.status.ok()) {
      collector.AddFlow(r.stream, r.flow);
    } else {
      collector.AddError(
          absl::StrCat(StreamName(r.stream), " record ", r.name, ": ", r.status.message()));
    }
  });
  if (!s.ok()) return s;
  return collector.Finish();
}

void EngineRestorer::Add(absl::Span<const codec::DecodedFlow> flows) {
  // An insert mostly waits for the hash buckets and chain entries of both tuples. A batched
  // lookup of the next few flows first (FindBatch prefetches and overlaps those misses)
  // brings them into cache for the inserts' own clash checks.
  constexpr size_t kWarm = 16;
  Tuple tuples[2 * kWarm];
  uint16_t zones[2 * kWarm];
  FlowLookup found[2 * kWarm];
  for (size_t at = 0; at < flows.size(); at += kWarm) {
    const size_t n = std::min(kWarm, flows.size() - at);
    for (size_t i = 0; i < n; ++i) {
      const Flow& f = flows[at + i].flow;
      tuples[2 * i] = f.tuple[0];
      tuples[2 * i + 1] = f.tuple[1];
      zones[2 * i] = zones[2 * i + 1] = f.zone;
    }
    engine_.table().FindBatch(absl::MakeConstSpan(tuples, 2 * n),
                              absl::MakeConstSpan(zones, 2 * n), absl::MakeSpan(found, 2 * n));
    InsertRun(flows.subspan(at, n));
  }
}

void EngineRestorer::InsertRun(absl::Span<const codec::DecodedFlow> flows) {
  for (const codec::DecodedFlow& d : flows) {
    absl::StatusOr<FlowIndex> idx = engine_.Insert(d.flow, &d.counters, now_);
    if (!idx.ok()) {
      if (absl::IsAlreadyExists(idx.status())) {
        ++result_.clashed;
      } else {
        ++result_.table_full;
      }
      continue;
    }
    ++result_.inserted;
    if (d.seq_adjust) engine_.table().MutableSeqAdjust(*idx) = *d.seq_adjust;
    if (d.master_tuple) related_.push_back({*idx, d.flow.zone, *d.master_tuple});
    if (d.ftp_state) engine_.table().MutableFtpState(*idx) = *d.ftp_state;
    if (d.expectation) {
      Expectation x = *d.expectation;
      x.master = *idx;
      engine_.expectations().Add(x, /*max_per_master=*/1);
    }
  }
}

EngineRestoreResult EngineRestorer::Finish() {
  // Masters may come after their children in key order: link once everything is in.
  for (const Related& r : related_) {
    const FlowLookup m = engine_.table().Find(r.master, r.zone);
    if (!m.found()) continue;
    engine_.table().flow(r.idx).master = m.idx;
    ++engine_.table().flow(m.idx).child_count;  // conntrack's use = 1 + children
    ++result_.masters_linked;
  }
  related_.clear();
  return result_;
}

EngineRestoreResult RestoreIntoEngine(ConntrackEngine& engine,
                                      const std::vector<codec::DecodedFlow>& flows, Nanos now) {
  EngineRestorer restorer(engine, now);
  restorer.Add(flows);
  return restorer.Finish();
}

}  // namespace ctsync::storage

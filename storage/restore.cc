#include "storage/restore.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "storage/flow_source.h"

namespace ctsync::storage {

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

// A run of raw records in one buffer (copying them out of RocksDB's iterator is cheap next
// to decoding them), then their decoded result.
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

ParallelRestoreCollector::ParallelRestoreCollector(Nanos now, Nanos wall_now, unsigned workers)
    : now_(now), wall_now_(wall_now), current_(std::make_unique<Chunk>()) {
  for (unsigned i = 0; i < std::max(1u, workers); ++i) threads_.emplace_back([this] { Work(); });
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

void ParallelRestoreCollector::AddError(std::string error) { errors_.push_back(std::move(error)); }

void ParallelRestoreCollector::Submit() {
  if (current_->entries.empty()) return;
  Chunk* c = current_.get();
  chunks_.push_back(std::move(current_));
  current_ = std::make_unique<Chunk>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(c);
  }
  cv_.notify_all();  // workers and Finish share the condition variable
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
    RestoreCollector collector(now_, wall_now_);
    collector.Reserve(Stream::kLive, c->entries.size());
    for (const Chunk::Entry& e : c->entries) {
      collector.AddRecord(e.stream, std::string_view(c->bytes).substr(e.key_at, e.key_len),
                          std::string_view(c->bytes).substr(e.value_at, e.value_len));
    }
    c->result = collector.Finish();
    std::string().swap(c->bytes);
    {
      std::lock_guard<std::mutex> lock(mu_);
      c->decoded = true;
    }
    cv_.notify_all();
  }
}

RestoredFlows ParallelRestoreCollector::Finish() {
  Submit();
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] {
      for (const auto& c : chunks_)
        if (!c->decoded) return false;
      return true;
    });
  }
  RestoredFlows out;
  size_t total[kStreamCount] = {0, 0};
  for (const auto& c : chunks_)
    for (int i = 0; i < kStreamCount; ++i) total[i] += c->result.flows[i].size();
  for (int i = 0; i < kStreamCount; ++i) out.flows[i].reserve(total[i]);
  for (auto& c : chunks_) {
    RestoredFlows& r = c->result;
    for (int i = 0; i < kStreamCount; ++i) {
      out.flows[i].insert(out.flows[i].end(), std::make_move_iterator(r.flows[i].begin()),
                          std::make_move_iterator(r.flows[i].end()));
      std::vector<codec::DecodedFlow>().swap(r.flows[i]);
    }
    out.expired += r.expired;
    out.corrupt += r.corrupt;
    for (std::string& e : r.errors)
      if (out.errors.size() < RestoredFlows::kMaxNamedErrors) out.errors.push_back(std::move(e));
  }
  chunks_.clear();
  for (std::string& e : errors_) {
    ++out.corrupt;
    if (out.errors.size() < RestoredFlows::kMaxNamedErrors) out.errors.push_back(std::move(e));
  }
  errors_.clear();
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

EngineRestoreResult RestoreIntoEngine(ConntrackEngine& engine,
                                      const std::vector<codec::DecodedFlow>& flows, Nanos now) {
  EngineRestoreResult result;
  std::vector<std::pair<FlowIndex, const codec::DecodedFlow*>> related;
  for (const codec::DecodedFlow& d : flows) {
    absl::StatusOr<FlowIndex> idx = engine.Insert(d.flow, now);
    if (!idx.ok()) {
      if (absl::IsAlreadyExists(idx.status())) {
        ++result.clashed;
      } else {
        ++result.table_full;
      }
      continue;
    }
    ++result.inserted;
    if (d.seq_adjust) engine.table().MutableSeqAdjust(*idx) = *d.seq_adjust;
    if (d.master_tuple) related.emplace_back(*idx, &d);
  }
  // Masters may come after their children in key order: link once everything is in.
  for (const auto& [idx, d] : related) {
    const FlowLookup m = engine.table().Find(*d->master_tuple, d->flow.zone);
    if (!m.found()) continue;
    engine.table().flow(idx).master = m.idx;
    ++result.masters_linked;
  }
  return result;
}

}  // namespace ctsync::storage

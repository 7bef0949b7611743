#include "storage/restore.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "storage/flow_source.h"

namespace ctsync::storage {

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
  const Nanos age = std::max<Nanos>(0, wall_now_ - msg.wall_time_ms() * kNanosPerMilli);
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

absl::StatusOr<RestoredFlows> RestoreFromPath(const std::string& path, Nanos now,
                                              Nanos wall_now) {
  absl::StatusOr<std::unique_ptr<FlowSource>> src = FlowSource::Open(path);
  if (!src.ok()) return src.status();
  RestoreCollector collector(now, wall_now);
  absl::Status s = (*src)->ForEach([&](const SourceRecord& r) {
    if (r.status.ok()) {
      collector.AddFlow(r.stream, r.flow);
    } else {
      collector.AddError(absl::StrCat(StreamName(r.stream), " record ", r.name, ": ",
                                      r.status.message()));
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

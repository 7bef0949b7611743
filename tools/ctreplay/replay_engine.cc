#include "tools/ctreplay/replay_engine.h"

#include "absl/strings/str_cat.h"

namespace ctsync::ctreplay {

absl::StatusOr<ReplayEngine> BuildReplayEngine(const ConntrackSettings& settings, uint64_t seed,
                                               size_t event_ring, Nanos now,
                                               const ReplayRules& v4, const ReplayRules& v6,
                                               size_t defrag_export) {
  ReplayEngine e;
  ConntrackOptions copts;
  copts.settings = settings;
  copts.hash_seed = seed;
  copts.event_ring_capacity = event_ring;
  auto ct = ConntrackEngine::Create(copts, now);
  if (!ct.ok()) return ct.status();
  e.ct = std::move(*ct);
  e.nat = std::make_unique<NatEngine>(NatOptions{seed}, e.ct.get());
  PipelineOptions po{true, true, seed};
  po.defrag.export_capacity = defrag_export;
  e.pipeline = std::make_unique<Pipeline>(po, Topology::OracleFirewall(), e.ct.get(), e.nat.get());
  for (Family f : {Family::kIpv4, Family::kIpv6}) {
    const ReplayRules& r = f == Family::kIpv4 ? v4 : v6;
    if (!r.text) continue;
    auto rs = rules::RuleSet::Parse(*r.text, f);
    if (!rs.ok())
      return absl::InvalidArgumentError(absl::StrCat(r.name, ": ", rs.status().message()));
    e.pipeline->SetRules(f, std::make_unique<rules::RuleSet>(std::move(*rs)));
  }
  return e;
}

}  // namespace ctsync::ctreplay

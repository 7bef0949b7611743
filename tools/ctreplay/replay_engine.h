// One firewall as ctreplay runs it: conntrack, NAT and the hook pipeline on the oracle
// corpus topology, with the given sysctls and iptables-restore rules. Shared by the
// scenario, failover and pcap replays. Single-threaded.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "core/conntrack/conntrack_engine.h"
#include "core/nat/nat_engine.h"
#include "core/pipeline/pipeline.h"

namespace ctsync::ctreplay {

struct ReplayEngine {
  std::unique_ptr<ConntrackEngine> ct;
  std::unique_ptr<NatEngine> nat;
  std::unique_ptr<Pipeline> pipeline;
};

// Rules are iptables-restore text; nullopt leaves the family without rules (accept all).
// Rule errors start with the source's name ("ruleset_v4: line 3: ...").
struct ReplayRules {
  std::optional<std::string> text;
  std::string name;
};
// `defrag_export`: fragment events the pipeline records for replication (0: none).
absl::StatusOr<ReplayEngine> BuildReplayEngine(const ConntrackSettings& settings, uint64_t seed,
                                               size_t event_ring, Nanos now,
                                               const ReplayRules& v4, const ReplayRules& v6,
                                               size_t defrag_export = 0);

}  // namespace ctsync::ctreplay

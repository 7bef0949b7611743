// Replays one oracle scenario through a fresh ctsync engine (conntrack, NAT, rules, the
// hook pipeline) on the corpus topology and records what happened in exactly the format of
// the scenario's expected.json, so oracle_compare.h can judge it.
// Single-threaded; each call builds and discards its own engine.
#pragma once

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "tools/ctreplay/scenario.h"

namespace ctsync::ctreplay {

struct ReplayOptions {
  uint64_t seed = 1;
  // Simulated time each step takes besides its delay_before_ms (the harness spends about
  // this long collecting frames and reading the tables).
  int64_t step_gap_ms = 200;
};

absl::StatusOr<nlohmann::json> ReplayScenario(const Scenario& scenario,
                                              const ReplayOptions& options);

// The same scenario on two firewalls joined by the real sync protocol over loopback UDP:
// packets before index `failover_at` go to node A, whose flows replicate to node B; then B
// is promoted and gets the rest. The record must equal a single kernel's.
absl::StatusOr<nlohmann::json> ReplayScenarioWithFailover(const Scenario& scenario,
                                                          const ReplayOptions& options,
                                                          int failover_at);

}  // namespace ctsync::ctreplay

// Compares what the engine did for one scenario (`actual`, written by the ctreplay runner in
// the expected.json format) with what the kernel did (`expected`, the oracle's
// expected.json), applying exactly the tolerances the oracle README allows:
//  - conntrack/expect `timeout` within `timeout_tolerance_s`; `raw` lines must match except
//    for the timeout number;
//  - paths listed in `nondeterminism`: scalar values (random SNAT ports) may take any value
//    in 1024-65535 not used by another entry with the same protocol and reply destination,
//    but one kernel value must map to one engine value everywhere (entries, raw lines,
//    frame bytes); frame bytes at `differing_byte_offsets` may differ (IPv4 id, checksums);
//  - table-full scenarios (`prefill_count` present): only forwarded, conntrack_count and
//    stats_delta are compared, and any early_drop >= 1 is right when the kernel had one,
//    with conntrack_count following the number of evicted entries.
// Frame summaries are never compared (they come from scapy).
//
// Owner: ctreplay and the oracle tests. Pure functions; safe from any thread.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace ctsync::ctreplay {

struct CompareResult {
  bool ok = true;
  // One readable line per difference, e.g.
  // "step 3 conntrack[0].state: expected ESTABLISHED, got SYN_RECV".
  std::vector<std::string> diffs;
};

CompareResult CompareWithOracle(const nlohmann::json& expected, const nlohmann::json& actual);

// The oracle's own serialisation: keys sorted, one-space indent, trailing newline, so an
// actual.json diffs cleanly against expected.json.
std::string FormatLikeOracle(const nlohmann::json& doc);

// Writes FormatLikeOracle(doc) to `path` (replacing it).
absl::Status WriteActual(const std::string& path, const nlohmann::json& doc);

}  // namespace ctsync::ctreplay

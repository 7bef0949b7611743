// Counter arithmetic and the stats text formats. See conntrack_stats.h.
#include "core/conntrack/conntrack_stats.h"

#include "absl/strings/str_format.h"

namespace ctsync {

ConntrackStats& ConntrackStats::operator+=(const ConntrackStats& o) {
  found += o.found;
  invalid += o.invalid;
  insert += o.insert;
  insert_failed += o.insert_failed;
  drop += o.drop;
  early_drop += o.early_drop;
  error += o.error;
  expect_new += o.expect_new;
  expect_create += o.expect_create;
  expect_delete += o.expect_delete;
  search_restart += o.search_restart;
  clash_resolve += o.clash_resolve;
  chaintoolong += o.chaintoolong;
  searched += o.searched;
  ignore += o.ignore;
  return *this;
}

std::string FormatConntrackS(absl::Span<const ConntrackStats> per_shard) {
  // The kernel sends these attributes (CTA_STATS_*) for each cpu and conntrack prints each
  // as "name=value " after "cpu=%-4u\t"; the order is the attribute order.
  std::string out;
  for (size_t cpu = 0; cpu < per_shard.size(); ++cpu) {
    const ConntrackStats& s = per_shard[cpu];
    absl::StrAppendFormat(&out,
                          "cpu=%-4u\tfound=%u invalid=%u insert=%u insert_failed=%u drop=%u "
                          "early_drop=%u error=%u search_restart=%u clash_resolve=%u "
                          "chaintoolong=%u \n",
                          cpu, s.found, s.invalid, s.insert, s.insert_failed, s.drop, s.early_drop,
                          s.error, s.search_restart, s.clash_resolve, s.chaintoolong);
  }
  return out;
}

std::string FormatConntrackSExpect(absl::Span<const ConntrackStats> per_shard) {
  std::string out;
  for (size_t cpu = 0; cpu < per_shard.size(); ++cpu) {
    const ConntrackStats& s = per_shard[cpu];
    absl::StrAppendFormat(&out, "cpu=%-4u\texpect_new=%u expect_create=%u expect_delete=%u \n", cpu,
                          s.expect_new, s.expect_create, s.expect_delete);
  }
  return out;
}

std::string FormatProcNetStatConntrack(uint32_t entries,
                                       absl::Span<const ConntrackStats> per_shard) {
  // 6.x ct_cpu_seq_show: the old "searched", "new", "ignore", "delete" columns are printed
  // as zeros, "clashres" took the place of searched and "chainlength" of delete_list.
  std::string out =
      "entries  clashres found new invalid ignore delete chainlength insert insert_failed "
      "drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n";
  for (const ConntrackStats& s : per_shard) {
    absl::StrAppendFormat(&out,
                          "%08x  %08x %08x %08x %08x %08x %08x %08x %08x %08x %08x %08x %08x  "
                          "%08x %08x %08x %08x\n",
                          entries, s.clash_resolve, s.found, 0u, s.invalid, 0u, 0u, s.chaintoolong,
                          s.insert, s.insert_failed, s.drop, s.early_drop, s.error, s.expect_new,
                          s.expect_create, s.expect_delete, s.search_restart);
  }
  return out;
}

}  // namespace ctsync

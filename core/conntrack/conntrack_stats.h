// Per-shard conntrack counters, the twin of the kernel's per-cpu struct ip_conntrack_stat,
// and the text that `conntrack -S` and /proc/net/stat/nf_conntrack print for them.
//
// One ConntrackStats belongs to one table shard (FlowTable::stats()) and is written only by
// the shard's owning thread; readers take a copy through the owner. A shard plays the role
// of one kernel cpu in the printed output.
#pragma once

#include <cstdint>
#include <string>

#include "absl/types/span.h"

namespace ctsync {

// Field names and meanings follow the kernel (include/linux/netfilter/nf_conntrack_common.h).
// searched/new/ignore/delete/delete_list are no longer counted by 6.x kernels; they stay
// here at zero so dumps line up with /proc/net/stat/nf_conntrack.
struct ConntrackStats {
  uint32_t found = 0;          // lookups that found an existing entry
  uint32_t invalid = 0;        // packets the l4 tracker declared invalid
  uint32_t insert = 0;         // entries inserted from userspace (ctnetlink / sync)
  uint32_t insert_failed = 0;  // confirm lost a clash that could not be resolved
  uint32_t drop = 0;           // packets dropped because an entry could not be made
  uint32_t early_drop = 0;     // entries evicted to make room (table full)
  uint32_t error = 0;          // ICMP(v6) errors that matched no flow, bad l3/l4
  uint32_t expect_new = 0;     // connections that matched an expectation
  uint32_t expect_create = 0;  // expectations created
  uint32_t expect_delete = 0;  // expectations removed
  uint32_t search_restart = 0;
  uint32_t clash_resolve = 0;  // confirm clashes resolved by reusing the other entry
  uint32_t chaintoolong = 0;   // inserts refused because a hash chain was too long
  uint32_t searched = 0;       // always 0, as in 6.x
  uint32_t ignore = 0;         // always 0, as in 6.x

  ConntrackStats& operator+=(const ConntrackStats& o);
  friend bool operator==(const ConntrackStats&, const ConntrackStats&) = default;
};

// `conntrack -S` (conntrack-tools 1.4.7 against a 6.x kernel): one line per shard, e.g.
// "cpu=0   \tfound=0 invalid=0 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 "
// "search_restart=0 clash_resolve=0 chaintoolong=0 \n" (with its trailing blank).
std::string FormatConntrackS(absl::Span<const ConntrackStats> per_shard);

// `conntrack -S expect`: "cpu=0   \texpect_new=0 expect_create=0 expect_delete=0 \n".
std::string FormatConntrackSExpect(absl::Span<const ConntrackStats> per_shard);

// /proc/net/stat/nf_conntrack (6.x layout): a header line, then one line of %08x columns
// per shard; `entries` is the table's entry count (the kernel repeats it on every line).
std::string FormatProcNetStatConntrack(uint32_t entries,
                                       absl::Span<const ConntrackStats> per_shard);

}  // namespace ctsync

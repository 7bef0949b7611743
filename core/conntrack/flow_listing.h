// Text listings of flows, byte-identical to the real tools so operators' scripts keep
// working: `conntrack -L`, `conntrack -L -o extended` (conntrack-tools 1.4.7 /
// libnetfilter_conntrack) and /proc/net/nf_conntrack (Linux 6.18 ct_seq_show).
//
// Pure functions; callable from any thread on a Flow the caller may read (the table
// owner's thread, or a copy). Lines are returned without the trailing newline.
#pragma once

#include <cstdint>
#include <string>

#include "core/conntrack/flow.h"
#include "core/util/clock.h"

namespace ctsync {

enum class ListingFormat : uint8_t {
  kConntrackL,       // conntrack -L: starts with the l4 protocol
  kExtended,         // conntrack -L -o extended: "ipv4     2 " in front
  kProcNfConntrack,  // /proc/net/nf_conntrack
};

struct ListingOptions {
  // The kernel's reference count as ctnetlink reports it: 1, plus one per expectation or
  // RELATED child holding the flow (the engine knows those). /proc prints one more, the
  // reference the reader holds while printing.
  uint32_t use = 1;
  // nf_conntrack_acct=1: the flow's counters (FlowTable::accounting), printed as
  // "packets=N bytes=N " after each tuple.
  const FlowAccounting* counters = nullptr;
  // /proc prints GRE's per-flow timeouts (gre_print_conntrack); the kernel's defaults.
  uint32_t gre_timeout_s = 30;
  uint32_t gre_stream_timeout_s = 180;
};

// One flow as the chosen tool prints it. Timeout is the whole seconds left before
// flow.expires at `now`, rounded down and never negative.
std::string FormatConntrackLine(const Flow& flow, Nanos now, ListingFormat format,
                                const ListingOptions& options = {});

// Names as the tools print them ("ipv4", "tcp", ..., else "unknown"). The /proc and
// conntrack-tools tables differ only for DCCP, which 6.18 no longer tracks.
const char* L3ProtoName(Family family);
const char* L4ProtoName(uint8_t proto, ListingFormat format);

}  // namespace ctsync

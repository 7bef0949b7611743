// ctsnap: inspects saved flow state — snapshots, a live store (read-only, while its daemon
// runs) or export files. Owned by tools/ctsnap; main.cc only wires stdio to Run.
//
//   ctsnap list ROOT [-o json]            snapshots under ROOT/snapshots with manifests
//   ctsnap show PATH [-o json] [--counters] [--external|--all] [filters]
//                                         flows as `conntrack -L` prints them (or JSON lines)
//   ctsnap stats PATH [--external|--all] [filters]
//                                         counts by protocol, TCP state, NAT type and age
//   ctsnap diff A B [--timeouts] [--external|--all] [filters]
//                                         flows added (+), removed (-), changed (~) from A to B
//   ctsnap verify PATH                    checks every record and checksum, names each bad one
//   ctsnap export PATH -o FILE [filters]  writes an export file another node can load
//
// Output on stdout is stable for scripts (sorted, no timestamps of its own); progress and
// summaries of long operations go to stderr, progress only when stderr is a terminal.
// Exit status: 0 ok, 1 differences found (diff) or problems found (verify), 2 error.
// Timeouts shown are as of the moment the state was saved (the snapshot's or export's
// time, the store's last write), so output does not change with the time it is run.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace ctsync::ctsnap {

// args excludes the program name. `progress`: print progress to err (a terminal).
int Run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, bool progress);

}  // namespace ctsync::ctsnap

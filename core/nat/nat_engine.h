// NAT: the userspace twin of the kernel's nf_nat (nf_nat_core.c, nf_nat_proto.c,
// nf_nat_masquerade.c, nf_nat_redirect.c). At each NAT hook it sets up a connection's
// binding the first time (running the nat table once, for the first packet of a
// connection only) and rewrites every packet of the connection according to its binding,
// ICMP errors inside and out included.
//
// Owner: the datapath thread that owns the ConntrackEngine it was given. Not thread-safe.
#pragma once

#include <cstdint>

#include "absl/functional/function_ref.h"
#include "core/conntrack/conntrack_engine.h"
#include "core/pipeline/packet_buffer.h"
#include "core/pipeline/topology.h"
#include "core/rules/rule_set.h"

namespace ctsync {

struct NatOptions {
  uint64_t seed = 0;  // the kernel's random port offsets and address hashing
};

class NatEngine {
 public:
  NatEngine(const NatOptions& options, ConntrackEngine* conntrack);

  // nf_nat_inet_fn at `hook` (PREROUTING/OUTPUT manipulate the destination, INPUT and
  // POSTROUTING the source) for the packet in `b`, which conntrack has already classified:
  //  - a NEW (or RELATED) connection without a binding for this manip type calls
  //    `nat_table()` exactly once, which evaluates the nat table's chain for this hook and
  //    returns its verdict (kNat carries the NatSpec; kAccept = no rule: null binding;
  //    kDrop = drop). The binding is chosen as nf_nat_setup_info does and stored in the
  //    flow's reply tuple and status (SRC_NAT/DST_NAT, *_DONE bits).
  //  - every packet is then rewritten per the binding and its direction (addresses, ports,
  //    ICMP ids, incremental checksums), ICMP errors inside and outside.
  // Returns false when the packet must be dropped.
  bool Apply(rules::Hook hook, PacketBuffer& b, absl::FunctionRef<rules::Verdict()> nat_table,
             const Topology& topology, Nanos now);

 private:
  NatOptions options_;
  ConntrackEngine* conntrack_;
};

}  // namespace ctsync

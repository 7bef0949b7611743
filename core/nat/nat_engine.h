// NAT: the userspace twin of the kernel's nf_nat (nf_nat_core.c, nf_nat_proto.c,
// nf_nat_masquerade.c, nf_nat_redirect.c). At each NAT hook it sets up a connection's
// binding the first time (running the nat table once, for the first packet of a
// connection only) and rewrites every packet of the connection according to its binding,
// ICMP errors inside and out included. Kernel rules followed: core/nat/README.md.
//
// Owner: the datapath thread that owns the ConntrackEngine it was given. Not thread-safe.
#pragma once

#include <cstdint>

#include "absl/functional/function_ref.h"
#include "core/conntrack/conntrack_engine.h"
#include "core/nat/nat_binding.h"
#include "core/nat/nat_range.h"
#include "core/pipeline/packet_buffer.h"
#include "core/pipeline/topology.h"
#include "core/rules/rule_set.h"

namespace ctsync {

struct NatOptions {
  uint64_t seed = 0;  // the kernel's random port offsets and address hashing
};

// Every packet NAT drops is counted under one reason; bindings are counted too.
#define CTSYNC_NAT_COUNTERS(X)                                                           \
  X(bindings)          /* bindings set up by a nat-table target */                       \
  X(null_bindings)     /* bindings set up without a rule (nf_nat_alloc_null_binding) */  \
  X(translated)        /* packets whose headers were rewritten */                        \
  X(icmp_translated)   /* ICMP errors rewritten inside and out */                        \
  X(rule_drops)        /* the nat table's verdict was DROP */                            \
  X(no_address)        /* MASQUERADE/REDIRECT: the interface has no usable address */    \
  X(already_bound)     /* a target for a manip type already bound (kernel WARN): drop */ \
  X(truncated)         /* too short to rewrite (skb_ensure_writable failed): drop */     \
  X(icmp_bad_checksum) /* ICMP error with a bad checksum: drop */                        \
  X(icmp_redirect)     /* ICMP redirect for a NATed flow: drop */

struct NatCounters {
#define CTSYNC_NAT_COUNTER_FIELD(name) uint64_t name = 0;
  CTSYNC_NAT_COUNTERS(CTSYNC_NAT_COUNTER_FIELD)
#undef CTSYNC_NAT_COUNTER_FIELD
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

  // Sets up a binding for an unconfirmed flow the way the target `spec` would at `hook`
  // (also what the FTP helper's expectations and ctnetlink-style creation need). The
  // packet supplies MASQUERADE's out interface and REDIRECT's in interface. False = drop.
  bool SetupFromSpec(const rules::NatSpec& spec, rules::Hook hook, const PacketBuffer& b,
                     const Topology& topology, Nanos now);

  const NatCounters& counters() const { return counters_; }

 private:
  // nf_nat_packet: rewrites `b` per its flow's binding for this hook and direction.
  // Small, so that the common "nothing to rewrite at this hook" costs no call.
  bool NatPacket(nat::ManipType manip, PacketBuffer& b);
  // Rewrites `b` to the inverse of `other` (the other direction's tuple) for `manip`.
  bool Rewrite(nat::ManipType manip, const Tuple& other, PacketBuffer& b);

  NatOptions options_;
  ConntrackEngine* conntrack_;
  nat::NatBinder binder_;
  NatCounters counters_;
};

}  // namespace ctsync

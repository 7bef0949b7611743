// NAT binding selection: the userspace twin of nf_nat_setup_info and everything under it
// in nf_nat_core.c (get_unique_tuple, find_appropriate_src over the by-source index,
// find_best_ips_proto, nf_nat_l4proto_unique_tuple, nf_nat_used_tuple{,_new,_harder}).
// Given an unconfirmed flow and a range, it picks the translated tuple, stores its inverse
// as the flow's reply tuple, and sets the IPS_*_NAT / IPS_*_NAT_DONE status bits.
//
// Uniqueness is checked against the ConntrackEngine's FlowTable in the flow's zone, and a
// taken tuple counts `found`, as nf_conntrack_tuple_taken does. When no free tuple exists
// the last candidate is kept: confirmation then fails (insert_failed + drop), as in the
// kernel.
//
// Owner: the NatEngine of one shard (same thread as its ConntrackEngine). Not thread-safe.
#pragma once

#include <cstdint>

#include "core/conntrack/conntrack_engine.h"
#include "core/nat/nat_by_source.h"
#include "core/nat/nat_range.h"

namespace ctsync::nat {

// The kernel's bounds on the port search (NF_NAT_MAX_ATTEMPTS, NF_NAT_HARDER_THRESH).
inline constexpr unsigned kMaxAttempts = 128;
inline constexpr unsigned kHarderThreshold = kMaxAttempts / 4;

// The kernel's jhash2 (lookup3 over 32-bit words), which find_best_ips_proto uses to spread
// connections over an address range. Exposed for tests.
uint32_t Jhash2(const uint32_t* words, uint32_t length, uint32_t initval);

class NatBinder {
 public:
  // Registers a destroy hook on `conntrack`, which must not free flows after this binder
  // is gone.
  NatBinder(ConntrackEngine* conntrack, uint64_t seed);
  NatBinder(const NatBinder&) = delete;
  NatBinder& operator=(const NatBinder&) = delete;

  // nf_nat_setup_info. A confirmed flow is left alone (the kernel cannot re-bind one).
  // Returns false only when the flow is already bound for `manip` (a bug upstream: drop).
  bool SetupInfo(FlowIndex idx, const NatRange& range, ManipType manip, Nanos now);

  // nf_nat_alloc_null_binding: "translate" to the address the flow already has, which
  // still changes a source port that clashes with another flow's reply tuple.
  bool NullBinding(FlowIndex idx, ManipType manip, Nanos now);

  // The kernel's get_random_u16, from a seeded generator so runs are reproducible.
  uint16_t RandomU16();

 private:
  void GetUniqueTuple(Tuple* out, const Tuple& orig, const NatRange& range, const Flow& ct,
                      ManipType manip, Nanos now);
  // `src_hash` is by_source_.KeyHash(orig, zone).
  bool FindAppropriateSrc(const Tuple& orig, uint32_t src_hash, uint16_t zone,
                          const NatRange& range, Tuple* result);
  void FindBestIpsProto(uint16_t zone, Tuple* t, const NatRange& range, ManipType manip) const;
  void UniqueL4(Tuple* t, const NatRange& range, ManipType manip, const Flow& ct, Nanos now);

  // nf_conntrack_tuple_taken on the inverse of `t` (the reply a binding to `t` would get).
  bool UsedTuple(const Tuple& t, const Flow& ct, Nanos now);
  bool UsedTupleNew(const Tuple& t, const Flow& ct, Nanos now);
  bool UsedTupleHarder(const Tuple& t, const Flow& ct, unsigned attempts_left, Nanos now);
  // Confirmed flow holding `t` in `zone`; an expired one is reaped and not returned.
  FlowLookup FindLive(const Tuple& t, uint16_t zone, Nanos now);

  ConntrackEngine* conntrack_;
  uint64_t rng_;
  // nf_nat_bysource: SRC-bound flows by their original source; flows leave it when
  // conntrack frees them (the destroy hook registered by the constructor).
  BySourceIndex by_source_;
};

}  // namespace ctsync::nat

// The kernel's struct nf_nat_range2 and enum nf_nat_manip_type: what a NAT target asks
// for (addresses, a port or ICMP-id range, random/persistent flags) once it has been
// resolved against the packet (MASQUERADE and REDIRECT fill in the interface address).
// Plain values, built per binding by NatEngine; no thread rules.
#pragma once

#include <cstdint>

#include "core/net/ip_address.h"
#include "core/rules/rule_set.h"

namespace ctsync::nat {

// Which end of the original tuple a hook rewrites (kernel HOOK2MANIP): PREROUTING and
// OUTPUT change the destination, INPUT and POSTROUTING the source.
enum class ManipType : uint8_t { kSrc = 0, kDst = 1 };

inline ManipType ManipOfHook(rules::Hook hook) {
  return hook == rules::Hook::kPrerouting || hook == rules::Hook::kOutput ? ManipType::kDst
                                                                          : ManipType::kSrc;
}
inline ManipType OtherManip(ManipType m) {
  return m == ManipType::kSrc ? ManipType::kDst : ManipType::kSrc;
}

// NF_NAT_RANGE_* flag values, as in uapi/linux/netfilter/nf_nat.h.
inline constexpr uint32_t kRangeMapIps = 1u << 0;
inline constexpr uint32_t kRangeProtoSpecified = 1u << 1;
inline constexpr uint32_t kRangeProtoRandom = 1u << 2;
inline constexpr uint32_t kRangePersistent = 1u << 3;
inline constexpr uint32_t kRangeProtoRandomFully = 1u << 4;
inline constexpr uint32_t kRangeProtoRandomAll = kRangeProtoRandom | kRangeProtoRandomFully;

struct NatRange {
  uint32_t flags = 0;
  IpAddress min_addr, max_addr;
  // Ports (TCP/UDP/SCTP/UDP-Lite) or ICMP ids, host order.
  uint16_t min_proto = 0, max_proto = 0;
};

// The range an iptables SNAT/DNAT/MASQUERADE/REDIRECT target passes to the NAT core,
// before MASQUERADE/REDIRECT substitute their address.
inline NatRange RangeOfSpec(const rules::NatSpec& spec) {
  NatRange r;
  if (spec.has_addr) {
    r.flags |= kRangeMapIps;
    r.min_addr = spec.min_addr;
    r.max_addr = spec.max_addr;
  }
  if (spec.has_ports) {
    r.flags |= kRangeProtoSpecified;
    r.min_proto = spec.min_port;
    r.max_proto = spec.max_port;
  }
  if (spec.random) r.flags |= kRangeProtoRandom;
  if (spec.random_fully) r.flags |= kRangeProtoRandomFully;
  if (spec.persistent) r.flags |= kRangePersistent;
  return r;
}

}  // namespace ctsync::nat

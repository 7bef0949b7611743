// The small protocol trackers: UDP / UDP-Lite, ICMP / ICMPv6 queries, GRE and the generic
// tracker for everything else (the kernel's nf_conntrack_proto_{udp,icmp,icmpv6,gre,
// generic}.c). TCP lives in tcp_tracker.h. Pure functions over a Flow; the engine calls
// them from the owning shard's thread.
#pragma once

#include <cstdint>
#include <optional>

#include "core/conntrack/conntrack_settings.h"
#include "core/conntrack/flow.h"
#include "core/conntrack/tuple.h"

namespace ctsync {

// The kernel's tuple inversion for ICMP queries: echo 8<->0, timestamp 13<->14, info
// 15<->16, address mask 17<->18; ICMPv6 echo 128<->129, node information 139<->140.
// nullopt for types with no reply (they cannot make a connection).
std::optional<uint8_t> InvertIcmpType(Family family, uint8_t type);

// The reply tuple of `t` (kernel nf_ct_invert_tuple); nullopt where inversion fails.
// Inline: a new NATed flow inverts tuples half a dozen times, and a call that copies the
// tuple through memory costs more than the swap itself.
inline std::optional<Tuple> InvertTuple(const Tuple& t) {
  Tuple r = t;
  r.src = t.dst;
  r.dst = t.src;
  if (t.proto == kProtoIcmp || t.proto == kProtoIcmpv6) [[unlikely]] {
    const std::optional<uint8_t> type = InvertIcmpType(t.family, t.icmp_type());
    if (!type) return std::nullopt;
    r.dport = static_cast<uint16_t>((*type << 8) | t.icmp_code());
    return r;
  }
  r.sport = t.dport;
  r.dport = t.sport;
  return r;
}

// ICMP types whose packets are errors quoting another packet (kernel icmp_is_err, and for
// ICMPv6 every type below 128).
bool IcmpIsError(Family family, uint8_t type);

// ICMPv6 neighbour discovery and MLD types the kernel leaves untracked
// (noct_valid_new in nf_conntrack_proto_icmpv6.c).
bool Icmpv6IsUntrackedType(uint8_t type);

struct L4Result {
  bool valid = true;          // false: the packet is INVALID (counted `invalid`)
  Nanos timeout = 0;          // refresh to now + timeout
  bool set_assured = false;
};

// nf_conntrack_udp_packet. `seen_reply` is the flow's IPS_SEEN_REPLY before this packet.
L4Result UdpPacket(const Flow& flow, Nanos now, const ConntrackSettings& s);
// nf_conntrack_icmp_packet / icmpv6_packet: only query types may own an entry.
L4Result IcmpPacket(const Flow& flow, const ConntrackSettings& s);
// gre_packet (GRE version 0 is tracked like generic, keys 0, but with GRE timeouts).
L4Result GrePacket(const Flow& flow, const ConntrackSettings& s);
L4Result GenericPacket(const ConntrackSettings& s);

// Whether the early drop may evict a flow of this protocol in this state
// (the kernel's l4proto->can_early_drop; protocols without the hook always may).
bool CanEarlyDrop(const Flow& flow);

}  // namespace ctsync

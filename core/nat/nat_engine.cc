#include "core/nat/nat_engine.h"

#include <optional>

#include "core/conntrack/l4_trackers.h"
#include "core/nat/nat_rewrite.h"

namespace ctsync {
namespace {

using nat::ManipType;
using rules::Hook;
using rules::NatKind;
using rules::Verdict;

bool IsLinkLocalV6(const IpAddress& a) { return a.bytes[0] == 0xfe && (a.bytes[1] & 0xc0) == 0x80; }

// inet_select_addr (IPv4) / source address selection (IPv6), reduced to what a static
// topology needs: the interface's first address on the next hop's subnet, else its first
// usable (for IPv6: not link-local) address.
std::optional<IpAddress> MasqueradeAddress(const Interface& out, Family family,
                                           const IpAddress& next_hop) {
  std::optional<IpAddress> first;
  for (const InterfaceAddress& a : out.addresses) {
    if (a.family != family) continue;
    if (family == Family::kIpv6 && IsLinkLocalV6(a.address)) continue;
    if (!first) first = a.address;
    if (!next_hop.IsZero() &&
        IpPrefix::Of(family, a.address, a.prefix_len).Contains(family, next_hop))
      return a.address;
  }
  return first;
}

// nf_nat_redirect_ipv4 / _ipv6: the incoming interface's primary address (IPv6: its first
// address that is not link-local).
std::optional<IpAddress> RedirectAddress(const Interface& in, Family family) {
  for (const InterfaceAddress& a : in.addresses) {
    if (a.family != family) continue;
    if (family == Family::kIpv6 && IsLinkLocalV6(a.address)) continue;
    return a.address;
  }
  return std::nullopt;
}

absl::Span<uint8_t> Datagram(PacketBuffer& b) {
  const size_t l3 = b.pkt.l3_offset;
  if (l3 > b.frame.size()) return {};
  const size_t len = std::min<size_t>(b.pkt.ip_total_len, b.frame.size() - l3);
  return absl::Span<uint8_t>(b.frame.data() + l3, len);
}

bool HasPorts(uint8_t proto) {
  return proto == kProtoTcp || proto == kProtoUdp || proto == kProtoUdplite ||
         proto == kProtoSctp || proto == kProtoDccp;
}

}  // namespace

NatEngine::NatEngine(const NatOptions& options, ConntrackEngine* conntrack)
    : options_(options), conntrack_(conntrack), binder_(conntrack, options.seed) {}

bool NatEngine::SetupFromSpec(const rules::NatSpec& spec, Hook hook, const PacketBuffer& b,
                              const Topology& topology, Nanos now) {
  const FlowIndex idx = b.ct.flow;
  // nf_nat_setup_info cannot re-bind a confirmed flow: the target is a no-op.
  if (conntrack_->table().IsConfirmed(idx)) return true;
  const Flow& f = conntrack_->table().flow(idx);
  const Family family = f.family();
  nat::NatRange range = nat::RangeOfSpec(spec);
  ManipType manip = ManipType::kSrc;
  switch (spec.kind) {
    case NatKind::kSnat:
      manip = ManipType::kSrc;
      break;
    case NatKind::kDnat:
      manip = ManipType::kDst;
      break;
    case NatKind::kMasquerade: {
      manip = ManipType::kSrc;
      // A locally generated packet with no source yet is not masqueraded.
      if (f.tuple[0].src.IsZero()) return true;
      std::optional<IpAddress> a;
      if (b.out_iface >= 0 && b.out_iface < topology.interface_count()) {
        const IpAddress nh = b.next_hop.IsZero() ? b.pkt.dst : b.next_hop;
        a = MasqueradeAddress(topology.interface(b.out_iface), family, nh);
      }
      if (!a) {
        ++counters_.no_address;
        return false;
      }
      range.flags |= nat::kRangeMapIps;
      range.min_addr = range.max_addr = *a;
      break;
    }
    case NatKind::kRedirect: {
      manip = ManipType::kDst;
      std::optional<IpAddress> a;
      if (hook == Hook::kOutput) {
        IpAddress lo;
        if (family == Family::kIpv4) {
          lo = IpAddress::FromV4(0x7f000001u);
        } else {
          lo.bytes[15] = 1;
        }
        a = lo;
      } else if (b.in_iface >= 0 && b.in_iface < topology.interface_count()) {
        a = RedirectAddress(topology.interface(b.in_iface), family);
      }
      if (!a) {
        ++counters_.no_address;
        return false;
      }
      range.flags |= nat::kRangeMapIps;
      range.min_addr = range.max_addr = *a;
      break;
    }
  }
  if (!binder_.SetupInfo(idx, range, manip, now)) {
    ++counters_.already_bound;
    return false;
  }
  ++counters_.bindings;
  return true;
}

bool NatEngine::NatPacket(ManipType manip, PacketBuffer& b) {
  const Flow& f = conntrack_->table().flow(b.ct.flow);
  const Direction dir = b.ct.dir();
  uint32_t statusbit = manip == ManipType::kSrc ? kIpsSrcNat : kIpsDstNat;
  if (dir == Direction::kReply) statusbit ^= kIpsNatMask;
  if (!(f.status & statusbit)) return true;
  return Rewrite(manip, f.tuple_of(Opposite(dir)), b);
}


bool NatEngine::Rewrite(ManipType manip, const Tuple& other, PacketBuffer& b) {
  // Make the packet look like the inverse of the other direction's tuple.
  Tuple target;
  target.family = other.family;
  target.proto = other.proto;
  target.src = other.dst;
  target.dst = other.src;
  if (other.proto == kProtoIcmp || other.proto == kProtoIcmpv6) {
    target.sport = other.sport;  // the id is the same in both directions
  } else {
    target.sport = other.dport;
    target.dport = other.sport;
  }
  if (!nat::ManipPacket(Datagram(b), 0, target, manip)) {
    ++counters_.truncated;
    return false;
  }
  ParsedPacket& p = b.pkt;
  if (manip == ManipType::kSrc) {
    p.src = target.src;
    if (HasPorts(p.proto) && p.l4_parsed) p.sport = target.sport;
  } else {
    p.dst = target.dst;
    if (HasPorts(p.proto) && p.l4_parsed) p.dport = target.dport;
  }
  if ((p.proto == kProtoIcmp || p.proto == kProtoIcmpv6) && p.l4_parsed && !p.icmp_is_error)
    p.icmp_id = target.sport;
  ++counters_.translated;
  return true;
}

bool NatEngine::Apply(Hook hook, PacketBuffer& b, absl::FunctionRef<Verdict()> nat_table,
                      const Topology& topology, Nanos now) {
  if (!b.ct.tracked()) return true;
  const ManipType manip = nat::ManipOfHook(hook);
  const CtInfo info = b.ct.info;
  const bool related = info == CtInfo::kRelated || info == CtInfo::kRelatedReply;

  // nf_nat_ipv{4,6}_fn: a RELATED ICMP(v6) message is an error about the flow: translate it
  // inside and out, and never bind anything for it.
  const uint8_t icmp_proto = b.pkt.family == Family::kIpv4 ? kProtoIcmp : kProtoIcmpv6;
  if (related && b.pkt.proto == icmp_proto) {
    const Flow& f = conntrack_->table().flow(b.ct.flow);
    const absl::Span<uint8_t> d = Datagram(b);
    if (b.pkt.l4_offset <= b.pkt.l3_offset) {
      ++counters_.truncated;
      return false;
    }
    const size_t l4 = b.pkt.l4_offset - b.pkt.l3_offset;
    using R = nat::IcmpTranslateResult;
    switch (nat::IcmpReplyTranslation(d, l4, f, b.ct.dir(), manip)) {
      case R::kUnchanged:
        return true;
      case R::kTranslated:
        ++counters_.icmp_translated;
        if (b.pkt.family == Family::kIpv4) {
          b.pkt.src = IpAddress::FromV4Bytes(d.data() + 12);
          b.pkt.dst = IpAddress::FromV4Bytes(d.data() + 16);
        } else {
          b.pkt.src = IpAddress::FromV6Bytes(d.data() + 8);
          b.pkt.dst = IpAddress::FromV6Bytes(d.data() + 24);
        }
        return true;
      case R::kTruncated:
        ++counters_.truncated;
        return false;
      case R::kBadChecksum:
        ++counters_.icmp_bad_checksum;
        return false;
      case R::kRedirect:
        ++counters_.icmp_redirect;
        return false;
    }
    return false;
  }

  if (info == CtInfo::kNew || related) {
    const uint32_t done_bit = manip == ManipType::kSrc ? kIpsSrcNatDone : kIpsDstNatDone;
    Flow& f = conntrack_->table().flow(b.ct.flow);
    if (!(f.status & done_bit)) {
      const Verdict v = nat_table();
      if (v.kind == Verdict::kNat) {
        if (!SetupFromSpec(v.nat, hook, b, topology, now)) return false;
      } else if (v.kind != Verdict::kAccept) {
        ++counters_.rule_drops;
        return false;
      }
      // No rule (or a target for the other manip type): the null binding, which keeps the
      // addresses but may still move a clashing source port.
      if (!(f.status & done_bit)) {
        if (!binder_.NullBinding(b.ct.flow, manip, now)) {
          ++counters_.already_bound;
          return false;
        }
        ++counters_.null_bindings;
      }
    }
  }
  return NatPacket(manip, b);
}

}  // namespace ctsync

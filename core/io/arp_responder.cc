#include "core/io/arp_responder.h"

#include <algorithm>

#include "core/packet/packet_parser.h"

namespace ctsync {
namespace {

constexpr size_t kIcmpv6TypeOffset = 14 + 40;

// Ethertype IPv6, no extension headers, ICMPv6 type NS or NA: frames the pipeline must
// never see even when they turn out malformed.
bool LooksLikeNd(absl::Span<const uint8_t> frame) {
  return frame.size() > kIcmpv6TypeOffset && LoadBe16(frame.data() + 12) == kEtherTypeIpv6 &&
         frame[14 + 6] == 58 &&
         (frame[kIcmpv6TypeOffset] == kIcmpv6NeighbourSolicitation ||
          frame[kIcmpv6TypeOffset] == kIcmpv6NeighbourAdvertisement);
}

}  // namespace

ArpResponder::ArpResponder(const Topology& topology, ArpResponderOptions options)
    : topology_(topology), options_(options) {}

bool ArpResponder::AddVirtualAddress(int interface, Family family, const IpAddress& address) {
  if (interface < 0 || interface >= topology_.interface_count()) return false;
  for (const auto& v : vips_)
    if (v.interface == interface && v.family == family && v.address == address) return false;
  vips_.push_back({interface, family, address});
  return true;
}

bool ArpResponder::RemoveVirtualAddress(int interface, Family family, const IpAddress& address) {
  auto it = std::find_if(vips_.begin(), vips_.end(), [&](const VirtualAddress& v) {
    return v.interface == interface && v.family == family && v.address == address;
  });
  if (it == vips_.end()) return false;
  vips_.erase(it);
  return true;
}

bool ArpResponder::Owns(int interface, Family family, const IpAddress& address) const {
  if (interface < 0 || interface >= topology_.interface_count()) return false;
  auto listed = [&](const std::vector<VirtualAddress>& list) {
    for (const auto& v : list)
      if (v.interface == interface && v.family == family && v.address == address) return true;
    return false;
  };
  if (listed(vips_)) return true;
  for (const auto& a : topology_.interface(interface).addresses)
    if (a.family == family && a.address == address) return !listed(standby_);
  return false;
}

NeighbourFrameResult ArpResponder::Handle(int interface, absl::Span<const uint8_t> frame) {
  if (interface < 0 || interface >= topology_.interface_count() || frame.size() < 14) return {};
  const uint16_t type = LoadBe16(frame.data() + 12);
  if (type == kEtherTypeArp) return HandleArp(interface, frame);
  if (LooksLikeNd(frame)) return HandleNd(interface, frame);
  return {};
}

NeighbourFrameResult ArpResponder::HandleArp(int interface, absl::Span<const uint8_t> frame) {
  NeighbourFrameResult r;
  r.consumed = true;
  const std::optional<ArpMessage> m = ParseArp(frame);
  if (!m) {
    ++counters_.arp_malformed;
    return r;
  }
  const MacAddress& mine = topology_.interface(interface).mac;
  if (!(m->eth_dst[0] & 1) && m->eth_dst != mine) {
    ++counters_.not_for_us;  // arp_rcv drops PACKET_OTHERHOST
    return r;
  }
  if (m->op == kArpOpReply) ++counters_.arp_replies_seen;
  const bool for_us = m->op == kArpOpRequest && Owns(interface, Family::kIpv4, m->target_ip);
  if (m->op == kArpOpRequest && !for_us) ++counters_.arp_requests_not_ours;
  if (for_us) {
    ++counters_.arp_requests_answered;
    // A probe (sender 0.0.0.0) is answered with target IP 0, like arp_process does.
    r.reply =
        BuildArp(kArpOpReply, m->sender_mac, mine, mine, m->target_ip, m->sender_mac, m->sender_ip);
  }
  if (!m->sender_ip.IsZero() && !Owns(interface, Family::kIpv4, m->sender_ip))
    r.learned = LearnedNeighbour{Family::kIpv4, m->sender_ip, m->sender_mac, for_us};
  return r;
}

NeighbourFrameResult ArpResponder::HandleNd(int interface, absl::Span<const uint8_t> frame) {
  NeighbourFrameResult r;
  r.consumed = true;
  const std::optional<NdMessage> m = ParseNd(frame);
  if (!m) {
    ++counters_.nd_malformed;
    return r;
  }
  const MacAddress& mine = topology_.interface(interface).mac;
  if (m->type == kIcmpv6NeighbourAdvertisement) {
    ++counters_.na_seen;
    if (m->lladdr && !Owns(interface, Family::kIpv6, m->target))
      r.learned = LearnedNeighbour{Family::kIpv6, m->target, *m->lladdr, false};
    return r;
  }
  if (!Owns(interface, Family::kIpv6, m->target)) {
    ++counters_.ns_not_ours;
    return r;
  }
  ++counters_.ns_answered;
  NaFlags flags;
  flags.router = options_.router;
  if (m->src.IsZero()) {
    // Someone's duplicate address detection hit our address: tell all nodes.
    r.reply = BuildUnsolicitedNeighbourAdvertisement(mine, m->target, options_.router);
    return r;
  }
  const bool multicast_ns = m->dst.bytes[0] == 0xff;
  flags.solicited = true;
  flags.override_flag = multicast_ns;
  flags.include_tllao = multicast_ns;
  const MacAddress eth_dst = m->lladdr ? *m->lladdr : m->eth_src;
  r.reply = BuildNeighbourAdvertisement(eth_dst, mine, m->target, m->src, m->target, flags);
  if (m->lladdr) r.learned = LearnedNeighbour{Family::kIpv6, m->src, *m->lladdr, true};
  return r;
}

std::vector<std::vector<uint8_t>> ArpResponder::Announce(int interface, Family family,
                                                         const IpAddress& address) const {
  std::vector<std::vector<uint8_t>> out;
  if (interface < 0 || interface >= topology_.interface_count()) return out;
  const MacAddress& mac = topology_.interface(interface).mac;
  if (family == Family::kIpv4) {
    out.push_back(BuildGratuitousArp(mac, address, GratuitousArpForm::kRequest));
    out.push_back(BuildGratuitousArp(mac, address, GratuitousArpForm::kReply));
  } else if (family == Family::kIpv6) {
    out.push_back(BuildUnsolicitedNeighbourAdvertisement(mac, address, options_.router));
  }
  return out;
}

}  // namespace ctsync

#include "core/io/neighbour_frames.h"

#include <algorithm>
#include <cstring>

#include "core/packet/checksum.h"
#include "core/packet/packet_parser.h"

namespace ctsync {
namespace {

constexpr size_t kEthHeaderLen = 14;
constexpr size_t kArpBodyLen = 28;
constexpr size_t kIpv6HeaderLen = 40;
constexpr uint8_t kProtoIcmpv6 = 58;
constexpr uint8_t kOptSourceLinkAddr = 1;
constexpr uint8_t kOptTargetLinkAddr = 2;

MacAddress LoadMac(const uint8_t* p) {
  MacAddress m;
  std::memcpy(m.data(), p, 6);
  return m;
}

void PutMac(uint8_t* p, const MacAddress& m) { std::memcpy(p, m.data(), 6); }

bool IsV4MulticastOrLoopback(const IpAddress& a) {
  return (a.bytes[0] & 0xf0) == 0xe0 || a.bytes[0] == 127;
}

bool IsV6Multicast(const IpAddress& a) { return a.bytes[0] == 0xff; }

bool IsSolicitedNodeGroup(const IpAddress& a) {
  static constexpr uint8_t kPrefix[13] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff};
  return std::memcmp(a.bytes.data(), kPrefix, sizeof(kPrefix)) == 0;
}

void WriteEthernet(uint8_t* p, const MacAddress& dst, const MacAddress& src, uint16_t type) {
  PutMac(p, dst);
  PutMac(p + 6, src);
  StoreBe16(p + 12, type);
}

// An IPv6/ICMPv6 frame around `icmp` (whose checksum field is filled here).
std::vector<uint8_t> BuildIcmpv6Frame(const MacAddress& eth_dst, const MacAddress& eth_src,
                                      const IpAddress& src, const IpAddress& dst,
                                      std::vector<uint8_t> icmp) {
  StoreBe16(icmp.data() + 2, 0);
  const uint32_t sum =
      PseudoHeaderSum(Family::kIpv6, src, dst, kProtoIcmpv6, static_cast<uint32_t>(icmp.size()));
  StoreBe16(icmp.data() + 2,
            static_cast<uint16_t>(~FoldChecksum(uint64_t{sum} + OnesComplementSum(icmp))));
  std::vector<uint8_t> f(kEthHeaderLen + kIpv6HeaderLen + icmp.size());
  WriteEthernet(f.data(), eth_dst, eth_src, kEtherTypeIpv6);
  uint8_t* ip = f.data() + kEthHeaderLen;
  ip[0] = 0x60;  // version 6, traffic class and flow label 0
  StoreBe16(ip + 4, static_cast<uint16_t>(icmp.size()));
  ip[6] = kProtoIcmpv6;
  ip[7] = 255;  // RFC 4861: ND messages travel with hop limit 255 only
  std::memcpy(ip + 8, src.bytes.data(), 16);
  std::memcpy(ip + 24, dst.bytes.data(), 16);
  std::memcpy(ip + kIpv6HeaderLen, icmp.data(), icmp.size());
  return f;
}

void AppendLinkAddrOption(std::vector<uint8_t>* icmp, uint8_t type, const MacAddress& mac) {
  icmp->push_back(type);
  icmp->push_back(1);  // length in units of 8 bytes
  icmp->insert(icmp->end(), mac.begin(), mac.end());
}

}  // namespace

std::optional<ArpMessage> ParseArp(absl::Span<const uint8_t> frame) {
  if (frame.size() < kEthHeaderLen + kArpBodyLen) return std::nullopt;
  const uint8_t* p = frame.data();
  if (LoadBe16(p + 12) != kEtherTypeArp) return std::nullopt;
  const uint8_t* a = p + kEthHeaderLen;
  // Ethernet hardware, IPv4 protocol, 6/4-byte addresses: all arp_rcv accepts here.
  if (LoadBe16(a) != 1 || LoadBe16(a + 2) != kEtherTypeIpv4 || a[4] != 6 || a[5] != 4)
    return std::nullopt;
  ArpMessage m;
  m.eth_dst = LoadMac(p);
  m.eth_src = LoadMac(p + 6);
  m.op = LoadBe16(a + 6);
  if (m.op != kArpOpRequest && m.op != kArpOpReply) return std::nullopt;
  m.sender_mac = LoadMac(a + 8);
  m.sender_ip = IpAddress::FromV4Bytes(a + 14);
  m.target_mac = LoadMac(a + 18);
  m.target_ip = IpAddress::FromV4Bytes(a + 24);
  if (IsV4MulticastOrLoopback(m.sender_ip) || IsV4MulticastOrLoopback(m.target_ip))
    return std::nullopt;
  if (m.sender_mac[0] & 1) return std::nullopt;  // a multicast sender MAC is never a host
  return m;
}

std::optional<NdMessage> ParseNd(absl::Span<const uint8_t> frame) {
  if (frame.size() < kEthHeaderLen + kIpv6HeaderLen + 24) return std::nullopt;
  const uint8_t* p = frame.data();
  if (LoadBe16(p + 12) != kEtherTypeIpv6) return std::nullopt;
  const uint8_t* ip = p + kEthHeaderLen;
  if ((ip[0] >> 4) != 6 || ip[6] != kProtoIcmpv6) return std::nullopt;
  const size_t len = LoadBe16(ip + 4);
  if (len < 24 || kEthHeaderLen + kIpv6HeaderLen + len > frame.size()) return std::nullopt;
  const uint8_t* icmp = ip + kIpv6HeaderLen;
  if (icmp[0] != kIcmpv6NeighbourSolicitation && icmp[0] != kIcmpv6NeighbourAdvertisement)
    return std::nullopt;
  if (ip[7] != 255 || icmp[1] != 0) return std::nullopt;
  NdMessage m;
  m.eth_src = LoadMac(p + 6);
  m.type = icmp[0];
  m.src = IpAddress::FromV6Bytes(ip + 8);
  m.dst = IpAddress::FromV6Bytes(ip + 24);
  const uint32_t pseudo =
      PseudoHeaderSum(Family::kIpv6, m.src, m.dst, kProtoIcmpv6, static_cast<uint32_t>(len));
  if (FoldChecksum(uint64_t{pseudo} + OnesComplementSum(absl::MakeConstSpan(icmp, len))) != 0xffff)
    return std::nullopt;
  m.target = IpAddress::FromV6Bytes(icmp + 8);
  if (IsV6Multicast(m.target)) return std::nullopt;
  if (m.type == kIcmpv6NeighbourAdvertisement) {
    m.router = icmp[4] & 0x80;
    m.solicited = icmp[4] & 0x40;
    m.override_flag = icmp[4] & 0x20;
    if (m.solicited && IsV6Multicast(m.dst)) return std::nullopt;
  }
  const uint8_t wanted =
      m.type == kIcmpv6NeighbourSolicitation ? kOptSourceLinkAddr : kOptTargetLinkAddr;
  for (size_t off = 24; off < len;) {
    if (len - off < 2) return std::nullopt;
    const size_t opt_len = size_t{icmp[off + 1]} * 8;
    if (opt_len == 0 || off + opt_len > len) return std::nullopt;
    // The first link-layer option counts; ndisc ignores duplicates.
    if (icmp[off] == wanted && opt_len >= 8 && !m.lladdr) m.lladdr = LoadMac(icmp + off + 2);
    off += opt_len;
  }
  if (m.type == kIcmpv6NeighbourSolicitation && m.src.IsZero() &&
      (!IsSolicitedNodeGroup(m.dst) || m.lladdr))
    return std::nullopt;
  return m;
}

std::vector<uint8_t> BuildArp(uint16_t op, const MacAddress& eth_dst, const MacAddress& eth_src,
                              const MacAddress& sender_mac, const IpAddress& sender_ip,
                              const MacAddress& target_mac, const IpAddress& target_ip) {
  std::vector<uint8_t> f(kEthHeaderLen + kArpBodyLen);
  WriteEthernet(f.data(), eth_dst, eth_src, kEtherTypeArp);
  uint8_t* a = f.data() + kEthHeaderLen;
  StoreBe16(a, 1);
  StoreBe16(a + 2, kEtherTypeIpv4);
  a[4] = 6;
  a[5] = 4;
  StoreBe16(a + 6, op);
  PutMac(a + 8, sender_mac);
  std::memcpy(a + 14, sender_ip.bytes.data(), 4);
  PutMac(a + 18, target_mac);
  std::memcpy(a + 24, target_ip.bytes.data(), 4);
  return f;
}

std::vector<uint8_t> BuildArpRequest(const MacAddress& mac, const IpAddress& sender_ip,
                                     const IpAddress& target_ip) {
  return BuildArp(kArpOpRequest, kBroadcastMac, mac, mac, sender_ip, MacAddress{}, target_ip);
}

std::vector<uint8_t> BuildGratuitousArp(const MacAddress& mac, const IpAddress& ip,
                                        GratuitousArpForm form) {
  if (form == GratuitousArpForm::kRequest)
    return BuildArp(kArpOpRequest, kBroadcastMac, mac, mac, ip, MacAddress{}, ip);
  return BuildArp(kArpOpReply, kBroadcastMac, mac, mac, ip, mac, ip);
}

IpAddress SolicitedNodeAddress(const IpAddress& target) {
  IpAddress a;
  a.bytes[0] = 0xff;
  a.bytes[1] = 0x02;
  a.bytes[11] = 0x01;
  a.bytes[12] = 0xff;
  std::copy(target.bytes.begin() + 13, target.bytes.end(), a.bytes.begin() + 13);
  return a;
}

MacAddress Ipv6MulticastMac(const IpAddress& group) {
  return {0x33, 0x33, group.bytes[12], group.bytes[13], group.bytes[14], group.bytes[15]};
}

std::vector<uint8_t> BuildNeighbourSolicitation(const MacAddress& mac, const IpAddress& src,
                                                const IpAddress& target) {
  std::vector<uint8_t> icmp(24, 0);
  icmp[0] = kIcmpv6NeighbourSolicitation;
  std::memcpy(icmp.data() + 8, target.bytes.data(), 16);
  AppendLinkAddrOption(&icmp, kOptSourceLinkAddr, mac);
  const IpAddress group = SolicitedNodeAddress(target);
  return BuildIcmpv6Frame(Ipv6MulticastMac(group), mac, src, group, std::move(icmp));
}

std::vector<uint8_t> BuildNeighbourAdvertisement(const MacAddress& eth_dst, const MacAddress& mac,
                                                 const IpAddress& src, const IpAddress& dst,
                                                 const IpAddress& target, NaFlags flags) {
  std::vector<uint8_t> icmp(24, 0);
  icmp[0] = kIcmpv6NeighbourAdvertisement;
  icmp[4] = static_cast<uint8_t>((flags.router ? 0x80 : 0) | (flags.solicited ? 0x40 : 0) |
                                 (flags.override_flag ? 0x20 : 0));
  std::memcpy(icmp.data() + 8, target.bytes.data(), 16);
  if (flags.include_tllao) AppendLinkAddrOption(&icmp, kOptTargetLinkAddr, mac);
  return BuildIcmpv6Frame(eth_dst, mac, src, dst, std::move(icmp));
}

std::vector<uint8_t> BuildUnsolicitedNeighbourAdvertisement(const MacAddress& mac,
                                                            const IpAddress& ip, bool router) {
  IpAddress all_nodes;
  all_nodes.bytes[0] = 0xff;
  all_nodes.bytes[1] = 0x02;
  all_nodes.bytes[15] = 0x01;
  NaFlags flags;
  flags.router = router;
  return BuildNeighbourAdvertisement(Ipv6MulticastMac(all_nodes), mac, ip, all_nodes, ip, flags);
}

}  // namespace ctsync

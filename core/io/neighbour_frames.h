// Wire formats of neighbour discovery: ARP (RFC 826) over Ethernet for IPv4 and ICMPv6
// Neighbour Solicitation / Advertisement (RFC 4861) for IPv6. Builders produce complete
// Ethernet frames; parsers validate untrusted frames as the kernel's arp_rcv/arp_process
// and ndisc_rcv do and return nullopt for anything they would drop.
// Stateless functions; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/types/span.h"
#include "core/net/ip_address.h"
#include "core/pipeline/topology.h"

namespace ctsync {

inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kArpOpRequest = 1;
inline constexpr uint16_t kArpOpReply = 2;
inline constexpr uint8_t kIcmpv6NeighbourSolicitation = 135;
inline constexpr uint8_t kIcmpv6NeighbourAdvertisement = 136;
inline constexpr MacAddress kBroadcastMac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

struct ArpMessage {
  MacAddress eth_dst{};
  MacAddress eth_src{};
  uint16_t op = 0;
  MacAddress sender_mac{};
  IpAddress sender_ip;
  MacAddress target_mac{};
  IpAddress target_ip;
};

// An untagged Ethernet/IPv4 ARP frame. nullopt: not ARP, not
// Ethernet/IPv4 ARP, truncated, an op other than request/reply, or a multicast/loopback
// address where arp_process would drop.
std::optional<ArpMessage> ParseArp(absl::Span<const uint8_t> frame);

struct NdMessage {
  MacAddress eth_src{};
  uint8_t type = 0;  // kIcmpv6NeighbourSolicitation or kIcmpv6NeighbourAdvertisement
  IpAddress src;
  IpAddress dst;
  IpAddress target;
  // Source (NS) or target (NA) link-layer address option.
  std::optional<MacAddress> lladdr;
  bool router = false, solicited = false, override_flag = false;  // NA flags
};

// An untagged IPv6 frame carrying NS or NA with no extension headers, hop limit 255,
// code 0, a correct checksum, a non-multicast target and well-formed options (RFC 4861
// 7.1.1 / 7.1.2; a DAD probe must go to a solicited-node group and carry no SLLAO).
std::optional<NdMessage> ParseNd(absl::Span<const uint8_t> frame);

// An ARP frame (42 bytes: software does not pad; the NIC does on real links).
std::vector<uint8_t> BuildArp(uint16_t op, const MacAddress& eth_dst, const MacAddress& eth_src,
                              const MacAddress& sender_mac, const IpAddress& sender_ip,
                              const MacAddress& target_mac, const IpAddress& target_ip);
// Who-has `target_ip`, broadcast, target MAC zero (arp_solicit).
std::vector<uint8_t> BuildArpRequest(const MacAddress& mac, const IpAddress& sender_ip,
                                     const IpAddress& target_ip);

// Gratuitous ARP for an address this node takes over (RFC 5944 4.6 / RFC 5227 announce):
// broadcast, sender and target IP both `ip`; the request form leaves the target MAC zero,
// the reply form repeats `mac` there. Peers that ignore one form usually honour the other.
enum class GratuitousArpForm { kRequest, kReply };
std::vector<uint8_t> BuildGratuitousArp(const MacAddress& mac, const IpAddress& ip,
                                        GratuitousArpForm form);

// ff02::1:ffXX:XXXX and its MAC 33:33:ff:XX:XX:XX.
IpAddress SolicitedNodeAddress(const IpAddress& target);
MacAddress Ipv6MulticastMac(const IpAddress& group);

// NS for `target` to its solicited-node group, with our MAC in an SLLAO.
std::vector<uint8_t> BuildNeighbourSolicitation(const MacAddress& mac, const IpAddress& src,
                                                const IpAddress& target);

struct NaFlags {
  bool router = false;
  bool solicited = false;
  bool override_flag = true;
  bool include_tllao = true;
};
std::vector<uint8_t> BuildNeighbourAdvertisement(const MacAddress& eth_dst, const MacAddress& mac,
                                                 const IpAddress& src, const IpAddress& dst,
                                                 const IpAddress& target, NaFlags flags);
// Unsolicited NA announcing `ip` at `mac` to all nodes (ff02::1): S=0, O=1, TLLAO.
std::vector<uint8_t> BuildUnsolicitedNeighbourAdvertisement(const MacAddress& mac,
                                                            const IpAddress& ip, bool router);

}  // namespace ctsync

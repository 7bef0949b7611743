// A fluent builder of complete Ethernet frames, for tests and for packets the engine
// generates itself (REJECT's RST and ICMP errors). Defaults give a valid IPv4 UDP frame
// between the corpus LAN endpoint and the firewall's LAN MAC; every checksum is correct
// unless a Corrupt*() switch says otherwise. A value type; not shared between threads.
//
//   std::vector<uint8_t> syn = PacketBuilder()
//       .Ipv4("192.0.2.10", "198.51.100.20").Tcp(40000, 80).TcpFlags(kTcpSyn).Seq(1000)
//       .Mss(1460).Build();
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/types/span.h"
#include "core/net/ip_address.h"
#include "core/packet/parsed_packet.h"

namespace ctsync {

class PacketBuilder {
 public:
  using Mac = std::array<uint8_t, 6>;

  PacketBuilder();

  // ---- L2 ----
  PacketBuilder& SrcMac(const Mac& mac);
  PacketBuilder& DstMac(const Mac& mac);
  // Adds an 802.1Q tag (outermost first). Tags beyond kMaxVlanTags are still written, so
  // tests can build hostile frames.
  PacketBuilder& Vlan(uint16_t vid);

  // ---- L3 ----
  // Address text that does not parse leaves the all-zero address (builder input is code,
  // not untrusted data; tests see the zero address in their assertions).
  PacketBuilder& Ipv4(std::string_view src, std::string_view dst);
  PacketBuilder& Ipv6(std::string_view src, std::string_view dst);
  PacketBuilder& Addresses(Family family, const IpAddress& src, const IpAddress& dst);
  PacketBuilder& Ttl(uint8_t ttl);  // also the IPv6 hop limit
  PacketBuilder& Tos(uint8_t tos);  // also the IPv6 traffic class
  PacketBuilder& IpId(uint16_t id);
  PacketBuilder& Df(bool df = true);
  PacketBuilder& FlowLabel(uint32_t label);
  // Raw IPv4 options (padded with EOL to a multiple of 4 bytes, at most 40).
  PacketBuilder& Ipv4Options(absl::Span<const uint8_t> options);
  // Appends an IPv6 extension header (hop-by-hop 0, routing 43, destination options 60)
  // with `body` after its two-byte next-header/length prefix, padded to a multiple of 8.
  PacketBuilder& Ipv6ExtHeader(uint8_t type, absl::Span<const uint8_t> body = {});

  // ---- L4 (the last call wins) ----
  PacketBuilder& Tcp(uint16_t sport, uint16_t dport);
  PacketBuilder& TcpFlags(uint8_t flags);
  PacketBuilder& Seq(uint32_t seq);
  PacketBuilder& Ack(uint32_t ack);
  PacketBuilder& Window(uint16_t window);
  PacketBuilder& Mss(uint16_t mss);
  PacketBuilder& WindowScale(uint8_t shift);
  PacketBuilder& SackPermitted();
  PacketBuilder& SackBlock(uint32_t left, uint32_t right);
  PacketBuilder& Timestamps(uint32_t ts_val, uint32_t ts_ecr);
  PacketBuilder& Udp(uint16_t sport, uint16_t dport);
  // coverage 0 = whole datagram.
  PacketBuilder& Udplite(uint16_t sport, uint16_t dport, uint16_t coverage = 0);
  // Echo request/reply: ICMP 8/0 for IPv4, ICMPv6 128/129 for IPv6 (chosen at Build()).
  PacketBuilder& IcmpEcho(bool request, uint16_t id, uint16_t seq);
  // Any ICMP/ICMPv6 message: `rest` is bytes 4-7 of the header (e.g. the MTU).
  PacketBuilder& Icmp(uint8_t type, uint8_t code, uint32_t rest = 0);
  // An ICMP/ICMPv6 error quoting `quoted_ip` (a bare IP datagram, already cut to the
  // length the sender would quote; see QuoteForIcmpError).
  PacketBuilder& IcmpError(uint8_t type, uint8_t code, absl::Span<const uint8_t> quoted_ip,
                           uint32_t rest = 0);
  // SCTP common header with a correct CRC32c (payload = chunks).
  PacketBuilder& Sctp(uint16_t sport, uint16_t dport, uint32_t vtag = 0);
  // Any other protocol: the payload follows the IP header directly.
  PacketBuilder& RawProto(uint8_t proto);

  PacketBuilder& Payload(absl::Span<const uint8_t> payload);
  PacketBuilder& Payload(std::string_view payload);

  PacketBuilder& CorruptL4Checksum(bool corrupt = true);
  PacketBuilder& CorruptIpChecksum(bool corrupt = true);

  std::vector<uint8_t> Build() const;    // Ethernet frame
  std::vector<uint8_t> BuildIp() const;  // the IP datagram alone

 private:
  enum class L4Kind : uint8_t { kTcp, kUdp, kUdplite, kIcmp, kIcmpEcho, kSctp, kRaw };

  std::vector<uint8_t> BuildL4() const;

  Mac src_mac_;
  Mac dst_mac_;
  std::vector<uint16_t> vlans_;
  Family family_ = Family::kIpv4;
  IpAddress src_;
  IpAddress dst_;
  uint8_t ttl_ = 64;
  uint8_t tos_ = 0;
  uint16_t ip_id_ = 1;
  bool df_ = false;
  uint32_t flow_label_ = 0;
  std::vector<uint8_t> ipv4_options_;
  struct ExtHeader {
    uint8_t type;
    std::vector<uint8_t> body;
  };
  std::vector<ExtHeader> ext_headers_;

  L4Kind l4_ = L4Kind::kUdp;
  uint8_t raw_proto_ = 0;
  uint16_t sport_ = 1024;
  uint16_t dport_ = 1024;
  uint32_t seq_ = 0;
  uint32_t ack_ = 0;
  uint16_t window_ = 65535;
  uint8_t tcp_flags_ = 0;
  TcpOptions tcp_options_;
  uint16_t udplite_coverage_ = 0;
  uint8_t icmp_type_ = 0;
  uint8_t icmp_code_ = 0;
  uint32_t icmp_rest_ = 0;
  bool echo_request_ = true;
  uint32_t sctp_vtag_ = 0;
  std::vector<uint8_t> payload_;
  bool corrupt_l4_ = false;
  bool corrupt_ip_ = false;
};

// What an ICMP error quotes of `ip_datagram`: IPv4 as much as fits in a 576-byte error
// (RFC 1812 4.3.2.3, what the kernel's icmp_send does), IPv6 as much as fits in 1280 bytes
// (RFC 4443 2.4(c)).
absl::Span<const uint8_t> QuoteForIcmpError(Family family, absl::Span<const uint8_t> ip_datagram);

}  // namespace ctsync

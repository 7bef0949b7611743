#include "core/packet/packet_builder.h"

#include <string>
#include <vector>

#include "core/conntrack/tuple.h"
#include "core/packet/checksum.h"
#include "core/packet/packet_parser.h"
#include "gtest/gtest.h"
#include "tests/core/packet/corpus_frames.h"

namespace ctsync {
namespace {

using testing_frames::FromHex;

constexpr PacketBuilder::Mac kWanPeerMac = {0x02, 0x00, 0x00, 0x00, 0x02, 0x02};
constexpr PacketBuilder::Mac kFwWanMac = {0x02, 0x00, 0x00, 0x00, 0x02, 0x01};

// Golden bytes: frames the corpus harness built with scapy, rebuilt here field by field.
struct GoldenCase {
  std::string name;
  std::vector<uint8_t> built;
  std::string corpus_hex;
};

std::vector<GoldenCase> GoldenCases() {
  const auto quoted = PacketBuilder()
                          .Ipv4("203.0.113.5", "198.51.100.20")
                          .Ttl(63)
                          .IpId(10)
                          .Udp(5000, 53)
                          .Payload("query-data")
                          .BuildIp();
  return {
      {"tcp_syn_v4", PacketBuilder().IpId(0x65).Tcp(40017, 80).TcpFlags(kTcpSyn).Seq(1000).Build(),
       "0200000001010200000001020800450000280065000040068e19c000020ac63364149c510050000003e8"
       "000000005002ffff23070000"},
      {"icmp_echo_request",
       PacketBuilder().IpId(10).IcmpEcho(true, 0x1234, 1).Payload("abcdefgh").Build(),
       "020000000101020000000102080045000024000a000040018e7dc000020ac633641408005435123400016162"
       "636465666768"},
      {"udp_query",
       PacketBuilder().IpId(10).Udp(5353, 53).Payload(std::string("\x12\x34query")).Build(),
       "020000000101020000000102080045000023000a000040118e6ec000020ac633641414e90035000f9c4312"
       "347175657279"},
      {"tcp_syn_v6",
       PacketBuilder()
           .Ipv6("2001:db8:1::10", "2001:db8:2::20")
           .Tcp(40090, 80)
           .TcpFlags(kTcpSyn)
           .Seq(1000)
           .Build(),
       "02000000010102000000010286dd600000000014064020010db800010000000000000000001020010db800"
       "02000000000000000000209c9a0050000003e8000000005002ffffb36b0000"},
      {"icmp_port_unreachable",
       PacketBuilder()
           .SrcMac(kWanPeerMac)
           .DstMac(kFwWanMac)
           .Ipv4("198.51.100.20", "203.0.113.5")
           .IpId(0x1e)
           .IcmpError(3, 3, quoted)
           .Build(),
       "020000000201020000000202080045000042001e000040011450c6336414cb0071050303636e0000000045"
       "000026000a00003f111570cb007105c63364141388003500125ce771756572792d64617461"},
  };
}

TEST(PacketBuilderTest, MatchesCorpusBytes) {
  for (const GoldenCase& c : GoldenCases()) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(c.built, FromHex(c.corpus_hex));
  }
}

struct RoundTripCase {
  std::string name;
  PacketBuilder builder;
  Family family;
  uint8_t proto;
};

TEST(PacketBuilderTest, RoundTripsThroughTheParser) {
  auto inner6 = PacketBuilder().Ipv6("2001:db8::1", "2001:db8::2").Udp(1, 2).BuildIp();
  std::vector<RoundTripCase> cases = {
      {"tcp4_all_options",
       PacketBuilder()
           .Tcp(1, 2)
           .Mss(536)
           .WindowScale(14)
           .SackPermitted()
           .SackBlock(1, 2)
           .SackBlock(3, 4)
           .SackBlock(5, 6),
       Family::kIpv4, kProtoTcp},
      {"udp6_vlan", PacketBuilder().Vlan(7).Ipv6("2001:db8::1", "2001:db8::2").Udp(1, 2),
       Family::kIpv6, kProtoUdp},
      {"icmp6_too_big",
       PacketBuilder().Ipv6("2001:db8::2", "2001:db8::1").IcmpError(2, 0, inner6, 1280),
       Family::kIpv6, kProtoIcmpv6},
      {"sctp6", PacketBuilder().Ipv6("2001:db8::1", "2001:db8::2").Sctp(9, 10), Family::kIpv6,
       kProtoSctp},
      {"raw_gre", PacketBuilder().RawProto(kProtoGre).Payload("g"), Family::kIpv4, kProtoGre},
  };
  for (RoundTripCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto frame = c.builder.Build();
    ParsedPacket p;
    ASSERT_TRUE(ParseEthernet(frame, &p).ok());
    EXPECT_EQ(p.family, c.family);
    EXPECT_EQ(p.proto, c.proto);
    EXPECT_TRUE(VerifyL4Checksum(p, frame));
    // BuildIp is the same datagram without L2.
    auto ip = c.builder.BuildIp();
    EXPECT_TRUE(std::equal(ip.begin(), ip.end(), frame.begin() + p.l3_offset));
  }
  ParsedPacket p;
  auto tcp = cases[0].builder.Build();
  ASSERT_TRUE(ParseEthernet(tcp, &p).ok());
  EXPECT_EQ(*p.tcp_options.mss, 536);
  EXPECT_EQ(*p.tcp_options.wscale, 14);
  EXPECT_EQ(p.tcp_options.sack_count, 3);
  EXPECT_EQ(p.tcp_options.sack[2].right, 6u);
  // mss 4 + sack-perm 2 + NOP,wscale 4 + NOP,NOP,SACK(3) 28 = 38, padded to 40.
  EXPECT_EQ(p.tcp_data_offset * 4, 60);
  // Timestamps on top no longer fit: the builder cuts at 40 bytes of options and the
  // parser stops at the cut option without failing the segment.
  auto crowded = PacketBuilder()
                     .Tcp(1, 2)
                     .Mss(536)
                     .WindowScale(14)
                     .SackPermitted()
                     .Timestamps(5, 6)
                     .SackBlock(1, 2)
                     .SackBlock(3, 4)
                     .SackBlock(5, 6)
                     .Build();
  ASSERT_TRUE(ParseEthernet(crowded, &p).ok());
  EXPECT_EQ(p.tcp_data_offset * 4, 60);
  EXPECT_TRUE(p.tcp_options.has_timestamps);
  EXPECT_EQ(p.tcp_options.sack_count, 0);
}

TEST(PacketBuilderTest, CorruptSwitches) {
  ParsedPacket p;
  auto bad_l4 = PacketBuilder().Tcp(1, 2).CorruptL4Checksum().Build();
  ASSERT_TRUE(ParseEthernet(bad_l4, &p).ok());
  EXPECT_FALSE(VerifyL4Checksum(p, bad_l4));
  auto bad_ip = PacketBuilder().Tcp(1, 2).CorruptIpChecksum().Build();
  ParseResult r = ParseEthernet(bad_ip, &p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), ParseError::kBadIpChecksum);
}

TEST(PacketBuilderTest, QuoteLimits) {
  std::vector<uint8_t> big(2000, 0x45);
  EXPECT_EQ(QuoteForIcmpError(Family::kIpv4, big).size(), 548u);
  EXPECT_EQ(QuoteForIcmpError(Family::kIpv6, big).size(), 1232u);
  std::vector<uint8_t> small(30, 0);
  EXPECT_EQ(QuoteForIcmpError(Family::kIpv4, small).size(), 30u);
}

}  // namespace
}  // namespace ctsync

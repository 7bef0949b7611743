#include "core/nat/nat_rewrite.h"

#include "core/packet/checksum.h"
#include "core/packet/packet_builder.h"
#include "core/packet/packet_parser.h"
#include "gtest/gtest.h"

namespace ctsync::nat {
namespace {

IpAddress Ip(const char* s) { return *IpAddress::Parse(s); }

struct ManipCase {
  const char* name;
  std::vector<uint8_t> frame;
  ManipType manip;
  const char* addr;
  uint16_t port;  // port or ICMP id
};

Tuple TargetFor(const ParsedPacket& p, ManipType manip, const IpAddress& addr, uint16_t port) {
  Tuple t;
  t.family = p.family;
  t.proto = p.proto;
  t.src = p.src;
  t.dst = p.dst;
  t.sport = p.sport;
  t.dport = p.dport;
  if (p.proto == kProtoIcmp || p.proto == kProtoIcmpv6) {
    t.sport = port;
    t.dport = 0;
  } else if (manip == ManipType::kSrc) {
    t.sport = port;
  } else {
    t.dport = port;
  }
  (manip == ManipType::kSrc ? t.src : t.dst) = addr;
  return t;
}

std::vector<ManipCase> Cases() {
  const uint8_t opts[] = {0x94, 0x04, 0x00, 0x00};  // router alert
  const uint8_t hbh[] = {0x01, 0x04, 0, 0, 0, 0};   // PadN
  return {
      {"tcp4_src", PacketBuilder().Tcp(1234, 80).Mss(1460).Payload("data").Build(), ManipType::kSrc,
       "203.0.113.5", 4321},
      {"tcp4_ipopts_dst", PacketBuilder().Ipv4Options(opts).Tcp(1234, 80).Build(), ManipType::kDst,
       "192.0.2.99", 8080},
      {"udp4_dst", PacketBuilder().Udp(53, 5353).Payload("odd").Build(), ManipType::kDst,
       "10.1.2.3", 1},
      {"udplite4_src", PacketBuilder().Udplite(1000, 2000, 8).Payload("lite!").Build(),
       ManipType::kSrc, "203.0.113.7", 1001},
      {"sctp4_src", PacketBuilder().Sctp(3000, 4000, 0xdeadbeef).Payload("chunkdat").Build(),
       ManipType::kSrc, "203.0.113.8", 3001},
      {"icmp4_echo", PacketBuilder().IcmpEcho(true, 5, 6).Payload("ping").Build(), ManipType::kSrc,
       "203.0.113.9", 999},
      {"tcp6_hbh_src",
       PacketBuilder()
           .Ipv6("2001:db8:1::10", "2001:db8:2::20")
           .Ipv6ExtHeader(0, hbh)
           .Tcp(1, 2)
           .Payload("x")
           .Build(),
       ManipType::kSrc, "2001:db8:2::1", 65535},
      {"udp6_dst",
       PacketBuilder().Ipv6("2001:db8:1::10", "2001:db8:2::20").Udp(1, 2).Payload("y").Build(),
       ManipType::kDst, "2001:db8:1::77", 53},
      {"icmp6_echo_dst",
       PacketBuilder().Ipv6("2001:db8:1::10", "2001:db8:2::20").IcmpEcho(false, 1, 2).Build(),
       ManipType::kDst, "2001:db8:1::55", 4242},
  };
}

TEST(ManipPacketTest, RewritesAndKeepsEveryChecksumValid) {
  for (ManipCase c : Cases()) {
    SCOPED_TRACE(c.name);
    ParsedPacket p;
    ASSERT_TRUE(ParseEthernet(c.frame, &p).ok());
    ASSERT_TRUE(VerifyL4Checksum(p, c.frame));
    const Tuple target = TargetFor(p, c.manip, Ip(c.addr), c.port);
    absl::Span<uint8_t> d(c.frame.data() + p.l3_offset, p.ip_total_len);
    ASSERT_TRUE(ManipPacket(d, 0, target, c.manip));
    ParsedPacket q;
    ASSERT_TRUE(ParseEthernet(c.frame, &q).ok());  // v4 header checksum is checked here
    EXPECT_EQ(c.manip == ManipType::kSrc ? q.src : q.dst, Ip(c.addr));
    if (p.proto == kProtoIcmp || p.proto == kProtoIcmpv6) {
      EXPECT_EQ(q.icmp_id, c.port);
    } else {
      EXPECT_EQ(c.manip == ManipType::kSrc ? q.sport : q.dport, c.port);
    }
    EXPECT_TRUE(VerifyL4Checksum(q, c.frame));
  }
}

// The L4 checksum an IPv4 TCP/UDP rewrite must leave: the pseudo-header address change,
// then the port change, each an RFC 1624 step; UDP keeps 0 ("none") and sends a computed
// 0 as 0xffff.
uint16_t TwoStepChecksum(uint16_t c, bool udp, uint32_t old_addr, uint32_t new_addr,
                         uint16_t old_port, uint16_t new_port) {
  if (udp && c == 0) return 0;
  const uint16_t r = ChecksumAdjust16(
      ChecksumAdjustAddress(c, Family::kIpv4, IpAddress::FromV4(old_addr),
                            IpAddress::FromV4(new_addr)),
      old_port, new_port);
  return udp && r == 0 ? 0xffff : r;
}

TEST(ManipPacketTest, Ipv4TcpUdpChecksumsMatchTheStepByStepUpdate) {
  uint64_t rng = 12345;
  auto next = [&rng] {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(rng >> 32);
  };
  int zero_results = 0;
  for (int i = 0; i < 4000; ++i) {
    const bool udp = i & 1;
    const ManipType manip = (i & 2) ? ManipType::kSrc : ManipType::kDst;
    PacketBuilder pb;
    pb.Addresses(Family::kIpv4, IpAddress::FromV4(next()), IpAddress::FromV4(next()));
    const uint16_t sport = static_cast<uint16_t>(next()), dport = static_cast<uint16_t>(next());
    if (udp) {
      pb.Udp(sport, dport);
    } else {
      pb.Tcp(sport, dport);
    }
    std::vector<uint8_t> f = pb.Payload("abc").Build();
    ParsedPacket p;
    ASSERT_TRUE(ParseEthernet(f, &p).ok());
    const size_t csum_at = p.l4_offset + (udp ? 6 : 16);
    const uint32_t new_addr = next();
    const uint16_t new_port = static_cast<uint16_t>(next());
    const uint32_t old_addr = (manip == ManipType::kSrc ? p.src : p.dst).v4();
    const uint16_t old_port = manip == ManipType::kSrc ? p.sport : p.dport;
    // Every 8th case: a checksum field whose update comes out as 0 (or UDP's "none").
    if (i % 8 < 2) {
      for (uint32_t c = 0; c <= 0xffff; ++c) {
        const uint16_t r =
            ChecksumAdjust16(ChecksumAdjustAddress(static_cast<uint16_t>(c), Family::kIpv4,
                                                   IpAddress::FromV4(old_addr),
                                                   IpAddress::FromV4(new_addr)),
                             old_port, new_port);
        if (r == 0) {
          StoreBe16(f.data() + csum_at, static_cast<uint16_t>(c));
          break;
        }
      }
    } else if (udp && i % 8 == 3) {
      StoreBe16(f.data() + csum_at, 0);
    }
    const uint16_t before = LoadBe16(f.data() + csum_at);
    const uint16_t want = TwoStepChecksum(before, udp, old_addr, new_addr, old_port, new_port);
    zero_results += want == 0;
    const Tuple target = TargetFor(p, manip, IpAddress::FromV4(new_addr), new_port);
    ASSERT_TRUE(ManipPacket(absl::Span<uint8_t>(f.data() + p.l3_offset, p.ip_total_len), 0,
                            target, manip));
    ASSERT_EQ(LoadBe16(f.data() + csum_at), want) << i;
    ParsedPacket q;
    ASSERT_TRUE(ParseEthernet(f, &q).ok());  // the IPv4 header checksum is checked here
    EXPECT_EQ((manip == ManipType::kSrc ? q.src : q.dst).v4(), new_addr);
    EXPECT_EQ(manip == ManipType::kSrc ? q.sport : q.dport, new_port);
  }
  EXPECT_GT(zero_results, 100);  // TCP 0 results and UDP "none" were exercised
}

TEST(ManipPacketTest, TooShortForTheL4HeaderFails) {
  std::vector<uint8_t> f = PacketBuilder().Tcp(1, 2).Build();
  ParsedPacket p;
  ASSERT_TRUE(ParseEthernet(f, &p).ok());
  const Tuple t = TargetFor(p, ManipType::kSrc, Ip("203.0.113.5"), 9);
  // Only the IP header and 4 bytes of TCP.
  EXPECT_FALSE(ManipPacket(absl::Span<uint8_t>(f.data() + 14, 24), 0, t, ManipType::kSrc));
  EXPECT_FALSE(ManipPacket(absl::Span<uint8_t>(f.data() + 14, 10), 0, t, ManipType::kSrc));
}

TEST(ManipPacketTest, UnknownProtocolChangesOnlyTheAddress) {
  std::vector<uint8_t> f = PacketBuilder().RawProto(47).Payload("greeeeee").Build();
  const std::vector<uint8_t> before = f;
  ParsedPacket p;
  ASSERT_TRUE(ParseEthernet(f, &p).ok());
  Tuple t = TargetFor(p, ManipType::kDst, Ip("192.0.2.200"), 0);
  ASSERT_TRUE(
      ManipPacket(absl::Span<uint8_t>(f.data() + 14, p.ip_total_len), 0, t, ManipType::kDst));
  EXPECT_TRUE(std::equal(f.begin() + 34, f.end(), before.begin() + 34));
  ParsedPacket q;
  ASSERT_TRUE(ParseEthernet(f, &q).ok());
  EXPECT_EQ(q.dst, Ip("192.0.2.200"));
}

TEST(SkipIpv6ExtHeadersTest, WalksToTheUpperLayerAndStopsAtLaterFragments) {
  const uint8_t hbh[] = {0x01, 0x04, 0, 0, 0, 0};
  std::vector<uint8_t> f = PacketBuilder()
                               .Ipv6("2001:db8::1", "2001:db8::2")
                               .Ipv6ExtHeader(0, hbh)
                               .Ipv6ExtHeader(60, hbh)
                               .Udp(1, 2)
                               .Build();
  absl::Span<const uint8_t> d(f.data() + 14, f.size() - 14);
  uint8_t nh = d[6];
  uint16_t frag = 7;
  EXPECT_EQ(SkipIpv6ExtHeaders(d, 40, &nh, &frag), 56);
  EXPECT_EQ(nh, kProtoUdp);
  EXPECT_EQ(frag, 0);
  nh = 59;
  EXPECT_EQ(SkipIpv6ExtHeaders(d, 40, &nh, &frag), -1);
  nh = 0;
  EXPECT_EQ(SkipIpv6ExtHeaders(d.subspan(0, 41), 40, &nh, &frag), -1);
}

TEST(IcmpReplyTranslationTest, UnchangedWhenTheFlowHasNoNatForThisHook) {
  std::vector<uint8_t> inner =
      PacketBuilder().Ipv4("192.0.2.10", "198.51.100.20").Udp(1, 2).BuildIp();
  std::vector<uint8_t> f =
      PacketBuilder().Ipv4("198.51.100.20", "192.0.2.10").IcmpError(3, 3, inner).Build();
  Flow flow;
  flow.tuple[0] = {Ip("192.0.2.10"), Ip("198.51.100.20"), 1, 2, Family::kIpv4, kProtoUdp};
  flow.tuple[1] = {Ip("198.51.100.20"), Ip("203.0.113.5"), 2, 1, Family::kIpv4, kProtoUdp};
  flow.status = kIpsSrcNat | kIpsNatDoneMask;
  ParsedPacket p;
  ASSERT_TRUE(ParseEthernet(f, &p).ok());
  absl::Span<uint8_t> d(f.data() + 14, p.ip_total_len);
  // Reply direction: SRC_NAT is undone by the DST manip (PREROUTING), not by POSTROUTING.
  EXPECT_EQ(IcmpReplyTranslation(d, 20, flow, Direction::kReply, ManipType::kSrc),
            IcmpTranslateResult::kUnchanged);
  EXPECT_EQ(IcmpReplyTranslation(d, 20, flow, Direction::kReply, ManipType::kDst),
            IcmpTranslateResult::kTranslated);
  EXPECT_EQ(IcmpReplyTranslation(d.subspan(0, 40), 20, flow, Direction::kReply, ManipType::kDst),
            IcmpTranslateResult::kTruncated);
  // A redirect for a NATed flow is refused.
  std::vector<uint8_t> r =
      PacketBuilder().Ipv4("198.51.100.20", "192.0.2.10").IcmpError(5, 1, inner).Build();
  absl::Span<uint8_t> rd(r.data() + 14, r.size() - 14);
  EXPECT_EQ(IcmpReplyTranslation(rd, 20, flow, Direction::kReply, ManipType::kDst),
            IcmpTranslateResult::kRedirect);
}

}  // namespace
}  // namespace ctsync::nat

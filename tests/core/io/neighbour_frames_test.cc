#include "core/io/neighbour_frames.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/core/io/test_frames.h"

namespace ctsync {
namespace {

using io_test::Hex;
using io_test::Ip;
using io_test::Mac;
using io_test::ToHex;

const MacAddress kFwMac = {0x02, 0, 0, 0, 0x01, 0x01};
const MacAddress kHostMac = {0x02, 0, 0, 0, 0x01, 0x02};

// Golden frames: ARP laid out by hand from RFC 826; the ICMPv6 ones with checksums computed
// by an independent one's-complement sum (Python), not by core/packet/checksum.
constexpr char kArpRequestHex[] =
    "ffffffffffff 020000000101 0806 0001 0800 06 04 0001"
    "020000000101 c0000201 000000000000 c000020a";
constexpr char kNsHex[] =
    "3333ff000010 020000000101 86dd 60000000 0020 3a ff"
    "20010db8000100000000000000000001 ff0200000000000000000001ff000010"
    "87 00 1b09 00000000 20010db8000100000000000000000010 0101 020000000101";
constexpr char kNaHex[] =
    "020000000102 020000000101 86dd 60000000 0018 3a ff"
    "20010db8000100000000000000000001 20010db8000100000000000000000010"
    "88 00 2e6c c0000000 20010db8000100000000000000000001";

TEST(NeighbourFramesTest, ArpRequestMatchesGoldenBytes) {
  EXPECT_EQ(ToHex(BuildArpRequest(kFwMac, Ip("192.0.2.1"), Ip("192.0.2.10"))),
            ToHex(Hex(kArpRequestHex)));
}

TEST(NeighbourFramesTest, GratuitousArpForms) {
  const auto req = BuildGratuitousArp(kFwMac, Ip("203.0.113.5"), GratuitousArpForm::kRequest);
  EXPECT_EQ(ToHex(req), ToHex(Hex("ffffffffffff 020000000101 0806 0001 0800 0604 0001"
                                  "020000000101 cb007105 000000000000 cb007105")));
  const auto rep = BuildGratuitousArp(kFwMac, Ip("203.0.113.5"), GratuitousArpForm::kReply);
  EXPECT_EQ(ToHex(rep), ToHex(Hex("ffffffffffff 020000000101 0806 0001 0800 0604 0002"
                                  "020000000101 cb007105 020000000101 cb007105")));
}

TEST(NeighbourFramesTest, ParseArpReadsEveryField) {
  auto m = ParseArp(Hex(kArpRequestHex));
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->op, kArpOpRequest);
  EXPECT_EQ(m->eth_dst, kBroadcastMac);
  EXPECT_EQ(m->eth_src, kFwMac);
  EXPECT_EQ(m->sender_mac, kFwMac);
  EXPECT_EQ(m->sender_ip, Ip("192.0.2.1"));
  EXPECT_EQ(m->target_mac, MacAddress{});
  EXPECT_EQ(m->target_ip, Ip("192.0.2.10"));
}

TEST(NeighbourFramesTest, ParseArpRejectsWhatArpRcvDrops) {
  struct Case {
    const char* name;
    int offset;  // byte to overwrite, -1: truncate instead
    uint8_t value;
  };
  const Case cases[] = {
      {"truncated", -1, 0},
      {"ethertype not ARP", 13, 0x00},
      {"hardware type not Ethernet", 15, 0x06},
      {"protocol not IPv4", 17, 0xdd},
      {"hardware length 8", 18, 8},
      {"protocol length 16", 19, 16},
      {"op 3 (RARP)", 21, 3},
      {"multicast sender MAC", 22, 0x01},
      {"multicast sender IP", 28, 224},
      {"loopback target IP", 38, 127},
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> f = Hex(kArpRequestHex);
    if (c.offset < 0) {
      f.resize(41);
    } else {
      f[c.offset] = c.value;
    }
    EXPECT_FALSE(ParseArp(f).has_value()) << c.name;
  }
}

TEST(NeighbourFramesTest, SolicitedNodeGroup) {
  const IpAddress g = SolicitedNodeAddress(Ip("2001:db8:1::abcd:1234"));
  EXPECT_EQ(g.ToString(Family::kIpv6), "ff02::1:ffcd:1234");
  EXPECT_EQ(FormatMac(Ipv6MulticastMac(g)), "33:33:ff:cd:12:34");
}

TEST(NeighbourFramesTest, NeighbourSolicitationMatchesGoldenBytes) {
  EXPECT_EQ(ToHex(BuildNeighbourSolicitation(kFwMac, Ip("2001:db8:1::1"), Ip("2001:db8:1::10"))),
            ToHex(Hex(kNsHex)));
}

TEST(NeighbourFramesTest, NeighbourAdvertisementMatchesGoldenBytes) {
  NaFlags flags;
  flags.router = true;
  flags.solicited = true;
  flags.override_flag = false;
  flags.include_tllao = false;
  EXPECT_EQ(ToHex(BuildNeighbourAdvertisement(kHostMac, kFwMac, Ip("2001:db8:1::1"),
                                              Ip("2001:db8:1::10"), Ip("2001:db8:1::1"), flags)),
            ToHex(Hex(kNaHex)));
}

TEST(NeighbourFramesTest, ParseNdReadsSolicitationAndAdvertisement) {
  auto ns = ParseNd(Hex(kNsHex));
  ASSERT_TRUE(ns.has_value());
  EXPECT_EQ(ns->type, kIcmpv6NeighbourSolicitation);
  EXPECT_EQ(ns->src, Ip("2001:db8:1::1"));
  EXPECT_EQ(ns->target, Ip("2001:db8:1::10"));
  ASSERT_TRUE(ns->lladdr.has_value());
  EXPECT_EQ(*ns->lladdr, kFwMac);

  auto na = ParseNd(Hex(kNaHex));
  ASSERT_TRUE(na.has_value());
  EXPECT_EQ(na->type, kIcmpv6NeighbourAdvertisement);
  EXPECT_TRUE(na->router);
  EXPECT_TRUE(na->solicited);
  EXPECT_FALSE(na->override_flag);
  EXPECT_FALSE(na->lladdr.has_value());

  auto una = ParseNd(BuildUnsolicitedNeighbourAdvertisement(kFwMac, Ip("2001:db8:2::5"), true));
  ASSERT_TRUE(una.has_value());
  EXPECT_EQ(una->dst.ToString(Family::kIpv6), "ff02::1");
  EXPECT_FALSE(una->solicited);
  EXPECT_TRUE(una->override_flag);
  ASSERT_TRUE(una->lladdr.has_value());
  EXPECT_EQ(*una->lladdr, kFwMac);
}

TEST(NeighbourFramesTest, ParseNdRejectsInvalidMessages) {
  constexpr size_t kIp = 14, kIcmp = 54;
  struct Case {
    const char* name;
    size_t offset;
    uint8_t value;
  };
  const Case cases[] = {
      {"hop limit 254", kIp + 7, 254},    {"code 1", kIcmp + 1, 1},
      {"bad checksum", kIcmp + 3, 0x0a},  {"multicast target", kIcmp + 8, 0xff},
      {"option length 0", kIcmp + 25, 0}, {"option past the end", kIcmp + 25, 2},
      {"next header UDP", kIp + 6, 17},
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> f = Hex(kNsHex);
    f[c.offset] = c.value;
    EXPECT_FALSE(ParseNd(f).has_value()) << c.name;
  }
  // A DAD probe (unspecified source) must not carry a source link-layer option.
  std::vector<uint8_t> dad = BuildNeighbourSolicitation(kFwMac, IpAddress{}, Ip("2001:db8:1::10"));
  EXPECT_FALSE(ParseNd(dad).has_value());
  // A solicited advertisement to a multicast group is invalid (RFC 4861 7.1.2).
  NaFlags flags;
  flags.solicited = true;
  EXPECT_FALSE(
      ParseNd(BuildNeighbourAdvertisement(kHostMac, kFwMac, Ip("2001:db8:1::1"),
                                          *IpAddress::Parse("ff02::1"), Ip("2001:db8:1::1"), flags))
          .has_value());
}

}  // namespace
}  // namespace ctsync

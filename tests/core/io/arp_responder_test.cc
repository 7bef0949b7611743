#include "core/io/arp_responder.h"

#include <vector>

#include "gtest/gtest.h"
#include "tests/core/io/test_frames.h"

namespace ctsync {
namespace {

using io_test::Hex;
using io_test::Ip;
using io_test::ToHex;

// Topology::OracleFirewall(): lan0 = 0 (02:00:00:00:01:01, 192.0.2.1, 2001:db8:1::1),
// wan0 = 1 (02:00:00:00:02:01, 198.51.100.1, 2001:db8:2::1).
constexpr int kLan = 0;
constexpr int kWan = 1;
const MacAddress kLanMac = {0x02, 0, 0, 0, 0x01, 0x01};
const MacAddress kWanMac = {0x02, 0, 0, 0, 0x02, 0x01};
const MacAddress kHostMac = {0x02, 0, 0, 0, 0x01, 0x02};
const MacAddress kOtherMac = {0x02, 0, 0, 0, 0x09, 0x09};

class ArpResponderTest : public ::testing::Test {
 protected:
  std::vector<uint8_t> Request(const char* sender, const char* target,
                               const MacAddress& eth_dst = kBroadcastMac) {
    return BuildArp(kArpOpRequest, eth_dst, kHostMac, kHostMac, Ip(sender), MacAddress{},
                    Ip(target));
  }

  Topology topology_ = Topology::OracleFirewall();
  ArpResponder responder_{topology_};
};

TEST_F(ArpResponderTest, AnswersRequestForOwnAddressWithGoldenReply) {
  NeighbourFrameResult r = responder_.Handle(kLan, Request("192.0.2.10", "192.0.2.1"));
  EXPECT_TRUE(r.consumed);
  // To the requester's hardware address, from and about lan0 (arp_process's arp_send_dst).
  EXPECT_EQ(ToHex(r.reply), ToHex(Hex("020000000102 020000000101 0806 0001 0800 0604 0002"
                                      "020000000101 c0000201 020000000102 c000020a")));
  ASSERT_TRUE(r.learned.has_value());
  EXPECT_EQ(r.learned->address, Ip("192.0.2.10"));
  EXPECT_EQ(r.learned->mac, kHostMac);
  EXPECT_TRUE(r.learned->may_create);
  EXPECT_EQ(responder_.counters().arp_requests_answered, 1u);
}

TEST_F(ArpResponderTest, TableOfRequests) {
  struct Case {
    const char* name;
    int interface;
    std::vector<uint8_t> frame;
    bool answered;
    bool learned;
    bool may_create;
  };
  const Case cases[] = {
      {"other host's address: refresh only", kLan, Request("192.0.2.10", "192.0.2.99"), false, true,
       false},
      {"own address asked on the wrong interface", kWan, Request("192.0.2.10", "192.0.2.1"), false,
       true, false},
      {"unicast to our MAC", kLan, Request("192.0.2.10", "192.0.2.1", kLanMac), true, true, true},
      {"unicast to another MAC", kLan, Request("192.0.2.10", "192.0.2.1", kOtherMac), false, false,
       false},
      {"probe from 0.0.0.0", kLan, Request("0.0.0.0", "192.0.2.1"), true, false, false},
      {"reply from a neighbour", kLan,
       BuildArp(kArpOpReply, kLanMac, kHostMac, kHostMac, Ip("192.0.2.10"), kLanMac,
                Ip("192.0.2.1")),
       false, true, false},
  };
  for (const Case& c : cases) {
    ArpResponder responder(topology_);
    NeighbourFrameResult r = responder.Handle(c.interface, c.frame);
    EXPECT_TRUE(r.consumed) << c.name;
    EXPECT_EQ(!r.reply.empty(), c.answered) << c.name;
    EXPECT_EQ(r.learned.has_value(), c.learned) << c.name;
    if (r.learned) {
      EXPECT_EQ(r.learned->may_create, c.may_create) << c.name;
    }
  }
}

TEST_F(ArpResponderTest, ProbeReplyCarriesTargetIpZero) {
  NeighbourFrameResult r = responder_.Handle(kLan, Request("0.0.0.0", "192.0.2.1"));
  auto m = ParseArp(r.reply);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->op, kArpOpReply);
  EXPECT_EQ(m->sender_ip, Ip("192.0.2.1"));
  EXPECT_TRUE(m->target_ip.IsZero());
  EXPECT_EQ(m->eth_dst, kHostMac);
}

TEST_F(ArpResponderTest, CountsMalformedAndPassesOtherFrames) {
  std::vector<uint8_t> bad = Request("192.0.2.10", "192.0.2.1");
  bad[21] = 9;  // op 9
  EXPECT_TRUE(responder_.Handle(kLan, bad).consumed);
  EXPECT_EQ(responder_.counters().arp_malformed, 1u);

  std::vector<uint8_t> ip_frame(60, 0);
  ip_frame[12] = 0x08;  // IPv4: the pipeline's business
  EXPECT_FALSE(responder_.Handle(kLan, ip_frame).consumed);
  EXPECT_FALSE(responder_.Handle(kLan, std::vector<uint8_t>(5, 0)).consumed);
  EXPECT_FALSE(responder_.Handle(7, Request("192.0.2.10", "192.0.2.1")).consumed);
}

TEST_F(ArpResponderTest, VirtualAddressAnsweredOnlyWhileHeldAndOnlyOnItsInterface) {
  auto ask = [&](int iface) {
    return !responder_.Handle(iface, Request("198.51.100.20", "203.0.113.5")).reply.empty();
  };
  EXPECT_FALSE(ask(kWan));
  EXPECT_TRUE(responder_.AddVirtualAddress(kWan, Family::kIpv4, Ip("203.0.113.5")));
  EXPECT_FALSE(responder_.AddVirtualAddress(kWan, Family::kIpv4, Ip("203.0.113.5")));
  EXPECT_FALSE(responder_.AddVirtualAddress(5, Family::kIpv4, Ip("203.0.113.5")));
  EXPECT_TRUE(ask(kWan));
  EXPECT_FALSE(ask(kLan));
  auto reply = ParseArp(responder_.Handle(kWan, Request("198.51.100.20", "203.0.113.5")).reply);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->sender_mac, kWanMac);
  EXPECT_EQ(reply->sender_ip, Ip("203.0.113.5"));
  EXPECT_TRUE(responder_.RemoveVirtualAddress(kWan, Family::kIpv4, Ip("203.0.113.5")));
  EXPECT_FALSE(responder_.RemoveVirtualAddress(kWan, Family::kIpv4, Ip("203.0.113.5")));
  EXPECT_FALSE(ask(kWan));
}

TEST_F(ArpResponderTest, StandbyTopologyAddressIsSilentUntilHeld) {
  responder_.SetStandbyAddresses({{kWan, Family::kIpv4, Ip("198.51.100.1")}});
  EXPECT_FALSE(responder_.Owns(kWan, Family::kIpv4, Ip("198.51.100.1")));
  EXPECT_TRUE(responder_.Owns(kLan, Family::kIpv4, Ip("192.0.2.1")));
  ASSERT_TRUE(responder_.AddVirtualAddress(kWan, Family::kIpv4, Ip("198.51.100.1")));
  EXPECT_TRUE(responder_.Owns(kWan, Family::kIpv4, Ip("198.51.100.1")));
}

TEST_F(ArpResponderTest, AnswersMulticastSolicitationWithOverrideAndTargetOption) {
  const auto ns = BuildNeighbourSolicitation(kHostMac, Ip("2001:db8:1::10"), Ip("2001:db8:1::1"));
  NeighbourFrameResult r = responder_.Handle(kLan, ns);
  ASSERT_TRUE(r.consumed);
  auto na = ParseNd(r.reply);
  ASSERT_TRUE(na.has_value());
  EXPECT_EQ(na->type, kIcmpv6NeighbourAdvertisement);
  EXPECT_EQ(na->src, Ip("2001:db8:1::1"));
  EXPECT_EQ(na->dst, Ip("2001:db8:1::10"));
  EXPECT_EQ(na->target, Ip("2001:db8:1::1"));
  EXPECT_TRUE(na->router);
  EXPECT_TRUE(na->solicited);
  EXPECT_TRUE(na->override_flag);
  ASSERT_TRUE(na->lladdr.has_value());
  EXPECT_EQ(*na->lladdr, kLanMac);
  EXPECT_EQ(std::vector<uint8_t>(r.reply.begin(), r.reply.begin() + 6),
            std::vector<uint8_t>(kHostMac.begin(), kHostMac.end()));
  ASSERT_TRUE(r.learned.has_value());
  EXPECT_EQ(r.learned->address, Ip("2001:db8:1::10"));
  EXPECT_TRUE(r.learned->may_create);
}

TEST_F(ArpResponderTest, UnicastSolicitationGetsBareAdvertisement) {
  auto ns = BuildNeighbourSolicitation(kHostMac, Ip("2001:db8:1::10"), Ip("2001:db8:1::1"));
  // A NUD probe: sent to our unicast address and MAC instead of the solicited-node group.
  const IpAddress dst = Ip("2001:db8:1::1");
  std::copy(dst.bytes.begin(), dst.bytes.end(), ns.begin() + 14 + 24);
  std::copy(kLanMac.begin(), kLanMac.end(), ns.begin());
  io_test::FixIcmpv6Checksum(ns);
  NeighbourFrameResult r = responder_.Handle(kLan, ns);
  auto na = ParseNd(r.reply);
  ASSERT_TRUE(na.has_value());
  EXPECT_TRUE(na->solicited);
  EXPECT_FALSE(na->override_flag);
  EXPECT_FALSE(na->lladdr.has_value());
}

TEST_F(ArpResponderTest, DuplicateAddressProbeIsAnsweredToAllNodes) {
  std::vector<uint8_t> dad = BuildNeighbourSolicitation(kHostMac, IpAddress{}, Ip("2001:db8:1::1"));
  // Strip the SLLAO (a DAD probe carries none): payload 32 -> 24 bytes.
  dad.resize(dad.size() - 8);
  dad[14 + 5] = 24;
  io_test::FixIcmpv6Checksum(dad);
  ASSERT_TRUE(ParseNd(dad).has_value());
  NeighbourFrameResult r = responder_.Handle(kLan, dad);
  auto na = ParseNd(r.reply);
  ASSERT_TRUE(na.has_value());
  EXPECT_EQ(na->dst.ToString(Family::kIpv6), "ff02::1");
  EXPECT_FALSE(na->solicited);
  EXPECT_FALSE(r.learned.has_value());
}

TEST_F(ArpResponderTest, SolicitationForOthersAndAdvertisements) {
  auto ns = BuildNeighbourSolicitation(kHostMac, Ip("2001:db8:1::10"), Ip("2001:db8:1::77"));
  NeighbourFrameResult r = responder_.Handle(kLan, ns);
  EXPECT_TRUE(r.consumed);
  EXPECT_TRUE(r.reply.empty());
  EXPECT_EQ(responder_.counters().ns_not_ours, 1u);

  auto na = BuildUnsolicitedNeighbourAdvertisement(kHostMac, Ip("2001:db8:1::10"), false);
  r = responder_.Handle(kLan, na);
  EXPECT_TRUE(r.reply.empty());
  ASSERT_TRUE(r.learned.has_value());
  EXPECT_EQ(r.learned->address, Ip("2001:db8:1::10"));
  EXPECT_EQ(r.learned->mac, kHostMac);
  EXPECT_FALSE(r.learned->may_create);

  na[14 + 7] = 64;  // hop limit: forged from off-link
  EXPECT_TRUE(responder_.Handle(kLan, na).consumed);
  EXPECT_EQ(responder_.counters().nd_malformed, 1u);
}

TEST_F(ArpResponderTest, AnnouncementsForVirtualAddresses) {
  auto v4 = responder_.Announce(kWan, Family::kIpv4, Ip("203.0.113.5"));
  ASSERT_EQ(v4.size(), 2u);
  EXPECT_EQ(ParseArp(v4[0])->op, kArpOpRequest);
  EXPECT_EQ(ParseArp(v4[1])->op, kArpOpReply);
  for (const auto& f : v4) {
    EXPECT_EQ(ParseArp(f)->sender_ip, Ip("203.0.113.5"));
    EXPECT_EQ(ParseArp(f)->target_ip, Ip("203.0.113.5"));
    EXPECT_EQ(ParseArp(f)->sender_mac, kWanMac);
  }
  auto v6 = responder_.Announce(kWan, Family::kIpv6, Ip("2001:db8:2::5"));
  ASSERT_EQ(v6.size(), 1u);
  auto na = ParseNd(v6[0]);
  ASSERT_TRUE(na.has_value());
  EXPECT_EQ(na->target, Ip("2001:db8:2::5"));
  EXPECT_EQ(*na->lladdr, kWanMac);
  EXPECT_TRUE(responder_.Announce(9, Family::kIpv4, Ip("203.0.113.5")).empty());
}

}  // namespace
}  // namespace ctsync

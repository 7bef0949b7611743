#include "core/io/neighbour_resolver.h"

#include <vector>

#include "gtest/gtest.h"
#include "tests/core/io/test_frames.h"

namespace ctsync {
namespace {

using io_test::Ip;

constexpr int kLan = 0;
constexpr int kWan = 1;
const MacAddress kLanMac = {0x02, 0, 0, 0, 0x01, 0x01};
const MacAddress kHostMac = {0x02, 0, 0, 0, 0x01, 0x50};
constexpr Nanos kSecond = kNanosPerSecond;

// A frame to forward: 64 bytes whose first six (the destination MAC) the resolver fills.
std::vector<uint8_t> Frame(uint8_t tag) {
  std::vector<uint8_t> f(64, 0);
  f[63] = tag;
  return f;
}

MacAddress DstMac(const Transmit& t) {
  MacAddress m;
  std::copy(t.frame.begin(), t.frame.begin() + 6, m.begin());
  return m;
}

LearnedNeighbour Answer(const char* ip, bool may_create = false) {
  Family f;
  IpAddress a = *IpAddress::Parse(ip, &f);
  return {f, a, kHostMac, may_create};
}

class NeighbourResolverTest : public ::testing::Test {
 protected:
  Topology topology_ = Topology::OracleFirewall();
  NeighbourResolver resolver_{topology_};
  std::vector<Transmit> out_;
};

TEST_F(NeighbourResolverTest, StaticNeighbourIsUsedAtOnce) {
  resolver_.Submit(Family::kIpv4, kLan, Ip("192.0.2.10"), Frame(1), 0, &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(FormatMac(DstMac(out_[0])), "02:00:00:00:01:02");
  EXPECT_EQ(resolver_.size(), 0u);
}

TEST_F(NeighbourResolverTest, HoldsUntilTheReplyThenReleasesInOrder) {
  resolver_.Submit(Family::kIpv4, kLan, Ip("192.0.2.50"), Frame(1), 0, &out_);
  resolver_.Submit(Family::kIpv4, kLan, Ip("192.0.2.50"), Frame(2), 0, &out_);
  ASSERT_EQ(out_.size(), 1u);  // one ARP request, no frame
  auto req = ParseArp(out_[0].frame);
  ASSERT_TRUE(req.has_value());
  EXPECT_EQ(out_[0].interface, kLan);
  EXPECT_EQ(req->op, kArpOpRequest);
  EXPECT_EQ(req->eth_dst, kBroadcastMac);
  EXPECT_EQ(req->sender_mac, kLanMac);
  EXPECT_EQ(req->sender_ip, Ip("192.0.2.1"));
  EXPECT_EQ(req->target_ip, Ip("192.0.2.50"));
  EXPECT_EQ(resolver_.counters().frames_held, 2u);
  EXPECT_FALSE(resolver_.Lookup(Family::kIpv4, kLan, Ip("192.0.2.50")).has_value());

  out_.clear();
  resolver_.Learn(kLan, Answer("192.0.2.50"), kSecond / 2, &out_);
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[0].frame[63], 1);
  EXPECT_EQ(out_[1].frame[63], 2);
  EXPECT_EQ(DstMac(out_[0]), kHostMac);
  EXPECT_EQ(resolver_.counters().resolved, 1u);
  EXPECT_EQ(resolver_.counters().frames_released, 2u);
  EXPECT_EQ(*resolver_.Lookup(Family::kIpv4, kLan, Ip("192.0.2.50")), kHostMac);

  out_.clear();
  resolver_.Submit(Family::kIpv4, kLan, Ip("192.0.2.50"), Frame(3), kSecond, &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].frame[63], 3);
}

TEST_F(NeighbourResolverTest, QueueKeepsTheNewestFramesAndCountsTheRest) {
  for (uint8_t i = 1; i <= 5; ++i)
    resolver_.Submit(Family::kIpv4, kLan, Ip("192.0.2.50"), Frame(i), 0, &out_);
  EXPECT_EQ(out_.size(), 1u);
  EXPECT_EQ(resolver_.counters().drops_queue_full, 2u);
  out_.clear();
  resolver_.Learn(kLan, Answer("192.0.2.50"), 1, &out_);
  ASSERT_EQ(out_.size(), 3u);
  EXPECT_EQ(out_[0].frame[63], 3);
  EXPECT_EQ(out_[2].frame[63], 5);
}

TEST_F(NeighbourResolverTest, RetriesThenFailsAndDropsHeldFrames) {
  resolver_.Submit(Family::kIpv4, kLan, Ip("192.0.2.50"), Frame(1), 0, &out_);
  resolver_.Submit(Family::kIpv4, kLan, Ip("192.0.2.50"), Frame(2), 0, &out_);
  resolver_.Tick(kSecond - 1, &out_);
  EXPECT_EQ(resolver_.counters().solicitations_sent, 1u);
  resolver_.Tick(kSecond, &out_);
  resolver_.Tick(2 * kSecond, &out_);
  EXPECT_EQ(resolver_.counters().solicitations_sent, 3u);
  EXPECT_EQ(resolver_.size(), 1u);
  resolver_.Tick(3 * kSecond, &out_);
  EXPECT_EQ(resolver_.counters().solicitations_sent, 3u);  // mcast_solicit = 3
  EXPECT_EQ(resolver_.counters().resolution_failures, 1u);
  EXPECT_EQ(resolver_.counters().drops_unresolved, 2u);
  EXPECT_EQ(resolver_.size(), 0u);
  for (const auto& t : out_) EXPECT_TRUE(ParseArp(t.frame).has_value());  // no data frame

  // A late reply creates nothing: the kernel does not create entries from replies.
  out_.clear();
  resolver_.Learn(kLan, Answer("192.0.2.50"), 4 * kSecond, &out_);
  EXPECT_TRUE(out_.empty());
  EXPECT_EQ(resolver_.size(), 0u);
}

TEST_F(NeighbourResolverTest, RequestsAddressedToUsCreateEntries) {
  resolver_.Learn(kLan, Answer("192.0.2.60", /*may_create=*/true), 0, &out_);
  EXPECT_EQ(resolver_.counters().learned, 1u);
  resolver_.Submit(Family::kIpv4, kLan, Ip("192.0.2.60"), Frame(1), 1, &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(DstMac(out_[0]), kHostMac);
  EXPECT_EQ(resolver_.counters().solicitations_sent, 0u);
}

TEST_F(NeighbourResolverTest, OldEntryIsRefreshedByUnicastThenForgotten) {
  resolver_.Learn(kLan, Answer("192.0.2.60", true), 0, &out_);
  resolver_.Submit(Family::kIpv4, kLan, Ip("192.0.2.60"), Frame(1), 31 * kSecond, &out_);
  ASSERT_EQ(out_.size(), 2u);  // refresh request + the frame, sent with the old MAC
  auto probe = ParseArp(out_[0].frame);
  ASSERT_TRUE(probe.has_value());
  EXPECT_EQ(probe->eth_dst, kHostMac);
  EXPECT_EQ(DstMac(out_[1]), kHostMac);
  // At most one refresh per retransmit interval.
  resolver_.Submit(Family::kIpv4, kLan, Ip("192.0.2.60"), Frame(2), 31 * kSecond + 1, &out_);
  EXPECT_EQ(resolver_.counters().solicitations_sent, 1u);
  resolver_.Tick(60 * kSecond, &out_);
  EXPECT_EQ(resolver_.counters().expired, 1u);
  EXPECT_EQ(resolver_.size(), 0u);
}

TEST_F(NeighbourResolverTest, Ipv6SolicitsTheSolicitedNodeGroup) {
  resolver_.Submit(Family::kIpv6, kWan, Ip("2001:db8:2::50"), Frame(1), 0, &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].interface, kWan);
  auto ns = ParseNd(out_[0].frame);
  ASSERT_TRUE(ns.has_value());
  EXPECT_EQ(ns->type, kIcmpv6NeighbourSolicitation);
  EXPECT_EQ(ns->src, Ip("2001:db8:2::1"));
  EXPECT_EQ(ns->dst.ToString(Family::kIpv6), "ff02::1:ff00:50");
  EXPECT_EQ(ns->target, Ip("2001:db8:2::50"));
  out_.clear();
  resolver_.Learn(kWan, Answer("2001:db8:2::50"), 1, &out_);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(DstMac(out_[0]), kHostMac);
}

TEST_F(NeighbourResolverTest, BoundsAndMissingSourceAreCountedDrops) {
  NeighbourResolverOptions o;
  o.max_entries = 1;
  NeighbourResolver small(topology_, o);
  small.Submit(Family::kIpv4, kLan, Ip("192.0.2.50"), Frame(1), 0, &out_);
  small.Submit(Family::kIpv4, kLan, Ip("192.0.2.51"), Frame(2), 0, &out_);
  EXPECT_EQ(small.counters().drops_table_full, 1u);
  EXPECT_EQ(small.size(), 1u);

  Topology t;
  Interface bare;
  bare.name = "bare0";
  bare.mac = kLanMac;
  ASSERT_TRUE(t.AddInterface(bare).ok());
  NeighbourResolver no_addr(t);
  no_addr.Submit(Family::kIpv4, 0, Ip("192.0.2.50"), Frame(1), 0, &out_);
  EXPECT_EQ(no_addr.counters().drops_no_source, 1u);
  EXPECT_EQ(no_addr.size(), 0u);
}

}  // namespace
}  // namespace ctsync

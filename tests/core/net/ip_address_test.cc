#include "core/net/ip_address.h"

#include "gtest/gtest.h"

namespace ctsync {
namespace {

TEST(IpAddressTest, ParsesAndFormatsBothFamilies) {
  Family f;
  auto a = IpAddress::Parse("192.0.2.10", &f);
  ASSERT_TRUE(a);
  EXPECT_EQ(f, Family::kIpv4);
  EXPECT_EQ(a->v4(), 0xc000020au);
  EXPECT_EQ(a->ToString(f), "192.0.2.10");
  auto b = IpAddress::Parse("2001:db8:1:0:0:0:0:10", &f);
  ASSERT_TRUE(b);
  EXPECT_EQ(f, Family::kIpv6);
  EXPECT_EQ(b->ToString(f), "2001:db8:1::10");
  EXPECT_FALSE(IpAddress::Parse("192.0.2.256"));
  EXPECT_FALSE(IpAddress::Parse("not-an-address"));
}

TEST(IpPrefixTest, ContainsByMaskAndAcceptsDottedMask) {
  auto p = IpPrefix::Parse("192.0.2.77/24");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->length, 24);
  EXPECT_TRUE(p->Contains(Family::kIpv4, *IpAddress::Parse("192.0.2.1")));
  EXPECT_FALSE(p->Contains(Family::kIpv4, *IpAddress::Parse("192.0.3.1")));
  EXPECT_FALSE(p->Contains(Family::kIpv6, *IpAddress::Parse("192.0.2.1")));
  auto m = IpPrefix::Parse("198.51.100.0/255.255.255.128");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->length, 25);
  EXPECT_FALSE(IpPrefix::Parse("198.51.100.0/255.0.255.0"));
  EXPECT_FALSE(IpPrefix::Parse("192.0.2.0/33"));
  auto v6 = IpPrefix::Parse("2001:db8::/32");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->Contains(Family::kIpv6, *IpAddress::Parse("2001:db8:2::20")));
  EXPECT_FALSE(v6->Contains(Family::kIpv6, *IpAddress::Parse("2001:db9::1")));
  auto host = IpPrefix::Parse("203.0.113.5");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->length, 32);
}

}  // namespace
}  // namespace ctsync

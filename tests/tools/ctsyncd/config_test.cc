#include "tools/ctsyncd/config.h"

#include "gtest/gtest.h"

namespace ctsync::daemon {
namespace {

constexpr const char* kGood = R"(# a firewall node
node-id 1
control-socket /tmp/ctsyncd-test.sock
interface lan0 mac 02:00:00:00:01:01 address 192.0.2.1/24 address 2001:db8:1::1/64
interface wan0 mac auto address 198.51.100.2/24 mtu 1500
route default via 198.51.100.254 dev wan0
neighbour 192.0.2.10 lladdr 02:00:00:00:01:02 dev lan0
vip 203.0.113.10/24 dev wan0
forwarding ipv6 off
rules /etc/ctsync/rules.v4
sysctl net.netfilter.nf_conntrack_tcp_loose 0
sync-key-file /etc/ctsync/sync.key
sync-link udp local 192.0.2.253 port 3780 peer 192.0.2.254
sync-link multicast group 225.0.0.50 interface sync0
storage-dir /var/lib/ctsync
storage-sync every-batch
snapshot-interval 300
start-state active
)";

TEST(ConfigTest, ParsesEveryStatement) {
  auto c = ParseConfig(kGood, "test.conf");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->node_id, 1u);
  ASSERT_EQ(c->interfaces.size(), 2u);
  EXPECT_TRUE(c->interfaces[0].mac.has_value());
  EXPECT_FALSE(c->interfaces[1].mac.has_value());
  EXPECT_EQ(c->interfaces[0].addresses.size(), 2u);
  EXPECT_EQ(c->interfaces[0].addresses[1].prefix_len, 64);
  ASSERT_EQ(c->vips.size(), 1u);
  EXPECT_EQ(c->vips[0].dev, "wan0");
  EXPECT_FALSE(c->ipv6_forwarding);
  EXPECT_TRUE(c->ipv4_forwarding);
  EXPECT_EQ(c->sysctls.at("net.netfilter.nf_conntrack_tcp_loose"), 0);
  ASSERT_EQ(c->sync_links.size(), 2u);
  EXPECT_EQ(c->sync_links[0].peers.size(), 1u);
  EXPECT_EQ(c->sync_links[1].kind, SyncLinkConfig::Kind::kUdpMulticast);
  EXPECT_EQ(c->storage_sync, "every-batch");
  EXPECT_EQ(c->start_state, "active");
}

TEST(ConfigTest, ErrorsNameFileLineAndWord) {
  struct Case {
    std::string text;
    std::string want;
  } cases[] = {
      {"node-id 1\ninterface lan0\nintreface wan0\n", "x.conf:3: unknown keyword 'intreface'"},
      {"node-id 0\n", "x.conf:1: bad node id '0'"},
      {"node-id 1\ninterface lan0 mac 02:00:00:zz:01:01\n", "x.conf:2: bad MAC '02:00:00:zz:01:01'"},
      {"node-id 1\ninterface lan0 colour blue\n", "x.conf:2: unknown word 'colour' in 'interface'"},
      {"node-id 1\ninterface lan0 address 192.0.2.1/33\n", "x.conf:2: bad prefix length"},
      {"node-id 1\ninterface lan0\nvip 203.0.113.10 dev wan0\n", "vip on unknown interface 'wan0'"},
      {"node-id 1\ninterface lan0\nsync-link udp port 3780\n", "x.conf:3: link needs at least one peer"},
      {"node-id 1\ninterface lan0\nsync-mode sometimes\n", "x.conf:3: unknown sync mode 'sometimes'"},
      {"interface lan0\n", "node-id is required"},
      {"node-id 1\n", "no interface defined"},
      {"node-id 1\ninterface ../x\n", "x.conf:2: bad interface name '../x'"},
      {"node-id 1\ninterface lan0\nsysctl net.netfilter.nf_conntrack_max lots\n", "x.conf:3: bad value 'lots'"},
  };
  for (const Case& c : cases) {
    auto r = ParseConfig(c.text, "x.conf");
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.status().message().find(c.want), std::string_view::npos)
        << "got: " << r.status().message() << "\nwant: " << c.want;
  }
}

}  // namespace
}  // namespace ctsync::daemon

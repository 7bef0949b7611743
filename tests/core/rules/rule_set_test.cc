// RuleSet listing and save text: table order, chain order, counters.
#include "core/rules/rule_set.h"

#include <string>

#include "gtest/gtest.h"

namespace ctsync::rules {
namespace {

// iptables-legacy-save lists the most recently registered table first; a restore into a
// fresh namespace registers them in the order the text names them.
TEST(RuleSetTest, TablesSaveInReverseOfFirstAppearance) {
  auto rs = RuleSet::Parse(
      "*nat\nCOMMIT\n*raw\nCOMMIT\n*filter\nCOMMIT\n*nat\n-A OUTPUT -j ACCEPT\nCOMMIT\n",
      Family::kIpv4);
  ASSERT_TRUE(rs.ok()) << rs.status();
  EXPECT_EQ(rs->Save(false),
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
            "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
            "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            ":POSTROUTING ACCEPT [0:0]\n-A OUTPUT -j ACCEPT\nCOMMIT\n");
  EXPECT_FALSE(rs->HasTable(Table::kMangle));
}

TEST(RuleSetTest, UserChainsSortedByNameAndJumpsFollow) {
  auto rs = RuleSet::Parse(
      "*filter\n:zz - [0:0]\n:aa - [0:0]\n-A INPUT -j zz\n-A INPUT -g aa\n-A zz -j DROP\n"
      "-A aa -j ACCEPT\nCOMMIT\n",
      Family::kIpv4);
  ASSERT_TRUE(rs.ok()) << rs.status();
  std::vector<std::string> listing;
  for (const RuleInfo& r : rs->Rules())
    listing.push_back(r.chain + ":" + std::to_string(r.index) + " " + r.text);
  EXPECT_EQ(listing, (std::vector<std::string>{"INPUT:0 -j zz", "INPUT:1 -g aa", "aa:0 -j ACCEPT",
                                               "zz:0 -j DROP"}));
  MatchContext ctx;
  PacketEffects e;
  std::vector<RuleHit> hits;
  EXPECT_EQ(rs->Evaluate(Table::kFilter, Hook::kInput, ctx, &e, &hits).kind, Verdict::kDrop);
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[1], (RuleHit{Table::kFilter, "zz", 0}));
}

TEST(RuleSetTest, CountersAreReadLikeRestoreDashC) {
  auto rs = RuleSet::Parse(
      "*filter\n:INPUT DROP [4:400]\n[3:180] -A INPUT -j ACCEPT\n-A INPUT -c 7 70 -j DROP\n"
      "COMMIT\n",
      Family::kIpv4);
  ASSERT_TRUE(rs.ok()) << rs.status();
  EXPECT_EQ(rs->Save(true),
            "*filter\n:INPUT DROP [4:400]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "[3:180] -A INPUT -j ACCEPT\n[7:70] -A INPUT -j DROP\nCOMMIT\n");
  // Without -c, iptables-save still prints policy counters but no rule counters.
  EXPECT_EQ(rs->Save(false),
            "*filter\n:INPUT DROP [4:400]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A INPUT -j ACCEPT\n-A INPUT -j DROP\nCOMMIT\n");
}

}  // namespace
}  // namespace ctsync::rules

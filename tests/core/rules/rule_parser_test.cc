// Parser errors (line number + the word not understood) and the kernel's load-time checks.
#include <string>

#include "core/rules/rule_set.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ctsync::rules {
namespace {

using testing::HasSubstr;

struct ErrorCase {
  const char* name;
  Family family;
  std::string text;
  const char* error;  // substring of the status message
};

constexpr char kFilterHead[] =
    "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n";

std::string Filter(const std::string& rules) {
  return std::string(kFilterHead) + rules + "COMMIT\n";
}

class ParseErrorTest : public testing::TestWithParam<ErrorCase> {};

TEST_P(ParseErrorTest, NamesLineAndWord) {
  const ErrorCase& c = GetParam();
  auto rs = RuleSet::Parse(c.text, c.family);
  ASSERT_FALSE(rs.ok());
  EXPECT_EQ(rs.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(rs.status().message()), HasSubstr(c.error));
}

const ErrorCase kErrors[] = {
    {"UnknownOption", Family::kIpv4,
     "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT --foo 1 -j ACCEPT\nCOMMIT\n",
     "line 3: unknown option --foo"},
    {"UnknownTarget", Family::kIpv4, "*filter\n-A INPUT -j XYZ\nCOMMIT\n",
     "line 2: unknown target XYZ"},
    {"UnknownMatch", Family::kIpv4, "*filter\n-A INPUT -m recent --set\nCOMMIT\n",
     "line 2: unknown match recent"},
    {"UnknownTable", Family::kIpv4, "# comment\n*security\nCOMMIT\n",
     "line 2: unknown table security"},
    {"ChainTableLacks", Family::kIpv4, "*raw\n:FORWARD ACCEPT [0:0]\nCOMMIT\n",
     "line 2: chain FORWARD is not a built-in chain of table raw"},
    {"AppendToUnknownChain", Family::kIpv4, "*nat\n-A FORWARD -j ACCEPT\nCOMMIT\n",
     "line 2: unknown chain FORWARD"},
    {"MissingCommit", Family::kIpv4, "*filter\n-A INPUT -j ACCEPT\n", "COMMIT expected"},
    {"RuleOutsideTable", Family::kIpv4, "-A INPUT -j ACCEPT\n", "line 1: no table"},
    {"DportWithoutProto", Family::kIpv4, Filter("-A FORWARD --dport 80 -j ACCEPT\n"),
     "line 5: unknown option --dport"},
    {"DportWithNegatedProto", Family::kIpv4, Filter("-A FORWARD ! -p tcp --dport 80 -j ACCEPT\n"),
     "line 5: unknown option --dport"},
    {"TcpMatchWithoutProto", Family::kIpv4, Filter("-A FORWARD -m tcp --dport 80\n"),
     "line 5: tcp match: only valid for -p tcp"},
    {"BadPort", Family::kIpv4, Filter("-A FORWARD -p tcp --dport http\n"),
     "line 5: invalid port/service `http'"},
    {"BadState", Family::kIpv4, Filter("-A FORWARD -m conntrack --ctstate BOGUS\n"),
     "line 5: bad --ctstate state `BOGUS'"},
    {"StateHasNoSnat", Family::kIpv4, Filter("-A FORWARD -m state --state SNAT\n"),
     "bad --state state `SNAT'"},
    {"IcmpTypeRequired", Family::kIpv4, Filter("-A FORWARD -p icmp -m icmp -j DROP\n"),
     "icmp: option \"--icmp-type\" must be specified"},
    {"UnknownIcmpName", Family::kIpv4, Filter("-A FORWARD -p icmp --icmp-type pingg\n"),
     "unknown ICMP type `pingg'"},
    {"V4AddressInV6", Family::kIpv6, Filter("-A FORWARD -s 192.0.2.1 -j DROP\n"),
     "host/network `192.0.2.1' not found"},
    {"FragmentInV6", Family::kIpv6, Filter("-A FORWARD -f -j DROP\n"), "line 5:"},
    {"IcmpMatchInV6", Family::kIpv6, Filter("-A FORWARD -p icmp -m icmp --icmp-type 8\n"),
     "unknown match icmp"},
    {"V4RejectTypeInV6", Family::kIpv6,
     Filter("-A FORWARD -j REJECT --reject-with icmp-host-prohibited\n"),
     "unknown reject type `icmp-host-prohibited'"},
    {"TcpResetNeedsTcp", Family::kIpv4, Filter("-A FORWARD -j REJECT --reject-with tcp-reset\n"),
     "tcp-reset"},
    {"SnatInFilter", Family::kIpv4, Filter("-A FORWARD -j SNAT --to-source 1.2.3.4\n"),
     "line 5: NAT targets are only valid in the nat table"},
    {"SnatNeedsAddress", Family::kIpv4, "*nat\n-A POSTROUTING -j SNAT\nCOMMIT\n",
     "line 2: SNAT: option \"--to-source\""},
    {"SnatInPrerouting", Family::kIpv4, "*nat\n-A PREROUTING -j SNAT --to-source 1.2.3.4\nCOMMIT\n",
     "line 2: target SNAT not valid in chain PREROUTING"},
    {"DnatViaUserChainFromPostrouting", Family::kIpv4,
     "*nat\n:x - [0:0]\n-A POSTROUTING -j x\n-A x -j DNAT --to-destination 1.2.3.4\nCOMMIT\n",
     "line 4: target DNAT not valid in chain x"},
    {"NatPortsNeedProto", Family::kIpv4,
     "*nat\n-A POSTROUTING -j SNAT --to-source 1.2.3.4:1000-2000\nCOMMIT\n",
     "need TCP, UDP, SCTP or DCCP"},
    {"RedirectPortsNeedProto", Family::kIpv4,
     "*nat\n-A PREROUTING -j REDIRECT --to-ports 3128\nCOMMIT\n", "need TCP, UDP"},
    {"RandomFullyNotForDnat", Family::kIpv4,
     "*nat\n-A PREROUTING -j DNAT --to-destination 1.2.3.4 --random-fully\nCOMMIT\n",
     "line 2: unknown option --random-fully"},
    {"CtOutsideRaw", Family::kIpv4, Filter("-A FORWARD -j CT --zone 1\n"),
     "only valid in the raw table"},
    {"CtHelperNeedsProto", Family::kIpv4, "*raw\n-A PREROUTING -j CT --helper ftp\nCOMMIT\n",
     "line 2: CT: no helper ftp"},
    {"RejectInPrerouting", Family::kIpv4, "*mangle\n-A PREROUTING -j REJECT\nCOMMIT\n",
     "line 2: target REJECT not valid in chain PREROUTING"},
    {"ChainLoop", Family::kIpv4, Filter(":a - [0:0]\n:b - [0:0]\n-A a -j b\n-A b -j a\n"),
     "line 9: COMMIT failed: chain loop"},
    {"JumpToBuiltin", Family::kIpv4, Filter("-A FORWARD -j INPUT\n"), "unknown target INPUT"},
    {"GotoUnknown", Family::kIpv4, Filter("-A FORWARD -g nowhere\n"), "unknown chain nowhere"},
    {"BadPolicy", Family::kIpv4, "*filter\n:INPUT REJECT [0:0]\nCOMMIT\n", "bad policy REJECT"},
    {"UserChainWithPolicy", Family::kIpv4, "*filter\n:mine ACCEPT [0:0]\nCOMMIT\n",
     "not a built-in chain"},
    {"DuplicateOption", Family::kIpv4, Filter("-A FORWARD -s 1.1.1.1 -s 2.2.2.2\n"),
     "multiple -s flags"},
    {"TooManyMultiport", Family::kIpv4,
     Filter("-A FORWARD -p tcp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15:16\n"),
     "too many ports"},
    {"MultiportNeedsProto", Family::kIpv4, Filter("-A FORWARD -m multiport --dports 1\n"),
     "multiport needs"},
    {"MarkNeedsValue", Family::kIpv4, Filter("-A FORWARD -m mark\n"),
     "mark: option \"--mark\" must be specified"},
    {"MarkTargetNeedsOp", Family::kIpv4, "*mangle\n-A FORWARD -j MARK\nCOMMIT\n", "MARK target"},
    {"UnterminatedQuote", Family::kIpv4, Filter("-A FORWARD -j LOG --log-prefix \"x\n"),
     "line 5: unterminated quote"},
    {"UnknownCommand", Family::kIpv4, Filter("-D FORWARD 1\n"), "line 5: unknown command -D"},
    {"InsertPastEnd", Family::kIpv4, Filter("-I FORWARD 2 -j ACCEPT\n"),
     "line 5: index of insertion too big: 2"},
    {"PolicyOnUserChain", Family::kIpv4, Filter("-N mine\n-P mine DROP\n"),
     "line 6: bad policy command for chain mine"},
    {"NewChainTwice", Family::kIpv4, Filter("-N mine\n:mine - [0:0]\n"),
     "line 6: chain mine already exists"},
    {"InvertBeforeTarget", Family::kIpv4, Filter("-A FORWARD ! -j ACCEPT\n"),
     "unexpected ! before -j"},
    {"StrayArgument", Family::kIpv4, Filter("-A FORWARD ACCEPT\n"),
     "line 5: unknown argument ACCEPT"},
};

INSTANTIATE_TEST_SUITE_P(Errors, ParseErrorTest, testing::ValuesIn(kErrors),
                         [](const testing::TestParamInfo<ErrorCase>& i) { return i.param.name; });

TEST(ParseTest, TablesLackingChainsAreNotEvaluated) {
  auto rs = RuleSet::Parse("*raw\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n", Family::kIpv4);
  ASSERT_TRUE(rs.ok()) << rs.status();
  EXPECT_TRUE(rs->HasTable(Table::kRaw));
  EXPECT_FALSE(rs->HasTable(Table::kFilter));
  PacketEffects effects;
  MatchContext ctx;
  EXPECT_EQ(rs->Evaluate(Table::kRaw, Hook::kForward, ctx, &effects, nullptr).kind,
            Verdict::kAccept);
  EXPECT_EQ(rs->Evaluate(Table::kFilter, Hook::kForward, ctx, &effects, nullptr).kind,
            Verdict::kAccept);
}

TEST(ParseTest, BuiltinChainsExistWithoutDeclaration) {
  auto rs = RuleSet::Parse("*filter\n-A FORWARD -j DROP\nCOMMIT\n", Family::kIpv4);
  ASSERT_TRUE(rs.ok()) << rs.status();
  EXPECT_EQ(rs->Save(false),
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            "-A FORWARD -j DROP\nCOMMIT\n");
}

TEST(ParseTest, NatSpecsAreData) {
  auto rs = RuleSet::Parse(
      "*nat\n"
      "-A POSTROUTING -o wan0 -p tcp -j SNAT --to-source 203.0.113.5-203.0.113.6:1024-2048 "
      "--random-fully --persistent\n"
      "-A PREROUTING -p udp -j REDIRECT --to-ports 5353\n"
      "COMMIT\n",
      Family::kIpv4);
  ASSERT_TRUE(rs.ok()) << rs.status();
  MatchContext ctx;
  ctx.proto = 6;
  ctx.has_ports = true;
  ctx.out_iface = "wan0";
  ctx.ctstate = kCtNew;
  PacketEffects effects;
  Verdict v = rs->Evaluate(Table::kNat, Hook::kPostrouting, ctx, &effects, nullptr);
  ASSERT_EQ(v.kind, Verdict::kNat);
  EXPECT_EQ(v.nat.kind, NatKind::kSnat);
  EXPECT_TRUE(v.nat.has_addr);
  EXPECT_EQ(v.nat.min_addr, IpAddress::FromV4(0xcb007105));
  EXPECT_EQ(v.nat.max_addr, IpAddress::FromV4(0xcb007106));
  EXPECT_TRUE(v.nat.has_ports);
  EXPECT_EQ(v.nat.min_port, 1024);
  EXPECT_EQ(v.nat.max_port, 2048);
  EXPECT_TRUE(v.nat.random_fully);
  EXPECT_TRUE(v.nat.persistent);
  EXPECT_FALSE(v.nat.random);

  ctx.proto = 17;
  ctx.in_iface = "lan0";
  v = rs->Evaluate(Table::kNat, Hook::kPrerouting, ctx, &effects, nullptr);
  ASSERT_EQ(v.kind, Verdict::kNat);
  EXPECT_EQ(v.nat.kind, NatKind::kRedirect);
  EXPECT_FALSE(v.nat.has_addr);
  EXPECT_EQ(v.nat.min_port, 5353);
  EXPECT_EQ(v.nat.max_port, 5353);
}

TEST(ParseTest, V6NatRangeInBrackets) {
  auto rs = RuleSet::Parse(
      "*nat\n-A PREROUTING -p tcp -j DNAT --to-destination [2001:db8:1::10]:8080\nCOMMIT\n",
      Family::kIpv6);
  ASSERT_TRUE(rs.ok()) << rs.status();
  MatchContext ctx;
  ctx.family = Family::kIpv6;
  ctx.proto = 6;
  PacketEffects effects;
  Verdict v = rs->Evaluate(Table::kNat, Hook::kPrerouting, ctx, &effects, nullptr);
  ASSERT_EQ(v.kind, Verdict::kNat);
  EXPECT_EQ(v.nat.family, Family::kIpv6);
  EXPECT_EQ(v.nat.min_addr, *IpAddress::Parse("2001:db8:1::10"));
  EXPECT_EQ(v.nat.min_port, 8080);
}

TEST(ParseTest, CommentsBlankLinesAndCrlf) {
  auto rs = RuleSet::Parse(
      "# Generated by iptables-save v1.8.9\r\n\r\n*filter\r\n:INPUT ACCEPT [0:0]\r\n"
      "  -A INPUT -i lo -j ACCEPT  \r\nCOMMIT\r\n# Completed\r\n",
      Family::kIpv4);
  ASSERT_TRUE(rs.ok()) << rs.status();
  EXPECT_EQ(rs->RuleText(Table::kFilter, "INPUT", 0), "-i lo -j ACCEPT");
}

TEST(ParseTest, LongOptionSpellings) {
  auto rs = RuleSet::Parse(Filter("-A FORWARD --source 10.0.0.0/8 --in-interface eth+ "
                                  "--protocol udp --match udp --destination-port 53 "
                                  "--jump ACCEPT\n"),
                           Family::kIpv4);
  ASSERT_TRUE(rs.ok()) << rs.status();
  EXPECT_EQ(rs->RuleText(Table::kFilter, "FORWARD", 0),
            "-s 10.0.0.0/8 -i eth+ -p udp -m udp --dport 53 -j ACCEPT");
}

}  // namespace
}  // namespace ctsync::rules

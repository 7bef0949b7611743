// Evaluation: the ipt_do_table walk (jump stack, RETURN, goto, policy, counters) and each
// match/target's kernel semantics, table-driven.
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/rules/rule_set.h"
#include "gtest/gtest.h"

namespace ctsync::rules {
namespace {

IpAddress V4(const char* s) { return *IpAddress::Parse(s); }

MatchContext TcpPacket(uint8_t flags, uint16_t sport, uint16_t dport) {
  MatchContext c;
  c.family = Family::kIpv4;
  c.src = V4("192.0.2.10");
  c.dst = V4("198.51.100.20");
  c.proto = kProtoTcp;
  c.sport = sport;
  c.dport = dport;
  c.has_ports = true;
  c.tcp_flags = flags;
  c.in_iface = "lan0";
  c.out_iface = "wan0";
  c.packet_len = 60;
  c.ctstate = kCtNew;
  return c;
}

std::string HitsText(const std::vector<RuleHit>& hits) {
  std::vector<std::string> parts;
  for (const RuleHit& h : hits) parts.push_back(absl::StrCat(h.chain, ":", h.index));
  return absl::StrJoin(parts, " ");
}

struct EvalCase {
  const char* description;
  std::function<void(MatchContext&)> packet;  // edits a TCP SYN lan0 -> wan0, NEW
  Verdict::Kind verdict;
  const char* hits;  // "CHAIN:index ..." in walk order
};

constexpr char kFilterRules[] = R"txt(*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:tcp_in - [0:0]
:web - [0:0]
:count - [0:0]
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -j count
-A FORWARD -p tcp -j tcp_in
-A FORWARD -p udp -m multiport --dports 53,5000:5010 -j ACCEPT
-A FORWARD -p udp -m multiport ! --ports 1:1000 -j REJECT
-A FORWARD -p icmp --icmp-type echo-request -j ACCEPT
-A FORWARD -p icmp --icmp-type port-unreachable -j DROP
-A FORWARD -p icmp ! --icmp-type any -j ACCEPT
-A FORWARD -f -j DROP
-A FORWARD ! -i lan+ -j DROP
-A FORWARD ! -s 192.0.2.0/24 -j REJECT --reject-with icmp-admin-prohibited
-A count
-A count -i wan0 -j RETURN
-A count -j LOG
-A tcp_in -p tcp ! --syn -j DROP
-A tcp_in -p tcp --tcp-flags ALL SYN,FIN -j DROP
-A tcp_in -p tcp --dport 80:90 -g web
-A tcp_in -p tcp ! --sport 1024:65535 -j REJECT --reject-with tcp-reset
-A web -p tcp --dport 81 -j DROP
-A web -j RETURN
COMMIT
)txt";

const EvalCase kFilterCases[] = {
    {"new tcp syn to 22 walks count and tcp_in then hits the policy", [](MatchContext&) {},
     Verdict::kDrop, "FORWARD:2 count:0 count:2 FORWARD:3"},
    {"invalid is dropped by the first rule", [](MatchContext& c) { c.ctstate = kCtInvalid; },
     Verdict::kDrop, "FORWARD:0"},
    {"established is accepted", [](MatchContext& c) { c.ctstate = kCtEstablished | kCtSnat; },
     Verdict::kAccept, "FORWARD:1"},
    {"RETURN in count goes back to FORWARD", [](MatchContext& c) { c.in_iface = "wan0"; },
     Verdict::kDrop, "FORWARD:2 count:0 count:1 FORWARD:3 FORWARD:10"},
    {"non-SYN tcp dropped by ! --syn", [](MatchContext& c) { c.tcp_flags = 0x10; }, Verdict::kDrop,
     "FORWARD:2 count:0 count:2 FORWARD:3 tcp_in:0"},
    {"SYN+FIN dropped by --tcp-flags ALL SYN,FIN", [](MatchContext& c) { c.tcp_flags = 0x03; },
     Verdict::kDrop,
     // SYN+FIN is not "SYN only" under the FIN,SYN,RST,ACK mask either.
     "FORWARD:2 count:0 count:2 FORWARD:3 tcp_in:0"},
    {"goto web then its RETURN ends tcp_in's caller frame, back in FORWARD",
     [](MatchContext& c) { c.dport = 85; }, Verdict::kDrop,
     "FORWARD:2 count:0 count:2 FORWARD:3 tcp_in:2 web:1"},
    {"goto web, port 81 dropped there", [](MatchContext& c) { c.dport = 81; }, Verdict::kDrop,
     "FORWARD:2 count:0 count:2 FORWARD:3 tcp_in:2 web:0"},
    {"privileged source port rejected with tcp-reset", [](MatchContext& c) { c.sport = 999; },
     Verdict::kReject, "FORWARD:2 count:0 count:2 FORWARD:3 tcp_in:3"},
    {"udp multiport range", [](MatchContext& c) { c.proto = kProtoUdp, c.dport = 5005; },
     Verdict::kAccept, "FORWARD:2 count:0 count:2 FORWARD:4"},
    {"udp inverted multiport --ports: neither port in 1:1000",
     [](MatchContext& c) { c.proto = kProtoUdp, c.sport = 40000, c.dport = 4000; },
     Verdict::kReject, "FORWARD:2 count:0 count:2 FORWARD:5"},
    {"udp --ports matches either side",
     [](MatchContext& c) { c.proto = kProtoUdp, c.sport = 40000, c.dport = 123; }, Verdict::kDrop,
     "FORWARD:2 count:0 count:2"},
    {"icmp echo-request by name",
     [](MatchContext& c) {
       c.proto = kProtoIcmp, c.has_ports = false, c.has_icmp = true, c.icmp_type = 8;
     },
     Verdict::kAccept, "FORWARD:2 count:0 count:2 FORWARD:6"},
    {"icmp port-unreachable needs code 3",
     [](MatchContext& c) {
       c.proto = kProtoIcmp, c.has_ports = false, c.has_icmp = true, c.icmp_type = 3,
       c.icmp_code = 3;
     },
     Verdict::kDrop, "FORWARD:2 count:0 count:2 FORWARD:7"},
    {"icmp host-unreachable is not port-unreachable; ! any never matches",
     [](MatchContext& c) {
       c.proto = kProtoIcmp, c.has_ports = false, c.has_icmp = true, c.icmp_type = 3,
       c.icmp_code = 1;
     },
     Verdict::kDrop, "FORWARD:2 count:0 count:2"},
    {"non-first fragment: port matches fail, -f matches",
     [](MatchContext& c) { c.proto = 47, c.has_ports = false, c.non_first_fragment = true; },
     Verdict::kDrop, "FORWARD:2 count:0 count:2 FORWARD:9"},
    {"! -i lan+ drops an interface outside the wildcard",
     [](MatchContext& c) { c.proto = 47, c.has_ports = false, c.in_iface = "eth0"; },
     Verdict::kDrop, "FORWARD:2 count:0 count:2 FORWARD:10"},
    {"lan+ covers lan12",
     [](MatchContext& c) {
       c.proto = 47, c.has_ports = false, c.in_iface = "lan12", c.src = V4("10.1.1.1");
     },
     Verdict::kReject, "FORWARD:2 count:0 count:2 FORWARD:11"},
};

TEST(EvaluateTest, FilterWalk) {
  for (const EvalCase& c : kFilterCases) {
    SCOPED_TRACE(c.description);
    auto rs = RuleSet::Parse(kFilterRules, Family::kIpv4);
    ASSERT_TRUE(rs.ok()) << rs.status();
    MatchContext ctx = TcpPacket(/*SYN*/ 0x02, 40000, 22);
    c.packet(ctx);
    PacketEffects effects;
    std::vector<RuleHit> hits;
    Verdict v = rs->Evaluate(Table::kFilter, Hook::kForward, ctx, &effects, &hits);
    EXPECT_EQ(v.kind, c.verdict);
    EXPECT_EQ(HitsText(hits), c.hits);
  }
}

TEST(EvaluateTest, RejectSpecAndLogCount) {
  auto rs = RuleSet::Parse(kFilterRules, Family::kIpv4);
  ASSERT_TRUE(rs.ok()) << rs.status();
  MatchContext ctx = TcpPacket(0x02, 999, 22);
  PacketEffects effects;
  Verdict v = rs->Evaluate(Table::kFilter, Hook::kForward, ctx, &effects, nullptr);
  ASSERT_EQ(v.kind, Verdict::kReject);
  EXPECT_EQ(v.reject.with, RejectWith::kTcpReset);
  EXPECT_EQ(effects.log_count, 1u);

  ctx = TcpPacket(0x02, 40000, 22);
  ctx.proto = 47;
  ctx.has_ports = false;
  ctx.in_iface = "lan7";
  ctx.src = V4("10.0.0.1");
  v = rs->Evaluate(Table::kFilter, Hook::kForward, ctx, &effects, nullptr);
  ASSERT_EQ(v.kind, Verdict::kReject);
  EXPECT_EQ(v.reject.with, RejectWith::kIcmpAdminProhibited);
}

TEST(EvaluateTest, CountersAndPolicyCountersInSave) {
  auto rs = RuleSet::Parse(
      "*filter\n:FORWARD DROP [0:0]\n:c - [0:0]\n-A FORWARD -j c\n-A FORWARD -p tcp\n"
      "-A FORWARD -p udp -j ACCEPT\n-A c -p udp -j RETURN\nCOMMIT\n",
      Family::kIpv4);
  ASSERT_TRUE(rs.ok()) << rs.status();
  MatchContext tcp = TcpPacket(0x02, 1, 2);
  tcp.packet_len = 100;
  MatchContext udp = tcp;
  udp.proto = kProtoUdp;
  udp.packet_len = 30;
  PacketEffects e;
  EXPECT_EQ(rs->Evaluate(Table::kFilter, Hook::kForward, tcp, &e, nullptr).kind, Verdict::kDrop);
  EXPECT_EQ(rs->Evaluate(Table::kFilter, Hook::kForward, tcp, &e, nullptr).kind, Verdict::kDrop);
  EXPECT_EQ(rs->Evaluate(Table::kFilter, Hook::kForward, udp, &e, nullptr).kind, Verdict::kAccept);
  EXPECT_EQ(rs->Save(true),
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [2:200]\n:OUTPUT ACCEPT [0:0]\n"
            ":c - [0:0]\n[3:230] -A FORWARD -j c\n[2:200] -A FORWARD -p tcp\n"
            "[1:30] -A FORWARD -p udp -j ACCEPT\n[1:30] -A c -p udp -j RETURN\nCOMMIT\n");
  rs->ZeroCounters();
  for (const RuleInfo& r : rs->Rules()) EXPECT_EQ(r.packets, 0u) << r.text;
}

TEST(EvaluateTest, ReturnFromBuiltinChainAppliesPolicy) {
  auto rs = RuleSet::Parse(
      "*filter\n:INPUT DROP [0:0]\n-A INPUT -j RETURN\n-A INPUT -j ACCEPT\n"
      "COMMIT\n",
      Family::kIpv4);
  ASSERT_TRUE(rs.ok()) << rs.status();
  PacketEffects e;
  std::vector<RuleHit> hits;
  EXPECT_EQ(rs->Evaluate(Table::kFilter, Hook::kInput, TcpPacket(2, 1, 2), &e, &hits).kind,
            Verdict::kDrop);
  EXPECT_EQ(HitsText(hits), "INPUT:0");
}

struct CtCase {
  const char* description;
  const char* rule;  // one -A FORWARD rule (target ACCEPT)
  std::function<void(MatchContext&)> packet;
  bool matches;
};

Tuple OrigTuple() {
  Tuple t;
  t.family = Family::kIpv4;
  t.proto = kProtoTcp;
  t.src = V4("192.0.2.10");
  t.dst = V4("198.51.100.20");
  t.sport = 40000;
  t.dport = 80;
  return t;
}
Tuple ReplyTuple() {
  Tuple t = OrigTuple();
  t.src = V4("198.51.100.20");
  t.dst = V4("203.0.113.5");
  t.sport = 80;
  t.dport = 40000;
  return t;
}
const Tuple kOrig = OrigTuple();
const Tuple kReply = ReplyTuple();

void Tracked(MatchContext& c) {
  c.ct_orig = &kOrig;
  c.ct_reply = &kReply;
}

const CtCase kCtCases[] = {
    {"ctstate NEW,DNAT: NEW alone matches", "-m conntrack --ctstate DNAT,NEW", Tracked, true},
    {"ctstate DNAT matches an established DNATed flow", "-m conntrack --ctstate DNAT",
     [](MatchContext& c) { Tracked(c), c.ctstate = kCtEstablished | kCtDnat; }, true},
    {"ctstate SNAT does not match without the NAT bit", "-m conntrack --ctstate SNAT", Tracked,
     false},
    {"-m state ignores NAT bits", "-m state --state ESTABLISHED",
     [](MatchContext& c) { Tracked(c), c.ctstate = kCtEstablished | kCtSnat; }, true},
    {"! --ctstate NEW on NEW", "-m conntrack ! --ctstate NEW", Tracked, false},
    {"! --ctstate NEW on INVALID", "-m conntrack ! --ctstate NEW",
     [](MatchContext& c) { c.ctstate = kCtInvalid; }, true},
    {"UNTRACKED state", "-m conntrack --ctstate UNTRACKED",
     [](MatchContext& c) { c.ctstate = kCtUntracked; }, true},
    {"without a connection other options never match (even inverted)",
     "-m conntrack ! --ctstatus ASSURED", [](MatchContext& c) { c.ctstate = kCtInvalid; }, false},
    {"ctstatus any listed bit", "-m conntrack --ctstatus ASSURED,SEEN_REPLY",
     [](MatchContext& c) { Tracked(c), c.ct_status = kIpsSeenReply | kIpsConfirmed; }, true},
    {"ctstatus none of the bits", "-m conntrack --ctstatus ASSURED",
     [](MatchContext& c) { Tracked(c), c.ct_status = kIpsConfirmed; }, false},
    {"ctdir REPLY on an original packet", "-m conntrack --ctdir REPLY", Tracked, false},
    {"ctdir REPLY on a reply packet", "-m conntrack --ctdir REPLY",
     [](MatchContext& c) { Tracked(c), c.ct_dir_reply = true; }, true},
    {"ctorigsrc prefix", "-m conntrack --ctorigsrc 192.0.2.0/24", Tracked, true},
    {"ctrepldst is the SNAT address", "-m conntrack --ctrepldst 203.0.113.5", Tracked, true},
    {"! ctreplsrc", "-m conntrack ! --ctreplsrc 198.51.100.20", Tracked, false},
    {"ctproto tcp with ctorigdstport range", "-m conntrack --ctproto tcp --ctorigdstport 79:81",
     Tracked, true},
    {"ctreplsrcport mismatch", "-m conntrack --ctreplsrcport 81", Tracked, false},
    {"mark with mask", "-m mark --mark 0x2/0x3", [](MatchContext& c) { c.mark = 0xf6; }, true},
    {"! mark", "-m mark ! --mark 0x2/0x3", [](MatchContext& c) { c.mark = 0xf6; }, false},
    {"connmark", "-m connmark --mark 42", [](MatchContext& c) { Tracked(c), c.ct_mark = 42; },
     true},
    {"connmark without a connection fails even when inverted", "-m connmark ! --mark 42",
     [](MatchContext& c) { c.ctstate = kCtUntracked; }, false},
    {"-s prefix", "-s 192.0.2.0/25", [](MatchContext&) {}, true},
    {"! -d host", "! -d 198.51.100.20", [](MatchContext&) {}, false},
    {"! -p udp on tcp", "! -p udp", [](MatchContext&) {}, true},
    {"! --dport range", "-p tcp ! --dport 1:1024", [](MatchContext&) {}, false},
    {"-o exact name is not a prefix", "-o wan", [](MatchContext&) {}, false},
};

TEST(EvaluateTest, Matches) {
  for (const CtCase& c : kCtCases) {
    SCOPED_TRACE(c.description);
    auto rs = RuleSet::Parse(
        absl::StrCat("*filter\n:FORWARD DROP [0:0]\n-A FORWARD ", c.rule, " -j ACCEPT\nCOMMIT\n"),
        Family::kIpv4);
    ASSERT_TRUE(rs.ok()) << rs.status();
    MatchContext ctx = TcpPacket(0x02, 40000, 80);
    c.packet(ctx);
    PacketEffects e;
    Verdict v = rs->Evaluate(Table::kFilter, Hook::kForward, ctx, &e, nullptr);
    EXPECT_EQ(v.kind, c.matches ? Verdict::kAccept : Verdict::kDrop);
  }
}

TEST(EvaluateTest, MarkTargetsFeedLaterMatches) {
  auto rs = RuleSet::Parse(R"txt(*mangle
-A PREROUTING -j MARK --set-mark 0x5
-A PREROUTING -m mark --mark 0x5 -j MARK --or-mark 0x100
-A PREROUTING -j CONNMARK --save-mark --mask 0xff
-A PREROUTING -m connmark --mark 0x5/0xff -j CONNMARK --set-xmark 0x2a/0xff00
-A PREROUTING -j CONNMARK --restore-mark --nfmask 0xff0000 --ctmask 0xff0000
COMMIT
)txt",
                           Family::kIpv4);
  ASSERT_TRUE(rs.ok()) << rs.status();
  MatchContext ctx = TcpPacket(0x02, 1, 2);
  Tracked(ctx);
  ctx.ct_mark = 0x70000;
  PacketEffects e;
  std::vector<RuleHit> hits;
  EXPECT_EQ(rs->Evaluate(Table::kMangle, Hook::kPrerouting, ctx, &e, &hits).kind, Verdict::kAccept);
  EXPECT_EQ(HitsText(hits), "PREROUTING:0 PREROUTING:1 PREROUTING:2 PREROUTING:3 PREROUTING:4");
  // mark: 0x5 | 0x100 = 0x105. save-mark (mask 0xff): ct = (0x70000 & ~0xff) ^ (0x105 & 0xff)
  // = 0x70005. set-xmark 0x2a/0xff00: (0x70005 & ~0xff00) ^ 0x2a = 0x7002f. restore-mark:
  // mark = (0x105 & ~0xff0000) ^ (0x7002f & 0xff0000) = 0x70105.
  EXPECT_EQ(e.mark, 0x70105u);
  EXPECT_EQ(e.ct_mark, 0x7002fu);
}

TEST(EvaluateTest, ConnmarkTargetNeedsAConnection) {
  auto rs = RuleSet::Parse("*mangle\n-A FORWARD -j CONNMARK --set-mark 1\nCOMMIT\n", Family::kIpv4);
  ASSERT_TRUE(rs.ok()) << rs.status();
  MatchContext ctx = TcpPacket(0x02, 1, 2);
  ctx.ctstate = kCtUntracked;
  PacketEffects e;
  std::vector<RuleHit> hits;
  rs->Evaluate(Table::kMangle, Hook::kForward, ctx, &e, &hits);
  EXPECT_EQ(hits.size(), 1u);  // counted, but nothing to mark
  EXPECT_FALSE(e.ct_mark.has_value());
}

TEST(EvaluateTest, RawCtTargetsFirstOneWins) {
  auto rs = RuleSet::Parse(R"txt(*raw
-A PREROUTING -i lan0 -p tcp --dport 21 -j CT --helper ftp --zone 7
-A PREROUTING -j CT --zone 9
-A PREROUTING -p udp --dport 53 -j NOTRACK
-A OUTPUT -j CT --notrack
COMMIT
)txt",
                           Family::kIpv4);
  ASSERT_TRUE(rs.ok()) << rs.status();
  PacketEffects ftp;
  rs->Evaluate(Table::kRaw, Hook::kPrerouting, TcpPacket(2, 40000, 21), &ftp, nullptr);
  EXPECT_EQ(ftp.ct_helper, "ftp");
  EXPECT_EQ(ftp.ct_zone, 7);
  EXPECT_FALSE(ftp.notrack);

  MatchContext dns = TcpPacket(0, 40000, 53);
  dns.proto = kProtoUdp;
  PacketEffects e;
  std::vector<RuleHit> hits;
  rs->Evaluate(Table::kRaw, Hook::kPrerouting, dns, &e, &hits);
  EXPECT_EQ(HitsText(hits), "PREROUTING:1 PREROUTING:2");
  EXPECT_EQ(e.ct_zone, 9);
  EXPECT_FALSE(e.notrack);  // the zone template was attached first

  PacketEffects out;
  rs->Evaluate(Table::kRaw, Hook::kOutput, dns, &out, nullptr);
  EXPECT_TRUE(out.notrack);
  EXPECT_FALSE(out.ct_zone.has_value());
}

TEST(EvaluateTest, NatTableWithoutMatchIsAcceptWithoutNat) {
  auto rs = RuleSet::Parse("*nat\n-A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n", Family::kIpv4);
  ASSERT_TRUE(rs.ok()) << rs.status();
  MatchContext ctx = TcpPacket(2, 1, 2);
  ctx.out_iface = "wan1";
  PacketEffects e;
  EXPECT_EQ(rs->Evaluate(Table::kNat, Hook::kPostrouting, ctx, &e, nullptr).kind, Verdict::kAccept);
  ctx.out_iface = "wan0";
  Verdict v = rs->Evaluate(Table::kNat, Hook::kPostrouting, ctx, &e, nullptr);
  ASSERT_EQ(v.kind, Verdict::kNat);
  EXPECT_EQ(v.nat.kind, NatKind::kMasquerade);
  EXPECT_FALSE(v.nat.has_addr);
  EXPECT_FALSE(v.nat.has_ports);
}

TEST(EvaluateTest, Ipv6IcmpAndPrefixes) {
  auto rs = RuleSet::Parse(R"txt(*filter
:FORWARD DROP [0:0]
-A FORWARD -s 2001:db8:1::/64 -p ipv6-icmp --icmpv6-type echo-request -j ACCEPT
-A FORWARD -p icmpv6 --icmpv6-type port-unreachable -j REJECT --reject-with icmp6-adm-prohibited
COMMIT
)txt",
                           Family::kIpv6);
  ASSERT_TRUE(rs.ok()) << rs.status();
  MatchContext ctx;
  ctx.family = Family::kIpv6;
  ctx.src = *IpAddress::Parse("2001:db8:1::10");
  ctx.dst = *IpAddress::Parse("2001:db8:2::20");
  ctx.proto = kProtoIcmpv6;
  ctx.has_icmp = true;
  ctx.icmp_type = 128;
  ctx.ctstate = kCtNew;
  PacketEffects e;
  EXPECT_EQ(rs->Evaluate(Table::kFilter, Hook::kForward, ctx, &e, nullptr).kind, Verdict::kAccept);
  ctx.src = *IpAddress::Parse("2001:db8:3::10");
  EXPECT_EQ(rs->Evaluate(Table::kFilter, Hook::kForward, ctx, &e, nullptr).kind, Verdict::kDrop);
  ctx.icmp_type = 1;
  ctx.icmp_code = 4;
  Verdict v = rs->Evaluate(Table::kFilter, Hook::kForward, ctx, &e, nullptr);
  ASSERT_EQ(v.kind, Verdict::kReject);
  EXPECT_EQ(v.reject.with, RejectWith::kIcmp6AdmProhibited);
}

}  // namespace
}  // namespace ctsync::rules

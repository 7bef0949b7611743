#include "core/nat/nat_engine.h"

#include <set>

#include "core/conntrack/l4_trackers.h"
#include "core/packet/defrag.h"
#include "tests/core/nat/nat_test_util.h"

namespace ctsync::nat_test {
namespace {

using rules::Hook;
using rules::NatKind;
using rules::Verdict;

std::vector<uint8_t> Syn(const std::string& src, uint16_t sport,
                         const std::string& dst = "198.51.100.20", uint16_t dport = 80) {
  return PacketBuilder().Ipv4(src, dst).Tcp(sport, dport).TcpFlags(kTcpSyn).Seq(1000).Build();
}
std::vector<uint8_t> Udp4(const std::string& src, uint16_t sport, const std::string& dst,
                          uint16_t dport, std::string_view payload = "q") {
  return PacketBuilder().Ipv4(src, dst).Udp(sport, dport).Payload(payload).Build();
}

// Parses the datagram an ICMP error quotes in `b`.
ParsedPacket Inner(const PacketBuffer& b) {
  ParsedPacket inner;
  const size_t end = b.pkt.l3_offset + b.pkt.ip_total_len;
  EXPECT_NE(b.pkt.inner_offset, 0u);
  EXPECT_TRUE(
      ParseIp(absl::MakeConstSpan(b.frame.data() + b.pkt.inner_offset, end - b.pkt.inner_offset),
              &inner, ParseMode::kQuoted)
          .ok());
  return inner;
}
absl::Span<const uint8_t> InnerBytes(const PacketBuffer& b) {
  const size_t end = b.pkt.l3_offset + b.pkt.ip_total_len;
  return absl::MakeConstSpan(b.frame.data() + b.pkt.inner_offset, end - b.pkt.inner_offset);
}

TEST(NatEngineTest, SnatBindingSetsReplyTupleAndStatus) {
  NatHarness h;
  auto b = h.LanToWan(Syn("192.0.2.10", 40000), [] { return Snat("203.0.113.5"); });
  ASSERT_TRUE(b);
  const Flow& f = h.FlowOf(*b);
  EXPECT_EQ(f.tuple[1].dst, Ip("203.0.113.5"));
  EXPECT_EQ(f.tuple[1].dport, 40000);
  EXPECT_EQ(f.tuple[1].src, Ip("198.51.100.20"));
  EXPECT_TRUE(f.has(kIpsSrcNat | kIpsSrcNatDone | kIpsDstNatDone));
  EXPECT_FALSE(f.status & kIpsDstNat);
  EXPECT_EQ(b->pkt.src, Ip("203.0.113.5"));
  ExpectChecksumsValid(*b);

  // The SYN/ACK comes back to the pool address and is translated back at PREROUTING.
  auto r = h.WanToLan(PacketBuilder()
                          .Ipv4("198.51.100.20", "203.0.113.5")
                          .Tcp(80, 40000)
                          .TcpFlags(kTcpSyn | kTcpAck)
                          .Seq(5000)
                          .Ack(1001)
                          .Build(),
                      Accept);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->ct.info, CtInfo::kEstablishedReply);
  EXPECT_EQ(r->pkt.dst, Ip("192.0.2.10"));
  EXPECT_EQ(r->pkt.dport, 40000);
  ExpectChecksumsValid(*r);
  EXPECT_EQ(h.nat().counters().bindings, 1u);
  EXPECT_EQ(h.nat().counters().null_bindings, 1u);  // PREROUTING of the first packet
}

TEST(NatEngineTest, DnatRewritesDestinationAndReplySource) {
  NatHarness h;
  auto b = h.WanToLan(Syn("198.51.100.20", 51000, "203.0.113.10", 80),
                      [] { return Dnat("192.0.2.10", 8080); });
  ASSERT_TRUE(b);
  EXPECT_EQ(b->pkt.dst, Ip("192.0.2.10"));
  EXPECT_EQ(b->pkt.dport, 8080);
  const Flow& f = h.FlowOf(*b);
  EXPECT_TRUE(f.has(kIpsDstNat | kIpsNatDoneMask));
  EXPECT_EQ(f.tuple[1].src, Ip("192.0.2.10"));
  EXPECT_EQ(f.tuple[1].sport, 8080);
  ExpectChecksumsValid(*b);
  auto r = h.LanToWan(PacketBuilder()
                          .Ipv4("192.0.2.10", "198.51.100.20")
                          .Tcp(8080, 51000)
                          .TcpFlags(kTcpSyn | kTcpAck)
                          .Seq(9000)
                          .Ack(1001)
                          .Build(),
                      Accept);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->pkt.src, Ip("203.0.113.10"));
  EXPECT_EQ(r->pkt.sport, 80);
  ExpectChecksumsValid(*r);
}

TEST(NatEngineTest, MasqueradeUsesTheOutInterfaceAddress) {
  NatHarness h;
  auto b = h.LanToWan(Udp4("192.0.2.10", 6000, "198.51.100.20", 53),
                      [] { return NatVerdict(NatKind::kMasquerade); });
  ASSERT_TRUE(b);
  EXPECT_EQ(b->pkt.src, Ip("198.51.100.1"));
  EXPECT_EQ(b->pkt.sport, 6000);
  ExpectChecksumsValid(*b);
}

TEST(NatEngineTest, MasqueradeWithToPortsMovesThePortIntoTheRange) {
  NatHarness h;
  auto b = h.LanToWan(Udp4("192.0.2.10", 6000, "198.51.100.20", 53), [] {
    Verdict v = NatVerdict(NatKind::kMasquerade);
    v.nat.has_ports = true;
    v.nat.min_port = 2000;
    v.nat.max_port = 2009;
    return v;
  });
  ASSERT_TRUE(b);
  EXPECT_EQ(b->pkt.src, Ip("198.51.100.1"));
  EXPECT_GE(b->pkt.sport, 2000);
  EXPECT_LE(b->pkt.sport, 2009);
  EXPECT_EQ(h.FlowOf(*b).tuple[1].dport, b->pkt.sport);
  ExpectChecksumsValid(*b);
}

TEST(NatEngineTest, RedirectInPreroutingUsesIncomingInterfaceAddress) {
  NatHarness h;
  PacketBuffer b = NatHarness::Buffer(Syn("192.0.2.10", 40050), h.lan());
  ASSERT_EQ(h.conntrack().In(b.pkt, b.frame, false, CtHookPoint::kPrerouting, b.tmpl, 0, &b.ct),
            CtVerdict::kAccept);
  ASSERT_TRUE(h.nat().Apply(
      Hook::kPrerouting, b,
      [] {
        Verdict v = NatVerdict(NatKind::kRedirect);
        v.nat.has_ports = true;
        v.nat.min_port = v.nat.max_port = 3128;
        return v;
      },
      h.topology(), 0));
  EXPECT_EQ(b.pkt.dst, Ip("192.0.2.1"));
  EXPECT_EQ(b.pkt.dport, 3128);
  const Flow& f = h.FlowOf(b);
  EXPECT_EQ(f.tuple[1].src, Ip("192.0.2.1"));
  EXPECT_EQ(f.tuple[1].sport, 3128);
  EXPECT_TRUE(f.has(kIpsDstNat | kIpsDstNatDone));
  ExpectChecksumsValid(b);
}

TEST(NatEngineTest, RedirectInOutputGoesToLoopback) {
  for (Family fam : {Family::kIpv4, Family::kIpv6}) {
    NatHarness h;
    const bool v4 = fam == Family::kIpv4;
    PacketBuffer b =
        NatHarness::Buffer(PacketBuilder()
                               .Addresses(fam, Ip(v4 ? "198.51.100.1" : "2001:db8:2::1"),
                                          Ip(v4 ? "198.51.100.20" : "2001:db8:2::20"))
                               .Udp(7000, 53)
                               .Build(),
                           -1);
    ASSERT_EQ(h.conntrack().In(b.pkt, b.frame, false, CtHookPoint::kLocalOut, b.tmpl, 0, &b.ct),
              CtVerdict::kAccept);
    ASSERT_TRUE(h.nat().Apply(
        Hook::kOutput, b, [] { return NatVerdict(NatKind::kRedirect); }, h.topology(), 0));
    EXPECT_EQ(b.pkt.dst, Ip(v4 ? "127.0.0.1" : "::1"));
    EXPECT_EQ(b.pkt.dport, 53);
    ExpectChecksumsValid(b);
  }
}

TEST(NatEngineTest, PortClashKeepsThePortClass) {
  struct Case {
    uint16_t sport;
    uint16_t lo, hi;
  };
  for (const Case& c : {Case{80, 1, 511}, Case{700, 600, 1023}, Case{5000, 1024, 65535}}) {
    SCOPED_TRACE(c.sport);
    NatHarness h;
    auto snat = [] { return Snat("203.0.113.5"); };
    auto a = h.LanToWan(Syn("192.0.2.10", c.sport), snat);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->pkt.sport, c.sport);
    auto b = h.LanToWan(Syn("192.0.2.11", c.sport), snat);
    ASSERT_TRUE(b);
    EXPECT_NE(b->pkt.sport, c.sport);
    EXPECT_GE(b->pkt.sport, c.lo);
    EXPECT_LE(b->pkt.sport, c.hi);
    ExpectChecksumsValid(*b);
  }
}

TEST(NatEngineTest, ExhaustedRangeDropsAtConfirmationWithInsertFailed) {
  NatHarness h;
  auto snat = [] { return Snat("203.0.113.5", "", 1000, 1001); };
  std::set<uint16_t> ports;
  for (const char* host : {"192.0.2.10", "192.0.2.11"}) {
    auto b = h.LanToWan(Syn(host, 40000), snat);
    ASSERT_TRUE(b);
    ports.insert(b->pkt.sport);
  }
  EXPECT_EQ(ports, (std::set<uint16_t>{1000, 1001}));
  const ConntrackStats before = h.conntrack().stats();
  EXPECT_FALSE(h.LanToWan(Syn("192.0.2.12", 40000), snat));
  EXPECT_EQ(h.conntrack().stats().insert_failed - before.insert_failed, 1u);
  EXPECT_EQ(h.conntrack().stats().drop - before.drop, 1u);
  EXPECT_EQ(h.conntrack().table().confirmed_count(), 2u);
  EXPECT_EQ(h.conntrack().table().size(), 2u);  // nothing left unconfirmed
}

TEST(NatEngineTest, ExhaustedSinglePortRangeKeepsThePortAndFailsConfirmation) {
  NatHarness h;
  auto snat = [] { return Snat("203.0.113.5", "", 1000, 1000); };
  // The source port already is the range's only port.
  ASSERT_TRUE(h.LanToWan(Udp4("192.0.2.10", 1000, "198.51.100.20", 53), snat));
  const uint32_t found = h.conntrack().stats().found;
  EXPECT_FALSE(h.LanToWan(Udp4("192.0.2.11", 1000, "198.51.100.20", 53), snat));
  // min == max and in range: the kernel does not even look it up before confirming.
  EXPECT_EQ(h.conntrack().stats().found, found);
  EXPECT_EQ(h.conntrack().stats().insert_failed, 1u);
}

TEST(NatEngineTest, LastAttemptsEvictATimeWaitSnatEntryWhoseSequenceWasPassed) {
  struct Case {
    uint32_t new_seq;
    bool evicted;
  };
  for (const Case& c : {Case{5000, true}, Case{500, false}}) {
    SCOPED_TRACE(c.new_seq);
    NatHarness h;
    auto snat = [] { return Snat("203.0.113.5", "", 1000, 1000); };
    auto a = h.LanToWan(Syn("192.0.2.10", 40000), snat);  // seq 1000
    ASSERT_TRUE(a);
    h.conntrack().table().flow(a->ct.flow).tcp.state = TcpState::kTimeWait;
    auto b = h.LanToWan(PacketBuilder()
                            .Ipv4("192.0.2.11", "198.51.100.20")
                            .Tcp(40000, 80)
                            .TcpFlags(kTcpSyn)
                            .Seq(c.new_seq)
                            .Build(),
                        snat);
    EXPECT_EQ(b.has_value(), c.evicted);
    EXPECT_EQ(h.conntrack().table().IsConfirmed(a->ct.flow), !c.evicted);
    if (b) EXPECT_EQ(b->pkt.sport, 1000);
  }
}

TEST(NatEngineTest, ClashesAreJudgedPerZone) {
  NatHarness h;
  auto snat = [] { return Snat("203.0.113.5"); };
  auto a = h.LanToWan(Syn("192.0.2.10", 40000), snat, 0, /*zone=*/0);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->pkt.sport, 40000);
  auto other_zone = h.LanToWan(Syn("192.0.2.11", 40000), snat, 0, /*zone=*/7);
  ASSERT_TRUE(other_zone);
  EXPECT_EQ(other_zone->pkt.sport, 40000);  // no clash: zone 7 is a separate table
  EXPECT_EQ(h.conntrack().stats().found, 0u);
  auto same_zone = h.LanToWan(Syn("192.0.2.12", 40000), snat, 0, /*zone=*/0);
  ASSERT_TRUE(same_zone);
  EXPECT_NE(same_zone->pkt.sport, 40000);
  EXPECT_EQ(h.conntrack().stats().found, 1u);
}

TEST(NatEngineTest, NullBindingMovesAClashingSourcePort) {
  NatHarness h;
  // A LAN host masqueraded to the firewall's own address and port 5000...
  ASSERT_TRUE(h.LanToWan(Udp4("192.0.2.10", 5000, "198.51.100.20", 53),
                         [] { return Snat("198.51.100.1"); }));
  // ...then the firewall itself talks from that same address and port, with no NAT rule.
  PacketBuffer b = NatHarness::Buffer(Udp4("198.51.100.1", 5000, "198.51.100.20", 53), -1);
  ASSERT_EQ(h.conntrack().In(b.pkt, b.frame, false, CtHookPoint::kLocalOut, b.tmpl, 0, &b.ct),
            CtVerdict::kAccept);
  ASSERT_TRUE(h.nat().Apply(Hook::kOutput, b, Accept, h.topology(), 0));
  b.out_iface = h.wan();
  ASSERT_TRUE(h.nat().Apply(Hook::kPostrouting, b, Accept, h.topology(), 0));
  EXPECT_EQ(b.pkt.src, Ip("198.51.100.1"));
  EXPECT_NE(b.pkt.sport, 5000);
  EXPECT_GE(b.pkt.sport, 1024);
  EXPECT_TRUE(h.FlowOf(b).has(kIpsSrcNat));
  ExpectChecksumsValid(b);
  EXPECT_EQ(h.conntrack().Confirm(b.ct, 0), CtVerdict::kAccept);
}

TEST(NatEngineTest, SameSourceReusesItsMappingForAnotherServer) {
  NatHarness h;
  auto snat = [] { return Snat("203.0.113.5", "203.0.113.8"); };
  auto a = h.LanToWan(Udp4("192.0.2.10", 6000, "198.51.100.20", 53), snat);
  ASSERT_TRUE(a);
  EXPECT_GE(a->pkt.src, Ip("203.0.113.5"));
  EXPECT_LE(a->pkt.src, Ip("203.0.113.8"));
  // find_appropriate_src: the same source (address and port) keeps its mapping.
  for (const char* server : {"198.51.100.21", "198.51.100.30", "198.51.100.99", "198.51.100.7"}) {
    auto b = h.LanToWan(Udp4("192.0.2.10", 6000, server, 53), snat);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->pkt.src, a->pkt.src) << server;
    EXPECT_EQ(b->pkt.sport, 6000);
  }
}

TEST(NatEngineTest, AFlowLeavesTheBySourceIndexWhenItIsDestroyed) {
  auto snat = [] { return Snat("203.0.113.1", "203.0.113.254"); };
  const std::vector<uint8_t> first = Udp4("192.0.2.10", 6000, "198.51.100.20", 53);
  auto fresh_address = [&](const std::string& server) {
    NatHarness fresh;
    auto b = fresh.LanToWan(Udp4("192.0.2.10", 6000, server, 53), snat);
    EXPECT_TRUE(b);
    return b ? b->pkt.src : IpAddress{};
  };
  NatHarness probe;
  auto a = probe.LanToWan(first, snat);
  ASSERT_TRUE(a);
  // A server for which the address hash alone picks another address than the first flow got.
  std::string server;
  for (int i = 21; i < 60 && server.empty(); ++i) {
    const std::string s = "198.51.100." + std::to_string(i);
    if (fresh_address(s) != a->pkt.src) server = s;
  }
  ASSERT_FALSE(server.empty());
  ASSERT_NE(fresh_address(server), Ip("203.0.113.250"));

  for (bool destroy : {false, true}) {
    SCOPED_TRACE(destroy ? "first flow destroyed" : "first flow alive");
    NatHarness h;
    auto f1 = h.LanToWan(first, snat, kNanosPerSecond);
    ASSERT_TRUE(f1);
    Nanos now = kNanosPerSecond;
    if (destroy) {
      const FlowIndex slot = f1->ct.flow;
      now += 31 * kNanosPerSecond;  // past the unreplied UDP timeout
      ASSERT_EQ(h.conntrack().Expire(now, 16), 1u);
      // The slot's next occupant, with the same source, comes from a peer (no binding here):
      // an index entry left behind by the destroyed flow would offer its mapping.
      Flow peer;
      peer.tuple[0] = h.FlowOf(*f1).tuple[0];
      peer.tuple[0].dst = Ip("198.51.100.200");
      peer.tuple[1] = *InvertTuple(peer.tuple[0]);
      peer.tuple[1].dst = Ip("203.0.113.250");
      peer.status = kIpsSrcNat | kIpsSrcNatDone | kIpsDstNatDone;
      peer.expires = now + 100 * kNanosPerSecond;
      auto idx = h.conntrack().Insert(peer, nullptr, now);
      ASSERT_TRUE(idx.ok());
      ASSERT_EQ(*idx, slot);
    }
    auto b = h.LanToWan(Udp4("192.0.2.10", 6000, server, 53), snat, now);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->pkt.src, destroy ? fresh_address(server) : a->pkt.src);
  }
}

TEST(NatEngineTest, PersistentKeepsOneAddressPerClientAcrossPorts) {
  NatHarness h;
  auto snat = [] {
    Verdict v = Snat("203.0.113.1", "203.0.113.200");
    v.nat.persistent = true;
    return v;
  };
  std::set<IpAddress> per_client;
  for (uint16_t port = 7000; port < 7010; ++port) {
    auto b =
        h.LanToWan(Udp4("192.0.2.10", port, "198.51.100." + std::to_string(port % 50), 53), snat);
    ASSERT_TRUE(b);
    per_client.insert(b->pkt.src);
  }
  EXPECT_EQ(per_client.size(), 1u);
  // Different clients spread over the range (the hash is of the source address).
  std::set<IpAddress> clients;
  for (int host = 10; host < 40; ++host) {
    auto b = h.LanToWan(Udp4("192.0.2." + std::to_string(host), 9000, "198.51.100.20", 53), snat);
    ASSERT_TRUE(b);
    EXPECT_GE(b->pkt.src, Ip("203.0.113.1"));
    EXPECT_LE(b->pkt.src, Ip("203.0.113.200"));
    clients.insert(b->pkt.src);
  }
  EXPECT_GT(clients.size(), 10u);
}

TEST(NatEngineTest, RandomFullyChangesThePortEvenWithoutClash) {
  NatHarness h;
  int moved = 0;
  for (int i = 0; i < 8; ++i) {
    auto b =
        h.LanToWan(Udp4("192.0.2.10", static_cast<uint16_t>(30000 + i), "198.51.100.20", 53), [] {
          Verdict v = Snat("203.0.113.5");
          v.nat.random_fully = true;
          return v;
        });
    ASSERT_TRUE(b);
    if (b->pkt.sport != 30000 + i) ++moved;
    EXPECT_GE(b->pkt.sport, 1024);
  }
  EXPECT_GE(moved, 7);
}

TEST(NatEngineTest, IcmpEchoIdClashGetsANewIdAndRepliesFindTheirWayBack) {
  NatHarness h;
  auto snat = [] { return Snat("203.0.113.5"); };
  auto ping = [](const char* src) {
    return PacketBuilder().Ipv4(src, "198.51.100.20").IcmpEcho(true, 77, 1).Build();
  };
  auto a = h.LanToWan(ping("192.0.2.10"), snat);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->pkt.icmp_id, 77);
  auto b = h.LanToWan(ping("192.0.2.11"), snat);
  ASSERT_TRUE(b);
  const uint16_t new_id = h.FlowOf(*b).tuple[1].sport;
  EXPECT_NE(new_id, 77);
  EXPECT_EQ(b->pkt.icmp_id, new_id);
  ParsedPacket reparsed;
  ASSERT_TRUE(ParseEthernet(b->frame, &reparsed).ok());
  EXPECT_EQ(reparsed.icmp_id, new_id);
  ExpectChecksumsValid(*b);
  auto r = h.WanToLan(
      PacketBuilder().Ipv4("198.51.100.20", "203.0.113.5").IcmpEcho(false, new_id, 1).Build(),
      Accept);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->pkt.dst, Ip("192.0.2.11"));
  EXPECT_EQ(r->pkt.icmp_id, 77);
  ExpectChecksumsValid(*r);
}

TEST(NatEngineTest, UdpZeroChecksumStaysZero) {
  NatHarness h;
  std::vector<uint8_t> f = Udp4("192.0.2.10", 6000, "198.51.100.20", 53, "abcd");
  f[14 + 20 + 6] = 0;
  f[14 + 20 + 7] = 0;
  auto b = h.LanToWan(f, [] { return Snat("203.0.113.5"); });
  ASSERT_TRUE(b);
  EXPECT_EQ(b->pkt.src, Ip("203.0.113.5"));
  EXPECT_EQ(LoadBe16(b->frame.data() + b->pkt.l4_offset + 6), 0);
}

TEST(NatEngineTest, UntrackedPacketsNeverReachTheNatTable) {
  NatHarness h;
  PacketBuffer b = NatHarness::Buffer(Udp4("192.0.2.10", 5300, "198.51.100.20", 53), h.lan());
  b.tmpl.notrack = true;
  ASSERT_EQ(h.conntrack().In(b.pkt, b.frame, false, CtHookPoint::kPrerouting, b.tmpl, 0, &b.ct),
            CtVerdict::kAccept);
  int calls = 0;
  const std::vector<uint8_t> before = b.frame;
  EXPECT_TRUE(h.nat().Apply(
      Hook::kPostrouting, b,
      [&] {
        ++calls;
        return Snat("203.0.113.5");
      },
      h.topology(), 0));
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(b.frame, before);
}

TEST(NatEngineTest, NatTableDropDropsThePacket) {
  NatHarness h;
  EXPECT_FALSE(h.LanToWan(Syn("192.0.2.10", 40000), [] {
    Verdict v;
    v.kind = Verdict::kDrop;
    return v;
  }));
  EXPECT_EQ(h.nat().counters().rule_drops, 1u);
  EXPECT_EQ(h.conntrack().table().size(), 0u);
}

TEST(NatEngineTest, IcmpErrorQuotingATruncatedTcpSegmentIsTranslated) {
  NatHarness h;
  auto a = h.LanToWan(Syn("192.0.2.10", 40000), [] { return Snat("203.0.113.5"); });
  ASSERT_TRUE(a);
  // The router quotes only the IP header and 8 bytes of TCP (RFC 792 minimum).
  std::vector<uint8_t> quote(a->frame.begin() + 14, a->frame.begin() + 14 + 28);
  auto e = h.WanToLan(
      PacketBuilder().Ipv4("198.51.100.254", "203.0.113.5").IcmpError(11, 0, quote).Build(),
      Accept);
  ASSERT_TRUE(e);
  // The quote matches the flow's reply tuple once inverted: RELATED in the reply direction.
  EXPECT_EQ(e->ct.info, CtInfo::kRelatedReply);
  EXPECT_EQ(e->pkt.dst, Ip("192.0.2.10"));
  const ParsedPacket inner = Inner(*e);
  EXPECT_EQ(inner.src, Ip("192.0.2.10"));
  EXPECT_EQ(inner.sport, 40000);
  EXPECT_TRUE(VerifyIpv4HeaderChecksum(InnerBytes(*e).subspan(0, 20)));
  ExpectChecksumsValid(*e);  // outer IP + ICMP over the whole message
  EXPECT_EQ(h.nat().counters().icmp_translated, 1u);
}

TEST(NatEngineTest, IcmpErrorQuotingAWholeSegmentFixesTheInnerTcpChecksum) {
  NatHarness h;
  auto a = h.LanToWan(Syn("192.0.2.10", 40000), [] { return Snat("203.0.113.5"); });
  ASSERT_TRUE(a);
  std::vector<uint8_t> quote(a->frame.begin() + 14, a->frame.end());
  auto e = h.WanToLan(
      PacketBuilder().Ipv4("198.51.100.20", "203.0.113.5").IcmpError(3, 13, quote).Build(), Accept);
  ASSERT_TRUE(e);
  const ParsedPacket inner = Inner(*e);
  EXPECT_EQ(inner.src, Ip("192.0.2.10"));
  EXPECT_TRUE(VerifyL4Checksum(inner, InnerBytes(*e)));
  ExpectChecksumsValid(*e);
}

TEST(NatEngineTest, IcmpErrorWithBadChecksumIsDropped) {
  NatHarness h;
  auto a =
      h.LanToWan(Udp4("192.0.2.10", 5000, "198.51.100.20", 53), [] { return Snat("203.0.113.5"); });
  ASSERT_TRUE(a);
  std::vector<uint8_t> quote(a->frame.begin() + 14, a->frame.end());
  PacketBuffer e = NatHarness::Buffer(
      PacketBuilder().Ipv4("198.51.100.20", "203.0.113.5").IcmpError(3, 3, quote).Build(), h.wan());
  ASSERT_EQ(h.conntrack().In(e.pkt, e.frame, false, CtHookPoint::kPrerouting, e.tmpl, 0, &e.ct),
            CtVerdict::kAccept);
  ASSERT_EQ(e.ct.info, CtInfo::kRelatedReply);
  e.frame[e.pkt.l4_offset + 2] ^= 0x55;  // corrupted after conntrack looked at it
  EXPECT_FALSE(h.nat().Apply(Hook::kPrerouting, e, Accept, h.topology(), 0));
  EXPECT_EQ(h.nat().counters().icmp_bad_checksum, 1u);
}

TEST(NatEngineTest, Ipv6SnatTcpAndReply) {
  NatHarness h;
  auto b = h.LanToWan(PacketBuilder()
                          .Ipv6("2001:db8:1::10", "2001:db8:2::20")
                          .Tcp(41000, 443)
                          .TcpFlags(kTcpSyn)
                          .Seq(1)
                          .Build(),
                      [] { return Snat("2001:db8:2::99"); });
  ASSERT_TRUE(b);
  EXPECT_EQ(b->pkt.src, Ip("2001:db8:2::99"));
  ExpectChecksumsValid(*b);
  auto r = h.WanToLan(PacketBuilder()
                          .Ipv6("2001:db8:2::20", "2001:db8:2::99")
                          .Tcp(443, 41000)
                          .TcpFlags(kTcpSyn | kTcpAck)
                          .Seq(7)
                          .Ack(2)
                          .Build(),
                      Accept);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->pkt.dst, Ip("2001:db8:1::10"));
  ExpectChecksumsValid(*r);
}

TEST(NatEngineTest, Ipv6MasqueradeEchoAndIcmpv6ErrorTranslation) {
  NatHarness h;
  auto masq = [] { return NatVerdict(NatKind::kMasquerade); };
  auto ping = h.LanToWan(
      PacketBuilder().Ipv6("2001:db8:1::10", "2001:db8:2::20").IcmpEcho(true, 9, 1).Build(), masq);
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->pkt.src, Ip("2001:db8:2::1"));
  ExpectChecksumsValid(*ping);

  auto udp = h.LanToWan(PacketBuilder()
                            .Ipv6("2001:db8:1::10", "2001:db8:2::20")
                            .Udp(5555, 53)
                            .Payload("query")
                            .Build(),
                        masq);
  ASSERT_TRUE(udp);
  EXPECT_EQ(udp->pkt.src, Ip("2001:db8:2::1"));
  ExpectChecksumsValid(*udp);
  std::vector<uint8_t> quote(udp->frame.begin() + 14, udp->frame.end());
  auto e = h.WanToLan(
      PacketBuilder().Ipv6("2001:db8:2::20", "2001:db8:2::1").IcmpError(1, 4, quote).Build(),
      Accept);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->pkt.dst, Ip("2001:db8:1::10"));
  const ParsedPacket inner = Inner(*e);
  EXPECT_EQ(inner.src, Ip("2001:db8:1::10"));
  EXPECT_EQ(inner.sport, 5555);
  EXPECT_TRUE(VerifyL4Checksum(inner, InnerBytes(*e)));
  ExpectChecksumsValid(*e);  // ICMPv6 checksum with the new outer pseudo-header
}

// Reassembles `pieces` (Ethernet frames) with a fresh defragmenter.
std::optional<DefragResult> Reassemble(const std::vector<std::vector<uint8_t>>& pieces) {
  Defragmenter d;
  for (const auto& f : pieces) {
    ParsedPacket p;
    EXPECT_TRUE(ParseEthernet(f, &p).ok());
    DefragResult r = d.Add(p, f, 0, 0);
    if (r.kind == DefragResult::Kind::kReassembled) return r;
  }
  return std::nullopt;
}

TEST(NatEngineTest, Ipv6ReassembledDatagramIsNattedWholeAndRefragmented) {
  NatHarness h;
  const std::string data(1800, 'z');
  const std::vector<uint8_t> whole = PacketBuilder()
                                         .Ipv6("2001:db8:1::10", "2001:db8:2::20")
                                         .Udp(6300, 7300)
                                         .Payload(data)
                                         .Build();
  FragmentLayout layout;
  layout.family = Family::kIpv6;
  layout.id = 0x1234;
  layout.payload_sizes = {1232, 576};  // 8 + 1800 bytes of UDP
  layout.v6_unfragmentable_len = 40;
  layout.v6_nexthdr_field = 6;
  auto pieces = Refragment(whole, layout);
  ASSERT_TRUE(pieces.ok()) << pieces.status();
  auto in = Reassemble(*pieces);
  ASSERT_TRUE(in);
  PacketBuffer b = NatHarness::Buffer(std::move(in->frame), h.lan());
  b.frag_layout = in->layout;
  ASSERT_TRUE(h.Forward(
      b, h.wan(), Accept, [] { return NatVerdict(NatKind::kMasquerade); }, 0));
  EXPECT_EQ(b.pkt.src, Ip("2001:db8:2::1"));
  ExpectChecksumsValid(b);  // the UDP checksum covers all 1808 bytes
  auto out = Refragment(b.frame, *b.frag_layout);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 2u);
  auto again = Reassemble(*out);
  ASSERT_TRUE(again);
  ParsedPacket p;
  ASSERT_TRUE(ParseEthernet(again->frame, &p).ok());
  EXPECT_EQ(p.src, Ip("2001:db8:2::1"));
  EXPECT_EQ(p.sport, 6300);
  EXPECT_TRUE(VerifyL4Checksum(p, again->frame));
}

TEST(NatEngineTest, LocallyGeneratedErrorForARedirectedFlowLeavesWithTheOriginalAddress) {
  NatHarness h;
  // redirect_local: udp/53 from the LAN redirected to the firewall's port 5353.
  PacketBuffer q =
      NatHarness::Buffer(Udp4("192.0.2.10", 40051, "198.51.100.20", 53, "dns"), h.lan());
  ASSERT_EQ(h.conntrack().In(q.pkt, q.frame, false, CtHookPoint::kPrerouting, q.tmpl, 0, &q.ct),
            CtVerdict::kAccept);
  ASSERT_TRUE(h.nat().Apply(
      Hook::kPrerouting, q,
      [] {
        Verdict v = NatVerdict(NatKind::kRedirect);
        v.nat.has_ports = true;
        v.nat.min_port = v.nat.max_port = 5353;
        return v;
      },
      h.topology(), 0));
  ASSERT_TRUE(h.nat().Apply(Hook::kInput, q, Accept, h.topology(), 0));
  ASSERT_EQ(h.conntrack().Confirm(q.ct, 0), CtVerdict::kAccept);
  EXPECT_EQ(q.pkt.dst, Ip("192.0.2.1"));

  // The stack answers port unreachable from 192.0.2.1 quoting what it received.
  std::vector<uint8_t> quote(q.frame.begin() + 14, q.frame.end());
  PacketBuffer e = NatHarness::Buffer(
      PacketBuilder().Ipv4("192.0.2.1", "192.0.2.10").IcmpError(3, 3, quote).Build(), -1);
  ASSERT_EQ(h.conntrack().In(e.pkt, e.frame, false, CtHookPoint::kLocalOut, e.tmpl, 0, &e.ct),
            CtVerdict::kAccept);
  ASSERT_EQ(e.ct.info, CtInfo::kRelatedReply);
  ASSERT_TRUE(h.nat().Apply(Hook::kOutput, e, Accept, h.topology(), 0));
  EXPECT_EQ(e.pkt.src, Ip("192.0.2.1"));  // nothing to undo at OUTPUT
  e.out_iface = h.lan();
  ASSERT_TRUE(h.nat().Apply(Hook::kPostrouting, e, Accept, h.topology(), 0));
  EXPECT_EQ(e.pkt.src, Ip("198.51.100.20"));
  const ParsedPacket inner = Inner(e);
  EXPECT_EQ(inner.dst, Ip("198.51.100.20"));
  EXPECT_EQ(inner.dport, 53);
  EXPECT_TRUE(VerifyL4Checksum(inner, InnerBytes(e)));
  ExpectChecksumsValid(e);
}

}  // namespace
}  // namespace ctsync::nat_test

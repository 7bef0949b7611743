#include "core/conntrack/conntrack_engine.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "core/packet/packet_builder.h"
#include "core/packet/packet_parser.h"
#include "gtest/gtest.h"

namespace ctsync {
namespace {

class RecordingSink : public LogSink {
 public:
  void Log(LogSeverity, std::string_view m) override { lines.emplace_back(m); }
  std::vector<std::string> lines;
};

std::unique_ptr<ConntrackEngine> SmallEngine(int max, LogSink* sink, size_t ring = 64) {
  ConntrackOptions o;
  o.settings.nf_conntrack_max = max;
  o.settings.nf_conntrack_buckets = 64;
  o.event_ring_capacity = ring;
  o.log = sink;
  return std::move(*ConntrackEngine::Create(o, 0));
}

CtVerdict Send(ConntrackEngine& e, const std::vector<uint8_t>& frame, Nanos now, CtAttachment* ct) {
  ParsedPacket p;
  EXPECT_TRUE(ParseEthernet(frame, &p).ok());
  const CtVerdict v = e.In(p, frame, false, CtHookPoint::kPrerouting, CtTemplate{}, now, ct);
  if (v == CtVerdict::kAccept) return e.Confirm(*ct, now);
  return v;
}

std::vector<uint8_t> Udp(uint16_t sport) {
  return PacketBuilder().Ipv4("192.0.2.10", "198.51.100.20").Udp(sport, 53).Payload("q").Build();
}

TEST(ConntrackEngineTest, TableFullDropsCountsAndLogsRateLimited) {
  RecordingSink sink;
  auto e = SmallEngine(4, &sink);
  CtAttachment ct;
  for (uint16_t p = 1000; p < 1004; ++p) ASSERT_EQ(Send(*e, Udp(p), kNanosPerSecond, &ct), CtVerdict::kAccept);
  // Full of unassured flows: early drop makes room (the kernel's early_drop).
  ASSERT_EQ(Send(*e, Udp(2000), kNanosPerSecond, &ct), CtVerdict::kAccept);
  EXPECT_GE(e->stats().early_drop, 1u);
  // Make every flow ASSURED: now nothing may be evicted and new flows are dropped.
  e->table().ForEach([&](FlowIndex i, const Flow&) { e->table().flow(i).status |= kIpsAssured; });
  for (int i = 0; i < 30; ++i)
    EXPECT_EQ(Send(*e, Udp(static_cast<uint16_t>(3000 + i)), 2 * kNanosPerSecond, &ct), CtVerdict::kDrop);
  EXPECT_EQ(e->stats().drop, 30u);
  ASSERT_EQ(sink.lines.size(), 10u);  // net_ratelimit: 10 per 5 s
  EXPECT_EQ(sink.lines[0], "nf_conntrack: table full, dropping packet");
  EXPECT_EQ(Send(*e, Udp(4000), 8 * kNanosPerSecond, &ct), CtVerdict::kDrop);
  EXPECT_EQ(sink.lines.size(), 11u);
}

TEST(ConntrackEngineTest, EarlyDropRunsTheDestroyHooks) {
  // NAT's by-source index and the helpers forget a flow through the destroy hooks; an
  // early-dropped flow is destroyed like any other (the kernel's nf_ct_destroy).
  auto e = SmallEngine(4, nullptr);
  std::vector<FlowIndex> destroyed;
  e->add_destroy_hook([&](FlowIndex idx) { destroyed.push_back(idx); });
  CtAttachment ct;
  std::vector<FlowIndex> flows;
  for (uint16_t p = 1000; p < 1004; ++p) {
    ASSERT_EQ(Send(*e, Udp(p), kNanosPerSecond, &ct), CtVerdict::kAccept);
    flows.push_back(ct.flow);
  }
  ASSERT_EQ(Send(*e, Udp(2000), kNanosPerSecond, &ct), CtVerdict::kAccept);
  ASSERT_GE(e->stats().early_drop, 1u);
  EXPECT_EQ(destroyed.size(), e->stats().early_drop);
  for (FlowIndex idx : destroyed) {
    EXPECT_NE(std::find(flows.begin(), flows.end(), idx), flows.end());
  }
}

TEST(ConntrackEngineTest, EventStreamCarriesNewUpdateDestroy) {
  auto e = SmallEngine(64, nullptr);
  CtAttachment ct;
  ASSERT_EQ(Send(*e, Udp(1000), kNanosPerSecond, &ct), CtVerdict::kAccept);
  auto ev = e->events().Pop();
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->type, FlowEventType::kNew);
  EXPECT_EQ(ev->flow.tuple[0].sport, 1000);
  // The reply sets SEEN_REPLY: an UPDATE with the status change.
  const auto reply =
      PacketBuilder().Ipv4("198.51.100.20", "192.0.2.10").Udp(53, 1000).Payload("a").Build();
  ASSERT_EQ(Send(*e, reply, kNanosPerSecond + 1000, &ct), CtVerdict::kAccept);
  ev = e->events().Pop();
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->type, FlowEventType::kUpdate);
  EXPECT_TRUE(ev->changes & kChangeStatus);
  EXPECT_TRUE(ev->flow.status & kIpsSeenReply);
  // Expiry: DESTROY with the flow's last state.
  EXPECT_EQ(e->Expire(100 * kNanosPerSecond, 100), 1u);
  ev = e->events().Pop();
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->type, FlowEventType::kDestroy);
  EXPECT_FALSE(e->events().Pop());
}

TEST(ConntrackEngineTest, BoundedRingCountsDropsInsteadOfBlocking) {
  auto e = SmallEngine(1024, nullptr, 4);
  CtAttachment ct;
  for (uint16_t p = 1000; p < 1010; ++p) ASSERT_EQ(Send(*e, Udp(p), kNanosPerSecond, &ct), CtVerdict::kAccept);
  EXPECT_EQ(e->events().size(), 4u);
  EXPECT_EQ(e->events().dropped(), 6u);
}

TEST(ConntrackEngineTest, TrafficAloneReannouncesLongLivedFlows) {
  auto e = SmallEngine(64, nullptr);
  CtAttachment ct;
  ASSERT_EQ(Send(*e, Udp(1000), kNanosPerSecond, &ct), CtVerdict::kAccept);
  while (e->events().Pop()) {
  }
  // Same flow again 5 s later: its 30 s lifetime moved, but under half of it has passed.
  ASSERT_EQ(Send(*e, Udp(1000), 6 * kNanosPerSecond, &ct), CtVerdict::kAccept);
  EXPECT_FALSE(e->events().Pop());
  // 20 s after the last announcement: peers would hold a copy about to expire.
  ASSERT_EQ(Send(*e, Udp(1000), 21 * kNanosPerSecond, &ct), CtVerdict::kAccept);
  auto ev = e->events().Pop();
  ASSERT_TRUE(ev);
  EXPECT_TRUE(ev->changes & kChangeTimeout);
}

TEST(ConntrackEngineTest, InsertedFlowsAreFoundInBothDirections) {
  auto e = SmallEngine(64, nullptr);
  Flow f;
  f.tuple[0] = {*IpAddress::Parse("192.0.2.10"), *IpAddress::Parse("198.51.100.20"), 5000, 53,
                Family::kIpv4, kProtoUdp};
  f.tuple[1] = {*IpAddress::Parse("198.51.100.20"), *IpAddress::Parse("203.0.113.5"), 53, 6000,
                Family::kIpv4, kProtoUdp};
  f.status = kIpsSeenReply | kIpsSrcNat;
  f.expires = 50 * kNanosPerSecond;
  auto idx = e->Insert(f, nullptr, kNanosPerSecond);
  ASSERT_TRUE(idx.ok());
  EXPECT_EQ(e->Insert(f, nullptr, kNanosPerSecond).status().code(), absl::StatusCode::kAlreadyExists);
  const auto reply =
      PacketBuilder().Ipv4("198.51.100.20", "203.0.113.5").Udp(53, 6000).Payload("a").Build();
  CtAttachment ct;
  ASSERT_EQ(Send(*e, reply, 2 * kNanosPerSecond, &ct), CtVerdict::kAccept);
  EXPECT_EQ(ct.flow, *idx);
  EXPECT_EQ(ct.info, CtInfo::kEstablishedReply);
}

// nf_conntrack_acct: off (the kernel's default) the table keeps no counters and events carry
// none; on, each direction counts packets and IP bytes, and events carry the totals.
TEST(ConntrackEngineTest, AccountingOnlyWithTheSysctl) {
  const auto query = Udp(1234);  // 29 bytes of IP: 20 + 8 + "q"
  const auto answer = PacketBuilder()
                          .Ipv4("198.51.100.20", "192.0.2.10")
                          .Udp(53, 1234)
                          .Payload("answer")
                          .Build();
  auto off = SmallEngine(64, nullptr);
  CtAttachment ct;
  ASSERT_EQ(Send(*off, query, kNanosPerSecond, &ct), CtVerdict::kAccept);
  EXPECT_EQ(off->table().accounting(ct.flow), nullptr);
  auto ev = off->events().Pop();
  ASSERT_TRUE(ev);
  EXPECT_FALSE(ev->has_counters);

  ConntrackOptions o;
  o.settings.nf_conntrack_max = 64;
  o.settings.nf_conntrack_buckets = 64;
  o.settings.nf_conntrack_acct = true;
  o.event_ring_capacity = 64;
  auto on = std::move(*ConntrackEngine::Create(o, 0));
  ASSERT_EQ(Send(*on, query, kNanosPerSecond, &ct), CtVerdict::kAccept);
  ASSERT_EQ(Send(*on, query, kNanosPerSecond, &ct), CtVerdict::kAccept);
  ASSERT_EQ(Send(*on, answer, 2 * kNanosPerSecond, &ct), CtVerdict::kAccept);
  const FlowAccounting* a = on->table().accounting(ct.flow);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dir[0], (FlowCounters{2, 58}));
  EXPECT_EQ(a->dir[1], (FlowCounters{1, 34}));
  std::optional<FlowEvent> last;
  while (auto e = on->events().Pop()) last = e;
  ASSERT_TRUE(last);  // the reply's status change (SEEN_REPLY)
  EXPECT_TRUE(last->has_counters);
  EXPECT_EQ(last->counters.dir[1], (FlowCounters{1, 34}));

  // Switched on at run time: flows count from then on.
  ConntrackSettings s = off->settings();
  s.nf_conntrack_acct = true;
  off->SetSettings(s);
  ASSERT_EQ(Send(*off, answer, 2 * kNanosPerSecond, &ct), CtVerdict::kAccept);
  ASSERT_NE(off->table().accounting(ct.flow), nullptr);
  EXPECT_EQ(off->table().accounting(ct.flow)->dir[0], FlowCounters{});
  EXPECT_EQ(off->table().accounting(ct.flow)->dir[1], (FlowCounters{1, 34}));
}

}  // namespace
}  // namespace ctsync

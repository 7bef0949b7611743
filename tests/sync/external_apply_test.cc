#include "sync/external_apply.h"

#include <chrono>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/sync/test_flows.h"

namespace ctsync::sync {
namespace {

using testing::MakeTcpNatFlow;

constexpr Nanos kNow = 100 * kNanosPerSecond;

std::unique_ptr<ConntrackEngine> MakeEngine(int max_flows = 4096, bool accounting = false) {
  ConntrackOptions o;
  o.settings.nf_conntrack_acct = accounting;
  o.settings.nf_conntrack_max = max_flows;
  o.settings.nf_conntrack_buckets = max_flows;
  o.event_ring_capacity = 1 << 16;
  auto e = ConntrackEngine::Create(o, kNow);
  EXPECT_TRUE(e.ok());
  return std::move(*e);
}

PeerFlowUpdate Update(FlowEventType type, const Flow& f, uint32_t peer = 2) {
  PeerFlowUpdate u;
  u.peer = peer;
  u.type = type;
  u.decoded.flow = f;
  u.decoded.remaining = f.expires - kNow;
  u.original = f.tuple[0];
  u.zone = f.zone;
  return u;
}

TEST(ExternalCacheTest, ApplyBatchGivesTheSameResultsAsApplyInOrder) {
  // Within one batch a flow is created, updated, re-keyed and destroyed, another is created
  // twice, and a third collides with a local flow: the prefetch must not change any result.
  const Flow a = MakeTcpNatFlow(1, kNow);
  Flow a2 = a;
  a2.mark = 5;
  Flow a3 = a2;
  a3.tuple[1].dport = 40000;
  const Flow b = MakeTcpNatFlow(2, kNow);
  const Flow local = MakeTcpNatFlow(3, kNow);
  const std::vector<PeerFlowUpdate> us = {
      Update(FlowEventType::kNew, a),      Update(FlowEventType::kUpdate, a2),
      Update(FlowEventType::kNew, b),      Update(FlowEventType::kUpdate, a3),
      Update(FlowEventType::kNew, local),  Update(FlowEventType::kDestroy, a3),
      Update(FlowEventType::kNew, b),      Update(FlowEventType::kDestroy, a)};
  auto one = MakeEngine();
  auto batched = MakeEngine();
  for (ConntrackEngine* e : {one.get(), batched.get()}) ASSERT_TRUE(e->Insert(local, nullptr, kNow).ok());
  ExternalCache ext_one(*one), ext_batched(*batched);
  std::vector<ExternalCache::Result> want, got;
  for (const PeerFlowUpdate& u : us) want.push_back(ext_one.Apply(u, kNow));
  ext_batched.ApplyBatch(us, kNow, [&](const PeerFlowUpdate&, ExternalCache::Result r) {
    got.push_back(r);
  });
  EXPECT_EQ(got, want);
  EXPECT_EQ(want[0], ExternalCache::Result::kInserted);
  EXPECT_EQ(want[3], ExternalCache::Result::kReplaced);
  EXPECT_EQ(want[4], ExternalCache::Result::kLocalConflict);
  EXPECT_EQ(want[5], ExternalCache::Result::kDestroyed);
  EXPECT_EQ(want[7], ExternalCache::Result::kUnknown);
  EXPECT_EQ(batched->table().confirmed_count(), one->table().confirmed_count());
  EXPECT_EQ(ext_batched.stats().inserted, ext_one.stats().inserted);
}

TEST(ExternalCacheTest, InsertUpdateDestroy) {
  auto engine = MakeEngine();
  ExternalCache ext(*engine);
  const Flow f = MakeTcpNatFlow(1, kNow);
  EXPECT_EQ(ext.Apply(Update(FlowEventType::kNew, f), kNow), ExternalCache::Result::kInserted);
  const FlowLookup l = engine->table().Find(f.tuple[1], 0);  // findable by the NAT reply
  ASSERT_TRUE(l.found());
  EXPECT_EQ(l.dir, Direction::kReply);
  EXPECT_TRUE(ext.IsExternal(l.idx));
  EXPECT_EQ(ext.PeerOf(l.idx), 2u);
  EXPECT_EQ(engine->table().flow(l.idx).tcp, f.tcp);
  EXPECT_EQ(engine->table().flow(l.idx).expires, f.expires);

  Flow g = f;
  g.tcp.state = TcpState::kFinWait;
  g.mark = 9;
  g.expires = kNow + 120 * kNanosPerSecond;
  EXPECT_EQ(ext.Apply(Update(FlowEventType::kUpdate, g), kNow), ExternalCache::Result::kUpdated);
  EXPECT_EQ(engine->table().flow(l.idx).tcp.state, TcpState::kFinWait);
  EXPECT_EQ(engine->table().flow(l.idx).mark, 9u);
  EXPECT_EQ(engine->table().flow(l.idx).expires, g.expires);

  // A new NAT binding re-keys the entry.
  Flow h = g;
  h.tuple[1].dport = 40000;
  EXPECT_EQ(ext.Apply(Update(FlowEventType::kUpdate, h), kNow), ExternalCache::Result::kReplaced);
  EXPECT_FALSE(engine->table().Find(g.tuple[1], 0).found());
  EXPECT_TRUE(engine->table().Find(h.tuple[1], 0).found());

  EXPECT_EQ(ext.Apply(Update(FlowEventType::kDestroy, h), kNow),
            ExternalCache::Result::kDestroyed);
  EXPECT_EQ(engine->table().confirmed_count(), 0u);
  EXPECT_EQ(ext.Apply(Update(FlowEventType::kDestroy, h), kNow), ExternalCache::Result::kUnknown);
  EXPECT_EQ(ext.stats().inserted, 1u);
  EXPECT_EQ(ext.stats().replaced, 1u);
  EXPECT_EQ(ext.stats().destroyed, 1u);
  EXPECT_EQ(ext.stats().unknown_destroy, 1u);
}

// A peer's counters are kept where accounting is on (inserted, then updated in place) and
// dropped where it is off, as the kernel's ctnetlink does without the acct extension.
TEST(ExternalCacheTest, CountersFollowTheBackupsAccountingSetting) {
  const Flow f = MakeTcpNatFlow(1, kNow);
  PeerFlowUpdate u = Update(FlowEventType::kNew, f);
  u.decoded.counters.dir[0] = {4, 400};
  u.decoded.counters.dir[1] = {3, 3000};
  auto counting = MakeEngine(64, /*accounting=*/true);
  auto plain = MakeEngine(64);
  ExternalCache ext_counting(*counting), ext_plain(*plain);
  ASSERT_EQ(ext_counting.Apply(u, kNow), ExternalCache::Result::kInserted);
  ASSERT_EQ(ext_plain.Apply(u, kNow), ExternalCache::Result::kInserted);
  const FlowIndex idx = counting->table().Find(f.tuple[0], 0).idx;
  EXPECT_EQ(counting->table().accounting(idx)->dir[0], (FlowCounters{4, 400}));
  EXPECT_EQ(counting->table().accounting(idx)->dir[1], (FlowCounters{3, 3000}));
  EXPECT_EQ(plain->table().accounting(plain->table().Find(f.tuple[0], 0).idx), nullptr);

  u.type = FlowEventType::kUpdate;
  u.decoded.counters.dir[1] = {5, 5000};
  ASSERT_EQ(ext_counting.Apply(u, kNow), ExternalCache::Result::kUpdated);
  EXPECT_EQ(counting->table().accounting(idx)->dir[1], (FlowCounters{5, 5000}));
}

TEST(ExternalCacheTest, MasterUpdatesCarryHelperStateAndTheirExpectation) {
  auto engine = MakeEngine();
  ExternalCache ext(*engine);
  Flow master = MakeTcpNatFlow(1, kNow);
  master.helper = FlowHelper::kFtp;
  PeerFlowUpdate u = Update(FlowEventType::kNew, master);
  FtpLineState st;
  st.seq_aft_nl[0][0] = 1234;
  st.seq_aft_nl_num[0] = 1;
  u.decoded.ftp_state = st;
  Expectation e;
  e.tuple = master.tuple[1];
  e.tuple.sport = 0;
  e.tuple.dport = 50000;
  e.mask = e.tuple;  // exact match but for the source port
  e.mask.sport = 0;
  e.expires = kNow + 300 * kNanosPerSecond;
  u.decoded.expectation = e;
  ASSERT_EQ(ext.Apply(u, kNow), ExternalCache::Result::kInserted);
  const FlowLookup m = engine->table().Find(master.tuple[0], 0);
  ASSERT_TRUE(m.found());
  ASSERT_NE(engine->table().ftp_state(m.idx), nullptr);
  EXPECT_EQ(*engine->table().ftp_state(m.idx), st);
  ASSERT_EQ(engine->expectations().size(), 1u);
  EXPECT_EQ(engine->expectations().all()[0].master, m.idx);  // this node's index

  // An update replaces the expectation (the FTP helper allows one per master).
  u.type = FlowEventType::kUpdate;
  u.decoded.expectation->tuple.dport = 50001;
  ASSERT_EQ(ext.Apply(u, kNow), ExternalCache::Result::kUpdated);
  ASSERT_EQ(engine->expectations().size(), 1u);
  EXPECT_EQ(engine->expectations().all()[0].tuple.dport, 50001);

  // The data connection the peer saw consumes it here too, and is related to the master.
  Flow data = MakeTcpNatFlow(2, kNow);
  data.tuple[0] = u.decoded.expectation->tuple;
  data.tuple[0].sport = 20;
  data.tuple[1] = data.tuple[0];
  std::swap(data.tuple[1].src, data.tuple[1].dst);
  std::swap(data.tuple[1].sport, data.tuple[1].dport);
  data.status |= kIpsExpected;
  PeerFlowUpdate du = Update(FlowEventType::kNew, data);
  du.decoded.master_tuple = master.tuple[0];
  ASSERT_EQ(ext.Apply(du, kNow), ExternalCache::Result::kInserted);
  EXPECT_EQ(engine->expectations().size(), 0u);
  const FlowLookup d = engine->table().Find(data.tuple[0], 0);
  ASSERT_TRUE(d.found());
  EXPECT_EQ(engine->table().flow(d.idx).master, m.idx);

  // An update without an expectation means the master has none left.
  u.decoded.expectation.reset();
  u.decoded.expectation = e;
  ASSERT_EQ(ext.Apply(u, kNow), ExternalCache::Result::kUpdated);
  EXPECT_EQ(engine->expectations().size(), 1u);
  u.decoded.expectation.reset();
  ASSERT_EQ(ext.Apply(u, kNow), ExternalCache::Result::kUpdated);
  EXPECT_EQ(engine->expectations().size(), 0u);
}

TEST(ExternalCacheTest, LocalFlowsWinAndExpiredArrivalsAreSkipped) {
  auto engine = MakeEngine();
  ExternalCache ext(*engine);
  const Flow f = MakeTcpNatFlow(1, kNow);
  ASSERT_TRUE(engine->Insert(f, nullptr, kNow).ok());  // our own flow
  Flow g = f;
  g.mark = 5;
  EXPECT_EQ(ext.Apply(Update(FlowEventType::kUpdate, g), kNow),
            ExternalCache::Result::kLocalConflict);
  EXPECT_EQ(ext.Apply(Update(FlowEventType::kDestroy, g), kNow),
            ExternalCache::Result::kLocalConflict);
  EXPECT_EQ(engine->table().confirmed_count(), 1u);
  EXPECT_EQ(engine->table().flow(engine->table().Find(f.tuple[0], 0).idx).mark, 0u);

  Flow old = MakeTcpNatFlow(2, kNow);
  old.expires = kNow;
  EXPECT_EQ(ext.Apply(Update(FlowEventType::kNew, old), kNow), ExternalCache::Result::kExpired);
}

TEST(ExternalCacheTest, CommitPromotesWithoutTouchingEntries) {
  auto engine = MakeEngine();
  ExternalCache ext(*engine);
  for (uint32_t i = 0; i < 100; ++i)
    ext.Apply(Update(FlowEventType::kNew, MakeTcpNatFlow(i, kNow), i % 2 ? 2 : 3), kNow);
  EXPECT_EQ(ext.CountExternal(), 100u);
  ext.Commit();
  EXPECT_EQ(ext.CountExternal(), 0u);
  EXPECT_EQ(engine->table().confirmed_count(), 100u);
  // Promoted flows are local now: a peer's update no longer applies.
  EXPECT_EQ(ext.Apply(Update(FlowEventType::kDestroy, MakeTcpNatFlow(0, kNow)), kNow),
            ExternalCache::Result::kLocalConflict);
}

TEST(ExternalCacheTest, FlushAllOrOnePeer) {
  auto engine = MakeEngine();
  ExternalCache ext(*engine);
  for (uint32_t i = 0; i < 100; ++i)
    ext.Apply(Update(FlowEventType::kNew, MakeTcpNatFlow(i, kNow), i % 2 ? 2 : 3), kNow);
  ASSERT_TRUE(engine->Insert(MakeTcpNatFlow(1000, kNow), nullptr, kNow).ok());
  EXPECT_EQ(ext.FlushPeer(2, kNow), 50u);
  EXPECT_EQ(ext.CountExternal(), 50u);
  EXPECT_EQ(ext.Flush(kNow), 50u);
  EXPECT_EQ(engine->table().confirmed_count(), 1u);  // the local flow stays
}

TEST(ExternalCacheTest, ReusedSlotIsNotMistakenForLearnt) {
  auto engine = MakeEngine();
  ExternalCache ext(*engine);
  Flow f = MakeTcpNatFlow(1, kNow);
  f.expires = kNow + kNanosPerSecond;
  ext.Apply(Update(FlowEventType::kNew, f), kNow);
  const FlowIndex idx = engine->table().Find(f.tuple[0], 0).idx;
  // The learnt flow expires in the engine; a local flow takes the same slot.
  engine->Expire(kNow + 2 * kNanosPerSecond, 100);
  auto local = engine->Insert(MakeTcpNatFlow(2, kNow), nullptr, kNow + 2 * kNanosPerSecond);
  ASSERT_TRUE(local.ok());
  ASSERT_EQ(*local, idx);
  EXPECT_FALSE(ext.IsExternal(idx));
}

// The daemon sorts events after the fact: each event's copy of the flow must say by itself
// whether the flow was learnt, its DESTROY included (the slot may hold another flow by then).
TEST(ExternalCacheTest, EventsOfLearntFlowsCarryTheMark) {
  auto engine = MakeEngine();
  ExternalCache ext(*engine);
  const Flow f = MakeTcpNatFlow(1, kNow);
  ASSERT_EQ(ext.Apply(Update(FlowEventType::kNew, f), kNow), ExternalCache::Result::kInserted);
  ASSERT_TRUE(engine->Insert(MakeTcpNatFlow(2, kNow), nullptr, kNow).ok());
  ASSERT_EQ(ext.Apply(Update(FlowEventType::kDestroy, f), kNow), ExternalCache::Result::kDestroyed);
  std::vector<std::pair<FlowEventType, bool>> seen;
  while (auto e = engine->events().Pop()) seen.emplace_back(e->type, ext.WasExternal(e->flow));
  EXPECT_EQ(seen, (std::vector<std::pair<FlowEventType, bool>>{{FlowEventType::kNew, true},
                                                               {FlowEventType::kNew, false},
                                                               {FlowEventType::kDestroy, true}}));
}

// Commits clear stale marks a slice of the table at a time; by the time the 8-bit generation
// comes round, every slot marked in it must have been swept.
TEST(ExternalCacheTest, GenerationWrapForgetsOldMarks) {
  auto engine = MakeEngine();
  ExternalCache ext(*engine);
  constexpr uint32_t kFlows = 3000;
  for (uint32_t i = 0; i < kFlows; ++i)
    ASSERT_EQ(ext.Apply(Update(FlowEventType::kNew, MakeTcpNatFlow(i, kNow)), kNow),
              ExternalCache::Result::kInserted);
  // 255 promotions bring the generation back to the one the flows were learnt in.
  for (int i = 0; i < 255; ++i) {
    ext.Commit();
    EXPECT_EQ(ext.CountExternal(), 0u) << "after commit " << i + 1;
  }
  // Flows learnt in the generation after that, in slots past the first ones, likewise.
  for (uint32_t i = kFlows; i < kFlows + 500; ++i)
    ASSERT_EQ(ext.Apply(Update(FlowEventType::kNew, MakeTcpNatFlow(i, kNow)), kNow),
              ExternalCache::Result::kInserted);
  EXPECT_EQ(ext.CountExternal(), 500u);
  EXPECT_TRUE(ext.IsExternal(engine->table().Find(MakeTcpNatFlow(kFlows, kNow).tuple[0], 0).idx));
  for (int i = 0; i < 255; ++i) ext.Commit();
  EXPECT_EQ(ext.CountExternal(), 0u);
  EXPECT_EQ(engine->table().confirmed_count(), kFlows + 500);
}

TEST(ExternalCacheTest, PromotionOfManyFlowsIsConstantTime) {
  constexpr int kFlows = 200000;
  auto engine = MakeEngine(kFlows);
  ExternalCache ext(*engine);
  for (uint32_t i = 0; i < kFlows; ++i)
    ASSERT_EQ(ext.Apply(Update(FlowEventType::kNew, MakeTcpNatFlow(i, kNow)), kNow),
              ExternalCache::Result::kInserted);
  const auto t0 = std::chrono::steady_clock::now();
  ext.Commit();
  const auto dt = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(std::chrono::duration_cast<std::chrono::microseconds>(dt).count(), 1000);
  EXPECT_EQ(ext.CountExternal(), 0u);
}

}  // namespace
}  // namespace ctsync::sync

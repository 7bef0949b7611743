#include "sync/replicator.h"

#include "gtest/gtest.h"
#include "tests/sync/fake_cluster.h"

namespace ctsync::sync {
namespace {

using testing::FakeCluster;
using testing::Faults;
using testing::MakeTcpNatFlow;

// True when `n` learnt exactly the flows in `want` (by original tuple, with their state).
::testing::AssertionResult HoldsExactly(const FakeCluster::Node& n,
                                        const std::map<uint64_t, Flow>& want) {
  if (n.learnt.size() != want.size()) {
    return ::testing::AssertionFailure()
           << "node " << n.id << " holds " << n.learnt.size() << " flows, want " << want.size();
  }
  for (const auto& [id, f] : want) {
    auto it = n.learnt.find(f.tuple[0]);
    if (it == n.learnt.end()) return ::testing::AssertionFailure() << "missing flow " << id;
    if (it->second.tcp != f.tcp || it->second.tuple[1] != f.tuple[1] ||
        it->second.mark != f.mark) {
      return ::testing::AssertionFailure() << "stale state for flow " << id;
    }
  }
  return ::testing::AssertionSuccess();
}

TEST(ReplicatorTest, CreateValidatesOptions) {
  ManualClock clock;
  Replicator::Callbacks cb{[](absl::Span<const uint8_t>) {}, [](const PeerFlowUpdate&) {}};
  ReplicatorOptions o;
  o.keys.key = "k";
  EXPECT_FALSE(Replicator::Create(o, cb, clock).ok());  // node id 0
  o.node_id = 1;
  o.mtu = 100;
  EXPECT_FALSE(Replicator::Create(o, cb, clock).ok());
  o.mtu = 1472;
  o.keys.key.clear();
  EXPECT_FALSE(Replicator::Create(o, cb, clock).ok());
  o.keys.key = "k";
  EXPECT_TRUE(Replicator::Create(o, cb, clock).ok());
  EXPECT_FALSE(Replicator::Create(o, Replicator::Callbacks{}, clock).ok());
}

TEST(ReplicatorTest, TwoNodesConvergeAndQueueDrains) {
  FakeCluster c;
  auto& a = c.AddNode(c.DefaultOptions(1));
  auto& b = c.AddNode(c.DefaultOptions(2));
  c.Run(5 * kNanosPerMilli);
  for (uint32_t i = 0; i < 2000; ++i) c.Local(a, FlowEventType::kNew, MakeTcpNatFlow(i, 0));
  c.Run(100 * kNanosPerMilli);
  EXPECT_TRUE(HoldsExactly(b, a.local));
  // Many events per datagram, and everything acknowledged.
  EXPECT_LT(a.rep->stats().data_sent, 2000u / 8);
  EXPECT_EQ(a.rep->queue_datagrams(), 0u);
  EXPECT_EQ(a.rep->stats().retransmits, 0u);
  EXPECT_EQ(b.rep->stats().resync_requests_sent, 0u);
  EXPECT_EQ(b.rep->drops().Total(), 0u);
  ASSERT_EQ(b.peer_events.size(), 1u);
  EXPECT_EQ(b.peer_events[0].kind, PeerEvent::Kind::kJoined);
}

TEST(ReplicatorTest, UpdatesAndDestroysApplyInOrder) {
  FakeCluster c;
  auto& a = c.AddNode(c.DefaultOptions(1));
  auto& b = c.AddNode(c.DefaultOptions(2));
  for (uint32_t i = 0; i < 300; ++i) c.Local(a, FlowEventType::kNew, MakeTcpNatFlow(i, 0));
  for (uint32_t i = 0; i < 300; i += 3) {
    Flow f = MakeTcpNatFlow(i, 0);
    f.mark = 7;
    f.tcp.state = TcpState::kFinWait;
    c.Local(a, FlowEventType::kUpdate, f);
  }
  for (uint32_t i = 1; i < 300; i += 3) c.Local(a, FlowEventType::kDestroy, MakeTcpNatFlow(i, 0));
  c.Run(50 * kNanosPerMilli);
  EXPECT_EQ(a.local.size(), 200u);
  EXPECT_TRUE(HoldsExactly(b, a.local));
}

struct FaultCase {
  const char* name;
  Faults faults;
  int nodes;
};

class ReplicatorFaultTest : public ::testing::TestWithParam<FaultCase> {};

TEST_P(ReplicatorFaultTest, EveryFlowArrivesDespiteFaults) {
  const FaultCase& fc = GetParam();
  FakeCluster c(/*seed=*/42);
  std::vector<FakeCluster::Node*> nodes;
  for (int i = 1; i <= fc.nodes; ++i) nodes.push_back(&c.AddNode(c.DefaultOptions(i)));
  c.Run(5 * kNanosPerMilli);
  c.set_faults(fc.faults);
  // Every node originates flows; several rounds so that ack, nack and retransmission
  // interleave with new data.
  for (int round = 0; round < 10; ++round) {
    for (size_t n = 0; n < nodes.size(); ++n) {
      for (uint32_t i = 0; i < 500; ++i) {
        const uint32_t flow = static_cast<uint32_t>(n * 1'000'000 + round * 500 + i);
        c.Local(*nodes[n], FlowEventType::kNew, MakeTcpNatFlow(flow, 0));
      }
    }
    c.Run(3 * kNanosPerMilli);
  }
  c.Run(2 * kNanosPerSecond);
  for (size_t n = 0; n < nodes.size(); ++n) {
    std::map<uint64_t, Flow> others;
    for (size_t m = 0; m < nodes.size(); ++m)
      if (m != n) others.insert(nodes[m]->local.begin(), nodes[m]->local.end());
    EXPECT_TRUE(HoldsExactly(*nodes[n], others));
  }
  if (fc.faults.loss > 0) {
    EXPECT_GT(c.dropped(), 0u);
    uint64_t retransmits = 0;
    for (auto* n : nodes) retransmits += n->rep->stats().retransmits;
    EXPECT_GT(retransmits, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Faults, ReplicatorFaultTest,
    ::testing::Values(FaultCase{"clean_2", {}, 2}, FaultCase{"loss5_2", {0.05, 0, 0}, 2},
                      FaultCase{"dup_reorder_2", {0, 0.05, 0.2}, 2},
                      FaultCase{"loss5_dup5_reorder_3", {0.05, 0.05, 0.05}, 3},
                      FaultCase{"loss20_3", {0.20, 0.05, 0.1}, 3}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(ReplicatorTest, LateJoinerResyncsInBatchesWithFlowControl) {
  FakeCluster c;
  ReplicatorOptions ao = c.DefaultOptions(1);
  ao.queue_max_datagrams = 8;  // far too small to repair: the joiner must resync
  ao.dump_window = 4;
  ao.dump_chunk_flows = 50;
  auto& a = c.AddNode(ao);
  for (uint32_t i = 0; i < 3000; ++i) c.Local(a, FlowEventType::kNew, MakeTcpNatFlow(i, 0));
  c.Run(10 * kNanosPerMilli);
  EXPECT_GT(a.rep->stats().queue_overflow, 0u);
  auto& b = c.AddNode(c.DefaultOptions(2));
  c.Run(1 * kNanosPerSecond);
  EXPECT_TRUE(HoldsExactly(b, a.local));
  EXPECT_GE(b.rep->stats().resync_requests_sent, 1u);
  EXPECT_EQ(a.rep->stats().resyncs_served, b.rep->stats().resync_requests_sent);
  EXPECT_EQ(a.rep->stats().dump_flows_sent, 3000u);
  // Flow control: the queue never held more than the dump window allows (plus one batch of
  // the last chunk).
  EXPECT_LE(a.rep->queue_datagrams(), 8u);
  bool done = false;
  for (const PeerEvent& e : b.peer_events) done |= e.kind == PeerEvent::Kind::kResyncDone;
  EXPECT_TRUE(done);
}

TEST(ReplicatorTest, RestartedPeerResyncsAndOldIncarnationIsRefused) {
  FakeCluster c;
  auto& a = c.AddNode(c.DefaultOptions(1));
  c.AddNode(c.DefaultOptions(2));
  c.Run(5 * kNanosPerMilli);
  for (uint32_t i = 0; i < 500; ++i) c.Local(a, FlowEventType::kNew, MakeTcpNatFlow(i, 0));
  c.Run(200 * kNanosPerMilli);
  std::vector<std::string>& old_b = c.Tap(2);
  c.Run(200 * kNanosPerMilli);  // capture some of the old b's datagrams (alives, acks)
  ASSERT_FALSE(old_b.empty());
  const std::vector<std::string> captured = old_b;
  auto& b2 = c.Restart(2, /*keep_local=*/false);
  c.Run(500 * kNanosPerMilli);
  EXPECT_TRUE(HoldsExactly(b2, a.local));
  EXPECT_EQ(a.rep->stats().peers_restarted, 1u);
  // Datagrams of b's previous life are refused by a.
  const uint64_t before = a.rep->drops()[DropReason::kOldIncarnation];
  for (const std::string& d : captured) c.Inject(a, d);
  EXPECT_EQ(a.rep->drops()[DropReason::kOldIncarnation], before + captured.size());
}

TEST(ReplicatorTest, ForgedReplayedTruncatedChangeNothing) {
  FakeCluster c;
  auto& a = c.AddNode(c.DefaultOptions(1));
  auto& b = c.AddNode(c.DefaultOptions(2));
  std::vector<std::string>& tap = c.Tap(1);
  for (uint32_t i = 0; i < 100; ++i) c.Local(a, FlowEventType::kNew, MakeTcpNatFlow(i, 0));
  c.Run(50 * kNanosPerMilli);
  ASSERT_TRUE(HoldsExactly(b, a.local));
  const uint64_t applies = b.applies;

  // A forger who knows the format but not the key: a DESTROY for every flow.
  FakeCluster forger_net;
  ReplicatorOptions fo = forger_net.DefaultOptions(1);
  fo.keys.key = "wrong-key";
  fo.incarnation = 1'000'000;  // even a "newer incarnation" must not pass
  auto& forger = forger_net.AddNode(fo);
  std::vector<std::string>& forged = forger_net.Tap(1);
  for (uint32_t i = 0; i < 100; ++i) {
    forger_net.Local(forger, FlowEventType::kNew, MakeTcpNatFlow(i, 0));
    forger_net.Local(forger, FlowEventType::kDestroy, MakeTcpNatFlow(i, 0));
  }
  forger.rep->Flush();
  forger.rep->Tick();
  ASSERT_FALSE(forged.empty());
  for (const std::string& d : forged) c.Inject(b, d);
  EXPECT_EQ(b.rep->drops()[DropReason::kBadHmac], forged.size());

  // Replays of a's genuine datagrams, and truncated / bit-flipped copies.
  ASSERT_FALSE(tap.empty());
  const std::vector<std::string> genuine = tap;
  for (const std::string& d : genuine) {
    c.Inject(b, d);
    c.Inject(b, d.substr(0, d.size() / 2));
    std::string flipped = d;
    flipped[flipped.size() / 2] ^= 0x10;
    c.Inject(b, flipped);
  }
  const DropCounters& drops = b.rep->drops();
  EXPECT_EQ(drops[DropReason::kReplay] + drops[DropReason::kTooOld], genuine.size());
  EXPECT_GE(drops[DropReason::kBadLength] + drops[DropReason::kTooShort], genuine.size());
  EXPECT_EQ(b.applies, applies);
  EXPECT_TRUE(HoldsExactly(b, a.local));
  EXPECT_EQ(b.rep->Peers().size(), 1u);  // the forger never became a peer
}

TEST(ReplicatorTest, PeerDeathAndRecovery) {
  FakeCluster c;
  ReplicatorOptions ao = c.DefaultOptions(1);
  auto& a = c.AddNode(ao);
  auto& b = c.AddNode(c.DefaultOptions(2));
  c.Run(300 * kNanosPerMilli);
  ASSERT_EQ(a.rep->Peers().size(), 1u);
  EXPECT_TRUE(a.rep->Peers()[0].alive);
  b.up = false;
  c.Run(ao.peer_dead_after + 200 * kNanosPerMilli);
  EXPECT_FALSE(a.rep->Peers()[0].alive);
  EXPECT_EQ(a.rep->stats().peers_dead, 1u);
  b.up = true;
  c.Run(300 * kNanosPerMilli);
  EXPECT_TRUE(a.rep->Peers()[0].alive);
  ASSERT_GE(a.peer_events.size(), 3u);
  EXPECT_EQ(a.peer_events[1].kind, PeerEvent::Kind::kDead);
  EXPECT_EQ(a.peer_events[2].kind, PeerEvent::Kind::kRecovered);
}

TEST(ReplicatorTest, BestEffortLosesUnderLossAndNeverRetransmits) {
  FakeCluster c(7);
  c.set_mode(ReplicationMode::kBestEffort);
  ReplicatorOptions ao = c.DefaultOptions(1);
  ao.mode = ReplicationMode::kBestEffort;
  ReplicatorOptions bo = c.DefaultOptions(2);
  bo.mode = ReplicationMode::kBestEffort;
  auto& a = c.AddNode(ao);
  auto& b = c.AddNode(bo);
  c.Run(5 * kNanosPerMilli);
  c.set_faults(Faults{0.2, 0, 0});
  for (uint32_t i = 0; i < 3000; ++i) c.Local(a, FlowEventType::kNew, MakeTcpNatFlow(i, 0));
  c.Run(500 * kNanosPerMilli);
  EXPECT_LT(b.learnt.size(), 3000u);
  EXPECT_GT(b.learnt.size(), 1000u);
  EXPECT_EQ(a.rep->stats().retransmits, 0u);
  EXPECT_EQ(b.rep->stats().nacks_sent, 0u);
  EXPECT_EQ(a.rep->queue_datagrams(), 0u);
  // An explicit resync repairs it (conntrackd -n).
  c.set_faults({});
  b.rep->RequestResync();
  c.Run(500 * kNanosPerMilli);
  EXPECT_TRUE(HoldsExactly(b, a.local));
}

// A resync asked while the peer is silent (loaded machine, flapping link) or before any
// peer is known is not lost: it goes out once the peer is heard.
TEST(ReplicatorTest, ResyncAskedOfASilentOrUnknownPeerIsSentWhenItIsHeard) {
  FakeCluster c(11);
  c.set_mode(ReplicationMode::kBestEffort);
  ReplicatorOptions ao = c.DefaultOptions(1);
  ao.mode = ReplicationMode::kBestEffort;
  ReplicatorOptions bo = c.DefaultOptions(2);
  bo.mode = ReplicationMode::kBestEffort;
  auto& a = c.AddNode(ao);
  auto& b = c.AddNode(bo);
  c.Run(5 * kNanosPerMilli);
  c.set_faults(Faults{0.2, 0, 0});
  for (uint32_t i = 0; i < 2000; ++i) c.Local(a, FlowEventType::kNew, MakeTcpNatFlow(i, 0));
  c.Run(300 * kNanosPerMilli);
  c.set_faults({});
  ASSERT_LT(b.learnt.size(), 2000u);
  a.up = false;
  c.Run(bo.peer_dead_after + 200 * kNanosPerMilli);
  ASSERT_FALSE(b.rep->Peers()[0].alive);
  b.rep->RequestResync();
  EXPECT_EQ(b.rep->stats().resync_requests_sent, 0u);  // nobody to ask yet
  a.up = true;
  c.Run(500 * kNanosPerMilli);
  EXPECT_EQ(b.rep->stats().resync_requests_sent, 1u);
  EXPECT_TRUE(HoldsExactly(b, a.local));

  // No peer known at all: the request waits for the first one to join.
  ReplicatorOptions dopt = c.DefaultOptions(4);
  dopt.mode = ReplicationMode::kBestEffort;
  auto& d = c.AddNode(dopt);
  d.rep->RequestResync();
  EXPECT_EQ(d.rep->stats().resync_requests_sent, 0u);
  c.Run(500 * kNanosPerMilli);
  EXPECT_GE(d.rep->stats().resync_requests_sent, 1u);  // a and b each join
  EXPECT_TRUE(HoldsExactly(d, a.local));
}

TEST(ReplicatorTest, RefreshModeResendsPeriodically) {
  FakeCluster c;
  c.set_mode(ReplicationMode::kRefresh);
  ReplicatorOptions ao = c.DefaultOptions(1);
  ao.mode = ReplicationMode::kRefresh;
  ao.refresh_interval = 100 * kNanosPerMilli;
  ReplicatorOptions bo = c.DefaultOptions(2);
  bo.mode = ReplicationMode::kRefresh;
  auto& a = c.AddNode(ao);
  auto& b = c.AddNode(bo);
  for (uint32_t i = 0; i < 100; ++i) a.local[i + 1] = MakeTcpNatFlow(i, 0);  // no events
  c.Run(350 * kNanosPerMilli);
  EXPECT_TRUE(HoldsExactly(b, a.local));
  EXPECT_EQ(a.rep->stats().resyncs_served, 3u);
}

TEST(ReplicatorTest, FiltersOnSendAndAccept) {
  FakeCluster c;
  ReplicatorOptions ao = c.DefaultOptions(1);
  ao.send_filter.tcp_states = {TcpState::kEstablished};
  ReplicatorOptions bo = c.DefaultOptions(2);
  bo.accept_filter.ignore_prefixes = {*IpPrefix::Parse("192.0.2.2/32")};
  auto& a = c.AddNode(ao);
  auto& b = c.AddNode(bo);
  std::map<uint64_t, Flow> want;
  for (uint32_t i = 0; i < 1000; ++i) {
    Flow f = MakeTcpNatFlow(i, 0);
    if (i % 2) f.tcp.state = TcpState::kSynSent;
    c.Local(a, FlowEventType::kNew, f);
    if (i % 2 == 0 && i % 250 != 0) want[f.id] = f;  // i % 250 == 0: source 192.0.2.2
    // (i = 0, 250, 500, 750 are ESTABLISHED and from 192.0.2.2: sent, then refused by b)
  }
  c.Run(50 * kNanosPerMilli);
  EXPECT_TRUE(HoldsExactly(b, want));
  EXPECT_EQ(a.rep->stats().events_filtered_out, 500u);
  EXPECT_EQ(b.rep->stats().events_filtered_in, 4u);
}

TEST(ReplicatorTest, KeyRotationWithoutDowntime) {
  FakeCluster c;
  auto& a = c.AddNode(c.DefaultOptions(1));
  auto& b = c.AddNode(c.DefaultOptions(2));
  c.Run(5 * kNanosPerMilli);
  // b rotates first: it accepts a's old-key traffic during the grace window, while a refuses
  // b's new-key datagrams until it rotates too. Nothing is lost: what a refused (acks) is
  // repeated, and data from a never stops being accepted.
  b.rep->RotateKey("key-2", 10 * kNanosPerSecond);
  for (uint32_t i = 0; i < 100; ++i) c.Local(a, FlowEventType::kNew, MakeTcpNatFlow(i, 0));
  c.Run(20 * kNanosPerMilli);
  a.rep->RotateKey("key-2", 10 * kNanosPerSecond);
  for (uint32_t i = 100; i < 200; ++i) c.Local(a, FlowEventType::kNew, MakeTcpNatFlow(i, 0));
  const uint64_t refused_by_a = a.rep->drops()[DropReason::kBadHmac];
  EXPECT_GT(refused_by_a, 0u);
  c.Run(50 * kNanosPerMilli);
  EXPECT_TRUE(HoldsExactly(b, a.local));
  EXPECT_EQ(b.rep->drops()[DropReason::kBadHmac], 0u);
  EXPECT_EQ(a.rep->drops()[DropReason::kBadHmac], refused_by_a);  // none once both rotated
  EXPECT_EQ(a.rep->queue_datagrams(), 0u);
}

}  // namespace
}  // namespace ctsync::sync

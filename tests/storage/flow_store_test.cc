#include "storage/flow_store.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "gtest/gtest.h"
#include "proto/flow_codec.h"
#include "storage/flow_source.h"
#include "storage/restore.h"
#include "tests/storage/test_flows.h"

namespace ctsync::storage {
namespace {

using testing::Event;
using testing::MakeFlow;
using testing::TempDir;
constexpr Nanos kSec = kNanosPerSecond;

class FlowStoreTest : public ::testing::Test {
 protected:
  FlowStoreOptions Options() {
    FlowStoreOptions o;
    o.path = dir_.Sub("store");
    o.node_id = "fw-a";
    o.clock = &clock_;
    o.sync = SyncPolicy::kNone;
    o.snapshot_on_close = false;
    return o;
  }
  std::unique_ptr<FlowStore> Open(const FlowStoreOptions& o) {
    absl::StatusOr<std::unique_ptr<FlowStore>> s = FlowStore::Create(o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }
  std::map<uint16_t, codec::DecodedFlow> ByPort(const std::vector<codec::DecodedFlow>& v) {
    std::map<uint16_t, codec::DecodedFlow> m;
    for (const auto& d : v) m[d.flow.tuple[0].sport] = d;
    return m;
  }

  TempDir dir_{"flowstore"};
  ManualClock clock_{100 * kSec};
};

TEST_F(FlowStoreTest, EventsArePutUpdatedAndDeleted) {
  auto store = Open(Options());
  const Nanos now = clock_.Now();
  Flow a = MakeFlow(1, now, 300 * kSec);
  Flow b = MakeFlow(2, now, 300 * kSec, /*udp=*/true);
  Flow c = MakeFlow(3, now, 300 * kSec);
  ASSERT_TRUE(store->Enqueue(Stream::kLive, Event(FlowEventType::kNew, a, now)));
  ASSERT_TRUE(store->Enqueue(Stream::kLive, Event(FlowEventType::kNew, b, now)));
  ASSERT_TRUE(store->Enqueue(Stream::kLive, Event(FlowEventType::kNew, c, now)));
  a.tcp.state = TcpState::kFinWait;
  a.mark = 77;
  ASSERT_TRUE(store->Enqueue(Stream::kLive, Event(FlowEventType::kUpdate, a, now)));
  ASSERT_TRUE(store->Enqueue(Stream::kLive, Event(FlowEventType::kDestroy, c, now)));
  ASSERT_TRUE(store->Flush().ok());
  EXPECT_EQ(store->counters().committed, 5u);

  absl::StatusOr<RestoredFlows> r = store->Restore(clock_.Now(), clock_.WallNanos());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->corrupt, 0u);
  EXPECT_TRUE(r->external().empty());
  auto live = ByPort(r->live());
  ASSERT_EQ(live.size(), 2u);
  EXPECT_EQ(live[1].flow.tcp.state, TcpState::kFinWait);
  EXPECT_EQ(live[1].flow.mark, 77u);
  EXPECT_EQ(live[1].flow.tuple[1], a.tuple[1]);
  EXPECT_EQ(live[2].flow.proto(), kProtoUdp);
  EXPECT_EQ(live.count(3), 0u);
}

// A NATed FTP control connection comes back from the store with what its helper needs:
// the line state (so the next command is parsed, as the kernel would) and the pending
// expectation (so the announced data connection is still RELATED), and a RELATED child
// counts in its master's use.
TEST_F(FlowStoreTest, FtpHelperStateAndExpectationSurviveARestart) {
  auto store = Open(Options());
  const Nanos now = clock_.Now();
  Flow ctl = MakeFlow(21, now, 300 * kSec, /*udp=*/false, /*nat=*/true);
  ctl.helper = FlowHelper::kFtp;
  ctl.status |= kIpsHelper;
  FlowEvent e = Event(FlowEventType::kNew, ctl, now);
  e.has_ftp_state = true;
  e.ftp_state.seq_aft_nl[0][0] = 1000;
  e.ftp_state.seq_aft_nl[0][1] = 1040;
  e.ftp_state.seq_aft_nl_num[0] = 2;
  e.ftp_state.seq_aft_nl[1][0] = 7000;
  e.ftp_state.seq_aft_nl_num[1] = 1;
  e.has_expectation = true;
  Expectation& x = e.expectation;
  x.tuple.family = x.mask.family = Family::kIpv4;
  x.tuple.proto = x.mask.proto = kProtoTcp;
  x.tuple.src = ctl.tuple[0].dst;
  x.tuple.dst = ctl.tuple[0].src;
  x.tuple.dport = 40123;
  x.mask.src = x.mask.dst = IpAddress::FromV4(0xffffffffu);
  x.mask.dport = 0xffff;
  x.master_tuple = ctl.tuple[0];
  x.expires = now + 200 * kSec;
  x.id = 5;
  ASSERT_TRUE(store->Enqueue(Stream::kLive, e));
  Flow child = MakeFlow(22, now, 300 * kSec);
  child.status |= kIpsExpected;
  FlowEvent ce = Event(FlowEventType::kNew, child, now);
  ce.has_master = true;
  ce.master = ctl.tuple[0];
  ASSERT_TRUE(store->Enqueue(Stream::kLive, ce));
  ASSERT_TRUE(store->Flush().ok());

  clock_.Advance(10 * kSec);
  absl::StatusOr<RestoredFlows> r = store->Restore(clock_.Now(), clock_.WallNanos());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->live().size(), 2u);
  auto live = ByPort(r->live());
  const codec::DecodedFlow& d = live[21];
  ASSERT_TRUE(d.ftp_state.has_value());
  EXPECT_EQ(*d.ftp_state, e.ftp_state);
  ASSERT_TRUE(d.expectation.has_value());
  EXPECT_EQ(d.expectation->tuple, x.tuple);

  ConntrackOptions co;
  co.settings.nf_conntrack_max = 64;
  co.settings.nf_conntrack_buckets = 64;
  auto engine = *ConntrackEngine::Create(co, clock_.Now());
  EngineRestoreResult res = RestoreIntoEngine(*engine, r->live(), clock_.Now());
  EXPECT_EQ(res.inserted, 2u);
  EXPECT_EQ(res.masters_linked, 1u);
  const FlowLookup m = engine->table().Find(ctl.tuple[0], 0);
  ASSERT_TRUE(m.found());
  ASSERT_NE(engine->table().ftp_state(m.idx), nullptr);
  EXPECT_EQ(*engine->table().ftp_state(m.idx), e.ftp_state);
  EXPECT_EQ(engine->UseCount(m.idx), 2);  // 1 + the RELATED child
  ASSERT_EQ(engine->expectations().all().size(), 1u);
  const Expectation& got = engine->expectations().all()[0];
  EXPECT_EQ(got.master, m.idx);
  EXPECT_EQ(got.tuple, x.tuple);
  EXPECT_EQ(got.expires, x.expires);  // its lifetime is aged by the downtime too
}

// Restart: the store is reopened later; remaining timeouts shrink by the wall time that
// passed since each record was written, and flows that ran out are dropped.
TEST_F(FlowStoreTest, RestoreSubtractsDowntimeAndDropsExpired) {
  {
    auto store = Open(Options());
    const Nanos now = clock_.Now();
    store->Enqueue(Stream::kLive, Event(FlowEventType::kNew, MakeFlow(1, now, 3600 * kSec), now));
    store->Enqueue(Stream::kLive, Event(FlowEventType::kNew, MakeFlow(2, now, 30 * kSec), now));
    store->Enqueue(Stream::kLive,
                   Event(FlowEventType::kNew, MakeFlow(3, now, 600 * kSec, false, true), now));
    ASSERT_TRUE(store->Close().ok());
  }
  // 100 s of downtime; the new process has a different monotonic origin.
  ManualClock later(5 * kSec, 1'700'000'000 * kSec + 100 * kSec + 100 * kSec - 5 * kSec);
  ASSERT_EQ(later.WallNanos(), clock_.WallNanos() + 100 * kSec);
  FlowStoreOptions o = Options();
  o.clock = &later;
  auto store = Open(o);
  absl::StatusOr<RestoredFlows> r = store->Restore(later.Now(), later.WallNanos());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->expired, 1u);
  auto live = ByPort(r->live());
  ASSERT_EQ(live.size(), 2u);
  EXPECT_EQ(live[1].remaining, 3500 * kSec);
  EXPECT_EQ(live[1].flow.expires, later.Now() + 3500 * kSec);
  EXPECT_EQ(live[3].remaining, 500 * kSec);
  EXPECT_TRUE(live[3].flow.has(kIpsSrcNat | kIpsSrcNatDone));
  EXPECT_EQ(live[3].flow.tuple[1].dst.ToString(Family::kIpv4), "203.0.113.5");
}

// The streamed restore hands over the same flows as the one that returns vectors, live
// first, and inserting them into an engine piece by piece gives the same table.
TEST_F(FlowStoreTest, StreamedRestoreMatchesRestoreAndFillsTheEngine) {
  auto store = Open(Options());
  const Nanos now = clock_.Now();
  std::vector<FlowEvent> events;
  for (uint32_t i = 0; i < 20000; ++i)
    events.push_back(Event(FlowEventType::kNew, MakeFlow(i, now, 300 * kSec, i % 4 == 0, true), now));
  ASSERT_EQ(store->EnqueueBatch(Stream::kLive, events), events.size());
  for (uint32_t i = 0; i < 100; ++i)
    ASSERT_TRUE(store->Enqueue(Stream::kExternal,
                               Event(FlowEventType::kNew, MakeFlow(50000 + i, now, 300 * kSec), now)));
  ASSERT_TRUE(store->Flush().ok());
  absl::StatusOr<RestoredFlows> whole = store->Restore(now, clock_.WallNanos());
  ASSERT_TRUE(whole.ok());

  ConntrackOptions co;
  auto engine = *ConntrackEngine::Create(co, 0);
  EngineRestorer restorer(*engine, now);
  std::vector<codec::DecodedFlow> live, external;
  bool external_seen = false, live_after_external = false;
  absl::StatusOr<RestoredFlows> streamed =
      store->Restore(now, clock_.WallNanos(), [&](Stream s, absl::Span<codec::DecodedFlow> run) {
        if (s == Stream::kExternal) {
          external_seen = true;
          external.insert(external.end(), run.begin(), run.end());
          return;
        }
        live_after_external |= external_seen;
        live.insert(live.end(), run.begin(), run.end());
        restorer.Add(run);
      });
  ASSERT_TRUE(streamed.ok());
  EXPECT_FALSE(live_after_external);
  EXPECT_TRUE(streamed->live().empty());
  EXPECT_EQ(streamed->corrupt, 0u);
  ASSERT_EQ(live.size(), 20000u);
  ASSERT_EQ(whole->live().size(), live.size());
  ASSERT_EQ(whole->external().size(), external.size());
  EXPECT_EQ(external.size(), 100u);
  for (size_t i = 0; i < live.size(); ++i)
    ASSERT_EQ(live[i].flow.tuple[1], whole->live()[i].flow.tuple[1]) << i;
  const EngineRestoreResult r = restorer.Finish();
  EXPECT_EQ(r.inserted, 20000u);
  EXPECT_EQ(engine->table().size(), 20000u);
  // NAT bindings are held: the translated reply tuple finds the flow.
  EXPECT_TRUE(engine->table().Find(MakeFlow(77, now, 0, false, true).tuple[1], 0).found());
}

TEST_F(FlowStoreTest, ExternalStreamIsSeparate) {
  auto store = Open(Options());
  const Nanos now = clock_.Now();
  proto::Flow peer;
  codec::FlowToProto(MakeFlow(9, now, 100 * kSec), now, clock_.WallNanos(), {}, &peer);
  ASSERT_TRUE(store->EnqueueProto(Stream::kExternal, FlowEventType::kNew, peer));
  ASSERT_TRUE(
      store->Enqueue(Stream::kLive, Event(FlowEventType::kNew, MakeFlow(9, now, 100 * kSec), now)));
  proto::Flow bad;
  EXPECT_FALSE(store->EnqueueProto(Stream::kExternal, FlowEventType::kNew, bad));
  EXPECT_EQ(store->counters().rejected, 1u);
  ASSERT_TRUE(store->Flush().ok());
  auto r = store->Restore(clock_.Now(), clock_.WallNanos());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->live().size(), 1u);
  ASSERT_EQ(r->external().size(), 1u);
  // A DESTROY from the peer removes only the external copy.
  ASSERT_TRUE(store->EnqueueProto(Stream::kExternal, FlowEventType::kDestroy, peer));
  ASSERT_TRUE(store->Flush().ok());
  r = store->Restore(clock_.Now(), clock_.WallNanos());
  EXPECT_EQ(r->live().size(), 1u);
  EXPECT_EQ(r->external().size(), 0u);
}

// The queue is a list of blocks of max_batch events: a queue many blocks deep, with a
// rewrite between two runs of events, is written in order (events before the rewrite are
// superseded by it, events after it apply on top) and its counts add up.
TEST_F(FlowStoreTest, DeepQueueOfBlocksKeepsOrderAcrossARewrite) {
  FlowStoreOptions o = Options();
  o.max_batch = 64;
  o.max_batch_delay = 50 * kNanosPerMilli;
  auto store = Open(o);
  const Nanos now = clock_.Now();
  std::vector<FlowEvent> first, second;
  for (uint32_t i = 0; i < 1000; ++i)
    first.push_back(Event(FlowEventType::kNew, MakeFlow(i, now, 100 * kSec), now));
  std::vector<proto::Flow> table(1);
  codec::FlowToProto(MakeFlow(5000, now, 100 * kSec), now, clock_.WallNanos(), {}, &table[0]);
  for (uint32_t i = 0; i < 500; ++i) {
    Flow f = MakeFlow(2000 + i, now, 100 * kSec);
    second.push_back(Event(FlowEventType::kNew, f, now));
    if (i % 2 == 0) second.push_back(Event(FlowEventType::kDestroy, f, now));
  }
  ASSERT_EQ(store->EnqueueBatch(Stream::kLive, first), first.size());
  store->RewriteStream(Stream::kLive, table);
  ASSERT_EQ(store->EnqueueBatch(Stream::kLive, second), second.size());
  ASSERT_TRUE(store->Flush().ok());
  const FlowStoreCounters c = store->counters();
  EXPECT_EQ(c.enqueued, first.size() + 1 + second.size());
  EXPECT_EQ(c.committed, c.enqueued);
  EXPECT_EQ(c.rewrites, 1u);
  EXPECT_GE(c.batches, (first.size() + second.size()) / 64);
  auto r = store->Restore(now, clock_.WallNanos());
  ASSERT_TRUE(r.ok());
  const auto by_port = ByPort(r->live());
  ASSERT_EQ(by_port.size(), 1u + 250u);
  EXPECT_TRUE(by_port.count(5000 & 0xffff));
  for (uint32_t i = 0; i < 500; ++i) EXPECT_EQ(by_port.count(2000 + i), i % 2 == 1 ? 1u : 0u) << i;
}

// A full queue never loses events silently: they are counted, the stream is marked for a
// full rewrite, and the rewrite brings the store back to the table's content.
TEST_F(FlowStoreTest, QueueFullCountsDropsAndRewriteRecovers) {
  FlowStoreOptions o = Options();
  o.queue_capacity = 4;
  auto store = Open(o);
  const Nanos now = clock_.Now();
  std::vector<FlowEvent> events;
  for (uint32_t i = 0; i < 10; ++i)
    events.push_back(Event(FlowEventType::kNew, MakeFlow(i, now, 100 * kSec), now));
  // One call holds the queue lock throughout, so the writer cannot drain in between.
  EXPECT_EQ(store->EnqueueBatch(Stream::kLive, events), 4u);
  EXPECT_EQ(store->counters().dropped_queue_full, 6u);
  EXPECT_TRUE(store->needs_full_rewrite(Stream::kLive));
  EXPECT_FALSE(store->needs_full_rewrite(Stream::kExternal));

  std::vector<proto::Flow> table;
  for (uint32_t i = 5; i < 10; ++i) {
    codec::FlowToProto(MakeFlow(i, now, 100 * kSec), now, clock_.WallNanos(), {},
                       &table.emplace_back());
  }
  store->RewriteStream(Stream::kLive, std::move(table));
  EXPECT_FALSE(store->needs_full_rewrite(Stream::kLive));
  ASSERT_TRUE(store->Flush().ok());
  EXPECT_EQ(store->counters().rewrites, 1u);
  auto r = store->Restore(clock_.Now(), clock_.WallNanos());
  auto live = ByPort(r->live());
  ASSERT_EQ(live.size(), 5u);
  EXPECT_EQ(live.begin()->first, 5);
  EXPECT_EQ(live.rbegin()->first, 9);
}

// Events of one flow in one batch collapse to the last one; other flows and the other
// stream are unaffected.
TEST_F(FlowStoreTest, BatchKeepsOnlyTheLastEventOfAFlow) {
  auto store = Open(Options());
  const Nanos now = clock_.Now();
  Flow a = MakeFlow(1, now, 100 * kSec);
  Flow b = MakeFlow(2, now, 100 * kSec);
  Flow b2 = b;
  b2.mark = 5;
  std::vector<FlowEvent> events = {
      Event(FlowEventType::kNew, a, now),     Event(FlowEventType::kNew, b, now),
      Event(FlowEventType::kUpdate, a, now),  Event(FlowEventType::kUpdate, b2, now),
      Event(FlowEventType::kDestroy, a, now),
  };
  ASSERT_EQ(store->EnqueueBatch(Stream::kLive, events), 5u);  // one lock: one drain
  ASSERT_EQ(store->EnqueueBatch(Stream::kExternal, {Event(FlowEventType::kNew, a, now)}), 1u);
  ASSERT_TRUE(store->Flush().ok());
  const FlowStoreCounters c = store->counters();
  EXPECT_EQ(c.committed, 6u);
  EXPECT_EQ(c.coalesced, 3u);
  auto r = store->Restore(clock_.Now(), clock_.WallNanos());
  ASSERT_EQ(r->live().size(), 1u);
  EXPECT_EQ(r->live()[0].flow.mark, 5u);
  EXPECT_EQ(r->external().size(), 1u);
}

TEST_F(FlowStoreTest, CommitCallbackAndSyncPolicies) {
  for (SyncPolicy p : {SyncPolicy::kNone, SyncPolicy::kEveryBatch, SyncPolicy::kInterval}) {
    TempDir d("policy");
    FlowStoreOptions o = Options();
    o.path = d.Sub("s");
    o.sync = p;
    std::atomic<uint64_t> acked{0};
    o.on_commit = [&](uint64_t n) { acked.store(n); };
    auto store = Open(o);
    const Nanos now = clock_.Now();
    for (uint32_t i = 0; i < 1000; ++i)
      ASSERT_TRUE(
          store->Enqueue(Stream::kLive, Event(FlowEventType::kNew, MakeFlow(i, now, kSec), now)));
    ASSERT_TRUE(store->Flush().ok());
    EXPECT_EQ(acked.load(), 1000u);
    const FlowStoreCounters c = store->counters();
    EXPECT_EQ(c.committed, 1000u);
    EXPECT_EQ(c.write_errors, 0u);
    // Flush always reaches the disk; kEveryBatch needs no separate WAL sync for it.
    if (p == SyncPolicy::kEveryBatch) {
      EXPECT_EQ(c.syncs, 0u);
    } else {
      EXPECT_GE(c.syncs, 1u);
    }
  }
}

// Disk trouble (here: a file-size limit, so WAL appends fail with EFBIG, as on a full
// disk) is counted and reported by Flush; producers are never affected, and the store asks
// for a full rewrite since it no longer matches the table.
TEST_F(FlowStoreTest, WriteErrorsAreCountedAndReported) {
  FlowStoreOptions o = Options();
  o.max_batch = 64;
  auto store = Open(o);
  const Nanos now = clock_.Now();
  ASSERT_TRUE(
      store->Enqueue(Stream::kLive, Event(FlowEventType::kNew, MakeFlow(0, now, kSec), now)));
  ASSERT_TRUE(store->Flush().ok());

  struct sigaction ignore = {}, old_action = {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGXFSZ, &ignore, &old_action), 0);
  struct rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  struct rlimit small = old_limit;
  small.rlim_cur = 64 << 10;  // the WAL is far smaller yet; 2000 events exceed it
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  size_t accepted = 0;
  for (uint32_t i = 1; i <= 2000; ++i)
    accepted +=
        store->Enqueue(Stream::kLive, Event(FlowEventType::kNew, MakeFlow(i, now, kSec), now));
  const absl::Status flushed = store->Flush();
  setrlimit(RLIMIT_FSIZE, &old_limit);
  sigaction(SIGXFSZ, &old_action, nullptr);

  EXPECT_EQ(accepted, 2000u);  // the producer never noticed
  EXPECT_FALSE(flushed.ok());
  EXPECT_NE(flushed.message().find("write flow batch"), std::string_view::npos) << flushed;
  const FlowStoreCounters c = store->counters();
  EXPECT_GE(c.write_errors, 1u);
  EXPECT_GE(c.lost_to_errors, 1u);
  EXPECT_TRUE(store->needs_full_rewrite(Stream::kLive));

  // RocksDB does not resume after a failed WAL append: the owner reopens the store once
  // there is space again (then rewrites it). The reopened store holds what was committed.
  store->Close().IgnoreError();  // reports the failure; must not hang or abort
  store.reset();
  store = Open(o);
  ASSERT_NE(store, nullptr);
  auto r = store->Restore(clock_.Now(), clock_.WallNanos());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->corrupt, 0u);
  EXPECT_GE(r->live().size(), 1u);
  ASSERT_TRUE(
      store->Enqueue(Stream::kLive, Event(FlowEventType::kNew, MakeFlow(5000, now, kSec), now)));
  EXPECT_TRUE(store->Flush().ok());
}

TEST_F(FlowStoreTest, RefusesAnotherNodesStoreAndBadOptions) {
  Open(Options())->Close().IgnoreError();
  FlowStoreOptions o = Options();
  o.node_id = "fw-b";
  absl::StatusOr<std::unique_ptr<FlowStore>> s = FlowStore::Create(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("belongs to node 'fw-a'"), std::string_view::npos);
  o = Options();
  o.clock = nullptr;
  EXPECT_EQ(FlowStore::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
}

class SnapshotTest : public FlowStoreTest {
 protected:
  FlowStoreOptions SnapOptions() {
    FlowStoreOptions o = Options();
    o.snapshot_root = dir_.path();
    o.snapshot_retain = 2;
    return o;
  }
  void Fill(FlowStore& store, uint32_t n, uint32_t first = 0) {
    const Nanos now = clock_.Now();
    for (uint32_t i = first; i < first + n; ++i)
      ASSERT_TRUE(
          store.Enqueue(Stream::kLive,
                        Event(FlowEventType::kNew, MakeFlow(i, now, 100 * kSec, i % 3 == 0), now)));
    ASSERT_TRUE(store.Flush().ok());
  }
};

TEST_F(SnapshotTest, ManifestCountsAndRetention) {
  auto store = Open(SnapOptions());
  Fill(*store, 30);
  absl::StatusOr<SnapshotInfo> s1 = store->TakeSnapshot("command");
  ASSERT_TRUE(s1.ok()) << s1.status();
  EXPECT_EQ(s1->manifest.live_flows(), 30u);
  EXPECT_EQ(s1->manifest.node_id(), "fw-a");
  EXPECT_EQ(s1->manifest.reason(), "command");
  EXPECT_EQ(s1->manifest.format_version(), kStoreFormatVersion);
  std::map<std::string, uint64_t> counts;
  for (const auto& c : s1->manifest.counts()) counts[c.key()] = c.count();
  EXPECT_EQ(counts["udp"], 10u);
  EXPECT_EQ(counts["tcp"], 20u);
  EXPECT_EQ(counts["tcp/ESTABLISHED"], 20u);
  EXPECT_FALSE(s1->manifest.files().empty());
  EXPECT_TRUE(VerifyStoreDir(s1->path).ok());

  // An interrupted snapshot (no manifest) and an interrupted checkpoint (.tmp).
  std::filesystem::create_directories(dir_.Sub("snapshots/20260101T000000Z-000050"));
  std::filesystem::create_directories(dir_.Sub("snapshots/20260101T000000Z-000060.tmp"));
  auto list = ListSnapshots(dir_.path());
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_TRUE((*list)[0].complete);
  EXPECT_FALSE((*list)[1].complete);
  EXPECT_NE((*list)[1].problem.find("manifest.pb: missing"), std::string::npos)
      << (*list)[1].problem;
  EXPECT_NE((*list)[2].problem.find("interrupted"), std::string::npos);

  Fill(*store, 5, 100);
  auto s2 = store->TakeSnapshot("command");
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(s2->sequence, 61u);  // after every name seen, complete or not
  EXPECT_EQ(s2->manifest.live_flows(), 35u);
  auto s3 = store->TakeSnapshot("schedule");
  ASSERT_TRUE(s3.ok());
  list = ListSnapshots(dir_.path());
  ASSERT_EQ(list->size(), 2u);  // retain 2; incomplete ones were removed
  EXPECT_EQ((*list)[0].name, s2->name);
  EXPECT_EQ((*list)[1].name, s3->name);
  EXPECT_EQ(store->counters().snapshots, 3u);
}

// Sets or clears the immutable attribute (which stops even root from unlinking a file).
bool SetImmutable(const std::filesystem::path& file, bool on) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  int flags = 0;
  bool ok = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
  if (ok) {
    flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
    ok = ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
  }
  ::close(fd);
  return ok;
}

// Retention stopped part way through removing a snapshot (a crash, here an undeletable
// file) must leave it listed as incomplete, not as a complete snapshot with files missing.
TEST_F(SnapshotTest, RetentionStoppedMidRemovalLeavesAnIncompleteSnapshot) {
  auto store = Open(SnapOptions());
  Fill(*store, 30);
  absl::StatusOr<SnapshotInfo> s1 = store->TakeSnapshot("command");
  ASSERT_TRUE(s1.ok()) << s1.status();
  Fill(*store, 5, 100);
  absl::StatusOr<SnapshotInfo> s2 = store->TakeSnapshot("command");
  ASSERT_TRUE(s2.ok()) << s2.status();
  // Checkpoints hard-link the store's files: pin them only once the store is done.
  ASSERT_TRUE(store->Close().ok());
  // Every file of s1 but the manifest is made undeletable, so remove_all fails at the
  // first of them whatever order the directory lists them in.
  std::vector<std::filesystem::path> pinned;
  struct Unpin {
    std::vector<std::filesystem::path>* files;
    ~Unpin() {
      for (const auto& f : *files) SetImmutable(f, false);
    }
  } unpin{&pinned};
  for (const auto& e : std::filesystem::directory_iterator(s1->path)) {
    if (e.path().filename() == kManifestFile) continue;
    if (!SetImmutable(e.path(), true))
      GTEST_SKIP() << "cannot set the immutable attribute here (needs root and ext4-like fs)";
    pinned.push_back(e.path());
  }
  ASSERT_FALSE(pinned.empty());

  const absl::Status stopped = ApplyRetention(dir_.path(), 1);
  EXPECT_NE(stopped.message().find("remove " + s1->path), std::string_view::npos) << stopped;
  auto list = ListSnapshots(dir_.path());
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, s1->name);
  EXPECT_FALSE((*list)[0].complete);
  EXPECT_NE((*list)[0].problem.find("incomplete"), std::string::npos);
  EXPECT_FALSE(FlowSource::Open(s1->path).ok());
  EXPECT_EQ((*list)[1].name, s2->name);
  EXPECT_TRUE((*list)[1].complete);

  // Once the files can go, the next retention removes what is left.
  for (const auto& f : pinned) ASSERT_TRUE(SetImmutable(f, false));
  ASSERT_TRUE(ApplyRetention(dir_.path(), 1).ok());
  list = ListSnapshots(dir_.path());
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, s2->name);
}

TEST_F(SnapshotTest, ShutdownSnapshotAndScheduledSnapshot) {
  FlowStoreOptions o = SnapOptions();
  o.snapshot_on_close = true;
  o.snapshot_interval = 60 * kSec;
  auto store = Open(o);
  Fill(*store, 3);
  clock_.Advance(61 * kSec);
  // The scheduler polls the injected clock; wait (bounded) for it to notice.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (store->counters().snapshots == 0 && std::chrono::steady_clock::now() < give_up)
    std::this_thread::yield();
  EXPECT_EQ(store->counters().snapshots, 1u);
  ASSERT_TRUE(store->Close().ok());
  auto list = ListSnapshots(dir_.path());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].manifest.reason(), "schedule");
  EXPECT_EQ((*list)[1].manifest.reason(), "shutdown");
  EXPECT_EQ((*list)[1].manifest.live_flows(), 3u);
}

// Damage of every kind is refused with a message naming what is wrong.
TEST_F(SnapshotTest, CorruptOrTruncatedSnapshotsGiveClearErrors) {
  auto store = Open(SnapOptions());
  Fill(*store, 50);
  auto snap = store->TakeSnapshot("command");
  ASSERT_TRUE(snap.ok());
  ASSERT_TRUE(FlowSource::Open(snap->path).ok());
  namespace fs = std::filesystem;
  const std::string manifest = snap->path + "/manifest.pb";

  // Find the SST (the flushed flows) among the listed files.
  std::string sst;
  for (const auto& f : snap->manifest.files())
    if (f.name().size() > 4 && f.name().substr(f.name().size() - 4) == ".sst") sst = f.name();
  ASSERT_FALSE(sst.empty());

  {  // A flipped byte inside the SST: same size, checksum differs.
    std::fstream f(snap->path + "/" + sst, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    char c;
    f.read(&c, 1);
    f.seekp(20);
    c ^= 0x5a;
    f.write(&c, 1);
  }
  VerifyReport v = VerifyStoreDir(snap->path);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.problems[0].find("file " + sst + ": checksum mismatch"), std::string::npos)
      << v.problems[0];

  // A truncated SST.
  fs::resize_file(snap->path + "/" + sst, 100);
  auto src = FlowSource::Open(snap->path);
  ASSERT_FALSE(src.ok());
  EXPECT_NE(src.status().message().find("file " + sst + " is 100 bytes"), std::string_view::npos)
      << src.status();
  EXPECT_NE(src.status().message().find("(truncated)"), std::string_view::npos);

  // A truncated manifest, then a corrupted one, then none.
  std::string bytes;
  {
    std::ifstream in(manifest, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  {
    std::ofstream out(manifest, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), bytes.size() - 3);
  }
  src = FlowSource::Open(snap->path);
  ASSERT_FALSE(src.ok());
  EXPECT_NE(src.status().message().find("manifest.pb: truncated"), std::string_view::npos)
      << src.status();
  {
    std::ofstream out(manifest, std::ios::binary | std::ios::trunc);
    bytes[bytes.size() - 1] ^= 1;
    out.write(bytes.data(), bytes.size());
  }
  src = FlowSource::Open(snap->path);
  EXPECT_NE(src.status().message().find("manifest.pb: checksum mismatch"), std::string_view::npos)
      << src.status();
  fs::remove(manifest);
  src = FlowSource::Open(snap->path);
  EXPECT_NE(src.status().message().find("manifest.pb: missing"), std::string_view::npos)
      << src.status();
}

// A live store can be read (read-only) while its owner keeps writing.
TEST_F(FlowStoreTest, LiveStoreReadableWhileOpen) {
  auto store = Open(Options());
  const Nanos now = clock_.Now();
  store->Enqueue(Stream::kLive, Event(FlowEventType::kNew, MakeFlow(1, now, 100 * kSec), now));
  ASSERT_TRUE(store->Flush().ok());
  auto src = FlowSource::Open(Options().path);
  ASSERT_TRUE(src.ok()) << src.status();
  EXPECT_EQ((*src)->kind(), FlowSource::Kind::kStore);
  EXPECT_EQ((*src)->node_id(), "fw-a");
  int n = 0;
  ASSERT_TRUE((*src)->ForEach([&](const SourceRecord& r) { n += r.status.ok(); }).ok());
  EXPECT_EQ(n, 1);
}

}  // namespace
}  // namespace ctsync::storage

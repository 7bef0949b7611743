#include "storage/restore.h"

#include <limits>

#include <thread>

#include "gtest/gtest.h"
#include "proto/flow_codec.h"
#include "tests/storage/test_flows.h"

namespace ctsync::storage {
namespace {

using testing::MakeFlow;
using testing::Reverse;
constexpr Nanos kSec = kNanosPerSecond;
constexpr Nanos kWall = 1'700'000'000 * kSec;

std::unique_ptr<ConntrackEngine> NewEngine(Nanos now) {
  ConntrackOptions o;
  o.settings.nf_conntrack_max = 1024;
  o.settings.nf_conntrack_buckets = 1024;
  o.event_ring_capacity = 64;
  auto e = ConntrackEngine::Create(o, now);
  EXPECT_TRUE(e.ok()) << e.status();
  return *std::move(e);
}

proto::Flow Saved(const Flow& f, Nanos now, Nanos wall, const SeqAdjust* sa = nullptr,
                  const Tuple* master = nullptr) {
  proto::Flow m;
  codec::FlowToProto(f, now, wall, {sa, master}, &m);
  return m;
}

TEST(RestoreCollectorTest, AgesRecordsByWallTimeAndCountsBadOnes) {
  RestoreCollector c(50 * kSec, kWall + 100 * kSec);
  c.AddFlow(Stream::kLive, Saved(MakeFlow(1, 0, 300 * kSec), 0, kWall));      // 200 s left
  c.AddFlow(Stream::kLive, Saved(MakeFlow(2, 0, 100 * kSec), 0, kWall));      // exactly 0
  c.AddFlow(Stream::kExternal, Saved(MakeFlow(3, 0, 101 * kSec), 0, kWall));  // 1 s
  // A record from the "future" (wall clock stepped back) is not given extra time.
  c.AddFlow(Stream::kLive, Saved(MakeFlow(4, 0, 10 * kSec), 0, kWall + 500 * kSec));
  proto::Flow bad = Saved(MakeFlow(5, 0, 10 * kSec), 0, kWall);
  bad.mutable_tcp()->set_state(99);
  c.AddFlow(Stream::kLive, bad);
  c.AddRecord(Stream::kLive, "short", "xx");
  RestoredFlows r = c.Finish();
  ASSERT_EQ(r.live().size(), 2u);
  EXPECT_EQ(r.live()[0].remaining, 200 * kSec);
  EXPECT_EQ(r.live()[0].flow.expires, 250 * kSec);
  EXPECT_EQ(r.live()[1].remaining, 10 * kSec);
  ASSERT_EQ(r.external().size(), 1u);
  EXPECT_EQ(r.external()[0].remaining, kSec);
  EXPECT_EQ(r.expired, 1u);
  EXPECT_EQ(r.corrupt, 2u);
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_NE(
      r.errors[0].find("live record zone 0 tcp 192.0.2.0:5 -> 198.51.100.20:80: tcp state 99"),
      std::string::npos)
      << r.errors[0];
  EXPECT_NE(r.errors[1].find("too short"), std::string::npos) << r.errors[1];
}

// The heart of "NAT flows resume with their bindings": after restore the SNAT flow is found
// under its reply tuple (the translated address and port), so the NAT engine's uniqueness
// check against the table sees the port as taken, and a new flow that would need the same
// reply tuple is refused.
TEST(RestoreIntoEngineTest, NatBindingsAreHeldByRestoredFlows) {
  const Nanos now = 10 * kSec;
  auto engine = NewEngine(now);
  RestoreCollector c(now, kWall + 60 * kSec);
  const Flow nat = MakeFlow(7, 0, 3600 * kSec, /*udp=*/false, /*nat=*/true);
  SeqAdjust sa;
  sa.dir[0] = {1000, 0, 4};
  c.AddFlow(Stream::kLive, Saved(nat, 0, kWall, &sa));
  const Flow master = MakeFlow(8, 0, 3600 * kSec);
  Flow child = MakeFlow(9, 0, 3600 * kSec);
  child.status |= kIpsExpected;
  // The child comes first: masters are linked after everything is in.
  c.AddFlow(Stream::kLive, Saved(child, 0, kWall, nullptr, &master.tuple[0]));
  c.AddFlow(Stream::kLive, Saved(master, 0, kWall));
  RestoredFlows r = c.Finish();
  ASSERT_EQ(r.live().size(), 3u);

  EngineRestoreResult res = RestoreIntoEngine(*engine, r.live(), now);
  EXPECT_EQ(res.inserted, 3u);
  EXPECT_EQ(res.clashed, 0u);
  EXPECT_EQ(res.masters_linked, 1u);

  const FlowTable& table = engine->table();
  const FlowLookup by_reply = table.Find(nat.tuple[1], 0);
  ASSERT_TRUE(by_reply.found());
  EXPECT_EQ(by_reply.dir, Direction::kReply);
  const Flow& restored = table.flow(by_reply.idx);
  EXPECT_EQ(restored.tuple[0], nat.tuple[0]);
  EXPECT_EQ(restored.tuple[1].dst.ToString(Family::kIpv4), "203.0.113.5");
  EXPECT_EQ(restored.tuple[1].dport, nat.tuple[1].dport);
  EXPECT_TRUE(restored.has(kIpsSrcNat | kIpsSrcNatDone | kIpsConfirmed | kIpsAssured));
  EXPECT_EQ(restored.tcp.state, TcpState::kEstablished);
  EXPECT_EQ(restored.expires, now + 3600 * kSec - 60 * kSec);
  ASSERT_NE(table.seq_adjust(by_reply.idx), nullptr);
  EXPECT_EQ(*table.seq_adjust(by_reply.idx), sa);

  const FlowLookup ch = table.Find(child.tuple[0], 0);
  ASSERT_TRUE(ch.found());
  EXPECT_EQ(table.flow(ch.idx).master, table.Find(master.tuple[0], 0).idx);

  // Another connection whose translation would land on the restored binding (same reply
  // tuple) cannot get it.
  Flow other = MakeFlow(1000, now, 60 * kSec);
  other.tuple[0].src = IpAddress::FromV4(0xc0000263u);  // 192.0.2.99, a different client
  other.tuple[1] = nat.tuple[1];
  absl::StatusOr<FlowIndex> clash = engine->Insert(other, nullptr, now);
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(table.Find(other.tuple[0], 0).found(), false);

  // Restoring the same flows again clashes on every one of them and changes nothing.
  EngineRestoreResult again = RestoreIntoEngine(*engine, r.live(), now);
  EXPECT_EQ(again.inserted, 0u);
  EXPECT_EQ(again.clashed, 3u);
  EXPECT_EQ(table.confirmed_count(), 3u);
}

TEST(RestoreIntoEngineTest, TableFullIsCounted) {
  ConntrackOptions o;
  o.settings.nf_conntrack_max = 2;
  o.settings.nf_conntrack_buckets = 16;
  auto engine = *ConntrackEngine::Create(o, 0);
  RestoreCollector c(0, kWall);
  // ASSURED flows are never early-dropped, so the third cannot get a slot.
  for (uint32_t i = 0; i < 3; ++i)
    c.AddFlow(Stream::kLive, Saved(MakeFlow(i, 0, 100 * kSec), 0, kWall));
  RestoredFlows r = c.Finish();
  EngineRestoreResult res = RestoreIntoEngine(*engine, r.live(), 0);
  EXPECT_EQ(res.inserted, 2u);
  EXPECT_EQ(res.table_full, 1u);
}

}  // namespace
}  // namespace ctsync::storage

namespace ctsync::storage {
namespace {

// The parallel collector gives the same flows in the same order, and the same counts and
// named errors, as the one-thread collector, across many chunks.
TEST(ParallelRestoreCollectorTest, SameResultAsSerial) {
  constexpr Nanos kNow = 50 * kNanosPerSecond;
  constexpr Nanos kWallNow = 1'700'000'000 * kNanosPerSecond + 10 * kNanosPerSecond;
  RestoreCollector serial(kNow, kWallNow);
  ParallelRestoreCollector parallel(kNow, kWallNow, 3);
  for (uint32_t i = 0; i < 20000; ++i) {
    // Every 7th flow has run out of time; every 1000th record is damaged.
    const Nanos ttl = (i % 7 == 0 ? 5 : 500) * kNanosPerSecond;
    proto::Flow m;
    codec::FlowToProto(testing::MakeFlow(i, 0, ttl, i % 3 == 0), 0, kWallNow - 10 * kNanosPerSecond,
                       {}, &m);
    std::string key, value;
    ASSERT_TRUE(FlowKeyOf(m, &key).ok());
    EncodeFlowValue(key, m.SerializeAsString(), &value);
    if (i % 1000 == 999) value.back() ^= 1;
    const Stream s = i % 5 == 0 ? Stream::kExternal : Stream::kLive;
    serial.AddRecord(s, key, value);
    parallel.AddRecord(s, key, value);
  }
  RestoredFlows a = serial.Finish();
  RestoredFlows b = parallel.Finish();
  EXPECT_EQ(a.expired, b.expired);
  EXPECT_EQ(a.corrupt, 20u);
  EXPECT_EQ(b.corrupt, 20u);
  EXPECT_EQ(a.errors, b.errors);
  for (int s = 0; s < kStreamCount; ++s) {
    ASSERT_EQ(a.flows[s].size(), b.flows[s].size());
    for (size_t i = 0; i < a.flows[s].size(); ++i) {
      ASSERT_EQ(a.flows[s][i].flow.tuple[0], b.flows[s][i].flow.tuple[0]) << i;
      ASSERT_EQ(a.flows[s][i].remaining, b.flows[s][i].remaining) << i;
    }
  }
  EXPECT_GT(a.live().size(), 10000u);
}

// Streamed: a producer thread feeds the collector while this thread consumes, with one
// chunk in flight at most (the producer must wait for the consumer), and chunk memory is
// reused. Same flows in the same order per stream, same counts and errors as one
// RestoreCollector; a read error reported by the producer is counted and named last.
TEST(ParallelRestoreCollectorTest, StreamedConsumeMatchesSerialWithBackpressure) {
  constexpr Nanos kNow = 50 * kNanosPerSecond;
  constexpr Nanos kWallNow = 1'700'000'000 * kNanosPerSecond + 10 * kNanosPerSecond;
  std::vector<std::pair<std::string, std::string>> records;
  for (uint32_t i = 0; i < 40000; ++i) {
    const Nanos ttl = (i % 7 == 0 ? 5 : 500) * kNanosPerSecond;
    proto::Flow m;
    codec::FlowToProto(testing::MakeFlow(i, 0, ttl, i % 3 == 0), 0, kWallNow - 10 * kNanosPerSecond,
                       {}, &m);
    std::string key, value;
    ASSERT_TRUE(FlowKeyOf(m, &key).ok());
    EncodeFlowValue(key, m.SerializeAsString(), &value);
    if (i % 1000 == 999) value.back() ^= 1;
    records.emplace_back(std::move(key), std::move(value));
  }
  // As a store is read: every live record, then every external one.
  auto stream_of = [](size_t i) { return i < 30000 ? Stream::kLive : Stream::kExternal; };
  RestoreCollector serial(kNow, kWallNow);
  for (size_t i = 0; i < records.size(); ++i)
    serial.AddRecord(stream_of(i), records[i].first, records[i].second);
  serial.AddError("read error");
  RestoredFlows a = serial.Finish();

  ParallelRestoreCollector parallel(kNow, kWallNow, 2, /*max_in_flight=*/1);
  std::thread producer([&] {
    for (size_t i = 0; i < records.size(); ++i)
      parallel.AddRecord(stream_of(i), records[i].first, records[i].second);
    parallel.AddError("read error");
    parallel.EndInput();
  });
  std::vector<codec::DecodedFlow> got[kStreamCount];
  size_t calls = 0;
  RestoredFlows b = parallel.Consume([&](Stream s, absl::Span<codec::DecodedFlow> flows) {
    ++calls;
    got[static_cast<int>(s)].insert(got[static_cast<int>(s)].end(), flows.begin(), flows.end());
  });
  producer.join();
  EXPECT_GE(calls, 5u);  // 40000 records are five chunks, one of them with both streams
  EXPECT_EQ(a.expired, b.expired);
  EXPECT_EQ(b.corrupt, 41u);
  EXPECT_EQ(a.corrupt, b.corrupt);
  EXPECT_EQ(a.errors, b.errors);
  EXPECT_TRUE(b.live().empty());
  for (int s = 0; s < kStreamCount; ++s) {
    ASSERT_EQ(a.flows[s].size(), got[s].size());
    for (size_t i = 0; i < got[s].size(); ++i) {
      ASSERT_EQ(a.flows[s][i].flow.tuple[0], got[s][i].flow.tuple[0]) << i;
      ASSERT_EQ(a.flows[s][i].flow.tcp.state, got[s][i].flow.tcp.state) << i;
      ASSERT_EQ(a.flows[s][i].remaining, got[s][i].remaining) << i;
    }
  }
  EXPECT_GT(got[1].size(), 5000u);
}

// Added in pieces, as a streamed restore does: a RELATED flow whose master arrives in a
// later piece is still linked (the master tuple is kept, not the piece's memory).
TEST(EngineRestorerTest, LinksMastersAcrossPieces) {
  ConntrackOptions co;
  auto engine = *ConntrackEngine::Create(co, 0);
  const Nanos now = 10 * kNanosPerSecond;
  std::vector<codec::DecodedFlow> child(1), master(1);
  child[0].flow = testing::MakeFlow(2, now, 100 * kNanosPerSecond);
  master[0].flow = testing::MakeFlow(1, now, 100 * kNanosPerSecond);
  child[0].master_tuple = master[0].flow.tuple[0];
  EngineRestorer restorer(*engine, now);
  restorer.Add(child);
  child.clear();  // the piece's memory is gone before Finish
  restorer.Add(master);
  const EngineRestoreResult r = restorer.Finish();
  EXPECT_EQ(r.inserted, 2u);
  EXPECT_EQ(r.masters_linked, 1u);
  const FlowLookup c = engine->table().Find(testing::MakeFlow(2, now, 0).tuple[0], 0);
  const FlowLookup m = engine->table().Find(master[0].flow.tuple[0], 0);
  ASSERT_TRUE(c.found());
  ASSERT_TRUE(m.found());
  EXPECT_EQ(engine->table().flow(c.idx).master, m.idx);
}

}  // namespace
}  // namespace ctsync::storage

namespace ctsync::storage {
namespace {

TEST(RecordAgeTest, ClampsAndSaturates) {
  constexpr Nanos kMax = std::numeric_limits<Nanos>::max();
  const Nanos now = 1'700'000'000 * kNanosPerSecond;
  EXPECT_EQ(RecordAge(now, 1'700'000'000'000 - 1500), 1500 * kNanosPerMilli);
  EXPECT_EQ(RecordAge(now, 1'700'000'000'000 + 5), 0);  // from the future
  EXPECT_EQ(RecordAge(now, std::numeric_limits<int64_t>::max()), 0);
  EXPECT_EQ(RecordAge(now, std::numeric_limits<int64_t>::min()), kMax);
  EXPECT_EQ(RecordAge(now, -13'835'058'055'282'164), kMax);
}

}  // namespace
}  // namespace ctsync::storage

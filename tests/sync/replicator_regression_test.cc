// Regression found by tests/fuzz/sync_datagram_fuzz: Replicator::Deliver (sync/replicator.cc)
// computes a batch's age as WallNanos() - wall_time_ms * 1e6 without a range check, a
// signed overflow for an authentic peer's absurd wall time. With wrapping arithmetic a
// batch from the far past gets age 0 instead of the max_batch_age cap, so its flows keep
// their full timeout.
#include <string>
#include <vector>

#include "core/util/clock.h"
#include "ctsync/sync.pb.h"
#include "gtest/gtest.h"
#include "sync/replicator.h"
#include "sync/wire.h"
#include "tests/sync/test_flows.h"

namespace ctsync::sync {
namespace {

constexpr char kKey[] = "replicator-regression-test-key-0";

TEST(ReplicatorRegressionTest, BatchFromTheFarPastIsAgedByTheCap) {
  ManualClock clock;
  ReplicatorOptions o;
  o.node_id = 1;
  o.incarnation = 1;
  o.keys.key = kKey;
  std::vector<PeerFlowUpdate> applied;
  Replicator::Callbacks cb;
  cb.send = [](absl::Span<const uint8_t>) {};
  cb.apply = [&](const PeerFlowUpdate& u) { applied.push_back(u); };
  auto r = Replicator::Create(o, std::move(cb), clock);
  ASSERT_TRUE(r.ok()) << r.status();

  const Nanos now = clock.Now();
  const Flow f = testing::MakeTcpNatFlow(0, now);  // 432000 s left
  proto::Batch b;
  b.set_stream_seq(1);
  // -1.5 * 2^63 / 1e6 ms: times 1e6 it wraps to +2^62 ns, later than the wall clock.
  b.set_wall_time_ms(-13'835'058'055'282'164);
  EncodeFlowUpdate(testing::MakeEvent(FlowEventType::kNew, f, now), now, clock.WallNanos(),
                   b.wall_time_ms(), b.add_updates());
  std::string payload;
  ASSERT_TRUE(b.SerializeToString(&payload));
  WireHeader h;
  h.type = MsgType::kData;
  h.node_id = 2;
  h.incarnation = 1;
  h.seq = 1;
  std::string datagram;
  EncodeDatagram(
      h, absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()),
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(kKey), sizeof(kKey) - 1), &datagram);
  ASSERT_TRUE((*r)->OnDatagram(
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(datagram.data()), datagram.size())));

  ASSERT_EQ(applied.size(), 1u);
  EXPECT_EQ(applied[0].decoded.remaining, 432000 * kNanosPerSecond - o.max_batch_age);
}

}  // namespace
}  // namespace ctsync::sync

// Regression found by tests/fuzz/sync_datagram_fuzz: Replicator::Deliver (sync/replicator.cc)
// computes a batch's age as WallNanos() - wall_time_ms * 1e6 without a range check, a
// signed overflow for an authentic peer's absurd wall time. With wrapping arithmetic a
// batch from the far past gets age 0 instead of the max_batch_age cap, so its flows keep
// their full timeout.
#include <cstdint>
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

// Delivers one authentic DATA batch written at `batch_wall_ms` holding a NEW of a flow with
// 432000 s left; returns the remaining lifetime the receiver gave it (-1: not applied).
Nanos RemainingAfterDelivery(int64_t batch_wall_ms, Nanos* max_batch_age) {
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
  if (!r.ok()) return -1;
  *max_batch_age = o.max_batch_age;

  const Nanos now = clock.Now();
  const Flow f = testing::MakeTcpNatFlow(0, now);  // 432000 s left
  proto::Batch b;
  b.set_stream_seq(1);
  b.set_wall_time_ms(batch_wall_ms);
  EncodeFlowUpdate(testing::MakeEvent(FlowEventType::kNew, f, now), now, clock.WallNanos(),
                   b.wall_time_ms(), b.add_updates());
  std::string payload;
  if (!b.SerializeToString(&payload)) return -1;
  WireHeader h;
  h.type = MsgType::kData;
  h.node_id = 2;
  h.incarnation = 1;
  h.seq = 1;
  std::string datagram;
  EncodeDatagram(
      h, absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()),
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(kKey), sizeof(kKey) - 1), &datagram);
  (*r)->OnDatagram(
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(datagram.data()), datagram.size()));
  return applied.size() == 1 ? applied[0].decoded.remaining : -1;
}

TEST(ReplicatorRegressionTest, BatchFromLongAgoIsAgedByTheCap) {
  Nanos cap = 0;
  const Nanos remaining = RemainingAfterDelivery(0, &cap);  // before `cap` is read
  EXPECT_EQ(remaining, 432000 * kNanosPerSecond - cap);  // 1970
}

TEST(ReplicatorRegressionTest, BatchFromTheFarPastIsAgedByTheCap) {
  Nanos cap = 0;
  // -1.5 * 2^63 / 1e6 ms: times 1e6 it wraps to +2^62 ns, later than the wall clock.
  const Nanos remaining = RemainingAfterDelivery(-13'835'058'055'282'164, &cap);
  EXPECT_EQ(remaining, 432000 * kNanosPerSecond - cap);
}

}  // namespace
}  // namespace ctsync::sync

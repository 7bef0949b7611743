// Regression found by tests/fuzz/store_reader_fuzz's analysis of the codec overflow:
// RestoreCollector::AddFlow (storage/restore.cc) ages a record by
// wall_now - wall_time_ms * 1e6 without a range check, a signed overflow for a corrupt or
// hostile wall time. With wrapping arithmetic a record from the far past comes out with
// no age at all and is restored alive with its full timeout.
#include <cstdint>

#include "gtest/gtest.h"
#include "proto/flow_codec.h"
#include "storage/restore.h"
#include "tests/storage/test_flows.h"

namespace ctsync::storage {
namespace {

constexpr Nanos kNow = 1000 * kNanosPerSecond;
constexpr Nanos kWallNow = 1'700'000'000 * kNanosPerSecond;

proto::Flow UdpFlowMessage() {
  proto::Flow m;
  codec::FlowToProto(testing::MakeFlow(5000, kNow, 30 * kNanosPerSecond, /*udp=*/true), kNow, kWallNow, {},
                     &m);
  return m;
}

TEST(RestoreRegressionTest, RecordFromTheFarPastIsNotRestoredAlive) {
  proto::Flow m = UdpFlowMessage();
  // -1.5 * 2^63 / 1e6 ms: times 1e6 it wraps to +2^62 ns, later than the wall clock.
  m.set_wall_time_ms(-13'835'058'055'282'164);
  m.set_created_wall_ms(m.wall_time_ms() - 1000);
  RestoreCollector c(kNow, kWallNow);
  c.AddFlow(Stream::kLive, m);
  const RestoredFlows r = c.Finish();
  EXPECT_TRUE(r.live().empty());
  EXPECT_EQ(r.expired + r.corrupt, 1u);
}

TEST(RestoreRegressionTest, RecentRecordStillRestores) {
  // The same flow written one second ago: the fix must not refuse ordinary records.
  proto::Flow m = UdpFlowMessage();
  m.set_wall_time_ms(kWallNow / kNanosPerMilli - 1000);
  RestoreCollector c(kNow, kWallNow);
  c.AddFlow(Stream::kLive, m);
  const RestoredFlows r = c.Finish();
  ASSERT_EQ(r.live().size(), 1u);
  EXPECT_EQ(r.live()[0].remaining, 29 * kNanosPerSecond);
}

}  // namespace
}  // namespace ctsync::storage

// Regressions found by tests/fuzz/flow_codec_fuzz (and sync_datagram_fuzz): millisecond
// fields of a peer's or a file's proto::Flow were turned into nanoseconds without a range
// check, a signed overflow (UBSan: proto/flow_codec.cc FlowFromProto, "signed integer
// overflow: 3602877983909483400 * 1000000"). With wrapping arithmetic the result is a flow
// that expired before it arrived, or one created in the future.
#include <cstdint>

#include "gtest/gtest.h"
#include "proto/flow_codec.h"

namespace ctsync::codec {
namespace {

constexpr Nanos kNow = 1000 * kNanosPerSecond;
constexpr Nanos kWallNow = 1'700'000'000 * kNanosPerSecond;
// 1.5 * 2^63 / 1e6: times 1e6 it wraps to a negative int64.
constexpr int64_t kWrapsNegative = 13'835'058'055'282'164;

proto::Flow UdpFlowMessage() {
  Flow f;
  f.tuple[0].family = Family::kIpv4;
  f.tuple[0].proto = kProtoUdp;
  f.tuple[0].src = *IpAddress::Parse("192.0.2.10");
  f.tuple[0].dst = *IpAddress::Parse("198.51.100.20");
  f.tuple[0].sport = 5000;
  f.tuple[0].dport = 53;
  f.tuple[1] = f.tuple[0];
  f.tuple[1].src = f.tuple[0].dst;
  f.tuple[1].dst = f.tuple[0].src;
  f.tuple[1].sport = 53;
  f.tuple[1].dport = 5000;
  f.status = kIpsConfirmed | kIpsSeenReply;
  f.created = kNow - kNanosPerSecond;
  f.expires = kNow + 30 * kNanosPerSecond;
  proto::Flow m;
  FlowToProto(f, kNow, kWallNow, {}, &m);
  return m;
}

TEST(FlowCodecRegressionTest, HugeTimeoutIsRejectedOrStaysInTheFuture) {
  for (int64_t timeout_ms : {kWrapsNegative, INT64_MAX / 1000, INT64_MAX}) {
    SCOPED_TRACE(timeout_ms);
    proto::Flow m = UdpFlowMessage();
    m.set_timeout_ms(timeout_ms);
    DecodedFlow d;
    if (!FlowFromProto(m, kNow, 0, &d).ok()) continue;  // rejecting it is fine
    EXPECT_GT(d.remaining, 0);
    EXPECT_GT(d.flow.expires, kNow);
  }
}

TEST(FlowCodecRegressionTest, HugeCreationAgeIsRejectedOrInThePast) {
  struct Case {
    int64_t wall_ms, created_wall_ms;
  };
  for (const Case& c : {Case{1'700'000'000'000 + kWrapsNegative, 1'700'000'000'000},
                        Case{INT64_MAX, INT64_MIN}, Case{INT64_MIN, INT64_MAX}}) {
    SCOPED_TRACE(c.wall_ms);
    proto::Flow m = UdpFlowMessage();
    m.set_wall_time_ms(c.wall_ms);
    m.set_created_wall_ms(c.created_wall_ms);
    DecodedFlow d;
    if (!FlowFromProto(m, kNow, 0, &d).ok()) continue;
    EXPECT_LE(d.flow.created, kNow);
  }
}

}  // namespace
}  // namespace ctsync::codec

// AppendFlowWire (proto/flow_wire.h) against the message path it replaces: for flows of
// every shape (IPv4/IPv6, TCP/UDP/ICMP, NAT, helper, master, sequence adjustment with
// negative offsets, counters and fields at their limits, zero fields left out), the bytes
// are exactly FlowToProto + SerializeToString's, and they parse back to the same message.
#include "proto/flow_wire.h"

#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "gtest/gtest.h"

namespace ctsync::codec {
namespace {

constexpr Nanos kNow = 5000 * kNanosPerSecond;
constexpr Nanos kWallNow = 1'700'000'000 * kNanosPerSecond;

Flow RandomFlow(std::mt19937_64& rng) {
  auto pick = [&](uint64_t n) { return rng() % n; };
  // Values near the edges of their varint sizes, zero (left out) and random ones.
  auto u32 = [&]() -> uint32_t {
    switch (pick(4)) {
      case 0: return 0;
      case 1: return std::numeric_limits<uint32_t>::max();
      case 2: return static_cast<uint32_t>(1u << pick(32));
      default: return static_cast<uint32_t>(rng());
    }
  };
  Flow f;
  const bool v6 = pick(2) == 0;
  const uint8_t protos[] = {kProtoTcp, kProtoUdp, kProtoIcmp, 132};
  for (Tuple& t : f.tuple) {
    t.family = v6 ? Family::kIpv6 : Family::kIpv4;
    t.proto = protos[pick(4)];
    for (size_t i = 0; i < (v6 ? 16u : 4u); ++i) {
      t.src.bytes[i] = static_cast<uint8_t>(pick(3) == 0 ? 0 : rng());
      t.dst.bytes[i] = static_cast<uint8_t>(rng());
    }
    t.sport = static_cast<uint16_t>(pick(3) == 0 ? 0 : rng());
    t.dport = static_cast<uint16_t>(rng());
  }
  f.tuple[1].proto = f.tuple[0].proto;
  f.status = static_cast<uint16_t>(u32());
  f.zone = static_cast<uint16_t>(pick(2) == 0 ? 0 : rng());
  f.mark = u32();
  f.created = kNow - static_cast<Nanos>(pick(3) == 0 ? 0 : rng() % (1ull << 50));
  // Expired (timeout 0), short and long lifetimes.
  f.expires = kNow + static_cast<Nanos>(rng() % (1ull << 45)) - (pick(4) == 0 ? (1ll << 46) : 0);
  f.id = pick(4) == 0 ? std::numeric_limits<uint32_t>::max()
                      : static_cast<uint32_t>(rng() >> pick(64));
  f.helper = pick(3) == 0 ? FlowHelper::kFtp : FlowHelper::kNone;
  if (f.proto() == kProtoTcp) {
    f.tcp.state = static_cast<TcpState>(pick(static_cast<uint64_t>(TcpState::kMax)));
    for (TcpDirState& d : f.tcp.seen) {
      d = {u32(), u32(), u32(), u32(), static_cast<uint8_t>(pick(15)),
           static_cast<uint8_t>(rng())};
    }
    f.tcp.last_dir = static_cast<uint8_t>(pick(2));
    f.tcp.retrans = static_cast<uint8_t>(rng());
    f.tcp.last_index = static_cast<uint8_t>(pick(6));
    f.tcp.last_seq = u32();
    f.tcp.last_ack = u32();
    f.tcp.last_end = u32();
    f.tcp.last_win = static_cast<uint16_t>(rng());
    f.tcp.last_wscale = static_cast<uint8_t>(pick(15));
    f.tcp.last_flags = static_cast<uint8_t>(rng());
  }
  return f;
}

void ExpectSameBytes(const Flow& f, const FlowExtras& extras) {
  proto::Flow m;
  FlowToProto(f, kNow, kWallNow, extras, &m);
  std::string want;
  ASSERT_TRUE(m.SerializeToString(&want));
  std::string got = "prefix";  // appends: what is there stays
  ASSERT_TRUE(AppendFlowWire(f, kNow, kWallNow, extras, &got));
  ASSERT_EQ(got.substr(0, 6), "prefix");
  ASSERT_EQ(got.substr(6), want);
  proto::Flow back;
  ASSERT_TRUE(back.ParseFromString(got.substr(6)));
  EXPECT_EQ(back.SerializeAsString(), want);
  // Without the original tuple (the flow store's records): the message less that field.
  m.clear_original();
  std::string short_form;
  ASSERT_TRUE(AppendFlowWire(f, kNow, kWallNow, extras, &short_form, /*with_original=*/false));
  ASSERT_EQ(short_form, m.SerializeAsString());
}

TEST(FlowWireTest, SameBytesAsTheMessagePath) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    SCOPED_TRACE(i);
    const Flow f = RandomFlow(rng);
    SeqAdjust sa;
    sa.dir[0] = {static_cast<uint32_t>(rng()), -static_cast<int32_t>(rng() % 5000), 0};
    sa.dir[1] = {0, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()};
    Tuple master = RandomFlow(rng).tuple[0];
    master.family = f.family();
    const FlowAccounting counters{{{rng() >> (rng() % 64), rng() >> (rng() % 64)},
                                   {rng() % 2 == 0 ? 0 : rng(), 0}}};
    FlowExtras extras;
    if (rng() % 2 == 0) extras.seq_adjust = &sa;
    if (rng() % 2 == 0) extras.master = &master;
    if (rng() % 2 == 0) extras.counters = &counters;
    ExpectSameBytes(f, extras);
    if (HasFailure()) return;
  }
}

TEST(FlowWireTest, EmptyFlowAndNegativeWallTime) {
  Flow f;
  proto::Flow m;
  FlowToProto(f, 0, -kNanosPerSecond, {}, &m);
  std::string want = m.SerializeAsString();
  std::string got;
  ASSERT_TRUE(AppendFlowWire(f, 0, -kNanosPerSecond, {}, &got));
  EXPECT_EQ(got, want);
}

TEST(FlowWireTest, LeavesHelperStateToTheMessagePath) {
  Flow f;
  FtpLineState ftp;
  Expectation e;
  std::string out = "x";
  EXPECT_FALSE(AppendFlowWire(f, kNow, kWallNow, {.ftp_state = &ftp}, &out));
  EXPECT_FALSE(AppendFlowWire(f, kNow, kWallNow, {.expectation = &e}, &out));
  EXPECT_EQ(out, "x");
}

}  // namespace
}  // namespace ctsync::codec

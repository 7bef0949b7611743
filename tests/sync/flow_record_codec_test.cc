#include "sync/flow_record_codec.h"

#include <cstdio>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/sync/test_flows.h"

namespace ctsync::sync {
namespace {

using testing::MakeEvent;
using testing::MakeTcpNatFlow;

constexpr Nanos kNow = 50 * kNanosPerSecond;
constexpr Nanos kWall = 1'700'000'000'000 * kNanosPerMilli;
constexpr int64_t kWallMs = kWall / kNanosPerMilli;
// The receiver's monotonic clock is elsewhere; the batch is 3 ms old.
constexpr Nanos kRxNow = 7 * kNanosPerSecond;
constexpr Nanos kAge = 3 * kNanosPerMilli;

struct Encoded {
  std::string bytes;
  std::vector<size_t> sizes;  // per record
};

Encoded EncodeAll(const std::vector<FlowEvent>& events) {
  Encoded out;
  RecordContext ctx;
  for (const FlowEvent& e : events) {
    const size_t before = out.bytes.size();
    AppendFlowRecord(e, kNow, kWall, &ctx, &out.bytes);
    out.sizes.push_back(out.bytes.size() - before);
  }
  return out;
}

std::vector<PeerFlowUpdate> DecodeAll(const std::string& bytes, size_t* errors = nullptr) {
  std::vector<PeerFlowUpdate> out;
  RecordContext ctx;
  proto::Flow scratch;
  size_t pos = 0;
  while (pos < bytes.size()) {
    PeerFlowUpdate u;
    const absl::Status s = ReadFlowRecord(bytes, &pos, kWallMs, kRxNow, kAge, &ctx, &scratch, &u);
    if (!s.ok()) {
      if (errors) ++*errors;
      continue;
    }
    out.push_back(u);
  }
  return out;
}

// What the protobuf path (the one Flow <-> proto codec) makes of the same event: the records
// must give exactly that.
codec::DecodedFlow ViaProto(const FlowEvent& e) {
  proto::Flow m;
  codec::FlowToProto(e.flow, kNow, kWall, codec::ExtrasOf(e), &m);
  codec::DecodedFlow d;
  EXPECT_TRUE(codec::FlowFromProto(m, kRxNow, kAge, &d).ok());
  return d;
}

void ExpectSame(const codec::DecodedFlow& got, const codec::DecodedFlow& want) {
  const Flow& g = got.flow;
  const Flow& w = want.flow;
  EXPECT_EQ(g.tuple[0], w.tuple[0]);
  EXPECT_EQ(g.tuple[1], w.tuple[1]);
  EXPECT_EQ(g.status, w.status);
  EXPECT_EQ(g.zone, w.zone);
  EXPECT_EQ(g.mark, w.mark);
  EXPECT_EQ(g.id, w.id);
  EXPECT_EQ(g.expires, w.expires);
  EXPECT_EQ(g.created, w.created);
  EXPECT_EQ(g.tcp, w.tcp);
  EXPECT_EQ(g.helper, w.helper);
  EXPECT_EQ(got.counters.dir[0], want.counters.dir[0]);
  EXPECT_EQ(got.counters.dir[1], want.counters.dir[1]);
  EXPECT_EQ(got.remaining, want.remaining);
  EXPECT_EQ(got.seq_adjust, want.seq_adjust);
  EXPECT_EQ(got.master_tuple, want.master_tuple);
  EXPECT_EQ(got.ftp_state, want.ftp_state);
  ASSERT_EQ(got.expectation.has_value(), want.expectation.has_value());
  if (got.expectation) {
    const Expectation& ge = *got.expectation;
    const Expectation& we = *want.expectation;
    EXPECT_EQ(ge.tuple, we.tuple);
    EXPECT_EQ(ge.mask, we.mask);
    EXPECT_EQ(ge.expires, we.expires);
    EXPECT_EQ(ge.master_tuple, we.master_tuple);
    EXPECT_EQ(ge.nat, we.nat);
    EXPECT_EQ(ge.saved_addr, we.saved_addr);
    EXPECT_EQ(ge.saved_port, we.saved_port);
    EXPECT_EQ(ge.dir, we.dir);
  }
}

FlowEvent RichUpdate() {
  // IPv6 DNAT, every extension: zone, mark, helper, master, counters, seq adjustment.
  Flow f = MakeTcpNatFlow(77, kNow);
  for (Tuple& t : f.tuple) t.family = Family::kIpv6;
  f.tuple[0].src = *IpAddress::Parse("2001:db8::1");
  f.tuple[0].dst = *IpAddress::Parse("2001:db8:1::2");
  f.tuple[1].src = *IpAddress::Parse("2001:db8:2::9");
  f.tuple[1].sport = 2121;
  f.tuple[1].dst = f.tuple[0].src;
  f.tuple[1].dport = f.tuple[0].sport;
  f.status = kIpsSeenReply | kIpsAssured | kIpsDstNat | kIpsDstNatDone | kIpsSeqAdjust |
             kIpsHelper;
  f.zone = 7;
  f.mark = 0xdeadbeef;
  f.helper = FlowHelper::kFtp;
  f.tcp.retrans = 3;
  f.tcp.last_wscale = 14;
  f.tcp.last_flags = 0x12;
  FlowEvent e = MakeEvent(FlowEventType::kUpdate, f, kNow);
  e.has_counters = true;
  e.counters.dir[0] = {12, 3456};
  e.counters.dir[1] = {1u << 20, uint64_t{1} << 40};
  e.has_seq_adjust = true;
  e.seq_adjust.dir[0] = {1000, 0, 5};
  e.seq_adjust.dir[1] = {2000, -3, -7};
  e.has_master = true;
  e.master = f.tuple[0];
  e.master.sport = 40000;
  e.master.dport = 21;
  // The FTP helper's line state and its pending expectation (the helper-data extension).
  e.has_ftp_state = true;
  e.ftp_state.seq_aft_nl[0][0] = 0xfffffff0u;
  e.ftp_state.seq_aft_nl_num[0] = 1;
  e.ftp_state.seq_aft_nl[1][0] = 17;
  e.ftp_state.seq_aft_nl[1][1] = 99;
  e.ftp_state.seq_aft_nl_num[1] = 2;
  e.has_expectation = true;
  e.expectation.tuple = f.tuple[1];
  e.expectation.tuple.sport = 0;
  e.expectation.mask = e.expectation.tuple;
  e.expectation.mask.sport = 0;
  e.expectation.expires = kNow + 300 * kNanosPerSecond;
  e.expectation.nat = true;
  e.expectation.saved_addr = *IpAddress::Parse("2001:db8::7");
  e.expectation.saved_port = 50000;
  e.expectation.dir = Direction::kReply;
  return e;
}

TEST(FlowRecordCodecTest, BulkSnatTcpFlowsRoundTripExactlyWithin50Bytes) {
  std::vector<FlowEvent> events;
  for (uint32_t i = 0; i < 40; ++i)
    events.push_back(MakeEvent(FlowEventType::kNew, MakeTcpNatFlow(1000 + i, kNow), kNow));
  const Encoded enc = EncodeAll(events);
  const std::vector<PeerFlowUpdate> got = DecodeAll(enc.bytes);
  ASSERT_EQ(got.size(), events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(got[i].type, FlowEventType::kNew);
    EXPECT_EQ(got[i].original, events[i].flow.tuple[0]);
    ExpectSame(got[i].decoded, ViaProto(events[i]));
  }
  // The first record of a batch carries the server and NAT addresses; the rest share them.
  EXPECT_LE(enc.sizes[0], 64u);
  for (size_t i = 1; i < enc.sizes.size(); ++i) EXPECT_LE(enc.sizes[i], 49u) << i;
  RecordProperty("bytes_per_bulk_record", static_cast<int>(enc.sizes[1]));
  std::printf("record bytes: first %zu, next %zu\n", enc.sizes[0], enc.sizes[1]);
}

TEST(FlowRecordCodecTest, EveryExtensionIpv6DnatAndDestroyRoundTrip) {
  const FlowEvent rich = RichUpdate();
  Flow udp;
  udp.tuple[0].family = udp.tuple[1].family = Family::kIpv4;
  udp.tuple[0].proto = udp.tuple[1].proto = kProtoUdp;
  udp.tuple[0].src = IpAddress::FromV4(0xC0000205);
  udp.tuple[0].dst = IpAddress::FromV4(0xC6336401);
  udp.tuple[0].sport = 5353;
  udp.tuple[0].dport = 53;
  udp.tuple[1] = udp.tuple[0];
  std::swap(udp.tuple[1].src, udp.tuple[1].dst);
  std::swap(udp.tuple[1].sport, udp.tuple[1].dport);
  udp.expires = kNow + 30 * kNanosPerSecond;
  udp.created = kNow + kNanosPerSecond;  // "created in the future": a negative age
  udp.id = 3;
  Flow full = MakeTcpNatFlow(5, kNow);  // SNAT and DNAT at once: the whole reply travels
  full.tuple[1].src = IpAddress::FromV4(0x0A000001);
  Flow gone = MakeTcpNatFlow(9, kNow);
  gone.zone = 4;
  const std::vector<FlowEvent> events = {rich, MakeEvent(FlowEventType::kNew, udp, kNow),
                                         MakeEvent(FlowEventType::kUpdate, full, kNow),
                                         MakeEvent(FlowEventType::kDestroy, gone, kNow), rich};
  const Encoded enc = EncodeAll(events);
  const std::vector<PeerFlowUpdate> got = DecodeAll(enc.bytes);
  ASSERT_EQ(got.size(), events.size());
  for (size_t i : {0, 1, 2, 4}) {
    EXPECT_EQ(got[i].type, events[i].type) << i;
    ExpectSame(got[i].decoded, ViaProto(events[i]));
  }
  EXPECT_EQ(got[3].type, FlowEventType::kDestroy);
  EXPECT_EQ(got[3].original, gone.tuple[0]);
  EXPECT_EQ(got[3].zone, 4);
  EXPECT_LE(enc.sizes[3], 20u);
  EXPECT_EQ(got[0].decoded.flow.helper, FlowHelper::kFtp);
  ASSERT_TRUE(got[0].decoded.master_tuple.has_value());
  EXPECT_EQ(*got[0].decoded.master_tuple, rich.master);
  ASSERT_TRUE(got[0].decoded.ftp_state.has_value());
  EXPECT_EQ(*got[0].decoded.ftp_state, rich.ftp_state);
  ASSERT_TRUE(got[0].decoded.expectation.has_value());
  EXPECT_EQ(got[0].decoded.expectation->tuple, rich.expectation.tuple);
}

// Random runs of events of every kind, reply form, family, protocol and extension, with
// the delta context carried across them: each record decodes to what the protobuf path
// makes of its event (the sender packs from Flow directly, the receiver through the codec).
TEST(FlowRecordCodecTest, RandomEventRunsDecodeAsTheProtobufPathDoes) {
  std::mt19937_64 rng(20261206);
  const auto addr = [&](bool v6, int pool) {
    if (!v6) return IpAddress::FromV4(0xC0000200u | static_cast<uint32_t>(rng() % pool));
    IpAddress a = *IpAddress::Parse("2001:db8::");
    a.bytes[15] = static_cast<uint8_t>(rng() % pool);
    return a;
  };
  const auto u32 = [&] { return static_cast<uint32_t>(rng()); };
  for (int run = 0; run < 300; ++run) {
    std::vector<FlowEvent> events(1 + rng() % 40);
    for (FlowEvent& e : events) {
      const int type = static_cast<int>(rng() % 3);
      Flow f = MakeTcpNatFlow(u32() % 100000, kNow);
      const bool v6 = rng() % 4 == 0;
      constexpr uint8_t kProtos[] = {kProtoTcp, kProtoUdp, kProtoIcmp, 47};
      Tuple& o = f.tuple[0];
      o.family = v6 ? Family::kIpv6 : Family::kIpv4;
      o.proto = kProtos[rng() % 4];
      // Small pools, so that "same destination / NAT address as before" happens.
      o.src = addr(v6, 5);
      o.dst = addr(v6, 3);
      o.sport = static_cast<uint16_t>(rng());
      o.dport = static_cast<uint16_t>(rng() % 3);
      Tuple& r = f.tuple[1];
      r = o;
      std::swap(r.src, r.dst);
      std::swap(r.sport, r.dport);
      switch (rng() % 4) {
        case 0:  // no NAT
          break;
        case 1:  // SNAT
          r.dst = addr(v6, 4);
          r.dport = static_cast<uint16_t>(rng());
          break;
        case 2:  // DNAT
          r.src = addr(v6, 4);
          r.sport = static_cast<uint16_t>(rng());
          break;
        default:  // both
          r.dst = addr(v6, 4);
          r.src = addr(v6, 4);
          break;
      }
      f.status = u32() & ~(kIpsConfirmed | kIpsDying | kIpsTemplate);
      f.zone = rng() % 3 == 0 ? static_cast<uint16_t>(rng()) : 0;
      f.mark = rng() % 3 == 0 ? u32() : 0;
      f.id = rng() % 1000000;
      f.expires = kNow + static_cast<Nanos>(rng() % (100000 * kNanosPerMilli)) - kNanosPerSecond;
      f.created = kNow - static_cast<Nanos>(rng() % (1000000 * kNanosPerMilli)) + kNanosPerSecond;
      FlowAccounting counters;
      const bool with_counters = rng() % 3 == 0;
      if (with_counters) counters.dir[rng() % 2] = {rng() % 1000, rng()};
      f.helper = rng() % 5 == 0 ? FlowHelper::kFtp : FlowHelper::kNone;
      if (o.proto == kProtoTcp) {
        f.tcp.state = static_cast<TcpState>(rng() % static_cast<int>(TcpState::kMax));
        for (TcpDirState& d : f.tcp.seen) {
          d = {u32(), u32(), u32(), u32(), static_cast<uint8_t>(rng() % 15),
               static_cast<uint8_t>(rng())};
        }
        f.tcp.last_dir = static_cast<uint8_t>(rng() % 2);
        f.tcp.retrans = static_cast<uint8_t>(rng());
        f.tcp.last_index = static_cast<uint8_t>(rng());
        f.tcp.last_seq = u32();
        f.tcp.last_ack = u32();
        f.tcp.last_end = u32();
        f.tcp.last_win = static_cast<uint16_t>(rng());
        f.tcp.last_wscale = static_cast<uint8_t>(rng() % 15);
        f.tcp.last_flags = static_cast<uint8_t>(rng());
      } else {
        f.tcp = TcpConnState{};
      }
      e = MakeEvent(type == 0   ? FlowEventType::kNew
                    : type == 1 ? FlowEventType::kUpdate
                                : FlowEventType::kDestroy,
                    f, kNow);
      e.has_counters = with_counters;
      e.counters = counters;
      if (rng() % 5 == 0) {
        e.has_master = true;
        e.master = o;
        e.master.sport ^= 0x5a5a;
      }
      if (rng() % 5 == 0) {
        e.has_seq_adjust = true;
        e.seq_adjust.dir[0] = {u32(), static_cast<int32_t>(u32()), -5};
        e.seq_adjust.dir[1] = {u32(), 3, static_cast<int32_t>(u32())};
      }
      if (rng() % 7 == 0) {
        e.has_ftp_state = true;
        e.ftp_state.seq_aft_nl_num[1] = 1;
        e.ftp_state.seq_aft_nl[1][0] = u32();
      }
    }
    const std::vector<PeerFlowUpdate> got = DecodeAll(EncodeAll(events).bytes);
    ASSERT_EQ(got.size(), events.size()) << "run " << run;
    for (size_t i = 0; i < events.size(); ++i) {
      SCOPED_TRACE(::testing::Message() << "run " << run << " record " << i);
      EXPECT_EQ(got[i].type, events[i].type);
      EXPECT_EQ(got[i].original, events[i].flow.tuple[0]);
      EXPECT_EQ(got[i].zone, events[i].flow.zone);
      if (events[i].type != FlowEventType::kDestroy) ExpectSame(got[i].decoded, ViaProto(events[i]));
    }
  }
}

// The encoder builds a record in a fixed stack buffer (640 bytes): the largest record
// without helper data (IPv6, full reply tuple, every other extension, TCP, every varint at
// its widest) must fit with room to spare, and round-trip.
TEST(FlowRecordCodecTest, LargestRecordWithoutHelperDataFitsTheEncoderBuffer) {
  Flow f = MakeTcpNatFlow(7, kNow);
  IpAddress a = *IpAddress::Parse("2001:db8::1");
  for (Tuple* t : {&f.tuple[0], &f.tuple[1]}) t->family = Family::kIpv6;
  f.tuple[0].src = a;
  a.bytes[15] = 2;
  f.tuple[0].dst = a;
  a.bytes[15] = 3;
  f.tuple[1].src = a;
  a.bytes[15] = 4;
  f.tuple[1].dst = a;
  f.status = 0xffff & ~(kIpsConfirmed | kIpsDying | kIpsTemplate);
  f.zone = 0xffff;
  f.mark = UINT32_MAX;
  f.id = UINT32_MAX;
  f.helper = FlowHelper::kFtp;
  for (TcpDirState& d : f.tcp.seen) d = {0x80000000u, 0x7fffffffu, UINT32_MAX, 1, 14, 0xff};
  f.tcp.retrans = f.tcp.last_index = f.tcp.last_flags = 0xff;
  f.tcp.last_win = 0xffff;
  f.tcp.last_seq = 0x80000000u;
  f.tcp.last_ack = 0x7fffffffu;
  f.tcp.last_end = 0xffffffffu;
  FlowEvent e = MakeEvent(FlowEventType::kUpdate, f, kNow);
  e.has_counters = true;
  e.counters.dir[0] = e.counters.dir[1] = {UINT64_MAX, UINT64_MAX};
  e.has_master = true;
  e.master = f.tuple[0];
  e.has_seq_adjust = true;
  e.seq_adjust.dir[0] = e.seq_adjust.dir[1] = {UINT32_MAX, INT32_MIN, INT32_MIN};
  const Encoded enc = EncodeAll({e});
  ASSERT_EQ(enc.sizes.size(), 1u);
  EXPECT_LE(enc.sizes[0], 480u);
  const std::vector<PeerFlowUpdate> got = DecodeAll(enc.bytes);
  ASSERT_EQ(got.size(), 1u);
  ExpectSame(got[0].decoded, ViaProto(e));
  std::printf("largest record without helper data: %zu bytes\n", enc.sizes[0]);
}

TEST(FlowRecordCodecTest, TruncationAtEveryByteIsAnErrorNotACrash) {
  const Encoded enc = EncodeAll({RichUpdate(), MakeEvent(FlowEventType::kNew,
                                                         MakeTcpNatFlow(1, kNow), kNow)});
  for (size_t n = 0; n < enc.bytes.size(); ++n) {
    size_t errors = 0;
    const std::vector<PeerFlowUpdate> got = DecodeAll(enc.bytes.substr(0, n), &errors);
    EXPECT_LT(got.size(), 2u) << n;
    if (n > 0 && n != enc.sizes[0]) {
      EXPECT_GE(errors, 1u) << n;
    }
  }
}

TEST(FlowRecordCodecTest, BadContentIsRefusedAndTheNextRecordStillDecodes) {
  Flow bad = MakeTcpNatFlow(1, kNow);
  bad.tcp.state = static_cast<TcpState>(12);  // beyond kMax: the codec's range check
  const Encoded enc = EncodeAll({MakeEvent(FlowEventType::kNew, bad, kNow),
                                 MakeEvent(FlowEventType::kNew, MakeTcpNatFlow(2, kNow), kNow)});
  size_t errors = 0;
  const std::vector<PeerFlowUpdate> got = DecodeAll(enc.bytes, &errors);
  EXPECT_EQ(errors, 1u);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].original, MakeTcpNatFlow(2, kNow).tuple[0]);
}

TEST(FlowRecordCodecTest, LaterFormatTrailingFieldsAreSkippedUnknownExtensionsRefused) {
  const FlowEvent e = MakeEvent(FlowEventType::kNew, MakeTcpNatFlow(3, kNow), kNow);
  Encoded enc = EncodeAll({e});
  ASSERT_LT(enc.bytes.size() + 2, 0x80u);
  // A later writer appended two bytes of a field we do not know: skipped.
  std::string longer = enc.bytes + "\x01\x02";
  longer[0] = static_cast<char>(longer[0] + 2);
  size_t errors = 0;
  std::vector<PeerFlowUpdate> got = DecodeAll(longer, &errors);
  EXPECT_EQ(errors, 0u);
  ASSERT_EQ(got.size(), 1u);
  ExpectSame(got[0].decoded, ViaProto(e));
  // An extension bit we do not know changes the layout: refused, never guessed.
  Flow marked = e.flow;
  marked.mark = 1;
  enc = EncodeAll({MakeEvent(FlowEventType::kNew, marked, kNow)});
  // kind at 1, proto at 2, addresses 8, ports 4, reply NAT address 4 + port 2: mask at 21.
  ASSERT_EQ(enc.bytes[21], 0x02);
  // Every bit of a one-byte mask is taken: the unknown bit 7 makes it a two-byte varint.
  enc.bytes.replace(21, 1, "\x82\x01");
  enc.bytes[0] = static_cast<char>(enc.bytes[0] + 1);
  errors = 0;
  got = DecodeAll(enc.bytes, &errors);
  EXPECT_EQ(errors, 1u);
  EXPECT_TRUE(got.empty());
}

}  // namespace
}  // namespace ctsync::sync

#include "proto/flow_codec.h"

#include "gtest/gtest.h"

namespace ctsync::codec {
namespace {

Flow TcpFlow() {
  Flow f;
  f.tuple[0].family = Family::kIpv4;
  f.tuple[0].proto = kProtoTcp;
  f.tuple[0].src = *IpAddress::Parse("192.0.2.10");
  f.tuple[0].dst = *IpAddress::Parse("198.51.100.20");
  f.tuple[0].sport = 40000;
  f.tuple[0].dport = 80;
  f.tuple[1] = f.tuple[0];
  f.tuple[1].src = f.tuple[0].dst;
  f.tuple[1].dst = *IpAddress::Parse("203.0.113.5");
  f.tuple[1].sport = 80;
  f.tuple[1].dport = 40000;
  f.status = kIpsSeenReply | kIpsAssured | kIpsConfirmed | kIpsSrcNat | kIpsSrcNatDone;
  f.zone = 7;
  f.mark = 42;
  f.id = 99;
  f.created = 10 * kNanosPerSecond;
  f.expires = 100 * kNanosPerSecond;
  f.tcp.state = TcpState::kEstablished;
  f.tcp.seen[0] = {1000, 2000, 65535, 1500, 7, kTcpFlagWindowScale | kTcpFlagSackPerm};
  f.tcp.seen[1] = {5000, 6000, 29200, 900, 9, kTcpFlagWindowScale};
  f.tcp.last_seq = 1234;
  f.tcp.retrans = 2;
  f.counters[0] = {3, 300};
  f.counters[1] = {4, 400};
  return f;
}

TEST(FlowCodecTest, RoundTripKeepsEveryFieldAndShortensByAge) {
  const Flow f = TcpFlow();
  SeqAdjust sa;
  sa.dir[0] = {100, 0, 1};
  proto::Flow msg;
  FlowToProto(f, 40 * kNanosPerSecond, 1'700'000'000 * kNanosPerSecond, {&sa, nullptr}, &msg);
  EXPECT_EQ(msg.timeout_ms(), 60'000);
  std::string bytes;
  ASSERT_TRUE(msg.SerializeToString(&bytes));
  proto::Flow parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));

  DecodedFlow d;
  ASSERT_TRUE(FlowFromProto(parsed, 500 * kNanosPerSecond, 5 * kNanosPerSecond, &d).ok());
  EXPECT_EQ(d.flow.tuple[0], f.tuple[0]);
  EXPECT_EQ(d.flow.tuple[1], f.tuple[1]);
  EXPECT_EQ(d.flow.status, f.status & ~kIpsConfirmed);
  EXPECT_EQ(d.flow.zone, 7);
  EXPECT_EQ(d.flow.mark, 42u);
  EXPECT_EQ(d.flow.tcp, f.tcp);
  EXPECT_EQ(d.flow.counters[1], f.counters[1]);
  EXPECT_EQ(d.remaining, 55 * kNanosPerSecond);
  EXPECT_EQ(d.flow.expires, 555 * kNanosPerSecond);
  EXPECT_EQ(d.flow.created, 500 * kNanosPerSecond - 30 * kNanosPerSecond);
  ASSERT_TRUE(d.seq_adjust);
  EXPECT_EQ(*d.seq_adjust, sa);
}

TEST(FlowCodecTest, RejectsWhatAPeerOrAFileCouldGetWrong) {
  proto::Flow good;
  FlowToProto(TcpFlow(), 0, 0, {}, &good);
  DecodedFlow d;
  ASSERT_TRUE(FlowFromProto(good, 0, 0, &d).ok());

  struct Case {
    const char* what;
    void (*mutate)(proto::Flow*);
  } cases[] = {
      {"short address", [](proto::Flow* m) { m->mutable_original()->set_src("abc"); }},
      {"bad family", [](proto::Flow* m) { m->mutable_reply()->set_family(7); }},
      {"port range", [](proto::Flow* m) { m->mutable_original()->set_sport(70000); }},
      {"tcp state", [](proto::Flow* m) { m->mutable_tcp()->set_state(42); }},
      {"window scale", [](proto::Flow* m) { m->mutable_tcp()->mutable_reply()->set_td_scale(15); }},
      {"helper", [](proto::Flow* m) { m->set_helper("sip"); }},
      {"no reply", [](proto::Flow* m) { m->clear_reply(); }},
      {"proto mismatch", [](proto::Flow* m) { m->mutable_reply()->set_proto(17); }},
      {"seq adjust", [](proto::Flow* m) { m->add_seq_adjust(); }},
      {"negative timeout", [](proto::Flow* m) { m->set_timeout_ms(-1); }},
      {"absurd timeout", [](proto::Flow* m) { m->set_timeout_ms(INT64_MAX); }},
      {"absurd age", [](proto::Flow* m) { m->set_created_wall_ms(INT64_MIN); }},
  };
  for (const Case& c : cases) {
    proto::Flow m = good;
    c.mutate(&m);
    EXPECT_FALSE(FlowFromProto(m, 0, 0, &d).ok()) << c.what;
  }
}

TEST(FlowCodecTest, UnknownFieldsFromANewerPeerAreKept) {
  proto::Flow m;
  FlowToProto(TcpFlow(), 0, 0, {}, &m);
  std::string bytes = m.SerializeAsString();
  bytes += std::string("\xf8\x3e\x01", 3);  // field 999, varint 1: unknown to this version
  proto::Flow parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_EQ(parsed.SerializeAsString(), bytes);
  DecodedFlow d;
  EXPECT_TRUE(FlowFromProto(parsed, 0, 0, &d).ok());
}

}  // namespace
}  // namespace ctsync::codec

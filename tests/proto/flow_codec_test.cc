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
  return f;
}

TEST(FlowCodecTest, RoundTripKeepsEveryFieldAndShortensByAge) {
  const Flow f = TcpFlow();
  SeqAdjust sa;
  sa.dir[0] = {100, 0, 1};
  proto::Flow msg;
  const FlowAccounting counters{{{3, 300}, {4, 400}}};
  FlowExtras extras{&sa, nullptr};
  extras.counters = &counters;
  FlowToProto(f, 40 * kNanosPerSecond, 1'700'000'000 * kNanosPerSecond, extras, &msg);
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
  EXPECT_EQ(d.counters.dir[0], counters.dir[0]);
  EXPECT_EQ(d.counters.dir[1], counters.dir[1]);
  EXPECT_EQ(d.remaining, 55 * kNanosPerSecond);
  EXPECT_EQ(d.flow.expires, 555 * kNanosPerSecond);
  EXPECT_EQ(d.flow.created, 500 * kNanosPerSecond - 30 * kNanosPerSecond);
  ASSERT_TRUE(d.seq_adjust);
  EXPECT_EQ(*d.seq_adjust, sa);
}

Expectation FtpExpectation(const Flow& master, Nanos expires) {
  Expectation e;
  e.tuple = master.tuple[1];
  e.tuple.sport = 0;
  e.tuple.dport = 50000;
  e.mask.family = Family::kIpv4;
  e.mask.proto = 0xff;
  for (int i = 0; i < 4; ++i) e.mask.src.bytes[i] = e.mask.dst.bytes[i] = 0xff;
  e.mask.dport = 0xffff;
  e.expires = expires;
  e.nat = true;
  e.saved_addr = *IpAddress::Parse("192.0.2.10");
  e.saved_port = 50001;
  e.dir = Direction::kReply;
  return e;
}

TEST(FlowCodecTest, FtpLineStateAndPendingExpectationTravel) {
  Flow f = TcpFlow();
  f.helper = FlowHelper::kFtp;
  FtpLineState st;
  st.seq_aft_nl[0][0] = 11;
  st.seq_aft_nl[0][1] = 0xfffffff0u;
  st.seq_aft_nl_num[0] = 2;
  st.seq_aft_nl[1][0] = 7;
  st.seq_aft_nl_num[1] = 1;
  const Expectation e = FtpExpectation(f, 340 * kNanosPerSecond);  // 300 s left at 40 s
  FlowExtras extras;
  extras.ftp_state = &st;
  extras.expectation = &e;
  proto::Flow msg;
  FlowToProto(f, 40 * kNanosPerSecond, 1'700'000'000 * kNanosPerSecond, extras, &msg);
  std::string bytes;
  ASSERT_TRUE(msg.SerializeToString(&bytes));
  proto::Flow parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));

  DecodedFlow d;
  ASSERT_TRUE(FlowFromProto(parsed, 500 * kNanosPerSecond, 5 * kNanosPerSecond, &d).ok());
  ASSERT_TRUE(d.ftp_state);
  EXPECT_EQ(*d.ftp_state, st);
  ASSERT_TRUE(d.expectation);
  EXPECT_EQ(d.expectation->tuple, e.tuple);
  EXPECT_EQ(d.expectation->mask, e.mask);
  EXPECT_EQ(d.expectation->expires, 795 * kNanosPerSecond);  // 300 s - 5 s of age
  EXPECT_EQ(d.expectation->master_tuple, f.tuple[0]);
  EXPECT_EQ(d.expectation->master, kNoFlow);
  EXPECT_EQ(d.expectation->zone, f.zone);
  EXPECT_TRUE(d.expectation->nat);
  EXPECT_EQ(d.expectation->saved_addr, e.saved_addr);
  EXPECT_EQ(d.expectation->saved_port, 50001);
  EXPECT_EQ(d.expectation->dir, Direction::kReply);

  // What a peer could get wrong is refused, not applied.
  proto::Flow bad = parsed;
  bad.mutable_ftp()->add_seq_aft_nl_reply(1);
  bad.mutable_ftp()->add_seq_aft_nl_reply(2);
  EXPECT_FALSE(FlowFromProto(bad, 0, 0, &d).ok());
  bad = parsed;
  bad.mutable_expectations(0)->set_saved_addr("abc");
  EXPECT_FALSE(FlowFromProto(bad, 0, 0, &d).ok());
  bad = parsed;
  bad.mutable_expectations(0)->set_helper("sip");
  EXPECT_FALSE(FlowFromProto(bad, 0, 0, &d).ok());
  bad = parsed;
  *bad.add_expectations() = parsed.expectations(0);
  EXPECT_FALSE(FlowFromProto(bad, 0, 0, &d).ok());
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
      {"status beyond the kernel's bits", [](proto::Flow* m) { m->set_status(1u << 16); }},
      {"id beyond 32 bits", [](proto::Flow* m) { m->set_id(uint64_t{1} << 32); }},
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

// Tests for the TCP tracker (core/conntrack/tcp_tracker.h). The scenario tables replay the
// TCP packets of the kernel oracle corpus (/work/shared/oracle/scenarios, decoded from
// frame_hex) and expect the recorded state, printed timeout (configured - 1) and ASSURED
// flag per step; the remaining tests cover rules the corpus does not exercise.
#include "core/conntrack/tcp_tracker.h"

#include <string>
#include <vector>

#include "core/conntrack/conntrack_settings.h"
#include "gtest/gtest.h"

namespace ctsync {
namespace {

constexpr uint8_t S = kTcpSyn;
constexpr uint8_t SA = kTcpSyn | kTcpAck;
constexpr uint8_t A = kTcpAck;
constexpr uint8_t PA = kTcpPsh | kTcpAck;
constexpr uint8_t FA = kTcpFin | kTcpAck;
constexpr uint8_t R = kTcpRst;
constexpr Direction O = Direction::kOriginal;
constexpr Direction Rp = Direction::kReply;
using V = TcpResult::Verdict;

TcpSegment Seg(uint8_t flags, uint32_t seq, uint32_t ack, uint32_t len = 0, uint16_t win = 65535) {
  TcpSegment s;
  s.flags = flags;
  s.seq = seq;
  s.ack = ack;
  s.payload_len = len;
  s.window = win;
  return s;
}

// A flow as the pipeline would hold it: the tracker state plus the ct->status bits and the
// expiry the tracker's results drive. Mirrors the calling order documented in the header.
struct SimFlow {
  bool exists = false;
  TcpConnState st;
  bool seen_reply = false;
  bool assured = false;
  Nanos expires_at = 0;
};

struct Outcome {
  V verdict = V::kAccept;
  bool repeated = false;  // the old entry was killed and the packet re-evaluated as new
  TcpResult result;
};

Outcome Feed(SimFlow& f, const TcpSegment& seg, Direction dir, Nanos now,
             const TcpSettings& settings) {
  Outcome out;
  if (TcpCheckHeader(seg).has_value()) {
    out.verdict = V::kInvalid;
    return out;
  }
  bool fresh = false;
  if (!f.exists) {
    TcpConnState s;
    if (dir == Direction::kReply || !TcpNew(s, seg, settings)) {
      out.verdict = V::kInvalid;
      return out;
    }
    f = SimFlow{};
    f.st = s;
    fresh = true;
  }
  TcpPacketContext ctx;
  ctx.dir = dir;
  ctx.seen_reply = f.seen_reply;
  ctx.assured = f.assured;
  ctx.confirmed = !fresh;
  ctx.now = now;
  ctx.expires_at = f.expires_at;
  TcpResult r = TcpPacket(f.st, seg, ctx, settings);
  out.result = r;
  out.verdict = r.verdict;
  if (r.verdict == V::kRepeat) {
    EXPECT_TRUE(r.kill);
    f = SimFlow{};
    Outcome again = Feed(f, seg, dir, now, settings);
    again.repeated = true;
    return again;
  }
  if (r.refresh_timeout) f.expires_at = now + r.timeout;
  if (r.verdict == V::kInvalid) return out;
  f.exists = true;
  if (r.set_assured) f.assured = true;
  if (dir == Direction::kReply) f.seen_reply = true;
  if (r.kill) f.exists = false;
  return out;
}

struct Step {
  Direction dir;
  uint8_t flags;
  uint32_t seq;
  uint32_t ack;
  uint32_t len;
  V verdict;
  TcpState state;  // ignored when !exists
  int printed_timeout;
  bool assured;
  bool exists = true;
};

struct Scenario {
  std::string name;
  std::vector<Step> steps;
  TcpSettings settings = {};
};

constexpr TcpState kSS = TcpState::kSynSent;
constexpr TcpState kSR = TcpState::kSynRecv;
constexpr TcpState kES = TcpState::kEstablished;
constexpr TcpState kFW = TcpState::kFinWait;
constexpr TcpState kCW = TcpState::kCloseWait;
constexpr TcpState kLA = TcpState::kLastAck;
constexpr TcpState kTW = TcpState::kTimeWait;
constexpr TcpState kCL = TcpState::kClose;
constexpr TcpState kS2 = TcpState::kSynSent2;
constexpr V kOk = V::kAccept;
constexpr V kBad = V::kInvalid;

std::vector<Scenario> OracleScenarios() {
  std::vector<Scenario> v;
  v.push_back({"tcp_handshake_fin_client_first",
               {{O, S, 1000, 0, 0, kOk, kSS, 119, false},
                {Rp, SA, 500000, 1001, 0, kOk, kSR, 59, false},
                {O, A, 1001, 500001, 0, kOk, kES, 431999, true},
                {O, PA, 1001, 500001, 18, kOk, kES, 299, true},
                {Rp, A, 500001, 1019, 0, kOk, kES, 431999, true},
                {Rp, PA, 500001, 1019, 24, kOk, kES, 299, true},
                {O, A, 1019, 500025, 0, kOk, kES, 431999, true},
                {O, FA, 1019, 500025, 0, kOk, kFW, 119, true},
                {Rp, A, 500025, 1020, 0, kOk, kCW, 59, true},
                {Rp, FA, 500025, 1020, 0, kOk, kLA, 29, true},
                {O, A, 1020, 500026, 0, kOk, kTW, 119, true}}});
  v.push_back({"tcp_fin_simultaneous_close",
               {{O, S, 11000, 0, 0, kOk, kSS, 119, false},
                {Rp, SA, 220000, 11001, 0, kOk, kSR, 59, false},
                {O, A, 11001, 220001, 0, kOk, kES, 431999, true},
                {O, FA, 11001, 220001, 0, kOk, kFW, 119, true},
                {Rp, FA, 220001, 11001, 0, kOk, kLA, 29, true},
                {O, A, 11002, 220002, 0, kOk, kTW, 119, true},
                {Rp, A, 220002, 11002, 0, kOk, kTW, 119, true}}});
  v.push_back({"tcp_loose_pickup",
               {{O, PA, 123456, 654321, 10, kOk, kES, 299, false},
                {Rp, A, 654321, 123466, 0, kOk, kES, 299, false},
                {O, PA, 123466, 654321, 4, kOk, kES, 299, true},
                {Rp, PA, 654321, 123470, 6, kOk, kES, 299, true}}});
  v.push_back({"tcp_out_of_window_invalid",
               {{O, S, 1000, 0, 0, kOk, kSS, 119, false},
                {Rp, SA, 5000, 1001, 0, kOk, kSR, 59, false},
                {O, A, 1001, 5001, 0, kOk, kES, 431999, true},
                {O, PA, 10001001, 5001, 10, kBad, kES, 431999, true},
                {Rp, PA, 5001, 20001001, 10, kBad, kES, 431999, true},
                {O, PA, 1001, 5001, 4, kOk, kES, 299, true},
                {Rp, A, 5001, 1005, 0, kOk, kES, 431999, true}}});
  v.push_back({"tcp_rst_close",
               {{O, S, 3000, 0, 0, kOk, kSS, 119, false},
                {Rp, SA, 60000, 3001, 0, kOk, kSR, 59, false},
                {O, A, 3001, 60001, 0, kOk, kES, 431999, true},
                {O, PA, 3001, 60001, 5, kOk, kES, 299, true},
                {Rp, R, 60001, 0, 0, kOk, kCL, 9, true},
                {O, PA, 3006, 60001, 5, kOk, kCL, 9, true}}});
  v.push_back({"tcp_simultaneous_open",
               {{O, S, 1000, 0, 0, kOk, kSS, 119, false},
                {Rp, S, 2000, 0, 0, kOk, kS2, 119, false},
                {O, SA, 1000, 2001, 0, kOk, kSR, 59, false},
                {Rp, SA, 2000, 1001, 0, kOk, kSR, 59, false},
                {O, A, 1001, 2001, 0, kOk, kES, 431999, true}}});
  v.push_back({"tcp_syn_retransmit",
               {{O, S, 1000, 0, 0, kOk, kSS, 119, false},
                {O, S, 1000, 0, 0, kOk, kSS, 119, false},
                {Rp, SA, 50000, 1001, 0, kOk, kSR, 59, false},
                {Rp, SA, 50000, 1001, 0, kOk, kSR, 59, false},
                {O, A, 1001, 50001, 0, kOk, kES, 431999, true}}});
  v.push_back({"tcp_time_wait_reopen",
               {{O, S, 1000, 0, 0, kOk, kSS, 119, false},
                {Rp, SA, 5000, 1001, 0, kOk, kSR, 59, false},
                {O, A, 1001, 5001, 0, kOk, kES, 431999, true},
                {O, PA, 1001, 5001, 4, kOk, kES, 299, true},
                {Rp, A, 5001, 1005, 0, kOk, kES, 431999, true},
                {O, FA, 1005, 5001, 0, kOk, kFW, 119, true},
                {Rp, FA, 5001, 1006, 0, kOk, kLA, 29, true},
                {O, A, 1006, 5002, 0, kOk, kTW, 119, true},
                {O, S, 200000, 0, 0, kOk, kSS, 119, false},
                {Rp, SA, 800000, 200001, 0, kOk, kSR, 59, false},
                {O, A, 200001, 800001, 0, kOk, kES, 431999, true}}});
  v.push_back({"ipv6_tcp_handshake",
               {{O, S, 1000, 0, 0, kOk, kSS, 119, false},
                {Rp, SA, 5000, 1001, 0, kOk, kSR, 59, false},
                {O, A, 1001, 5001, 0, kOk, kES, 431999, true},
                {O, PA, 1001, 5001, 6, kOk, kES, 299, true},
                {Rp, A, 5001, 1007, 0, kOk, kES, 431999, true},
                {O, FA, 1007, 5001, 0, kOk, kFW, 119, true},
                {Rp, FA, 5001, 1008, 0, kOk, kLA, 29, true},
                {O, A, 1008, 5002, 0, kOk, kTW, 119, true}}});
  v.push_back({"snat_pool_tcp",
               {{O, S, 1000, 0, 0, kOk, kSS, 119, false},
                {Rp, SA, 5000, 1001, 0, kOk, kSR, 59, false},
                {O, A, 1001, 5001, 0, kOk, kES, 431999, true},
                {O, PA, 1001, 5001, 5, kOk, kES, 299, true},
                {Rp, PA, 5001, 1006, 5, kOk, kES, 299, true},
                {O, R, 1006, 0, 0, kOk, kCL, 9, true}}});
  v.push_back({"dnat_port_forward",
               {{O, S, 7000, 0, 0, kOk, kSS, 119, false},
                {Rp, SA, 9000, 7001, 0, kOk, kSR, 59, false},
                {O, A, 7001, 9001, 0, kOk, kES, 431999, true},
                {O, PA, 7001, 9001, 5, kOk, kES, 299, true},
                {Rp, PA, 9001, 7006, 6, kOk, kES, 299, true},
                {O, FA, 7006, 9007, 0, kOk, kFW, 119, true},
                {Rp, FA, 9007, 7007, 0, kOk, kLA, 29, true},
                {O, A, 7007, 9008, 0, kOk, kTW, 119, true}}});
  // REDIRECT to a closed local port: the firewall's own RST is the only reply.
  v.push_back({"redirect_local_rst_only_reply",
               {{O, S, 1000, 0, 0, kOk, kSS, 119, false},
                {Rp, R | kTcpAck, 0, 1001, 0, kOk, kSS, 0, false, /*exists=*/false}}});
  return v;
}

class OracleScenarioTest : public ::testing::TestWithParam<Scenario> {};

TEST_P(OracleScenarioTest, MatchesKernelStatesAndTimeouts) {
  const Scenario& sc = GetParam();
  SimFlow flow;
  Nanos now = 1000 * kNanosPerSecond;
  for (size_t i = 0; i < sc.steps.size(); ++i) {
    SCOPED_TRACE("step " + std::to_string(i));
    const Step& s = sc.steps[i];
    // Each step happens a few ms after the previous; conntrack -L rounds down.
    now += 10 * kNanosPerMilli;
    Outcome out = Feed(flow, Seg(s.flags, s.seq, s.ack, s.len), s.dir, now, sc.settings);
    EXPECT_EQ(out.verdict, s.verdict)
        << (out.result.invalid_reason ? out.result.invalid_reason : "");
    ASSERT_EQ(flow.exists, s.exists);
    if (!s.exists) continue;
    EXPECT_STREQ(TcpStateName(flow.st.state), TcpStateName(s.state));
    // conntrack -L runs a moment after the packet and prints whole seconds left.
    const Nanos listed_at = now + 5 * kNanosPerMilli;
    EXPECT_EQ((flow.expires_at - listed_at) / kNanosPerSecond, s.printed_timeout);
    EXPECT_EQ(flow.assured, s.assured);
  }
}

INSTANTIATE_TEST_SUITE_P(Corpus, OracleScenarioTest, ::testing::ValuesIn(OracleScenarios()),
                         [](const ::testing::TestParamInfo<Scenario>& info) {
                           return info.param.name;
                         });

TEST(TcpTrackerTest, TimeWaitReopenKillsAndRepeats) {
  TcpSettings settings;
  SimFlow f;
  Nanos now = kNanosPerSecond;
  for (const auto& [dir, seg] :
       std::vector<std::pair<Direction, TcpSegment>>{{O, Seg(S, 1000, 0)},
                                                     {Rp, Seg(SA, 5000, 1001)},
                                                     {O, Seg(A, 1001, 5001)},
                                                     {O, Seg(FA, 1001, 5001)},
                                                     {Rp, Seg(FA, 5001, 1002)},
                                                     {O, Seg(A, 1002, 5002)}}) {
    Feed(f, seg, dir, now, settings);
  }
  ASSERT_EQ(f.st.state, TcpState::kTimeWait);
  TcpConnState copy = f.st;
  TcpPacketContext ctx{O, true, true, true, now, f.expires_at, 0};
  TcpResult r = TcpPacket(copy, Seg(S, 90000, 0), ctx, settings);
  EXPECT_EQ(r.verdict, V::kRepeat);
  EXPECT_TRUE(r.kill);
}

TEST(TcpTrackerTest, HeaderFlagCombinations) {
  struct Case {
    uint8_t flags;
    bool valid;
  };
  const Case cases[] = {
      {S, true},
      {S | kTcpUrg, true},
      {SA, true},
      {R, true},
      {R | kTcpAck, true},
      {FA, true},
      {FA | kTcpUrg, true},
      {A, true},
      {A | kTcpUrg, true},
      {PA | kTcpEce | kTcpCwr, true},
      {S | kTcpEce | kTcpCwr, true},
      {S | kTcpFin, false},
      {0, false},
      {S | R, false},
      {kTcpFin, false},
      {kTcpPsh, false},
      {kTcpUrg, false},
      {SA | kTcpFin, false},
      {R | kTcpFin | kTcpAck, false},
      {0xff, false},
  };
  for (const Case& c : cases) {
    TcpSegment s = Seg(c.flags, 1, 0);
    EXPECT_EQ(!TcpCheckHeader(s).has_value(), c.valid) << "flags=" << int{c.flags};
  }
  TcpSegment short_hdr = Seg(S, 1, 0);
  short_hdr.data_offset_words = 4;
  ASSERT_TRUE(TcpCheckHeader(short_hdr).has_value());
  EXPECT_STREQ(*TcpCheckHeader(short_hdr), "truncated packet");
}

TEST(TcpTrackerTest, NewAcceptsOnlySynOrLooseAck) {
  TcpSettings loose;
  TcpSettings strict;
  strict.loose = false;
  struct Case {
    uint8_t flags;
    bool with_loose;
    bool with_strict;
  };
  const Case cases[] = {
      {S, true, true},    {A, true, false},  {PA, true, false},          {SA, false, false},
      {FA, false, false}, {R, false, false}, {R | kTcpAck, false, false}};
  for (const Case& c : cases) {
    TcpConnState st;
    EXPECT_EQ(TcpNew(st, Seg(c.flags, 100, 200), loose), c.with_loose) << int{c.flags};
    EXPECT_EQ(TcpNew(st, Seg(c.flags, 100, 200), strict), c.with_strict) << int{c.flags};
  }
  TcpConnState st;
  ASSERT_TRUE(TcpNew(st, Seg(PA, 100, 200, 10, 1000), loose));
  EXPECT_EQ(st.seen[0].td_end, 110u);
  EXPECT_EQ(st.seen[0].td_maxwin, 1000u);
  EXPECT_EQ(st.seen[0].td_maxend, 1110u);
  EXPECT_EQ(st.seen[0].flags, kTcpFlagSackPerm | kTcpFlagBeLiberal);
  EXPECT_EQ(st.seen[1].flags, kTcpFlagSackPerm | kTcpFlagBeLiberal);
  EXPECT_EQ(st.state, TcpState::kNone);
}

// Opens a connection with the given SYN and SYN/ACK option sets; returns the flow.
SimFlow Open(TcpSegment syn, TcpSegment synack, const TcpSettings& settings,
             Nanos now = kNanosPerSecond) {
  SimFlow f;
  Feed(f, syn, O, now, settings);
  Feed(f, synack, Rp, now, settings);
  Feed(f, Seg(A, syn.seq + 1, synack.seq + 1, 0, 100), O, now, settings);
  return f;
}

TcpSegment WithOptions(TcpSegment s, std::optional<uint8_t> wscale, bool sack_perm) {
  s.data_offset_words = 8;
  s.wscale = wscale;
  s.sack_perm = sack_perm;
  return s;
}

TEST(TcpTrackerTest, WindowScaleNeedsBothSides) {
  TcpSettings settings;
  // Both sides scale by 7: the server's window of 1000 means 128000 bytes.
  SimFlow both = Open(WithOptions(Seg(S, 1000, 0, 0, 1000), 7, false),
                      WithOptions(Seg(SA, 5000, 1001, 0, 1000), 7, false), settings);
  EXPECT_EQ(both.st.seen[0].td_scale, 7);
  EXPECT_EQ(both.st.seen[1].td_scale, 7);
  Feed(both, Seg(A, 5001, 1001, 0, 1000), Rp, kNanosPerSecond, settings);
  // 100000 bytes ahead is inside the scaled window.
  Outcome in = Feed(both, Seg(PA, 1001 + 100000, 5001, 100, 1000), O, kNanosPerSecond, settings);
  EXPECT_EQ(in.verdict, kOk);

  // Only the client offers scaling: neither direction scales, the same segment is beyond
  // the window.
  SimFlow one =
      Open(WithOptions(Seg(S, 1000, 0, 0, 1000), 7, false), Seg(SA, 5000, 1001, 0, 1000), settings);
  EXPECT_EQ(one.st.seen[0].td_scale, 0);
  EXPECT_EQ(one.st.seen[1].td_scale, 0);
  Feed(one, Seg(A, 5001, 1001, 0, 1000), Rp, kNanosPerSecond, settings);
  Outcome out = Feed(one, Seg(PA, 1001 + 100000, 5001, 100, 1000), O, kNanosPerSecond, settings);
  EXPECT_EQ(out.verdict, kBad);
  EXPECT_STREQ(out.result.invalid_reason,
               "SEQ is over upper bound (over the window of the receiver)");
}

TEST(TcpTrackerTest, WindowScaleIsClampedTo14) {
  TcpSettings settings;
  SimFlow f = Open(WithOptions(Seg(S, 1000, 0), 20, false),
                   WithOptions(Seg(SA, 5000, 1001), 15, false), settings);
  EXPECT_EQ(f.st.seen[0].td_scale, 14);
  EXPECT_EQ(f.st.seen[1].td_scale, 14);
}

TEST(TcpTrackerTest, SackRightEdgeBoundsTheAck) {
  TcpSettings settings;
  SimFlow f = Open(WithOptions(Seg(S, 1000, 0), std::nullopt, true),
                   WithOptions(Seg(SA, 5000, 1001), std::nullopt, true), settings);
  ASSERT_TRUE(f.st.seen[0].flags & kTcpFlagSackPerm);
  Feed(f, Seg(PA, 1001, 5001, 300), O, kNanosPerSecond, settings);  // td_end = 1301
  // SACK of 1101..1301 with ack 1001: within what was sent.
  TcpSegment ok = WithOptions(Seg(A, 5001, 1001), std::nullopt, false);
  ok.sack_count = 1;
  ok.sack_right_edge[0] = 1301;
  EXPECT_EQ(Feed(f, ok, Rp, kNanosPerSecond, settings).verdict, kOk);
  // A SACK edge beyond anything the client sent is "ACK over upper bound".
  TcpSegment bad = ok;
  bad.sack_right_edge[0] = 1400;
  bad.window = 60000;
  Outcome out = Feed(f, bad, Rp, kNanosPerSecond, settings);
  EXPECT_EQ(out.verdict, kBad);
  EXPECT_STREQ(out.result.invalid_reason, "ACK is over upper bound (ACKed data not seen yet)");
}

TEST(TcpTrackerTest, SackIgnoredWithoutSackPermitted) {
  TcpSettings settings;
  SimFlow f = Open(Seg(S, 1000, 0), Seg(SA, 5000, 1001), settings);
  Feed(f, Seg(PA, 1001, 5001, 300), O, kNanosPerSecond, settings);
  TcpSegment seg = WithOptions(Seg(A, 5001, 1001), std::nullopt, false);
  seg.sack_count = 1;
  seg.sack_right_edge[0] = 1400;
  EXPECT_EQ(Feed(f, seg, Rp, kNanosPerSecond, settings).verdict, kOk);
}

TEST(TcpTrackerTest, MaxRetransShortensTimeout) {
  TcpSettings settings;
  SimFlow f = Open(Seg(S, 1000, 0), Seg(SA, 5000, 1001), settings);
  const TcpSegment dup = Seg(A, 5001, 1001, 0, 5000);
  const Nanos expected[] = {432000, 432000, 432000, 300, 300};
  for (int i = 0; i < 5; ++i) {
    SCOPED_TRACE(i);
    Outcome out = Feed(f, dup, Rp, kNanosPerSecond, settings);
    EXPECT_EQ(out.result.timeout, expected[i] * kNanosPerSecond);
    EXPECT_EQ(f.st.retrans, i);
  }
  // A different segment resets the counter.
  Outcome fresh = Feed(f, Seg(A, 5001, 1001, 0, 5001), Rp, kNanosPerSecond, settings);
  EXPECT_EQ(f.st.retrans, 0);
  EXPECT_EQ(fresh.result.timeout, 432000 * kNanosPerSecond);
}

TEST(TcpTrackerTest, ZeroWindowUsesRetransTimeout) {
  TcpSettings settings;
  SimFlow f = Open(Seg(S, 1000, 0), Seg(SA, 5000, 1001), settings);
  Outcome out = Feed(f, Seg(A, 5001, 1001, 0, 0), Rp, kNanosPerSecond, settings);
  EXPECT_EQ(out.verdict, kOk);
  EXPECT_EQ(out.result.timeout, 300 * kNanosPerSecond);
}

TEST(TcpTrackerTest, RstBelowMaxAckIsInvalidUnlessIgnoreInvalidRst) {
  TcpSettings settings;
  SimFlow f = Open(Seg(S, 1000, 0), Seg(SA, 5000, 1001), settings);
  Feed(f, Seg(PA, 5001, 1001, 100), Rp, kNanosPerSecond, settings);
  Feed(f, Seg(A, 1001, 5101), O, kNanosPerSecond, settings);  // client td_maxack = 5101
  SimFlow g = f;
  Outcome out = Feed(f, Seg(R, 5050, 0), Rp, kNanosPerSecond, settings);
  EXPECT_EQ(out.verdict, kBad);
  EXPECT_STREQ(out.result.invalid_reason, "invalid rst");
  EXPECT_EQ(f.st.state, TcpState::kEstablished);

  // With nf_conntrack_tcp_ignore_invalid_rst the RST passes, but its sequence is not the
  // expected one, so the kernel keeps ESTABLISHED (with the CLOSE timeout).
  TcpSettings lenient;
  lenient.ignore_invalid_rst = true;
  Outcome ok = Feed(g, Seg(R, 5050, 0), Rp, kNanosPerSecond, lenient);
  EXPECT_EQ(ok.verdict, kOk);
  EXPECT_EQ(g.st.state, TcpState::kEstablished);
  EXPECT_EQ(ok.result.timeout, 10 * kNanosPerSecond);
  // The exact sequence closes.
  Outcome exact = Feed(g, Seg(R, 5101, 0), Rp, kNanosPerSecond, lenient);
  EXPECT_EQ(exact.verdict, kOk);
  EXPECT_EQ(g.st.state, TcpState::kClose);
}

TEST(TcpTrackerTest, InexactRstKeepsEstablishedForChallengeAck) {
  TcpSettings settings;
  SimFlow f = Open(Seg(S, 1000, 0), Seg(SA, 5000, 1001), settings);
  // In window (the client advertised 100 bytes) but not at the exact expected sequence
  // (the client's td_maxack is 5001).
  Outcome out = Feed(f, Seg(R, 5050, 0), Rp, kNanosPerSecond, settings);
  EXPECT_EQ(out.verdict, kOk);
  EXPECT_EQ(f.st.state, TcpState::kEstablished);
  EXPECT_EQ(out.result.timeout, 10 * kNanosPerSecond);
  EXPECT_TRUE(f.exists);
}

TEST(TcpTrackerTest, OutOfWindowRstAfterMaxendIsInvalid) {
  TcpSettings settings;
  SimFlow f = Open(Seg(S, 1000, 0, 0, 1000), Seg(SA, 5000, 1001, 0, 1000), settings);
  Outcome out = Feed(f, Seg(R, 5001 + 900000, 0), Rp, kNanosPerSecond, settings);
  EXPECT_EQ(out.verdict, kBad);
  EXPECT_EQ(f.st.state, TcpState::kEstablished);
}

TEST(TcpTrackerTest, RstAsOnlyReplyKillsEntry) {
  TcpSettings settings;
  SimFlow f;
  Feed(f, Seg(S, 1000, 0), O, kNanosPerSecond, settings);
  Outcome out = Feed(f, Seg(R | kTcpAck, 0, 1001), Rp, kNanosPerSecond, settings);
  EXPECT_EQ(out.verdict, kOk);
  EXPECT_TRUE(out.result.kill);
  EXPECT_EQ(out.result.new_state, TcpState::kClose);
  EXPECT_FALSE(f.exists);
}

TEST(TcpTrackerTest, RstWithSeqZeroAnsweringSynIsAccepted) {
  TcpSettings settings;
  SimFlow f;
  Feed(f, Seg(S, 1000, 0), O, kNanosPerSecond, settings);
  Outcome out = Feed(f, Seg(R, 0, 0), Rp, kNanosPerSecond, settings);
  EXPECT_EQ(out.verdict, kOk);
  EXPECT_TRUE(out.result.kill);
}

TEST(TcpTrackerTest, SynRetransmitDoesNotRefreshTimeout) {
  TcpSettings settings;
  SimFlow f;
  Feed(f, Seg(S, 1000, 0), O, kNanosPerSecond, settings);
  const Nanos first_expiry = f.expires_at;
  Outcome out = Feed(f, Seg(S, 1000, 0), O, 50 * kNanosPerSecond, settings);
  EXPECT_EQ(out.verdict, kOk);
  EXPECT_FALSE(out.result.refresh_timeout);
  EXPECT_EQ(f.expires_at, first_expiry);
}

TEST(TcpTrackerTest, NewIsnSynInSynSentReinitialisesSender) {
  TcpSettings settings;
  SimFlow f;
  Feed(f, Seg(S, 1000, 0), O, kNanosPerSecond, settings);
  Outcome out = Feed(f, Seg(S, 7000, 0), O, kNanosPerSecond, settings);
  EXPECT_EQ(out.verdict, kOk);
  EXPECT_EQ(f.st.seen[0].td_end, 7001u);
  // The SYN/ACK for the new ISN is accepted; one for the old ISN would not be.
  SimFlow g = f;
  EXPECT_EQ(Feed(g, Seg(SA, 5000, 7001), Rp, kNanosPerSecond, settings).verdict, kOk);
  EXPECT_EQ(g.st.state, TcpState::kSynRecv);
}

TEST(TcpTrackerTest, AckWithoutSynAckInSynSentIsInvalid) {
  TcpSettings settings;
  SimFlow f;
  Feed(f, Seg(S, 1000, 0), O, kNanosPerSecond, settings);
  EXPECT_EQ(Feed(f, Seg(A, 1001, 1), O, kNanosPerSecond, settings).verdict, kBad);
  EXPECT_EQ(Feed(f, Seg(SA, 1000, 1), O, kNanosPerSecond, settings).verdict, kBad);
  EXPECT_EQ(f.st.state, TcpState::kSynSent);
}

TEST(TcpTrackerTest, ChallengeAckInLastAckIsNotTheLastAck) {
  TcpSettings settings;
  SimFlow f = Open(Seg(S, 1000, 0), Seg(SA, 5000, 1001), settings);
  Feed(f, Seg(FA, 1001, 5001), O, kNanosPerSecond, settings);
  Feed(f, Seg(FA, 5001, 1002), Rp, kNanosPerSecond, settings);
  ASSERT_EQ(f.st.state, TcpState::kLastAck);
  // A new SYN from the client while in LAST_ACK is let through but ignored...
  Outcome syn = Feed(f, Seg(S, 90000, 0), O, kNanosPerSecond, settings);
  EXPECT_EQ(syn.verdict, kOk);
  EXPECT_FALSE(syn.result.refresh_timeout);
  EXPECT_EQ(f.st.state, TcpState::kLastAck);
  // ...and the server's RFC 5961 challenge ACK must not move us to TIME_WAIT.
  Outcome challenge = Feed(f, Seg(A, 5002, 1002), Rp, kNanosPerSecond, settings);
  EXPECT_EQ(challenge.verdict, kOk);
  EXPECT_STREQ(challenge.result.invalid_reason, "challenge-ack ignored");
  EXPECT_EQ(f.st.state, TcpState::kLastAck);
  // The genuine last ACK afterwards does.
  EXPECT_EQ(Feed(f, Seg(A, 1002, 5002), O, kNanosPerSecond, settings).verdict, kOk);
  EXPECT_EQ(f.st.state, TcpState::kTimeWait);
}

TEST(TcpTrackerTest, IgnoredSynResyncsOnMatchingSynAck) {
  TcpSettings settings;
  SimFlow f = Open(Seg(S, 1000, 0), Seg(SA, 5000, 1001), settings);
  // The server resets the connection (reply RST: no CLOSE_INIT, last_dir is reply).
  Feed(f, Seg(R, 5001, 0), Rp, kNanosPerSecond, settings);
  ASSERT_EQ(f.st.state, TcpState::kClose);
  // The client's new SYN is ignored (not a reopen, nothing said the client closed).
  Outcome syn =
      Feed(f, WithOptions(Seg(S, 40000, 0, 0, 2000), 3, true), O, kNanosPerSecond, settings);
  EXPECT_EQ(syn.verdict, kOk);
  EXPECT_FALSE(syn.repeated);
  EXPECT_EQ(f.st.state, TcpState::kClose);
  EXPECT_EQ(f.st.last_end, 40001u);
  // The server's SYN/ACK for that SYN brings us back in sync: SYN_RECV.
  Outcome synack =
      Feed(f, WithOptions(Seg(SA, 70000, 40001, 0, 3000), 2, true), Rp, kNanosPerSecond, settings);
  EXPECT_EQ(synack.verdict, kOk);
  EXPECT_EQ(synack.result.old_state, TcpState::kSynSent);
  EXPECT_EQ(f.st.state, TcpState::kSynRecv);
  EXPECT_EQ(f.st.seen[0].td_end, 40001u);
  EXPECT_EQ(f.st.seen[0].td_scale, 3);
  EXPECT_EQ(f.st.seen[1].td_scale, 2);
  EXPECT_EQ(Feed(f, Seg(A, 40001, 70001), O, kNanosPerSecond, settings).verdict, kOk);
  EXPECT_EQ(f.st.state, TcpState::kEstablished);
}

TEST(TcpTrackerTest, SynAfterOwnRstReopens) {
  TcpSettings settings;
  SimFlow f = Open(Seg(S, 1000, 0), Seg(SA, 5000, 1001), settings);
  Feed(f, Seg(R, 1001, 0), O, kNanosPerSecond, settings);
  ASSERT_EQ(f.st.state, TcpState::kClose);
  Outcome syn = Feed(f, Seg(S, 90000, 0), O, kNanosPerSecond, settings);
  EXPECT_TRUE(syn.repeated);
  EXPECT_EQ(f.st.state, TcpState::kSynSent);
  EXPECT_FALSE(f.assured);
}

TEST(TcpTrackerTest, SimultaneousOpenReplyAckEstablishes) {
  TcpSettings settings;
  SimFlow f;
  Feed(f, Seg(S, 1000, 0), O, kNanosPerSecond, settings);
  Feed(f, Seg(S, 2000, 0), Rp, kNanosPerSecond, settings);
  ASSERT_EQ(f.st.state, TcpState::kSynSent2);
  EXPECT_TRUE(f.st.last_flags & kTcpLastFlagSimultaneousOpen);
  Feed(f, Seg(SA, 2000, 1001), Rp, kNanosPerSecond, settings);
  ASSERT_EQ(f.st.state, TcpState::kSynRecv);
  // Without the simultaneous-open mark a reply ACK would keep SYN_RECV.
  Outcome out = Feed(f, Seg(A, 2001, 1001), Rp, kNanosPerSecond, settings);
  EXPECT_EQ(out.verdict, kOk);
  EXPECT_EQ(f.st.state, TcpState::kEstablished);
}

TEST(TcpTrackerTest, BeLiberalAcceptsOutOfWindowData) {
  TcpSettings settings;
  settings.be_liberal = true;
  SimFlow f = Open(Seg(S, 1000, 0), Seg(SA, 5000, 1001), settings);
  Outcome out = Feed(f, Seg(PA, 10001001, 5001, 10), O, kNanosPerSecond, settings);
  EXPECT_EQ(out.verdict, kOk);
  EXPECT_EQ(f.st.seen[0].td_end, 1001u);  // liberal accept skips the window update
}

TEST(TcpTrackerTest, SlightOverrunIsIgnoredButRemembered) {
  TcpSettings settings;
  SimFlow f = Open(Seg(S, 1000, 0, 0, 1000), Seg(SA, 5000, 1001, 0, 1000), settings);
  // Client's td_maxend is 1001 + 1000 (from the server's window); send starting past it.
  ASSERT_EQ(f.st.seen[0].td_maxend, 2001u);
  Outcome out = Feed(f, Seg(PA, 2002, 5001, 10), O, kNanosPerSecond, settings);
  EXPECT_EQ(out.verdict, kOk);
  EXPECT_FALSE(out.result.refresh_timeout);
  EXPECT_STREQ(out.result.invalid_reason, "bytes more than expected");
  EXPECT_EQ(f.st.seen[0].td_end, 2012u);
  // The server's ACK of that data is then within bounds.
  EXPECT_EQ(Feed(f, Seg(A, 5001, 2012), Rp, kNanosPerSecond, settings).verdict, kOk);
}

TEST(TcpTrackerTest, InvalidFinRstPairShortensAssuredTimeout) {
  TcpSettings settings;
  SimFlow f = Open(Seg(S, 1000, 0), Seg(SA, 5000, 1001), settings);
  const Nanos now = 10 * kNanosPerSecond;
  f.expires_at = now + 432000 * kNanosPerSecond;
  // Out-of-window FIN from the client: invalid, only remembered.
  Outcome fin = Feed(f, Seg(FA, 9000000, 5001), O, now, settings);
  EXPECT_EQ(fin.verdict, kBad);
  EXPECT_FALSE(fin.result.refresh_timeout);
  // Out-of-window RST from the server answering it: timeout drops to 300 s.
  Outcome rst = Feed(f, Seg(R | kTcpAck, 9000000, 1001), Rp, now, settings);
  EXPECT_EQ(rst.verdict, kBad);
  EXPECT_TRUE(rst.result.refresh_timeout);
  EXPECT_EQ(rst.result.timeout, 300 * kNanosPerSecond);
  EXPECT_EQ(f.expires_at, now + 300 * kNanosPerSecond);
}

TEST(TcpTrackerTest, AckOffsetFromSeqAdjIsApplied) {
  TcpSettings settings;
  SimFlow f = Open(Seg(S, 1000, 0), Seg(SA, 5000, 1001), settings);
  Feed(f, Seg(PA, 1001, 5001, 10), O, kNanosPerSecond, settings);  // td_end 1011
  // A helper grew the client's stream by 4 bytes: the server ACKs 1015.
  TcpConnState st = f.st;
  TcpPacketContext ctx{Rp, true, true, true, kNanosPerSecond, 0, 4};
  EXPECT_EQ(TcpPacket(st, Seg(A, 5001, 1015), ctx, settings).verdict, kOk);
  TcpConnState st2 = f.st;
  ctx.ack_offset = 0;
  EXPECT_EQ(TcpPacket(st2, Seg(A, 5001, 1015), ctx, settings).verdict, kBad);
}

TEST(TcpTrackerTest, ParseOptions) {
  {
    // MSS, SACK-permitted, timestamp, NOP, window scale 7 (a Linux SYN).
    const uint8_t opts[] = {2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7};
    TcpSegment s;
    TcpParseOptions(opts, sizeof(opts), s);
    EXPECT_TRUE(s.sack_perm);
    ASSERT_TRUE(s.wscale.has_value());
    EXPECT_EQ(*s.wscale, 7);
    EXPECT_EQ(s.sack_count, 0);
  }
  {
    // NOP NOP SACK with two blocks; then a second SACK option that must be ignored.
    const uint8_t opts[] = {1,  1, 5, 18, 0,  0, 0,  1, 0, 0, 0, 9,    0, 0, 0,
                            20, 0, 0, 0,  30, 5, 10, 0, 0, 0, 1, 0xff, 0, 0, 0};
    TcpSegment s;
    TcpParseOptions(opts, sizeof(opts), s);
    ASSERT_EQ(s.sack_count, 2);
    EXPECT_EQ(s.sack_right_edge[0], 9u);
    EXPECT_EQ(s.sack_right_edge[1], 30u);
  }
  {
    // Timestamp-only fast path: no SACK even though bytes follow the layout.
    const uint8_t opts[] = {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2};
    TcpSegment s;
    TcpParseOptions(opts, sizeof(opts), s);
    EXPECT_EQ(s.sack_count, 0);
    EXPECT_FALSE(s.wscale.has_value());
  }
  {
    // Malformed: a zero-length option stops parsing before the window scale.
    const uint8_t opts[] = {4, 2, 9, 0, 3, 3, 7, 0};
    TcpSegment s;
    TcpParseOptions(opts, sizeof(opts), s);
    EXPECT_TRUE(s.sack_perm);
    EXPECT_FALSE(s.wscale.has_value());
  }
  {
    // Partial option at the end is not read.
    const uint8_t opts[] = {1, 1, 3, 3};
    TcpSegment s;
    TcpParseOptions(opts, sizeof(opts), s);
    EXPECT_FALSE(s.wscale.has_value());
  }
}

std::vector<uint8_t> FromHex(const std::string& hex) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

TEST(TcpTrackerTest, SegmentFromCorpusFrame) {
  // tcp_rst_close packet 3 (client data 'hello'); Ethernet 14 + IPv4 20 bytes precede TCP.
  const std::vector<uint8_t> frame = FromHex(
      "02000000010102000000010208004500002d0067000040068e12c000020ac63364149c43005000000bb9"
      "0000ea615018ffffecf4000068656c6c6f");
  const size_t ip_total = 0x2d;
  TcpSegment seg;
  ASSERT_FALSE(TcpSegmentFromBytes(frame.data() + 34, ip_total - 20, seg).has_value());
  EXPECT_EQ(seg.seq, 3001u);
  EXPECT_EQ(seg.ack, 60001u);
  EXPECT_EQ(seg.flags, PA);
  EXPECT_EQ(seg.window, 65535);
  EXPECT_EQ(seg.payload_len, 5u);
  EXPECT_EQ(seg.data_offset_words, 5);
  EXPECT_FALSE(TcpCheckHeader(seg).has_value());

  // doff claims 24 bytes but only 20 are there; and a header shorter than 20 bytes.
  std::vector<uint8_t> hdr(frame.begin() + 34, frame.begin() + 54);
  hdr[12] = 0x60;
  EXPECT_TRUE(TcpSegmentFromBytes(hdr.data(), hdr.size(), seg).has_value());
  EXPECT_TRUE(TcpSegmentFromBytes(hdr.data(), 19, seg).has_value());

  // A SYN with MSS, SACK-permitted and window scale options.
  const std::vector<uint8_t> syn =
      FromHex("9c43005000000bb8000000008002721000000000020405b40402010303070000");
  ASSERT_FALSE(TcpSegmentFromBytes(syn.data(), syn.size(), seg).has_value());
  EXPECT_EQ(seg.data_offset_words, 8);
  EXPECT_TRUE(seg.sack_perm);
  ASSERT_TRUE(seg.wscale.has_value());
  EXPECT_EQ(*seg.wscale, 7);
  EXPECT_EQ(seg.payload_len, 0u);
}

TEST(TcpTrackerTest, StateNamesAndEarlyDrop) {
  EXPECT_STREQ(TcpStateName(TcpState::kNone), "NONE");
  EXPECT_STREQ(TcpStateName(TcpState::kSynSent2), "SYN_SENT2");
  EXPECT_STREQ(TcpStateName(TcpState::kTimeWait), "TIME_WAIT");
  EXPECT_STREQ(TcpStateName(TcpState::kIgnore), "UNKNOWN");
  EXPECT_TRUE(TcpCanEarlyDrop(TcpState::kCloseWait));
  EXPECT_FALSE(TcpCanEarlyDrop(TcpState::kEstablished));
  EXPECT_FALSE(TcpCanEarlyDrop(TcpState::kSynSent));
}

TEST(TcpTrackerTest, SettingsFromSysctls) {
  ConntrackSettings cs;
  cs.tcp_timeout_established = 7200;
  cs.tcp_timeout_unacknowledged = 60;
  cs.tcp_loose = false;
  cs.tcp_max_retrans = 5;
  TcpSettings t = TcpSettingsFrom(cs);
  EXPECT_EQ(t.timeout(TcpState::kEstablished), 7200 * kNanosPerSecond);
  EXPECT_EQ(t.timeout(TcpState::kUnack), 60 * kNanosPerSecond);
  EXPECT_EQ(t.timeout(TcpState::kSynSent2), 120 * kNanosPerSecond);
  EXPECT_FALSE(t.loose);
  EXPECT_EQ(t.max_retrans, 5);
  TcpSettings defaults;
  TcpSettings from_defaults = TcpSettingsFrom(ConntrackSettings{});
  for (int i = 0; i < kTcpTimeoutCount; ++i) {
    EXPECT_EQ(defaults.timeouts[i], from_defaults.timeouts[i]) << i;
  }
}

}  // namespace
}  // namespace ctsync

#include "sync/wire.h"

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace ctsync::sync {
namespace {

absl::Span<const uint8_t> B(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string Datagram(const std::string& key, uint32_t node, uint64_t inc, uint64_t seq,
                     const std::string& payload = "p", MsgType type = MsgType::kAlive) {
  WireHeader h;
  h.type = type;
  h.node_id = node;
  h.incarnation = inc;
  h.seq = seq;
  std::string out;
  EncodeDatagram(h, B(payload), B(key), &out);
  return out;
}

// Independently computed with Python's hmac/struct modules:
//   h = b'CTSY' + bytes([2, 4]) + struct.pack('>HIQQI', 1, 0x01020304,
//       0x1122334455667788, 42, 3) + b'abc'; h + hmac.new(b'k3y', h, sha256).digest()
TEST(WireTest, GoldenBytes) {
  static constexpr uint8_t kGolden[] = {
      0x43, 0x54, 0x53, 0x59, 0x02, 0x04, 0x00, 0x01, 0x01, 0x02, 0x03, 0x04, 0x11, 0x22,
      0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a,
      0x00, 0x00, 0x00, 0x03, 0x61, 0x62, 0x63, 0xd8, 0xcc, 0xd9, 0xa7, 0x28, 0x1b, 0x3e,
      0x55, 0x61, 0x9d, 0x3b, 0x50, 0x00, 0x2b, 0x03, 0x02, 0x83, 0xe4, 0x60, 0xff, 0x0e,
      0xb4, 0x5f, 0x00, 0xb1, 0xac, 0x2e, 0x57, 0xba, 0x1c, 0x01, 0x16};
  WireHeader h;
  h.type = MsgType::kAlive;
  h.flags = kFlagRetransmit;
  h.node_id = 0x01020304;
  h.incarnation = 0x1122334455667788;
  h.seq = 42;
  std::string out;
  EncodeDatagram(h, B("abc"), B("k3y"), &out);
  EXPECT_EQ(out, std::string(reinterpret_cast<const char*>(kGolden), sizeof(kGolden)));

  WireHeader parsed;
  ASSERT_EQ(ParseHeader(B(out), &parsed), std::nullopt);
  EXPECT_EQ(parsed.type, MsgType::kAlive);
  EXPECT_EQ(parsed.flags, kFlagRetransmit);
  EXPECT_EQ(parsed.node_id, 0x01020304u);
  EXPECT_EQ(parsed.incarnation, 0x1122334455667788u);
  EXPECT_EQ(parsed.seq, 42u);
  EXPECT_EQ(parsed.payload_len, 3u);
}

struct DropCase {
  const char* name;
  std::function<std::string(std::string)> mutate;  // of a valid datagram from node 2
  DropReason expected;
};

TEST(WireTest, EveryStructuralAndAuthDropReason) {
  const std::string good = Datagram("key", 2, 5, 1, "payload");
  const std::vector<DropCase> cases = {
      {"empty", [](std::string) { return std::string(); }, DropReason::kTooShort},
      {"truncated tag", [](std::string d) { return d.substr(0, d.size() - 1); },
       DropReason::kBadLength},
      {"header only", [](std::string d) { return d.substr(0, kHeaderSize); },
       DropReason::kTooShort},
      {"magic", [](std::string d) { d[0] = 'X'; return d; }, DropReason::kBadMagic},
      {"version", [](std::string d) { d[4] = 9; return d; }, DropReason::kBadVersion},
      {"type zero", [](std::string d) { d[5] = 0; return d; }, DropReason::kBadType},
      {"type too big", [](std::string d) { d[5] = kMaxMsgType + 1; return d; },
       DropReason::kBadType},
      {"length", [](std::string d) { d[31] = 50; return d; }, DropReason::kBadLength},
      {"appended byte", [](std::string d) { return d + "x"; }, DropReason::kBadLength},
      {"payload bit", [](std::string d) { d[kHeaderSize] ^= 1; return d; },
       DropReason::kBadHmac},
      {"header bit (node)", [](std::string d) { d[11] ^= 1; return d; },
       DropReason::kBadHmac},
      {"tag bit", [](std::string d) { d.back() ^= 1; return d; }, DropReason::kBadHmac},
      {"other key", [](std::string) { return Datagram("other", 2, 5, 1, "payload"); },
       DropReason::kBadHmac},
      {"own node", [](std::string) { return Datagram("key", 1, 5, 1, "payload"); },
       DropReason::kOwnNode},
      {"zero incarnation", [](std::string) { return Datagram("key", 2, 0, 1); },
       DropReason::kOldIncarnation},
      {"zero seq", [](std::string) { return Datagram("key", 2, 5, 0); }, DropReason::kTooOld},
  };
  for (const DropCase& c : cases) {
    SCOPED_TRACE(c.name);
    DatagramVerifier v(/*own_node_id=*/1, KeyConfig{"key", "", 0});
    VerifiedDatagram out;
    const std::string d = c.mutate(good);
    EXPECT_EQ(v.Verify(B(d), 0, &out), c.expected) << DropReasonName(c.expected);
    EXPECT_EQ(v.drops()[c.expected], 1u);
    EXPECT_EQ(v.drops().Total(), 1u);
    // A rejected datagram never opens a window: the genuine one is still accepted.
    EXPECT_EQ(v.Verify(B(good), 0, &out), std::nullopt);
  }
}

TEST(WireTest, ReplayAndIncarnation) {
  DatagramVerifier v(1, KeyConfig{"key", "", 0});
  VerifiedDatagram out;
  ASSERT_EQ(v.Verify(B(Datagram("key", 2, 100, 1)), 0, &out), std::nullopt);
  EXPECT_TRUE(out.new_incarnation);
  ASSERT_EQ(v.Verify(B(Datagram("key", 2, 100, 3)), 0, &out), std::nullopt);
  EXPECT_FALSE(out.new_incarnation);
  EXPECT_EQ(v.Verify(B(Datagram("key", 2, 100, 3)), 0, &out), DropReason::kReplay);
  EXPECT_EQ(v.Verify(B(Datagram("key", 2, 100, 1)), 0, &out), DropReason::kReplay);
  // Reordered but new: accepted once.
  EXPECT_EQ(v.Verify(B(Datagram("key", 2, 100, 2)), 0, &out), std::nullopt);
  EXPECT_EQ(v.Verify(B(Datagram("key", 2, 100, 2)), 0, &out), DropReason::kReplay);
  // The peer restarts: new incarnation, numbering starts again.
  ASSERT_EQ(v.Verify(B(Datagram("key", 2, 200, 1)), 0, &out), std::nullopt);
  EXPECT_TRUE(out.new_incarnation);
  // Anything from the previous life is refused, even numbers never seen.
  EXPECT_EQ(v.Verify(B(Datagram("key", 2, 100, 50)), 0, &out), DropReason::kOldIncarnation);
  EXPECT_EQ(v.IncarnationOf(2), 200u);
  // Other peers have their own windows.
  EXPECT_EQ(v.Verify(B(Datagram("key", 3, 100, 1)), 0, &out), std::nullopt);
  EXPECT_EQ(v.drops()[DropReason::kReplay], 3u);
  EXPECT_EQ(v.drops()[DropReason::kOldIncarnation], 1u);
}

TEST(ReplayWindowTest, SlidesAndForgetsOldNumbers) {
  ReplayWindow w;
  for (uint64_t s = 1; s <= 10000; s += 2) {
    ASSERT_EQ(w.Check(s), std::nullopt) << s;
    w.Accept(s);
  }
  EXPECT_EQ(w.Check(9999), DropReason::kReplay);
  EXPECT_EQ(w.Check(9998), std::nullopt);  // never seen, inside the window
  EXPECT_EQ(w.Check(10000 - (ReplayWindow::kSize - 64)), std::nullopt);
  EXPECT_EQ(w.Check(10000 - ReplayWindow::kSize - 1), DropReason::kTooOld);
  EXPECT_EQ(w.Check(1), DropReason::kTooOld);
  // A big jump clears everything below the new window.
  w.Accept(1'000'000);
  EXPECT_EQ(w.Check(999'999), std::nullopt);
  EXPECT_EQ(w.Check(9999), DropReason::kTooOld);
  EXPECT_EQ(w.Check(1'000'000), DropReason::kReplay);
}

TEST(WireTest, KeyRotationAcceptsPreviousKeyOnlyDuringGrace) {
  DatagramVerifier v(1, KeyConfig{"old", "", 0});
  VerifiedDatagram out;
  ASSERT_EQ(v.Verify(B(Datagram("old", 2, 1, 1)), 0, &out), std::nullopt);
  v.RotateKey("new", /*previous_until=*/1000);
  EXPECT_EQ(v.keys().key, "new");
  ASSERT_EQ(v.Verify(B(Datagram("new", 2, 1, 2)), 10, &out), std::nullopt);
  EXPECT_FALSE(out.previous_key);
  ASSERT_EQ(v.Verify(B(Datagram("old", 2, 1, 3)), 999, &out), std::nullopt);
  EXPECT_TRUE(out.previous_key);
  EXPECT_EQ(v.Verify(B(Datagram("old", 2, 1, 4)), 1000, &out), DropReason::kBadHmac);
  EXPECT_EQ(v.Verify(B(Datagram("new", 2, 1, 5)), 5000, &out), std::nullopt);
  EXPECT_EQ(v.Verify(B(Datagram("third", 2, 1, 6)), 10, &out), DropReason::kBadHmac);
}

TEST(WireTest, DropReasonNamesAreDistinct) {
  std::set<std::string> names;
  for (size_t i = 0; i < kNumDropReasons; ++i)
    names.insert(DropReasonName(static_cast<DropReason>(i)));
  EXPECT_EQ(names.size(), kNumDropReasons);
  EXPECT_STREQ(DropReasonName(DropReason::kBadHmac), "bad_hmac");
}

}  // namespace
}  // namespace ctsync::sync

#include "sync/fragment_update_codec.h"

#include <string>
#include <vector>

#include "core/packet/packet_builder.h"
#include "core/packet/packet_parser.h"
#include "gtest/gtest.h"

namespace ctsync::sync {
namespace {

constexpr Nanos kSec = kNanosPerSecond;

DefragEvent Gone(Family f, const char* src, const char* dst, uint8_t proto) {
  DefragEvent e;
  e.kind = DefragEvent::Kind::kGone;
  e.key.family = f;
  e.key.proto = proto;
  e.key.zone = 513;
  e.key.id = 0xdeadbeef;
  e.key.src = *IpAddress::Parse(src);
  e.key.dst = *IpAddress::Parse(dst);
  return e;
}

TEST(FragmentUpdateCodecTest, QueuedRoundTripCarriesTheLifetimeLeft) {
  DefragEvent e;
  e.kind = DefragEvent::Kind::kQueued;
  e.key.zone = 7;
  e.deadline = 31 * kSec;
  e.frame = {1, 2, 3, 4, 5};
  proto::FragmentUpdate m;
  EncodeFragmentUpdate(e, 1 * kSec + 500, &m);  // 30 s minus 500 ns left: 29999 ms
  EXPECT_EQ(m.type(), proto::FragmentUpdate::QUEUED);
  EXPECT_EQ(m.lifetime_ms(), 29999u);
  EXPECT_EQ(m.zone(), 7u);

  // Through the wire bytes, as a peer gets it.
  proto::FragmentUpdate got;
  ASSERT_TRUE(got.ParseFromString(m.SerializeAsString()));
  PeerFragmentUpdate u;
  ASSERT_TRUE(DecodeFragmentUpdate(got, 250 * kNanosPerMilli, &u).ok());
  EXPECT_EQ(u.kind, DefragEvent::Kind::kQueued);
  EXPECT_EQ(u.key.zone, 7);
  EXPECT_EQ(u.frame, e.frame);
  EXPECT_EQ(u.lifetime, 29999 * kNanosPerMilli - 250 * kNanosPerMilli);

  // An expired queue is sent with nothing left (the receiver refuses it).
  EncodeFragmentUpdate(e, 40 * kSec, &m);
  EXPECT_EQ(m.lifetime_ms(), 0u);
}

TEST(FragmentUpdateCodecTest, GoneRoundTripBothFamilies) {
  for (const DefragEvent& e : {Gone(Family::kIpv4, "192.0.2.10", "198.51.100.20", 17),
                               Gone(Family::kIpv6, "2001:db8:1::10", "2001:db8:2::20", 0)}) {
    proto::FragmentUpdate m;
    EncodeFragmentUpdate(e, 0, &m);
    EXPECT_EQ(m.src().size(), e.key.family == Family::kIpv4 ? 4u : 16u);
    proto::FragmentUpdate got;
    ASSERT_TRUE(got.ParseFromString(m.SerializeAsString()));
    PeerFragmentUpdate u;
    ASSERT_TRUE(DecodeFragmentUpdate(got, 0, &u).ok());
    EXPECT_EQ(u.kind, DefragEvent::Kind::kGone);
    EXPECT_EQ(u.key, e.key);
  }
}

// Golden bytes of a GONE message, so the layout cannot drift unnoticed.
TEST(FragmentUpdateCodecTest, GoneGoldenBytes) {
  proto::FragmentUpdate m;
  EncodeFragmentUpdate(Gone(Family::kIpv4, "192.0.2.10", "198.51.100.20", 17), 0, &m);
  const std::string want = {
      0x08, 0x02,                                      // type GONE
      0x10, static_cast<char>(0x81), 0x04,             // zone 513
      0x28, 0x04,                                      // family 4
      0x32, 0x04, static_cast<char>(192), 0, 2, 10,    // src
      0x3a, 0x04, static_cast<char>(198), 51, 100, 20,  // dst
      0x40, static_cast<char>(0xef), static_cast<char>(0xfd), static_cast<char>(0xb6),
      static_cast<char>(0xf5), 0x0d,  // id 0xdeadbeef
      0x48, 0x11,                     // proto 17
  };
  EXPECT_EQ(m.SerializeAsString(), want);
}

TEST(FragmentUpdateCodecTest, MalformedMessagesAreRefused) {
  const auto bad = [](auto mutate) {
    proto::FragmentUpdate m;
    EncodeFragmentUpdate(Gone(Family::kIpv4, "192.0.2.10", "198.51.100.20", 17), 0, &m);
    mutate(m);
    PeerFragmentUpdate u;
    return !DecodeFragmentUpdate(m, 0, &u).ok();
  };
  EXPECT_TRUE(bad([](proto::FragmentUpdate& m) { m.set_type(proto::FragmentUpdate::TYPE_UNSPECIFIED); }));
  EXPECT_TRUE(bad([](proto::FragmentUpdate& m) { m.set_type(static_cast<proto::FragmentUpdate::Type>(9)); }));
  EXPECT_TRUE(bad([](proto::FragmentUpdate& m) { m.set_zone(65536); }));
  EXPECT_TRUE(bad([](proto::FragmentUpdate& m) { m.set_family(5); }));
  EXPECT_TRUE(bad([](proto::FragmentUpdate& m) { m.set_family(6); }));  // 4-byte addresses
  EXPECT_TRUE(bad([](proto::FragmentUpdate& m) { m.set_src("abc"); }));
  EXPECT_TRUE(bad([](proto::FragmentUpdate& m) { m.set_proto(256); }));
  EXPECT_TRUE(bad([](proto::FragmentUpdate& m) { m.set_type(proto::FragmentUpdate::QUEUED); }));
  EXPECT_TRUE(bad([](proto::FragmentUpdate& m) {
    m.set_type(proto::FragmentUpdate::QUEUED);
    m.set_frame(std::string(kMaxFragmentFrame + 1, 'x'));
  }));
  EXPECT_FALSE(bad([](proto::FragmentUpdate&) {}));
}

TEST(FragmentUpdateCodecTest, ApplyFeedsTheReassembler) {
  DefragOptions o;
  o.export_capacity = 16;
  Defragmenter a(o);
  Defragmenter b;
  const auto whole = PacketBuilder()
                         .Ipv4("192.0.2.10", "198.51.100.20")
                         .IpId(77)
                         .Udp(1000, 2000)
                         .Payload(std::string(100, 'z'))
                         .Build();
  FragmentLayout layout;
  layout.family = Family::kIpv4;
  layout.id = 77;
  layout.payload_sizes = {48, 60};
  auto frags = Refragment(whole, layout);
  ASSERT_TRUE(frags.ok());
  ParsedPacket p;
  ASSERT_TRUE(ParseEthernet((*frags)[0], &p).ok());
  ASSERT_EQ(a.Add(p, (*frags)[0], 0, kSec).kind, DefragResult::Kind::kQueued);
  DefragEvent e;
  ASSERT_TRUE(a.PopEvent(&e));
  proto::FragmentUpdate m;
  EncodeFragmentUpdate(e, kSec, &m);
  PeerFragmentUpdate u;
  ASSERT_TRUE(DecodeFragmentUpdate(m, 0, &u).ok());
  EXPECT_TRUE(ApplyFragmentUpdate(u, b, 9 * kSec));
  EXPECT_EQ(b.queue_count(), 1u);
  // A's queue completes; the GONE drops B's copy.
  ASSERT_TRUE(ParseEthernet((*frags)[1], &p).ok());
  ASSERT_EQ(a.Add(p, (*frags)[1], 0, kSec).kind, DefragResult::Kind::kReassembled);
  ASSERT_TRUE(a.PopEvent(&e));
  EncodeFragmentUpdate(e, kSec, &m);
  ASSERT_TRUE(DecodeFragmentUpdate(m, 0, &u).ok());
  EXPECT_TRUE(ApplyFragmentUpdate(u, b, 9 * kSec));
  EXPECT_EQ(b.queue_count(), 0u);
}

}  // namespace
}  // namespace ctsync::sync

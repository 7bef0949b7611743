// Fragment queue events through the replication protocol (issue #5): reliable and ordered
// like flow events, authenticated, and a peer's malformed fragment is a counted drop.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sync/replicator.h"
#include "sync/wire.h"
#include "tests/sync/fake_cluster.h"

namespace ctsync::sync {
namespace {

using testing::FakeCluster;
using testing::Faults;

DefragEvent Queued(uint32_t n, size_t size, Nanos deadline) {
  DefragEvent e;
  e.kind = DefragEvent::Kind::kQueued;
  e.key.zone = static_cast<uint16_t>(n % 4);
  e.deadline = deadline;
  e.frame.assign(size, static_cast<uint8_t>(n));
  e.frame[0] = static_cast<uint8_t>(n >> 8);
  return e;
}

DefragEvent Gone(uint32_t n) {
  DefragEvent e;
  e.kind = DefragEvent::Kind::kGone;
  e.key.family = Family::kIpv4;
  e.key.proto = 17;
  e.key.id = n;
  e.key.src = IpAddress::FromV4(0xc000020a);  // 192.0.2.10
  e.key.dst = IpAddress::FromV4(0xc6336414);  // 198.51.100.20
  return e;
}

TEST(ReplicatorFragmentTest, EveryFragmentEventArrivesInOrderDespiteLoss) {
  FakeCluster c(/*seed=*/9);
  auto& a = c.AddNode(c.DefaultOptions(1));
  auto& b = c.AddNode(c.DefaultOptions(2));
  c.Run(5 * kNanosPerMilli);
  c.set_faults(Faults{0.2, 0.05, 0.1});
  std::vector<DefragEvent> sent;
  for (uint32_t i = 0; i < 400; ++i) {
    // Small, MTU-sized and larger-than-MTU frames (the last leave alone, oversized).
    const size_t size = i % 3 == 0 ? 60 : i % 3 == 1 ? 1400 : 1514;
    sent.push_back(i % 5 == 4 ? Gone(i) : Queued(i, size, c.clock().Now() + 30 * kNanosPerSecond));
    a.rep->PublishFragment(sent.back());
    if (i % 50 == 49) c.Run(2 * kNanosPerMilli);
  }
  c.Run(2 * kNanosPerSecond);
  ASSERT_EQ(b.fragments.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    SCOPED_TRACE(i);
    const PeerFragmentUpdate& u = b.fragments[i];
    EXPECT_EQ(u.peer, 1u);
    EXPECT_EQ(u.kind, sent[i].kind);
    if (u.kind == DefragEvent::Kind::kGone) {
      EXPECT_EQ(u.key, sent[i].key);
    } else {
      EXPECT_EQ(u.frame, sent[i].frame);
      EXPECT_EQ(u.key.zone, sent[i].key.zone);
      EXPECT_GT(u.lifetime, 25 * kNanosPerSecond);
      EXPECT_LE(u.lifetime, 30 * kNanosPerSecond);
    }
  }
  EXPECT_EQ(a.rep->stats().fragments_sent, sent.size());
  EXPECT_EQ(b.rep->stats().bad_fragments, 0u);
  EXPECT_GT(a.rep->stats().retransmits, 0u);
  EXPECT_EQ(b.applies, 0u);  // no flow events were made up
}

TEST(ReplicatorFragmentTest, ForgedAndMalformedFragmentsAreCountedDrops) {
  FakeCluster c;
  auto& b = c.AddNode(c.DefaultOptions(2));
  // An authentic batch (right key) whose second fragment is malformed.
  proto::Batch batch;
  batch.set_stream_seq(1);
  batch.set_wall_time_ms(1);
  proto::FragmentUpdate* ok = batch.add_fragments();
  ok->set_type(proto::FragmentUpdate::QUEUED);
  ok->set_frame(std::string(80, 'f'));
  ok->set_lifetime_ms(1000);
  proto::FragmentUpdate* bad = batch.add_fragments();
  bad->set_type(proto::FragmentUpdate::GONE);
  bad->set_family(4);
  bad->set_src("toolong");
  const std::string payload = batch.SerializeAsString();
  const auto bytes = [](const std::string& s) {
    return absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  };
  WireHeader h;
  h.type = MsgType::kData;
  h.node_id = 1;
  h.incarnation = 5;
  h.seq = 1;
  const std::string key = "cluster-key";
  std::string forged, genuine;
  EncodeDatagram(h, bytes(payload), bytes("wrong-key"), &forged);
  EncodeDatagram(h, bytes(payload), bytes(key), &genuine);
  c.Inject(b, forged);
  EXPECT_EQ(b.rep->drops()[DropReason::kBadHmac], 1u);
  EXPECT_TRUE(b.fragments.empty());
  c.Inject(b, genuine);
  ASSERT_EQ(b.fragments.size(), 1u);
  EXPECT_EQ(b.rep->stats().fragments_received, 2u);
  EXPECT_EQ(b.rep->stats().bad_fragments, 1u);
  // The same datagram again is a replay, applied once only.
  c.Inject(b, genuine);
  EXPECT_EQ(b.fragments.size(), 1u);
}

TEST(ReplicatorFragmentTest, AReceiverWithoutAFragmentSinkCountsThem) {
  FakeCluster c;
  auto& a = c.AddNode(c.DefaultOptions(1));
  ManualClock clock(kNanosPerSecond);
  Replicator::Callbacks cb;
  cb.send = [](absl::Span<const uint8_t>) {};
  cb.apply = [](const PeerFlowUpdate&) {};
  ReplicatorOptions o = c.DefaultOptions(3);
  auto old = Replicator::Create(o, std::move(cb), clock);
  ASSERT_TRUE(old.ok());
  std::vector<std::string>& tap = c.Tap(1);
  a.rep->PublishFragment(Queued(1, 100, c.clock().Now() + kNanosPerSecond));
  a.rep->Flush();
  ASSERT_FALSE(tap.empty());
  for (const std::string& d : tap)
    (*old)->OnDatagram({reinterpret_cast<const uint8_t*>(d.data()), d.size()});
  EXPECT_EQ((*old)->stats().fragments_ignored, 1u);
  EXPECT_EQ((*old)->stats().bad_fragments, 0u);
}

}  // namespace
}  // namespace ctsync::sync

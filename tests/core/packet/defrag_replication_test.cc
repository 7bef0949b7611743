// Fragment queue replication (issue #5): what a node records for its peer (PopEvent) and
// what a peer's fragments do to a backup's reassembler (Import, ImportGone).
#include <random>
#include <string>
#include <vector>

#include "core/packet/defrag.h"
#include "core/packet/packet_builder.h"
#include "core/packet/packet_parser.h"
#include "gtest/gtest.h"

namespace ctsync {
namespace {

using Kind = DefragResult::Kind;
constexpr Nanos kSec = kNanosPerSecond;

ParsedPacket Parse(const std::vector<uint8_t>& f) {
  ParsedPacket p;
  ParseResult r = ParseEthernet(f, &p);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : std::string(ParseErrorName(r.error())));
  return p;
}

DefragResult Feed(Defragmenter& d, const std::vector<uint8_t>& f, Nanos now, uint16_t zone = 0) {
  ParsedPacket p = Parse(f);
  EXPECT_TRUE(p.is_fragment);
  return d.Add(p, f, zone, now);
}

std::vector<std::vector<uint8_t>> Split(const std::vector<uint8_t>& frame,
                                        std::vector<uint16_t> sizes, uint32_t id) {
  ParsedPacket p = Parse(frame);
  FragmentLayout layout;
  layout.family = p.family;
  layout.id = id;
  layout.payload_sizes = std::move(sizes);
  layout.v6_unfragmentable_len = static_cast<uint16_t>(p.l4_offset - p.l3_offset);
  layout.v6_nexthdr_field = 6;
  auto pieces = Refragment(frame, layout);
  EXPECT_TRUE(pieces.ok()) << pieces.status();
  return pieces.ok() ? *pieces : std::vector<std::vector<uint8_t>>{};
}

std::vector<uint8_t> Udp4(size_t payload, uint16_t id) {
  std::string data(payload, 0);
  for (size_t i = 0; i < payload; ++i) data[i] = static_cast<char>('a' + i % 26);
  return PacketBuilder()
      .Ipv4("192.0.2.10", "198.51.100.20")
      .IpId(id)
      .Udp(6300, 7300)
      .Payload(data)
      .Build();
}

std::vector<uint8_t> Udp6(size_t payload) {
  return PacketBuilder()
      .Ipv6("2001:db8:1::10", "2001:db8:2::20")
      .Udp(6300, 7300)
      .Payload(std::string(payload, 'q'))
      .Build();
}

DefragOptions Exporting() {
  DefragOptions o;
  o.export_capacity = 1024;
  return o;
}

std::vector<DefragEvent> Drain(Defragmenter& d) {
  std::vector<DefragEvent> out;
  DefragEvent e;
  while (d.PopEvent(&e)) out.push_back(e);
  return out;
}

// Node A queues part of a datagram; B learns A's fragments and, promoted, gets the rest
// and passes on exactly the datagram A would have: for both families.
TEST(DefragReplicationTest, ExportImportRoundTrip) {
  struct Case {
    std::string name;
    std::vector<uint8_t> whole;
    std::vector<uint16_t> sizes;
  };
  const std::vector<Case> cases = {{"v4", Udp4(100, 0x4242), {16, 40, 52}},
                                   {"v6", Udp6(100), {24, 32, 52}}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const auto frags = Split(c.whole, c.sizes, 0x4242);
    ASSERT_EQ(frags.size(), 3u);
    Defragmenter a(Exporting());
    Defragmenter b;
    // A gets the last fragment, then the first.
    ASSERT_EQ(Feed(a, frags[2], 1 * kSec, 7).kind, Kind::kQueued);
    ASSERT_EQ(Feed(a, frags[0], 2 * kSec, 7).kind, Kind::kQueued);
    const std::vector<DefragEvent> events = Drain(a);
    ASSERT_EQ(events.size(), 2u);
    const Nanos timeout = c.name == "v4" ? 30 * kSec : 60 * kSec;
    for (size_t i = 0; i < events.size(); ++i) {
      EXPECT_EQ(events[i].kind, DefragEvent::Kind::kQueued);
      EXPECT_EQ(events[i].key.zone, 7);
      EXPECT_EQ(events[i].deadline, 1 * kSec + timeout);  // from the queue's creation
    }
    EXPECT_EQ(events[0].frame, frags[2]);
    EXPECT_EQ(events[1].frame, frags[0]);

    // B's clock differs from A's; the lifetime left travels, not the deadline.
    const Nanos b_now = 500 * kSec;
    for (const DefragEvent& e : events) {
      EXPECT_EQ(b.Import(e.frame, e.key.zone, e.deadline - 2 * kSec, b_now).kind, Kind::kQueued);
    }
    EXPECT_EQ(b.counters().learnt, 2u);
    EXPECT_EQ(b.counters().fragments, 0u);  // nothing was received by B itself
    EXPECT_EQ(b.queue_count(), 1u);
    EXPECT_EQ(b.memory_used(), a.memory_used());

    DefragResult at_b = Feed(b, frags[1], b_now + kSec, 7);
    ASSERT_EQ(at_b.kind, Kind::kReassembled);
    EXPECT_EQ(at_b.frame, c.whole);
    EXPECT_EQ(at_b.layout.payload_sizes, c.sizes);
    DefragResult at_a = Feed(a, frags[1], 3 * kSec, 7);
    ASSERT_EQ(at_a.kind, Kind::kReassembled);
    EXPECT_EQ(at_b.frame, at_a.frame);
    EXPECT_EQ(at_b.layout.max_fragment_size, at_a.layout.max_fragment_size);
    EXPECT_EQ(b.memory_used(), 0u);

    // A's queue is gone: its peer is told, with the key.
    const std::vector<DefragEvent> gone = Drain(a);
    ASSERT_EQ(gone.size(), 1u);
    EXPECT_EQ(gone[0].kind, DefragEvent::Kind::kGone);
    EXPECT_EQ(gone[0].key.zone, 7);
    EXPECT_EQ(gone[0].key.id, 0x4242u);
    EXPECT_EQ(gone[0].key.family, c.name == "v4" ? Family::kIpv4 : Family::kIpv6);
  }
}

TEST(DefragReplicationTest, NothingRecordedWithoutExportOrForImports) {
  const auto frags = Split(Udp4(100, 1), {48, 60}, 1);
  Defragmenter quiet;
  ASSERT_EQ(Feed(quiet, frags[0], kSec).kind, Kind::kQueued);
  ASSERT_EQ(Feed(quiet, frags[1], kSec).kind, Kind::kReassembled);
  EXPECT_TRUE(Drain(quiet).empty());
  // Imports are a peer's: never sent back, nor their end.
  Defragmenter b(Exporting());
  ASSERT_EQ(b.Import(frags[0], 0, 10 * kSec, kSec).kind, Kind::kQueued);
  b.Expire(20 * kSec);
  EXPECT_EQ(b.counters().timeouts, 1u);
  EXPECT_TRUE(Drain(b).empty());
}

TEST(DefragReplicationTest, PeerQueueEndDropsTheLearntOne) {
  const auto frags = Split(Udp4(100, 9), {48, 60}, 9);
  Defragmenter a(Exporting());
  Defragmenter b;
  ASSERT_EQ(Feed(a, frags[0], kSec).kind, Kind::kQueued);
  for (const DefragEvent& e : Drain(a)) b.Import(e.frame, e.key.zone, 30 * kSec, kSec);
  ASSERT_EQ(b.queue_count(), 1u);
  ASSERT_EQ(Feed(a, frags[1], kSec).kind, Kind::kReassembled);
  const std::vector<DefragEvent> gone = Drain(a);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_TRUE(b.ImportGone(gone[0].key));
  EXPECT_EQ(b.queue_count(), 0u);
  EXPECT_EQ(b.memory_used(), 0u);
  EXPECT_EQ(b.counters().learnt_gone, 1u);
  EXPECT_FALSE(b.ImportGone(gone[0].key));  // twice: nothing left to drop
  // A killed queue (overlap) and an expired one are announced too.
  ASSERT_EQ(Feed(a, frags[0], 2 * kSec).kind, Kind::kQueued);
  auto other = Split(Udp4(100, 9), {40, 68}, 9);
  ASSERT_EQ(Feed(a, other[1], 2 * kSec).kind, Kind::kDropped);  // overlaps [0,48)
  ASSERT_EQ(Feed(a, frags[0], 3 * kSec).kind, Kind::kQueued);
  a.Expire(3 * kSec + 30 * kSec);
  std::vector<DefragEvent> ev = Drain(a);
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[1].kind, DefragEvent::Kind::kGone);
  EXPECT_EQ(ev[3].kind, DefragEvent::Kind::kGone);
}

TEST(DefragReplicationTest, LearntQueuesExpireWithThePeersLifetime) {
  const auto f4 = Split(Udp4(100, 3), {48, 60}, 3);
  const auto f6 = Split(Udp6(100), {48, 60}, 3);
  Defragmenter b;
  // A local queue first (deadline 130 s), then a learnt one with 5 s left (deadline 106 s):
  // the shorter one expires first although it came later.
  ASSERT_EQ(Feed(b, Split(Udp4(100, 4), {48, 60}, 4)[0], 100 * kSec).kind, Kind::kQueued);
  ASSERT_EQ(b.Import(f4[0], 0, 5 * kSec, 101 * kSec).kind, Kind::kQueued);
  // A later copy of the same queue does not extend it.
  ASSERT_EQ(b.Import(f4[0], 0, 29 * kSec, 102 * kSec).kind, Kind::kDropped);  // duplicate
  EXPECT_EQ(b.Expire(106 * kSec - 1), 0u);
  EXPECT_EQ(b.Expire(106 * kSec), 1u);
  EXPECT_EQ(b.queue_count(), 1u);
  // The rest arriving after the learnt queue's time: a new queue, not a reassembly.
  EXPECT_EQ(Feed(b, f4[1], 106 * kSec).kind, Kind::kQueued);

  // A lifetime longer than ours is cut to the family's timeout (60 s for IPv6).
  Defragmenter c;
  ASSERT_EQ(c.Import(f6[0], 0, 1000 * kSec, 0).kind, Kind::kQueued);
  EXPECT_EQ(c.Expire(60 * kSec - 1), 0u);
  EXPECT_EQ(c.Expire(60 * kSec), 1u);
  // Nothing left of it: refused.
  EXPECT_EQ(c.Import(f6[0], 0, 0, kSec).kind, Kind::kDropped);
  EXPECT_EQ(c.Import(f6[0], 0, -5, kSec).kind, Kind::kDropped);
  EXPECT_EQ(c.counters().learnt_stale, 2u);
  EXPECT_EQ(c.queue_count(), 0u);
}

TEST(DefragReplicationTest, LearntFragmentsAloneAreNeverPassedOn) {
  const auto frags = Split(Udp4(100, 5), {48, 60}, 5);
  Defragmenter b;
  ASSERT_EQ(b.Import(frags[0], 0, 30 * kSec, kSec).kind, Kind::kQueued);
  EXPECT_EQ(b.Import(frags[1], 0, 30 * kSec, kSec).kind, Kind::kDropped);
  EXPECT_EQ(b.counters().learnt_complete, 1u);
  EXPECT_EQ(b.counters().reassembled, 0u);
  EXPECT_EQ(b.queue_count(), 0u);
  EXPECT_EQ(b.memory_used(), 0u);
}

TEST(DefragReplicationTest, GarbledPeerFragmentsAreCountedDrops) {
  const auto frags = Split(Udp4(100, 6), {48, 60}, 6);
  Defragmenter b;
  const std::vector<uint8_t> whole = Udp4(100, 6);
  EXPECT_EQ(b.Import({}, 0, 30 * kSec, kSec).kind, Kind::kDropped);
  EXPECT_EQ(b.Import(std::vector<uint8_t>(frags[0].begin(), frags[0].begin() + 20), 0,
                     30 * kSec, kSec)
                .kind,
            Kind::kDropped);
  EXPECT_EQ(b.Import(whole, 0, 30 * kSec, kSec).kind, Kind::kDropped);  // not a fragment
  EXPECT_EQ(b.counters().learnt_bad, 3u);
  EXPECT_EQ(b.queue_count(), 0u);

  // Random corruption of genuine fragments: never a crash, never a datagram, and the memory
  // accounting stays exact.
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> f = frags[i % 2];
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) f[rng() % f.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
    if (rng() % 4 == 0) f.resize(rng() % f.size());
    if (rng() % 8 == 0) f.resize(f.size() + rng() % 64, 0xee);
    const DefragResult r = b.Import(f, static_cast<uint16_t>(rng() % 3), 30 * kSec, kSec);
    EXPECT_NE(r.kind, Kind::kReassembled);
  }
  b.Expire(100 * kSec, 1 << 20);
  EXPECT_EQ(b.queue_count(), 0u);
  EXPECT_EQ(b.memory_used(), 0u);
}

TEST(DefragReplicationTest, PeerFragmentsCannotExceedTheMemoryThreshold) {
  DefragOptions opts;
  opts.high_thresh = 3000;
  Defragmenter b(opts);
  size_t queued = 0;
  for (uint16_t id = 0; id < 100; ++id) {
    const auto frags = Split(Udp4(200, id), {96, 112}, id);
    if (b.Import(frags[0], 0, 30 * kSec, kSec).kind == Kind::kQueued) ++queued;
  }
  EXPECT_GT(queued, 0u);
  EXPECT_LT(queued, 100u);
  EXPECT_EQ(b.counters().memory_drops, 100 - queued);
  // At most one fragment (and its queue) past the threshold, as for received fragments.
  const size_t one = Split(Udp4(200, 0), {96, 112}, 0)[0].size() +
                     Defragmenter::kFragmentOverhead + Defragmenter::kQueueOverhead;
  EXPECT_LE(b.memory_used(), opts.high_thresh + one);
  // The queue limit holds for them too.
  DefragOptions few;
  few.max_queues = 2;
  Defragmenter c(few);
  for (uint16_t id = 0; id < 5; ++id)
    c.Import(Split(Udp4(200, id), {96, 112}, id)[0], 0, 30 * kSec, kSec);
  EXPECT_EQ(c.queue_count(), 2u);
  EXPECT_EQ(c.counters().queue_limit_drops, 3u);
}

TEST(DefragReplicationTest, ExportIsBoundedAndCounted) {
  DefragOptions opts;
  opts.export_capacity = 2;
  Defragmenter a(opts);
  for (uint16_t id = 0; id < 3; ++id)
    ASSERT_EQ(Feed(a, Split(Udp4(100, id), {48, 60}, id)[0], kSec).kind, Kind::kQueued);
  EXPECT_EQ(a.counters().export_overflow, 1u);
  EXPECT_EQ(Drain(a).size(), 2u);
}

}  // namespace
}  // namespace ctsync

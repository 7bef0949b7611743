#include "core/packet/defrag.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/conntrack/tuple.h"
#include "core/packet/checksum.h"
#include "core/packet/packet_builder.h"
#include "core/packet/packet_parser.h"
#include "gtest/gtest.h"
#include "tests/core/packet/corpus_frames.h"

namespace ctsync {
namespace {

using testing_frames::FramesInFile;
using testing_frames::FromHex;
using testing_frames::ScenarioDir;
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

// Cuts a whole datagram into fragments of the given payload sizes with the given id.
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

std::vector<uint8_t> BigUdp4(size_t payload, uint16_t id = 0x4242) {
  std::string data(payload, 0);
  for (size_t i = 0; i < payload; ++i) data[i] = static_cast<char>('a' + i % 26);
  return PacketBuilder().IpId(id).Udp(6300, 7300).Payload(data).Build();
}

std::vector<uint8_t> BigUdp6(size_t payload) {
  std::string data(payload, 'q');
  return PacketBuilder()
      .Ipv6("2001:db8:1::10", "2001:db8:2::20")
      .Udp(6300, 7300)
      .Payload(data)
      .Build();
}

// ---- the corpus scenario ipv4_fragments_udp_snat ----

TEST(DefragTest, CorpusScenarioReassemblesAndRefragmentsIdentically) {
  const auto dir = ScenarioDir() / "ipv4_fragments_udp_snat";
  const auto in = FramesInFile(dir / "scenario.json");
  const auto out = FramesInFile(dir / "expected.json");
  ASSERT_EQ(in.size(), 3u);
  ASSERT_EQ(out.size(), 2u);

  Defragmenter d;
  DefragResult r0 = Feed(d, in[0], 1 * kSec);
  EXPECT_EQ(r0.kind, Kind::kQueued);
  EXPECT_EQ(d.queue_count(), 1u);
  DefragResult r1 = Feed(d, in[1], 1 * kSec + 1);
  ASSERT_EQ(r1.kind, Kind::kReassembled);
  EXPECT_EQ(d.queue_count(), 0u);
  EXPECT_EQ(d.memory_used(), 0u);

  // The whole datagram: 20 + 8 + 48 bytes, a valid UDP checksum, no fragment bits.
  ParsedPacket p = Parse(r1.frame);
  EXPECT_FALSE(p.is_fragment);
  EXPECT_EQ(p.ip_total_len, 76u);
  EXPECT_EQ(p.ip_id, 0x2222);
  EXPECT_EQ(p.sport, 6300);
  EXPECT_EQ(p.dport, 7300);
  EXPECT_EQ(p.payload_len, 48u);
  EXPECT_TRUE(VerifyL4Checksum(p, r1.frame));
  EXPECT_TRUE(VerifyIpv4HeaderChecksum(absl::MakeConstSpan(r1.frame).subspan(14, 20)));
  EXPECT_EQ(r1.layout.payload_sizes, (std::vector<uint16_t>{24, 32}));
  EXPECT_EQ(r1.layout.id, 0x2222u);
  EXPECT_EQ(r1.layout.max_fragment_size, 52);

  // Without NAT, refragmenting gives back the input frames byte for byte.
  auto again = Refragment(r1.frame, r1.layout);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(again->size(), 2u);
  EXPECT_EQ((*again)[0], in[0]);
  EXPECT_EQ((*again)[1], in[1]);

  // With what the firewall did (new MACs, TTL-1, SNAT to 203.0.113.5 with checksums
  // fixed incrementally), the frames equal the kernel's output byte for byte.
  std::vector<uint8_t> nat = r1.frame;
  const std::vector<uint8_t> macs = {2, 0, 0, 0, 2, 2, 2, 0, 0, 0, 2, 1};
  std::copy(macs.begin(), macs.end(), nat.begin());
  nat[14 + 8] -= 1;
  const IpAddress pool = *IpAddress::Parse("203.0.113.5");
  const int udp_csum_at = p.l4_offset + 6;
  uint16_t csum = LoadBe16(nat.data() + udp_csum_at);
  csum = ChecksumAdjustAddress(csum, Family::kIpv4, p.src, pool);
  StoreBe16(nat.data() + udp_csum_at, csum);
  std::copy(pool.bytes.begin(), pool.bytes.begin() + 4, nat.begin() + 14 + 12);
  SetIpv4HeaderChecksum(absl::MakeSpan(nat.data() + 14, 20));
  auto sent = Refragment(nat, r1.layout);
  ASSERT_TRUE(sent.ok());
  ASSERT_EQ(sent->size(), 2u);
  EXPECT_EQ((*sent)[0], out[0]);
  EXPECT_EQ((*sent)[1], out[1]);

  // The lone first fragment of id 0x3333 waits, then expires after ipfrag_time.
  EXPECT_EQ(Feed(d, in[2], 2 * kSec).kind, Kind::kQueued);
  EXPECT_EQ(d.Expire(2 * kSec + 30 * kSec - 1), 0u);
  EXPECT_EQ(d.queue_count(), 1u);
  EXPECT_EQ(d.Expire(2 * kSec + 30 * kSec), 1u);
  EXPECT_EQ(d.queue_count(), 0u);
  EXPECT_EQ(d.memory_used(), 0u);
  EXPECT_EQ(d.counters().timeouts, 1u);
  EXPECT_EQ(d.counters().reassembled, 1u);
  EXPECT_EQ(d.counters().fragments, 3u);
}

// ---- order ----

TEST(DefragTest, EveryArrivalOrderReassembles) {
  struct Case {
    std::string name;
    std::vector<uint8_t> frame;
    std::vector<uint16_t> sizes;
  };
  std::vector<Case> cases = {
      {"v4", BigUdp4(100), {16, 40, 8, 44}},
      {"v6", BigUdp6(100), {24, 32, 8, 44}},
  };
  for (const Case& c : cases) {
    auto frags = Split(c.frame, c.sizes, 0x77);
    ASSERT_EQ(frags.size(), 4u);
    std::vector<int> order(frags.size());
    std::iota(order.begin(), order.end(), 0);
    int permutations = 0;
    do {
      SCOPED_TRACE(c.name + " permutation " + std::to_string(permutations));
      Defragmenter d;
      DefragResult last;
      for (size_t i = 0; i < order.size(); ++i) {
        last = Feed(d, frags[order[i]], kSec);
        if (i + 1 < order.size()) ASSERT_EQ(last.kind, Kind::kQueued);
      }
      ASSERT_EQ(last.kind, Kind::kReassembled);
      EXPECT_EQ(last.frame, c.frame);
      EXPECT_EQ(last.layout.payload_sizes, c.sizes);
      ++permutations;
    } while (std::next_permutation(order.begin(), order.end()));
    EXPECT_EQ(permutations, 24);
  }
}

TEST(DefragTest, Ipv6WithExtensionHeadersRoundTrips) {
  const std::vector<uint8_t> hbh(6, 0);
  auto frame = PacketBuilder()
                   .Ipv6("2001:db8:1::10", "2001:db8:2::20")
                   .Ipv6ExtHeader(0, hbh)
                   .Tcp(1000, 2000)
                   .Payload(std::string(64, 'x'))
                   .Build();
  ParsedPacket whole = Parse(frame);
  FragmentLayout layout;
  layout.family = Family::kIpv6;
  layout.id = 0xabcdef01;
  layout.payload_sizes = {40, 44};  // TCP header (20) + 64 data = 84
  layout.v6_unfragmentable_len = 48;
  layout.v6_nexthdr_field = 40;  // the hop-by-hop header's next-header byte
  auto frags = Refragment(frame, layout);
  ASSERT_TRUE(frags.ok()) << frags.status();
  ASSERT_EQ(frags->size(), 2u);
  ParsedPacket f0 = Parse((*frags)[0]);
  EXPECT_TRUE(f0.is_fragment);
  EXPECT_EQ(f0.frag_id, 0xabcdef01u);
  EXPECT_EQ(f0.frag_header_offset, 14u + 48);
  EXPECT_EQ(f0.proto, kProtoTcp);
  EXPECT_TRUE(f0.l4_parsed);  // first fragment holds the whole TCP header
  ParsedPacket f1 = Parse((*frags)[1]);
  EXPECT_EQ(f1.frag_offset, 40);
  EXPECT_FALSE(f1.more_fragments);

  Defragmenter d;
  EXPECT_EQ(Feed(d, (*frags)[1], kSec).kind, Kind::kQueued);
  DefragResult r = Feed(d, (*frags)[0], kSec);
  ASSERT_EQ(r.kind, Kind::kReassembled);
  EXPECT_EQ(r.frame, frame);
  EXPECT_TRUE(VerifyL4Checksum(Parse(r.frame), r.frame));
  EXPECT_EQ(r.layout.v6_unfragmentable_len, 48);
  EXPECT_EQ(r.layout.v6_nexthdr_field, 40);
  EXPECT_EQ(r.layout.id, 0xabcdef01u);
  auto again = Refragment(r.frame, r.layout);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *frags);
  (void)whole;
}

// ---- overlaps and duplicates ----

TEST(DefragTest, DuplicateIsDroppedAloneOverlapKillsTheQueue) {
  for (const auto& frame : {BigUdp4(64), BigUdp6(64)}) {
    auto frags = Split(frame, {24, 24, 24}, 9);
    ASSERT_EQ(frags.size(), 3u);
    {
      Defragmenter d;
      EXPECT_EQ(Feed(d, frags[0], kSec).kind, Kind::kQueued);
      EXPECT_EQ(Feed(d, frags[0], kSec).kind, Kind::kDropped);  // exact duplicate
      EXPECT_EQ(d.counters().duplicates, 1u);
      EXPECT_EQ(Feed(d, frags[1], kSec).kind, Kind::kQueued);
      EXPECT_EQ(Feed(d, frags[2], kSec).kind, Kind::kReassembled);
    }
    {
      // A fragment straddling two received ones: not inside one run -> overlap.
      Defragmenter d;
      auto mid = Split(frame, {16, 48, 8}, 9);
      EXPECT_EQ(Feed(d, frags[0], kSec).kind, Kind::kQueued);  // [0,24)
      EXPECT_EQ(Feed(d, frags[2], kSec).kind, Kind::kQueued);  // [48,72)
      EXPECT_EQ(Feed(d, mid[1], kSec).kind, Kind::kDropped);   // [16,64)
      EXPECT_EQ(d.counters().overlaps, 1u);
      EXPECT_EQ(d.queue_count(), 0u);
      EXPECT_EQ(d.memory_used(), 0u);
      // The rest then starts a new queue that cannot complete on its own.
      EXPECT_EQ(Feed(d, frags[1], kSec).kind, Kind::kQueued);
    }
    {
      // Overlapping the tail of the last run.
      Defragmenter d;
      auto shifted = Split(frame, {16, 56}, 9);
      EXPECT_EQ(Feed(d, frags[0], kSec).kind, Kind::kQueued);     // [0,24)
      EXPECT_EQ(Feed(d, shifted[1], kSec).kind, Kind::kDropped);  // [16,72)
      EXPECT_EQ(d.counters().overlaps, 1u);
    }
  }
}

TEST(DefragTest, Ipv4InconsistentLastFragmentKillsTheQueue) {
  auto frames = Split(BigUdp4(64), {24, 48}, 5);
  auto longer = Split(BigUdp4(80), {24, 64}, 5);
  Defragmenter d;
  EXPECT_EQ(Feed(d, frames[1], kSec).kind, Kind::kQueued);   // last: ends at 72
  EXPECT_EQ(Feed(d, longer[1], kSec).kind, Kind::kDropped);  // a second, different end
  EXPECT_EQ(d.counters().invalid, 1u);
  EXPECT_EQ(d.queue_count(), 0u);
}

// ---- time, memory, ECN ----

TEST(DefragTest, QueueTimesOutFromCreationNotFromLastFragment) {
  auto frags = Split(BigUdp4(64), {24, 24, 24}, 3);
  Defragmenter d;
  EXPECT_EQ(Feed(d, frags[0], 0).kind, Kind::kQueued);
  EXPECT_EQ(Feed(d, frags[1], 29 * kSec).kind, Kind::kQueued);
  // At 30 s the queue is gone even without an Expire() call: this fragment starts anew.
  EXPECT_EQ(Feed(d, frags[2], 30 * kSec).kind, Kind::kQueued);
  EXPECT_EQ(d.counters().timeouts, 1u);
  EXPECT_EQ(d.queue_count(), 1u);
  EXPECT_EQ(d.counters().reassembled, 0u);
  // IPv6 waits 60 s.
  auto f6 = Split(BigUdp6(64), {24, 48}, 3);
  EXPECT_EQ(Feed(d, f6[0], 100 * kSec).kind, Kind::kQueued);
  EXPECT_EQ(Feed(d, f6[1], 159 * kSec).kind, Kind::kReassembled);
}

TEST(DefragTest, ExpireWorksInBoundedSteps) {
  Defragmenter d;
  for (uint16_t id = 0; id < 10; ++id) {
    auto frags = Split(BigUdp4(32, id), {16, 24}, id);
    ASSERT_EQ(Feed(d, frags[0], id).kind, Kind::kQueued);
  }
  EXPECT_EQ(d.queue_count(), 10u);
  EXPECT_EQ(d.Expire(100 * kSec, 3), 3u);
  EXPECT_EQ(d.queue_count(), 7u);
  EXPECT_EQ(d.Expire(100 * kSec, 100), 7u);
  EXPECT_EQ(d.queue_count(), 0u);
  EXPECT_EQ(d.counters().timeouts, 10u);
}

TEST(DefragTest, MemoryLimitDropsNewFragmentsAndCounts) {
  DefragOptions opts;
  opts.high_thresh = 3000;
  Defragmenter d(opts);
  int queued = 0;
  for (uint16_t id = 0; id < 40; ++id) {
    auto frags = Split(BigUdp4(200, id), {96, 112}, id);
    if (Feed(d, frags[0], kSec).kind == Kind::kQueued) ++queued;
  }
  EXPECT_GT(queued, 0);
  EXPECT_LT(queued, 40);
  EXPECT_EQ(d.counters().memory_drops, static_cast<uint64_t>(40 - queued));
  EXPECT_GT(d.memory_used(), opts.high_thresh);
  // Above the threshold even a queue's completing fragment is refused (inet_frag_find).
  auto frags = Split(BigUdp4(200, 0), {96, 112}, 0);
  EXPECT_EQ(Feed(d, frags[1], kSec).kind, Kind::kDropped);
  // Expiry frees memory and lets fragments in again.
  d.Expire(100 * kSec, 1000);
  EXPECT_EQ(d.memory_used(), 0u);
  EXPECT_EQ(Feed(d, frags[0], 101 * kSec).kind, Kind::kQueued);
  EXPECT_EQ(Feed(d, frags[1], 101 * kSec).kind, Kind::kReassembled);
}

TEST(DefragTest, ZoneAndProtocolSeparateQueues) {
  auto frags = Split(BigUdp4(64), {24, 48}, 11);
  Defragmenter d;
  EXPECT_EQ(Feed(d, frags[0], kSec, /*zone=*/7).kind, Kind::kQueued);
  EXPECT_EQ(Feed(d, frags[1], kSec, /*zone=*/0).kind, Kind::kQueued);
  EXPECT_EQ(d.queue_count(), 2u);
  EXPECT_EQ(Feed(d, frags[1], kSec, /*zone=*/7).kind, Kind::kReassembled);
}

TEST(DefragTest, EcnMixOfNotEctAndEctDropsCeIsKept) {
  auto a = Split(PacketBuilder().Tos(0x00).IpId(1).Udp(1, 2).Payload(std::string(40, 'e')).Build(),
                 {24, 24}, 1);
  auto b = Split(PacketBuilder().Tos(0x02).IpId(1).Udp(1, 2).Payload(std::string(40, 'e')).Build(),
                 {24, 24}, 1);
  auto c = Split(PacketBuilder().Tos(0x03).IpId(1).Udp(1, 2).Payload(std::string(40, 'e')).Build(),
                 {24, 24}, 1);
  Defragmenter d;
  EXPECT_EQ(Feed(d, a[0], kSec).kind, Kind::kQueued);
  EXPECT_EQ(Feed(d, b[1], kSec).kind, Kind::kDropped);
  EXPECT_EQ(d.counters().ecn_mismatch, 1u);
  EXPECT_EQ(Feed(d, b[0], kSec).kind, Kind::kQueued);
  DefragResult r = Feed(d, c[1], kSec);
  ASSERT_EQ(r.kind, Kind::kReassembled);
  EXPECT_EQ(r.frame[15] & 3, 3);  // CE
  EXPECT_TRUE(VerifyIpv4HeaderChecksum(absl::MakeConstSpan(r.frame).subspan(14, 20)));
}

TEST(DefragTest, DfOnlyWhenTheLargestFragmentHadIt) {
  auto whole = PacketBuilder().Df().IpId(3).Udp(1, 2).Payload(std::string(40, 'd')).Build();
  auto frags = Split(whole, {16, 32}, 3);
  // Put DF on the small first fragment only.
  frags[0][14 + 6] |= 0x40;
  SetIpv4HeaderChecksum(absl::MakeSpan(frags[0].data() + 14, 20));
  Defragmenter d;
  Feed(d, frags[0], kSec);
  DefragResult r = Feed(d, frags[1], kSec);
  ASSERT_EQ(r.kind, Kind::kReassembled);
  EXPECT_FALSE(Parse(r.frame).df);
  // DF on every fragment: the datagram keeps DF; the fast-path refragmentation clears it.
  frags[1][14 + 6] |= 0x40;
  SetIpv4HeaderChecksum(absl::MakeSpan(frags[1].data() + 14, 20));
  Feed(d, frags[0], kSec);
  r = Feed(d, frags[1], kSec);
  ASSERT_EQ(r.kind, Kind::kReassembled);
  EXPECT_TRUE(Parse(r.frame).df);
  auto out = Refragment(r.frame, r.layout);
  ASSERT_TRUE(out.ok());
  EXPECT_FALSE(Parse((*out)[0]).df);
}

// ---- refragmentation ----

TEST(DefragTest, RefragmentFallsBackToMaxSizeWhenLengthChanged) {
  auto whole = BigUdp4(100);  // 108 bytes of IP payload
  FragmentLayout layout;
  layout.family = Family::kIpv4;
  layout.id = 0x55;
  layout.payload_sizes = {56, 40};  // adds up to 96, not 108: a helper grew the datagram
  layout.max_fragment_size = 76;    // 20 + 56
  auto out = Refragment(whole, layout);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), 2u);
  ParsedPacket a = Parse((*out)[0]);
  ParsedPacket b = Parse((*out)[1]);
  EXPECT_EQ(a.ip_total_len, 76u);
  EXPECT_TRUE(a.more_fragments);
  EXPECT_EQ(b.ip_total_len, 20u + 52);
  EXPECT_EQ(b.frag_offset, 56);
  EXPECT_EQ(a.ip_id, 0x4242);  // the datagram's id stays
  // And the pieces reassemble to the datagram.
  Defragmenter d;
  Feed(d, (*out)[1], kSec);
  DefragResult r = Feed(d, (*out)[0], kSec);
  ASSERT_EQ(r.kind, Kind::kReassembled);
  EXPECT_EQ(r.frame, whole);
}

TEST(DefragTest, RefragmentBlanksUncopiedOptionsAfterTheFirstPiece) {
  // Option 0x94 (router alert) has the copied bit; 0x07 (record route) does not.
  const std::vector<uint8_t> opts = {0x94, 0x04, 0x00, 0x00, 0x07, 0x07, 0x04, 0, 0, 0, 0, 0};
  auto whole = PacketBuilder().Ipv4Options(opts).Udp(1, 2).Payload(std::string(40, 'o')).Build();
  FragmentLayout layout;
  layout.family = Family::kIpv4;
  layout.id = 1;
  layout.payload_sizes = {24, 24};
  auto out = Refragment(whole, layout);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), 2u);
  const auto& first = (*out)[0];
  const auto& second = (*out)[1];
  EXPECT_EQ(first[14 + 20 + 4], 0x07);                                  // kept in the first piece
  EXPECT_EQ(second[14 + 20], 0x94);                                     // copied option kept
  for (int i = 4; i < 11; ++i) EXPECT_EQ(second[14 + 20 + i], 1) << i;  // NOPs
  EXPECT_TRUE(VerifyIpv4HeaderChecksum(absl::MakeConstSpan(second).subspan(14, 32)));
}

TEST(DefragTest, RefragmentRejectsBadInput) {
  FragmentLayout layout;
  layout.family = Family::kIpv6;
  layout.payload_sizes = {8, 8};
  EXPECT_FALSE(Refragment(BigUdp4(8), layout).ok());  // family mismatch
  std::vector<uint8_t> junk(10, 0);
  EXPECT_FALSE(Refragment(junk, layout).ok());
  layout.family = Family::kIpv6;
  layout.v6_unfragmentable_len = 200;  // beyond the datagram
  EXPECT_FALSE(Refragment(BigUdp6(8), layout).ok());
}

TEST(DefragTest, NonFragmentsAreCountedAsBadInput) {
  auto whole = BigUdp4(10);
  ParsedPacket p = Parse(whole);
  Defragmenter d;
  EXPECT_EQ(d.Add(p, whole, 0, kSec).kind, Kind::kDropped);
  EXPECT_EQ(d.counters().bad_input, 1u);
  int visited = 0;
  uint64_t bad_input = 0;
  d.counters().ForEach([&](const char* name, uint64_t v) {
    ++visited;
    if (std::string(name) == "bad_input") bad_input = v;
  });
  EXPECT_EQ(visited, 17);  // 11 reassembly counters + 6 of replication
  EXPECT_EQ(bad_input, 1u);
}

}  // namespace
}  // namespace ctsync

namespace ctsync {
namespace {

// Random fragments (random ids, offsets, lengths, MF bits, families) never crash, every
// reassembled datagram parses, and once all queues expire no memory stays charged.
TEST(DefragTest, RandomFragmentsKeepAccountingConsistent) {
  std::mt19937 rng(4242);
  Defragmenter d;
  int reassembled = 0;
  for (int i = 0; i < 5000; ++i) {
    const bool v6 = rng() % 2;
    const uint16_t len = 8 * (1 + rng() % 8);
    const uint16_t offset = 8 * (rng() % 8);
    const bool more = rng() % 3 != 0;
    std::vector<uint8_t> f;
    if (v6) {
      std::vector<uint8_t> fh = {0, 0, 0, 0, 0, static_cast<uint8_t>(rng() % 3)};
      StoreBe16(fh.data(), static_cast<uint16_t>(offset | (more ? 1 : 0)));
      f = PacketBuilder()
              .Ipv6("2001:db8::1", "2001:db8::2")
              .Ipv6ExtHeader(44, fh)
              .RawProto(kProtoUdp)
              .Payload(std::string(len, 'r'))
              .Build();
      f[14 + 40] = kProtoUdp;  // the fragment header names the upper layer
    } else {
      f = PacketBuilder()
              .IpId(static_cast<uint16_t>(rng() % 3))
              .RawProto(kProtoUdp)
              .Tos(static_cast<uint8_t>(rng() % 4))
              .Payload(std::string(len, 'r'))
              .Build();
      StoreBe16(f.data() + 20, static_cast<uint16_t>((offset / 8) | (more ? 0x2000 : 0)));
      SetIpv4HeaderChecksum(absl::MakeSpan(f.data() + 14, 20));
    }
    ParsedPacket p;
    if (!ParseEthernet(f, &p).ok() || !p.is_fragment) continue;
    DefragResult r = d.Add(p, f, 0, i * kNanosPerMilli);
    if (r.kind == DefragResult::Kind::kReassembled) {
      ++reassembled;
      ParsedPacket whole;
      ASSERT_TRUE(ParseEthernet(r.frame, &whole, ParseMode::kQuoted).ok());
      EXPECT_FALSE(whole.is_fragment);
    }
  }
  EXPECT_GT(reassembled, 0);
  // Bounded steps: stale records (queues completed or killed) use steps too, so a call may
  // expire nothing while live queues remain; repeated ticks drain everything.
  for (int tick = 0; tick < 10000 && d.queue_count() > 0; ++tick) d.Expire(1000 * kSec, 16);
  EXPECT_EQ(d.queue_count(), 0u);
  EXPECT_EQ(d.memory_used(), 0u);
}

}  // namespace
}  // namespace ctsync

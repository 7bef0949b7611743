#include "core/packet/checksum.h"

#include <random>
#include <string>
#include <vector>

#include "core/conntrack/tuple.h"
#include "core/packet/packet_builder.h"
#include "core/packet/packet_parser.h"
#include "gtest/gtest.h"
#include "tests/core/packet/corpus_frames.h"

namespace ctsync {
namespace {

using testing_frames::AllCorpusFrames;
using testing_frames::FromHex;

// Straightforward RFC 1071 reference: big-endian words, 32-bit accumulator, end-around carry.
uint16_t ReferenceFold(const std::vector<uint8_t>& d) {
  uint32_t sum = 0;
  for (size_t i = 0; i < d.size(); i += 2) {
    uint32_t w = uint32_t{d[i]} << 8;
    if (i + 1 < d.size()) w |= d[i + 1];
    sum += w;
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<uint16_t>(sum);
}

ParsedPacket Parse(const std::vector<uint8_t>& f) {
  ParsedPacket p;
  ParseResult r = ParseEthernet(f, &p);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : std::string(ParseErrorName(r.error())));
  return p;
}

TEST(ChecksumTest, Rfc1071Example) {
  const std::vector<uint8_t> d = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(FoldChecksum(OnesComplementSum(d)), 0xddf2);
  EXPECT_EQ(InternetChecksum(d), static_cast<uint16_t>(~0xddf2));
}

TEST(ChecksumTest, MatchesReferenceForAllLengthsAndAlignments) {
  std::mt19937 rng(7);
  std::vector<uint8_t> buf(600);
  for (auto& b : buf) b = rng();
  for (size_t start = 0; start < 8; ++start) {
    for (size_t len = 0; len < 300; ++len) {
      std::vector<uint8_t> d(buf.begin() + start, buf.begin() + start + len);
      ASSERT_EQ(FoldChecksum(OnesComplementSum(absl::MakeConstSpan(buf).subspan(start, len))),
                ReferenceFold(d))
          << start << "/" << len;
    }
  }
  // All-0xff data exercises the carries.
  std::vector<uint8_t> ones(1501, 0xff);
  EXPECT_EQ(FoldChecksum(OnesComplementSum(ones)), ReferenceFold(ones));
  EXPECT_EQ(FoldChecksum(OnesComplementSum(ones, 0x1ffff)),
            FoldChecksum(uint64_t{ReferenceFold(ones)} + 0x1ffff));
}

TEST(ChecksumTest, Ipv4HeaderChecksum) {
  // The corpus's first fragment: 45 00 00 2c 22 22 20 00 40 11 [4c 4d] c0 00 02 0a c6 33 64 14
  auto h = FromHex("4500002c2222200040114c4dc000020ac6336414");
  EXPECT_TRUE(VerifyIpv4HeaderChecksum(h));
  EXPECT_EQ(ComputeIpv4HeaderChecksum(h), 0x4c4d);
  h[10] = h[11] = 0;
  EXPECT_FALSE(VerifyIpv4HeaderChecksum(h));
  SetIpv4HeaderChecksum(absl::MakeSpan(h));
  EXPECT_EQ(h[10], 0x4c);
  EXPECT_EQ(h[11], 0x4d);
  h[8] = 0x3f;  // TTL changed
  EXPECT_FALSE(VerifyIpv4HeaderChecksum(h));
}

// Every frame the kernel accepted or emitted carries correct checksums; the one segment the
// corpus marks as "bad checksum" is the only failure.
TEST(ChecksumTest, CorpusFramesVerifyExceptTheBadChecksumSegment) {
  auto frames = AllCorpusFrames();
  ASSERT_GT(frames.size(), 100u);
  int failures = 0;
  for (const auto& f : frames) {
    SCOPED_TRACE(f.scenario + "/" + f.file + "#" + std::to_string(f.ordinal));
    ParsedPacket p = Parse(f.bytes);
    const bool ok = VerifyL4Checksum(p, f.bytes);
    const bool known_bad =
        f.scenario == "tcp_invalid_flags_checksum" && f.file == "scenario.json" && f.ordinal == 2;
    EXPECT_EQ(ok, !known_bad);
    if (!ok) ++failures;
    if (p.inner_offset != 0 && !p.is_fragment) {
      // The quoted header of an ICMP error is checksummed too (inner IP header).
      ParsedPacket q;
      auto inner = absl::MakeConstSpan(f.bytes).subspan(p.inner_offset);
      ASSERT_TRUE(ParseIp(inner, &q, ParseMode::kQuoted).ok());
      if (q.family == Family::kIpv4) {
        EXPECT_TRUE(VerifyIpv4HeaderChecksum(inner.subspan(0, q.l3_header_len)));
      }
    }
  }
  EXPECT_EQ(failures, 1);
}

TEST(ChecksumTest, BadChecksumCorpusSegmentIsFixedByRecompute) {
  auto f = FromHex(
      "0200000001010200000001020800450000280065000040068e19c000020ac63364149c4f0050000003e8"
      "000000005002ffff12340000");
  ParsedPacket p = Parse(f);
  EXPECT_FALSE(VerifyL4Checksum(p, f));
  ASSERT_TRUE(RecomputeL4Checksum(p, absl::MakeSpan(f)));
  EXPECT_TRUE(VerifyL4Checksum(p, f));
  // Same segment as the corpus's valid SYN except the source port: 0x9c4f vs 0x9c51.
  EXPECT_EQ(LoadBe16(f.data() + 50), 0x2309);
}

TEST(ChecksumTest, UdpZeroChecksumRules) {
  auto v4 = PacketBuilder().Udp(1, 2).Payload("abc").Build();
  auto v6 = PacketBuilder().Ipv6("2001:db8::1", "2001:db8::2").Udp(1, 2).Payload("abc").Build();
  auto lite = PacketBuilder().Udplite(1, 2).Payload("abc").Build();
  for (auto* f : {&v4, &v6, &lite}) {
    ParsedPacket p = Parse(*f);
    ASSERT_TRUE(VerifyL4Checksum(p, *f));
    (*f)[p.l4_offset + 6] = 0;
    (*f)[p.l4_offset + 7] = 0;
  }
  EXPECT_TRUE(VerifyL4Checksum(Parse(v4), v4));  // IPv4: no checksum
  // IPv6 zero is "none" to conntrack too: udp_error() does not check the family.
  EXPECT_TRUE(VerifyL4Checksum(Parse(v6), v6));
  EXPECT_FALSE(VerifyL4Checksum(Parse(lite), lite));  // UDP-Lite: mandatory
  // Recompute leaves an IPv4 "no checksum" alone.
  ParsedPacket p4 = Parse(v4);
  ASSERT_TRUE(RecomputeL4Checksum(p4, absl::MakeSpan(v4)));
  EXPECT_EQ(LoadBe16(v4.data() + p4.l4_offset + 6), 0);
}

TEST(ChecksumTest, UdpliteCoverage) {
  auto f = PacketBuilder().Udplite(1, 2, 12).Payload("0123456789").Build();
  ParsedPacket p = Parse(f);
  EXPECT_EQ(p.udplite_coverage, 12);
  ASSERT_TRUE(VerifyL4Checksum(p, f));
  auto outside = f;
  outside[p.l4_offset + 15] ^= 0xff;  // beyond the 12 covered bytes
  EXPECT_TRUE(VerifyL4Checksum(p, outside));
  auto inside = f;
  inside[p.l4_offset + 10] ^= 0xff;
  EXPECT_FALSE(VerifyL4Checksum(p, inside));
}

struct CorruptCase {
  std::string name;
  PacketBuilder builder;
};

TEST(ChecksumTest, CorruptedChecksumsFailAndRecomputeRepairs) {
  auto inner = PacketBuilder().Udp(5, 6).BuildIp();
  std::vector<CorruptCase> cases = {
      {"tcp4", PacketBuilder().Tcp(1, 2).Payload("x")},
      {"tcp6", PacketBuilder().Ipv6("2001:db8::1", "2001:db8::2").Tcp(1, 2).Payload("xyz")},
      {"udp4", PacketBuilder().Udp(1, 2).Payload("odd")},
      {"udp6", PacketBuilder().Ipv6("2001:db8::1", "2001:db8::2").Udp(1, 2)},
      {"udplite6", PacketBuilder().Ipv6("2001:db8::1", "2001:db8::2").Udplite(1, 2)},
      {"icmp", PacketBuilder().IcmpEcho(true, 1, 2).Payload("ping")},
      {"icmp_error", PacketBuilder().IcmpError(3, 3, inner)},
      {"icmp6", PacketBuilder().Ipv6("2001:db8::1", "2001:db8::2").IcmpEcho(true, 1, 2)},
      {"sctp", PacketBuilder().Sctp(1, 2, 0x11223344).Payload("chunk...")},
  };
  for (CorruptCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto good = c.builder.Build();
    auto bad = c.builder.CorruptL4Checksum().Build();
    ParsedPacket p = Parse(good);
    EXPECT_TRUE(VerifyL4Checksum(p, good));
    EXPECT_FALSE(VerifyL4Checksum(p, bad));
    ASSERT_TRUE(RecomputeL4Checksum(p, absl::MakeSpan(bad)));
    EXPECT_EQ(bad, good);
  }
}

TEST(ChecksumTest, GenericProtocolsAndFragmentsPass) {
  auto gre = PacketBuilder().RawProto(kProtoGre).Payload("anything").Build();
  ParsedPacket p = Parse(gre);
  EXPECT_TRUE(VerifyL4Checksum(p, gre));
  EXPECT_FALSE(RecomputeL4Checksum(p, absl::MakeSpan(gre)));
  // Offsets that do not fit the frame fail instead of reading out of bounds.
  auto udp = PacketBuilder().Udp(1, 2).Payload("abc").Build();
  ParsedPacket u = Parse(udp);
  udp.resize(udp.size() - 1);
  EXPECT_FALSE(VerifyL4Checksum(u, udp));
  EXPECT_FALSE(RecomputeL4Checksum(u, absl::MakeSpan(udp)));
}

TEST(ChecksumTest, SctpCrc32cKnownVector) {
  // RFC 3720 B.4: 32 bytes of zeros give CRC32c 0x8a9136aa.
  std::vector<uint8_t> zeros(32, 0);
  EXPECT_EQ(SctpChecksum(zeros), 0x8a9136aau);
}

// NAT-style edits: the incremental update must equal a full recompute.
TEST(ChecksumTest, IncrementalUpdatesMatchRecompute) {
  struct Case {
    std::string name;
    PacketBuilder builder;
  };
  std::vector<Case> cases = {
      {"udp4", PacketBuilder().Ipv4("192.0.2.10", "198.51.100.20").Udp(6300, 7300).Payload("a")},
      {"tcp4", PacketBuilder().Ipv4("192.0.2.10", "198.51.100.20").Tcp(40000, 80).Seq(5)},
      {"tcp6", PacketBuilder().Ipv6("2001:db8:1::10", "2001:db8:2::20").Tcp(40000, 80)},
      {"udp6", PacketBuilder().Ipv6("2001:db8:1::10", "2001:db8:2::20").Udp(1, 2).Payload("b")},
  };
  std::mt19937 rng(99);
  for (Case& c : cases) {
    for (int round = 0; round < 50; ++round) {
      SCOPED_TRACE(c.name + " round " + std::to_string(round));
      auto f = c.builder.Build();
      ParsedPacket p = Parse(f);
      const int csum_at = p.l4_offset + (p.proto == kProtoTcp ? 16 : 6);
      uint16_t csum = LoadBe16(f.data() + csum_at);
      // New source address and port.
      IpAddress new_src = p.src;
      const size_t n = p.family == Family::kIpv6 ? 16 : 4;
      for (size_t i = 0; i < n; ++i) new_src.bytes[i] = rng();
      const uint16_t new_port = rng();
      csum = ChecksumAdjustAddress(csum, p.family, p.src, new_src);
      csum = ChecksumAdjust16(csum, p.sport, new_port);
      const int src_at = p.l3_offset + (p.family == Family::kIpv6 ? 8 : 12);
      std::copy(new_src.bytes.begin(), new_src.bytes.begin() + n, f.begin() + src_at);
      StoreBe16(f.data() + p.l4_offset, new_port);
      if (p.proto == kProtoTcp) {
        const uint32_t new_seq = rng();
        csum = ChecksumAdjust32(csum, p.seq, new_seq);
        StoreBe32(f.data() + p.l4_offset + 4, new_seq);
      }
      if (p.proto == kProtoUdp && csum == 0) csum = 0xffff;
      StoreBe16(f.data() + csum_at, csum);
      if (p.family == Family::kIpv4) SetIpv4HeaderChecksum(absl::MakeSpan(f.data() + 14, 20));
      ParsedPacket q = Parse(f);
      EXPECT_TRUE(VerifyL4Checksum(q, f));
    }
  }
}

}  // namespace
}  // namespace ctsync

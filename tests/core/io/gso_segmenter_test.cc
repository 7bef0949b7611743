#include "core/io/gso_segmenter.h"

#include <string>
#include <vector>

#include "core/conntrack/tuple.h"
#include "core/net/tcp_flags.h"
#include "core/packet/checksum.h"
#include "core/packet/packet_builder.h"
#include "core/packet/packet_parser.h"
#include "gtest/gtest.h"

namespace ctsync {
namespace {

struct Segment {
  std::vector<uint8_t> bytes;
  ParsedPacket p;
};

std::vector<Segment> Split(const std::vector<uint8_t>& frame, GsoKind kind, uint16_t size) {
  std::vector<Segment> out;
  std::vector<uint8_t> scratch;
  const size_t n = SegmentGsoFrame(frame, kind, size, &scratch, [&](absl::Span<const uint8_t> s) {
    Segment seg;
    seg.bytes.assign(s.begin(), s.end());
    out.push_back(std::move(seg));
  });
  EXPECT_EQ(n, out.size());
  for (auto& s : out) EXPECT_TRUE(ParseEthernet(s.bytes, &s.p).ok());  // full mode: IP csum
  return out;
}

std::string Pattern(size_t n) {
  std::string s(n, 0);
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

TEST(GsoSegmenterTest, TcpV4SegmentsLikeSkbSegment) {
  const std::string data = Pattern(4000);
  const auto frame = PacketBuilder()
                         .Ipv4("192.0.2.10", "198.51.100.20")
                         .IpId(100)
                         .Df()
                         .Tcp(40000, 80)
                         .TcpFlags(kTcpAck | kTcpPsh | kTcpFin | kTcpCwr)
                         .Seq(1000)
                         .Ack(5)
                         .Timestamps(1, 2)
                         .Payload(data)
                         .Build();
  auto segs = Split(frame, GsoKind::kTcp, 1448);
  ASSERT_EQ(segs.size(), 3u);
  std::string joined;
  const uint32_t sizes[] = {1448, 1448, 1104};
  for (size_t i = 0; i < segs.size(); ++i) {
    const ParsedPacket& p = segs[i].p;
    SCOPED_TRACE(i);
    EXPECT_EQ(p.payload_len, sizes[i]);
    EXPECT_EQ(p.seq, 1000 + 1448 * i);
    EXPECT_EQ(p.ack, 5u);
    EXPECT_EQ(p.ip_id, 100 + i);
    EXPECT_TRUE(p.df);
    EXPECT_EQ(p.ip_total_len, 20 + 32 + sizes[i]);
    EXPECT_TRUE(p.tcp_options.has_timestamps);
    EXPECT_TRUE(VerifyL4Checksum(p, segs[i].bytes));
    EXPECT_EQ(bool(p.tcp_flags & kTcpCwr), i == 0);
    EXPECT_EQ(bool(p.tcp_flags & kTcpFin), i == 2);
    EXPECT_EQ(bool(p.tcp_flags & kTcpPsh), i == 2);
    EXPECT_TRUE(p.tcp_flags & kTcpAck);
    joined.append(segs[i].bytes.begin() + p.payload_offset,
                  segs[i].bytes.begin() + p.payload_offset + p.payload_len);
  }
  EXPECT_EQ(joined, data);
}

TEST(GsoSegmenterTest, TcpV6) {
  const auto frame = PacketBuilder()
                         .Ipv6("2001:db8:1::10", "2001:db8:2::20")
                         .Tcp(40000, 80)
                         .TcpFlags(kTcpAck)
                         .Seq(7)
                         .Payload(Pattern(3000))
                         .Build();
  auto segs = Split(frame, GsoKind::kTcp, 1428);
  ASSERT_EQ(segs.size(), 3u);
  EXPECT_EQ(segs[2].p.payload_len, 3000u - 2 * 1428);
  EXPECT_EQ(segs[1].p.seq, 7u + 1428);
  for (const auto& s : segs) {
    EXPECT_EQ(s.p.ip_total_len, 40 + 20 + s.p.payload_len);
    EXPECT_TRUE(VerifyL4Checksum(s.p, s.bytes));
  }
}

TEST(GsoSegmenterTest, UdpBecomesDatagramsOfGsoSize) {
  const auto frame = PacketBuilder()
                         .Ipv4("192.0.2.10", "198.51.100.20")
                         .Udp(5000, 443)
                         .Payload(Pattern(2500))
                         .Build();
  auto segs = Split(frame, GsoKind::kUdp, 1200);
  ASSERT_EQ(segs.size(), 3u);
  EXPECT_EQ(segs[0].p.payload_len, 1200u);
  EXPECT_EQ(segs[2].p.payload_len, 100u);
  for (const auto& s : segs) {
    EXPECT_EQ(s.p.l4_len, 8 + s.p.payload_len);
    EXPECT_TRUE(VerifyL4Checksum(s.p, s.bytes));
    EXPECT_EQ(s.p.dport, 443);
  }
}

TEST(GsoSegmenterTest, RefusesWhatItCannotSegment) {
  std::vector<uint8_t> scratch;
  int calls = 0;
  auto count = [&](absl::Span<const uint8_t>) { ++calls; };
  const auto udp = PacketBuilder().Udp(1, 2).Payload(Pattern(100)).Build();
  EXPECT_EQ(SegmentGsoFrame(udp, GsoKind::kTcp, 50, &scratch, count), 0u);
  EXPECT_EQ(SegmentGsoFrame(udp, GsoKind::kUdp, 0, &scratch, count), 0u);
  EXPECT_EQ(SegmentGsoFrame(std::vector<uint8_t>(30, 0), GsoKind::kUdp, 50, &scratch, count), 0u);
  const auto empty_tcp = PacketBuilder().Tcp(1, 2).TcpFlags(kTcpAck).Build();
  EXPECT_EQ(SegmentGsoFrame(empty_tcp, GsoKind::kTcp, 50, &scratch, count), 0u);
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace ctsync

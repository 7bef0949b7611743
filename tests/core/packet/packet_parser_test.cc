#include "core/packet/packet_parser.h"

#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/conntrack/tuple.h"
#include "core/packet/checksum.h"
#include "core/packet/packet_builder.h"
#include "gtest/gtest.h"
#include "tests/core/packet/corpus_frames.h"

namespace ctsync {
namespace {

using testing_frames::AllCorpusFrames;

ParsedPacket MustParse(const std::vector<uint8_t>& frame) {
  ParsedPacket p;
  ParseResult r = ParseEthernet(frame, &p);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : std::string(ParseErrorName(r.error())));
  return p;
}

ParseError ErrorOf(const std::vector<uint8_t>& frame, ParseMode mode = ParseMode::kFull) {
  ParsedPacket p;
  ParseResult r = ParseEthernet(frame, &p, mode);
  EXPECT_FALSE(r.ok());
  return r.ok() ? ParseError::kTruncatedL2 : r.error();
}

// Offsets must always stay inside the buffer, whatever the input.
void ExpectInBounds(const ParsedPacket& p, size_t size) {
  EXPECT_LE(p.l4_offset, size);
  EXPECT_LE(uint64_t{p.l4_offset} + p.l4_len, size);
  EXPECT_LE(uint64_t{p.payload_offset} + p.payload_len, size);
  EXPECT_LE(p.inner_offset, size);
}

TEST(ParseErrorNameTest, NamesAreDistinctAndNonEmpty) {
  std::set<std::string> names;
  for (int i = 0; i < kNumParseErrors; ++i) {
    std::string_view n = ParseErrorName(static_cast<ParseError>(i));
    EXPECT_FALSE(n.empty());
    EXPECT_NE(n, "unknown");
    names.insert(std::string(n));
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(kNumParseErrors));
  EXPECT_EQ(ParseErrorName(ParseError::kTruncatedL4), "truncated_l4");
}

TEST(ParseCountersTest, CountsPerError) {
  ParseCounters c;
  c.Count(ParseError::kBadTcpOffset);
  c.Count(ParseError::kBadTcpOffset);
  c.Count(ParseError::kTruncatedL2);
  EXPECT_EQ(c.Get(ParseError::kBadTcpOffset), 2u);
  EXPECT_EQ(c.Get(ParseError::kTruncatedL2), 1u);
  EXPECT_EQ(c.Get(ParseError::kBadIpVersion), 0u);
  EXPECT_EQ(c.Total(), 3u);
}

TEST(PacketParserTest, Ipv4TcpSynWithOptions) {
  auto frame = PacketBuilder()
                   .Ipv4("192.0.2.10", "198.51.100.20")
                   .Ttl(61)
                   .Tos(0x10)
                   .IpId(0x1234)
                   .Df()
                   .Tcp(40000, 80)
                   .TcpFlags(kTcpSyn | kTcpEce | kTcpCwr)
                   .Seq(1000)
                   .Ack(7)
                   .Window(29200)
                   .Mss(1460)
                   .SackPermitted()
                   .Timestamps(111, 222)
                   .WindowScale(7)
                   .SackBlock(10, 20)
                   .SackBlock(30, 40)
                   .Payload("hello")
                   .Build();
  ParsedPacket p = MustParse(frame);
  EXPECT_EQ(p.ethertype, kEtherTypeIpv4);
  EXPECT_EQ(p.l3_offset, 14);
  EXPECT_EQ(p.family, Family::kIpv4);
  EXPECT_EQ(p.src.ToString(Family::kIpv4), "192.0.2.10");
  EXPECT_EQ(p.dst.ToString(Family::kIpv4), "198.51.100.20");
  EXPECT_EQ(p.proto, kProtoTcp);
  EXPECT_EQ(p.ttl, 61);
  EXPECT_EQ(p.tos, 0x10);
  EXPECT_EQ(p.ip_id, 0x1234);
  EXPECT_TRUE(p.df);
  EXPECT_FALSE(p.is_fragment);
  EXPECT_EQ(p.l3_header_len, 20);
  EXPECT_EQ(p.l4_offset, 34u);
  EXPECT_TRUE(p.l4_parsed);
  EXPECT_EQ(p.sport, 40000);
  EXPECT_EQ(p.dport, 80);
  EXPECT_EQ(p.seq, 1000u);
  EXPECT_EQ(p.ack, 7u);
  EXPECT_EQ(p.window, 29200);
  EXPECT_EQ(p.tcp_flags, kTcpSyn | kTcpEce | kTcpCwr);
  ASSERT_TRUE(p.tcp_options.mss.has_value());
  EXPECT_EQ(*p.tcp_options.mss, 1460);
  ASSERT_TRUE(p.tcp_options.wscale.has_value());
  EXPECT_EQ(*p.tcp_options.wscale, 7);
  EXPECT_TRUE(p.tcp_options.sack_perm);
  EXPECT_TRUE(p.tcp_options.has_timestamps);
  EXPECT_EQ(p.tcp_options.ts_val, 111u);
  EXPECT_EQ(p.tcp_options.ts_ecr, 222u);
  ASSERT_EQ(p.tcp_options.sack_count, 2);
  EXPECT_EQ(p.tcp_options.sack[1].left, 30u);
  EXPECT_EQ(p.tcp_options.sack[1].right, 40u);
  EXPECT_EQ(p.payload_len, 5u);
  EXPECT_EQ(std::string(frame.begin() + p.payload_offset, frame.end()), "hello");
  EXPECT_EQ(p.ip_total_len, frame.size() - 14);
}

struct GoodCase {
  std::string name;
  std::vector<uint8_t> frame;
  Family family;
  uint8_t proto;
  uint16_t sport, dport;
  uint32_t payload_len;
  bool l4_parsed;
};

std::vector<GoodCase> GoodCases() {
  std::vector<uint8_t> inner =
      PacketBuilder().Ipv4("192.0.2.10", "198.51.100.20").Udp(5000, 53).Payload("q").BuildIp();
  std::vector<uint8_t> inner6 =
      PacketBuilder().Ipv6("2001:db8:1::10", "2001:db8:2::20").Tcp(5000, 80).BuildIp();
  const uint8_t ext_body[6] = {};
  return {
      {"udp4", PacketBuilder().Udp(1, 2).Payload("abc").Build(), Family::kIpv4, kProtoUdp, 1, 2, 3,
       true},
      {"udplite4_cov8", PacketBuilder().Udplite(3, 4, 8).Payload("abcdef").Build(), Family::kIpv4,
       kProtoUdplite, 3, 4, 6, true},
      {"tcp6", PacketBuilder().Ipv6("2001:db8:1::10", "2001:db8:2::20").Tcp(5, 6).Build(),
       Family::kIpv6, kProtoTcp, 5, 6, 0, true},
      {"udp6_ext",
       PacketBuilder()
           .Ipv6("2001:db8:1::10", "2001:db8:2::20")
           .Ipv6ExtHeader(0, ext_body)
           .Ipv6ExtHeader(60, ext_body)
           .Udp(7, 8)
           .Payload("xy")
           .Build(),
       Family::kIpv6, kProtoUdp, 7, 8, 2, true},
      {"icmp_echo", PacketBuilder().IcmpEcho(true, 77, 3).Build(), Family::kIpv4, kProtoIcmp, 0, 0,
       0, true},
      {"icmp_error", PacketBuilder().IcmpError(3, 3, inner).Build(), Family::kIpv4, kProtoIcmp, 0,
       0, static_cast<uint32_t>(inner.size()), true},
      {"icmp6_error",
       PacketBuilder().Ipv6("2001:db8:2::1", "2001:db8:1::10").IcmpError(1, 4, inner6).Build(),
       Family::kIpv6, kProtoIcmpv6, 0, 0, static_cast<uint32_t>(inner6.size()), true},
      {"vlan2", PacketBuilder().Vlan(10).Vlan(20).Tcp(9, 10).Build(), Family::kIpv4, kProtoTcp, 9,
       10, 0, true},
      {"sctp", PacketBuilder().Sctp(11, 12).Payload("chunk").Build(), Family::kIpv4, kProtoSctp, 11,
       12, 5, true},
      {"gre_generic", PacketBuilder().RawProto(kProtoGre).Payload("grepayload").Build(),
       Family::kIpv4, kProtoGre, 0, 0, 10, false},
      {"ipv4_options",
       PacketBuilder().Ipv4Options(std::vector<uint8_t>{0x94, 4, 0, 0}).Udp(13, 14).Build(),
       Family::kIpv4, kProtoUdp, 13, 14, 0, true},
  };
}

TEST(PacketParserTest, GoodFramesTable) {
  for (const GoodCase& c : GoodCases()) {
    SCOPED_TRACE(c.name);
    ParsedPacket p = MustParse(c.frame);
    EXPECT_EQ(p.family, c.family);
    EXPECT_EQ(p.proto, c.proto);
    EXPECT_EQ(p.sport, c.sport);
    EXPECT_EQ(p.dport, c.dport);
    EXPECT_EQ(p.payload_len, c.payload_len);
    EXPECT_EQ(p.l4_parsed, c.l4_parsed);
    EXPECT_EQ(p.payload_offset + p.payload_len, c.frame.size());
    EXPECT_TRUE(VerifyL4Checksum(p, c.frame));
  }
}

TEST(PacketParserTest, VlanIdsAndOffsets) {
  auto frame = PacketBuilder().Vlan(0x123).Vlan(0xabc).Udp(1, 2).Build();
  ParsedPacket p = MustParse(frame);
  EXPECT_EQ(p.vlan_count, 2);
  EXPECT_EQ(p.vlan_ids[0], 0x123);
  EXPECT_EQ(p.vlan_ids[1], 0xabc);
  EXPECT_EQ(p.l3_offset, 22);
  EXPECT_EQ(p.src_mac[5], 0x02);
  EXPECT_EQ(p.dst_mac[5], 0x01);
}

TEST(PacketParserTest, IcmpFieldsAndInnerPacket) {
  auto echo = PacketBuilder().Ipv6("2001:db8::1", "2001:db8::2").IcmpEcho(false, 9, 10).Build();
  ParsedPacket e = MustParse(echo);
  EXPECT_EQ(e.icmp_type, 129);
  EXPECT_EQ(e.icmp_id, 9);
  EXPECT_EQ(e.icmp_seq, 10);
  EXPECT_FALSE(e.icmp_is_error);
  EXPECT_EQ(e.inner_offset, 0u);

  auto inner =
      PacketBuilder().Ipv4("203.0.113.5", "198.51.100.20").Udp(6300, 7300).Payload("x").BuildIp();
  auto err = PacketBuilder().Ipv4("198.51.100.20", "203.0.113.5").IcmpError(3, 3, inner).Build();
  ParsedPacket p = MustParse(err);
  EXPECT_TRUE(p.icmp_is_error);
  EXPECT_EQ(p.icmp_type, 3);
  EXPECT_EQ(p.icmp_code, 3);
  ASSERT_EQ(p.inner_offset, 14u + 20 + 8);
  ParsedPacket q;
  ASSERT_TRUE(
      ParseIp(absl::MakeConstSpan(err).subspan(p.inner_offset), &q, ParseMode::kQuoted).ok());
  EXPECT_EQ(q.l3_offset, 0);
  EXPECT_EQ(q.sport, 6300);
  EXPECT_EQ(q.dport, 7300);
  EXPECT_EQ(q.src.ToString(Family::kIpv4), "203.0.113.5");
}

TEST(PacketParserTest, Icmpv6EveryTypeBelow128IsAnError) {
  auto inner = PacketBuilder().Ipv6("2001:db8::1", "2001:db8::2").Udp(1, 2).BuildIp();
  for (int type : {1, 2, 3, 4, 100}) {
    auto f = PacketBuilder().Ipv6("2001:db8::2", "2001:db8::1").IcmpError(type, 0, inner).Build();
    EXPECT_TRUE(MustParse(f).icmp_is_error) << type;
  }
  for (int type : {0, 8, 13, 14}) {
    auto f = PacketBuilder().Icmp(type, 0).Build();
    EXPECT_FALSE(MustParse(f).icmp_is_error) << type;
  }
  for (int type : {3, 4, 5, 11, 12}) {
    auto f = PacketBuilder().IcmpError(type, 0, inner).Build();
    EXPECT_TRUE(MustParse(f).icmp_is_error) << type;
  }
}

TEST(PacketParserTest, QuotedModeAcceptsShortInnerHeaders) {
  auto inner_tcp = PacketBuilder().Tcp(1111, 2222).Seq(0xdeadbeef).Payload("data").BuildIp();
  // Cut after 8 bytes of TCP header, as a minimal RFC 792 quote; the stated total length
  // now exceeds the bytes present.
  std::vector<uint8_t> cut(inner_tcp.begin(), inner_tcp.begin() + 28);
  ParsedPacket q;
  ASSERT_TRUE(ParseIp(cut, &q, ParseMode::kQuoted).ok());
  EXPECT_EQ(q.sport, 1111);
  EXPECT_EQ(q.dport, 2222);
  EXPECT_EQ(q.seq, 0xdeadbeefu);
  // Ports alone are enough for the tuple.
  cut.resize(24);
  ASSERT_TRUE(ParseIp(cut, &q, ParseMode::kQuoted).ok());
  EXPECT_EQ(q.dport, 2222);
  cut.resize(23);
  ParseResult r = ParseIp(cut, &q, ParseMode::kQuoted);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), ParseError::kTruncatedL4);
  // The same cut datagram is malformed on the wire.
  cut.resize(28);
  r = ParseIp(cut, &q, ParseMode::kFull);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), ParseError::kBadTotalLen);
  // ICMP inside needs its 8-byte header.
  auto inner_icmp = PacketBuilder().IcmpEcho(true, 1, 1).BuildIp();
  std::vector<uint8_t> icut(inner_icmp.begin(), inner_icmp.begin() + 27);
  r = ParseIp(icut, &q, ParseMode::kQuoted);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), ParseError::kTruncatedL4);
  // A quoted IPv4 header with a wrong checksum is still usable.
  auto bad = PacketBuilder().CorruptIpChecksum().Udp(1, 2).BuildIp();
  EXPECT_TRUE(ParseIp(bad, &q, ParseMode::kQuoted).ok());
  EXPECT_FALSE(ParseIp(bad, &q, ParseMode::kFull).ok());
}

TEST(PacketParserTest, EthernetPaddingIsNotPayload) {
  auto frame = PacketBuilder().Udp(1, 2).Build();  // 42 bytes
  frame.resize(60, 0);                             // minimum Ethernet frame
  ParsedPacket p = MustParse(frame);
  EXPECT_EQ(p.payload_len, 0u);
  EXPECT_EQ(p.l4_len, 8u);
  EXPECT_TRUE(VerifyL4Checksum(p, frame));
}

// Every prefix of a valid frame must be rejected with an error, never crash.
TEST(PacketParserTest, EveryTruncationPointIsAnError) {
  const std::vector<std::vector<uint8_t>> frames = {
      PacketBuilder()
          .Ipv6("2001:db8:1::10", "2001:db8:2::20")
          .Ipv6ExtHeader(0, std::vector<uint8_t>(6))
          .Tcp(1, 2)
          .Mss(1400)
          .Timestamps(1, 2)
          .Payload("payload")
          .Build(),
      PacketBuilder().Vlan(5).Tcp(1, 2).Mss(1400).WindowScale(2).Build(),
      PacketBuilder().Udp(1, 2).Payload("p").Build(),
      PacketBuilder().IcmpError(3, 1, PacketBuilder().Udp(3, 4).BuildIp()).Build(),
  };
  for (const auto& full : frames) {
    ASSERT_TRUE(MustParse(full).l4_parsed);
    for (size_t n = 0; n < full.size(); ++n) {
      std::vector<uint8_t> cut(full.begin(), full.begin() + n);
      ParsedPacket p;
      ParseResult r = ParseEthernet(cut, &p);
      EXPECT_FALSE(r.ok()) << "prefix " << n;
      ParseResult r2 = ParseEthernet(absl::MakeConstSpan(full.data(), n), &p);
      EXPECT_FALSE(r2.ok()) << "prefix " << n;
    }
  }
}

// Cutting the L4 header while keeping the IP length fields consistent reaches the L4
// checks: every cut inside the header is a counted L4 error.
TEST(PacketParserTest, ConsistentlyTruncatedL4HeadersAreErrors) {
  struct Case {
    std::string name;
    PacketBuilder builder;
    uint32_t header_len;
    std::set<ParseError> allowed;
  };
  std::vector<Case> cases = {
      {"tcp4",
       PacketBuilder().Tcp(1, 2).Mss(1400).WindowScale(3),
       28,
       {ParseError::kTruncatedL4, ParseError::kBadTcpOffset}},
      {"tcp6",
       PacketBuilder().Ipv6("2001:db8::1", "2001:db8::2").Tcp(1, 2).Mss(1400),
       24,
       {ParseError::kTruncatedL4, ParseError::kBadTcpOffset}},
      {"udp4", PacketBuilder().Udp(1, 2), 8, {ParseError::kTruncatedL4, ParseError::kBadUdpLength}},
      {"icmp6",
       PacketBuilder().Ipv6("2001:db8::1", "2001:db8::2").IcmpEcho(true, 1, 1),
       8,
       {ParseError::kTruncatedL4}},
      {"sctp", PacketBuilder().Sctp(1, 2), 12, {ParseError::kTruncatedL4}},
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> ip = c.builder.BuildIp();
    const bool v6 = (ip[0] >> 4) == 6;
    const uint32_t l3 = v6 ? 40 : 20;
    for (uint32_t keep = 0; keep < c.header_len; ++keep) {
      SCOPED_TRACE(c.name + " keep " + std::to_string(keep));
      std::vector<uint8_t> d(ip.begin(), ip.begin() + l3 + keep);
      if (v6) {
        StoreBe16(d.data() + 4, static_cast<uint16_t>(keep));
      } else {
        StoreBe16(d.data() + 2, static_cast<uint16_t>(d.size()));
        SetIpv4HeaderChecksum(absl::MakeSpan(d.data(), 20));
      }
      ParsedPacket p;
      ParseResult r = ParseIp(d, &p);
      ASSERT_FALSE(r.ok());
      EXPECT_TRUE(c.allowed.count(r.error())) << ParseErrorName(r.error());
    }
  }
}

struct HostileCase {
  std::string name;
  std::vector<uint8_t> frame;
  ParseError expected;
};

std::vector<uint8_t> Patched(std::vector<uint8_t> f, size_t at, std::vector<uint8_t> bytes,
                             bool fix_ipv4_checksum = true) {
  for (size_t i = 0; i < bytes.size(); ++i) f[at + i] = bytes[i];
  if (fix_ipv4_checksum && (f[14] >> 4) == 4) {
    SetIpv4HeaderChecksum(absl::MakeSpan(f.data() + 14, (f[14] & 0xf) * 4u));
  }
  return f;
}

std::vector<HostileCase> HostileCases() {
  const auto tcp4 = PacketBuilder().Tcp(1, 2).Payload("0123456789").Build();
  const auto udp4 = PacketBuilder().Udp(1, 2).Payload("0123456789").Build();
  const auto udpl = PacketBuilder().Udplite(1, 2).Payload("0123456789").Build();
  const auto tcp6 = PacketBuilder().Ipv6("2001:db8::1", "2001:db8::2").Tcp(1, 2).Build();
  const auto ext6 = PacketBuilder()
                        .Ipv6("2001:db8::1", "2001:db8::2")
                        .Ipv6ExtHeader(0, std::vector<uint8_t>(6))
                        .Udp(1, 2)
                        .Build();
  auto three_vlans = PacketBuilder().Vlan(1).Vlan(2).Vlan(3).Udp(1, 2).Build();
  auto arp = udp4;
  arp[12] = 0x08;
  arp[13] = 0x06;
  auto frag6_twice = PacketBuilder()
                         .Ipv6("2001:db8::1", "2001:db8::2")
                         .Ipv6ExtHeader(44, std::vector<uint8_t>(6))
                         .Ipv6ExtHeader(44, std::vector<uint8_t>(6))
                         .Udp(1, 2)
                         .Build();
  return {
      {"short_l2", std::vector<uint8_t>(tcp4.begin(), tcp4.begin() + 13), ParseError::kTruncatedL2},
      {"three_vlans", three_vlans, ParseError::kTooManyVlanTags},
      {"arp", arp, ParseError::kUnsupportedEthertype},
      {"v6_in_v4_ethertype", Patched(tcp4, 14, {0x65}, false), ParseError::kBadIpVersion},
      {"ihl_4", Patched(tcp4, 14, {0x44}, false), ParseError::kBadIpHeaderLen},
      {"ihl_15", Patched(tcp4, 14, {0x4f}, false), ParseError::kBadIpHeaderLen},
      {"total_lt_ihl", Patched(tcp4, 16, {0, 19}), ParseError::kBadTotalLen},
      {"total_gt_frame", Patched(tcp4, 16, {0, 200}), ParseError::kBadTotalLen},
      {"bad_ip_checksum", Patched(tcp4, 24, {0x12, 0x34}, false), ParseError::kBadIpChecksum},
      {"frag_past_65535", Patched(udp4, 20, {0x3f, 0xff}), ParseError::kBadFragment},
      {"tcp_doff_4", Patched(tcp4, 46, {0x40}), ParseError::kBadTcpOffset},
      {"tcp_doff_15", Patched(tcp4, 46, {0xf0}), ParseError::kBadTcpOffset},
      {"udp_len_7", Patched(udp4, 38, {0, 7}), ParseError::kBadUdpLength},
      {"udp_len_too_long", Patched(udp4, 38, {0, 19}), ParseError::kBadUdpLength},
      {"udplite_cov_7", Patched(udpl, 38, {0, 7}), ParseError::kBadUdpliteCoverage},
      {"udplite_cov_too_long", Patched(udpl, 38, {0, 19}), ParseError::kBadUdpliteCoverage},
      {"v6_payload_too_long", Patched(tcp6, 18, {0, 21}), ParseError::kBadTotalLen},
      {"v6_ext_len_past_end", Patched(ext6, 55, {5}), ParseError::kBadExtHeader},
      {"v6_two_frag_headers", frag6_twice, ParseError::kBadExtHeader},
  };
}

TEST(PacketParserTest, HostileFramesTable) {
  ParseCounters counters;
  for (const HostileCase& c : HostileCases()) {
    SCOPED_TRACE(c.name);
    ParseError e = ErrorOf(c.frame);
    EXPECT_EQ(ParseErrorName(e), ParseErrorName(c.expected));
    counters.Count(e);
  }
  EXPECT_EQ(counters.Total(), HostileCases().size());
}

TEST(PacketParserTest, UdpLengthShorterThanIpPayloadIsAccepted) {
  auto f = PacketBuilder().Udp(1, 2).Payload("0123456789").Build();
  f = Patched(f, 38, {0, 12});
  ParsedPacket p = MustParse(f);
  EXPECT_EQ(p.payload_len, 4u);
  EXPECT_EQ(p.l4_len, 18u);
}

TEST(PacketParserTest, MalformedTcpOptionsStopTheWalkSilently) {
  // MSS, then an option with length 0: the kernel stops there and keeps the MSS.
  auto f = PacketBuilder().Tcp(1, 2).Mss(1000).WindowScale(5).Build();
  // Options start at 14+20+20 = 54: [2,4,hi,lo][1,3,3,5]. Break the wscale option's size.
  f[54 + 5] = 0;
  ParsedPacket p = MustParse(f);
  ASSERT_TRUE(p.tcp_options.mss.has_value());
  EXPECT_EQ(*p.tcp_options.mss, 1000);
  EXPECT_FALSE(p.tcp_options.wscale.has_value());
  // A size running past the header also stops it.
  f[54 + 1] = 40;
  p = MustParse(f);
  EXPECT_FALSE(p.tcp_options.mss.has_value());
}

TEST(PacketParserTest, Ipv4Fragments) {
  auto full = PacketBuilder().Udp(1, 2).Payload(std::string(40, 'a')).Build();
  // First fragment: MF set, L4 header present and parsed.
  auto first = Patched(full, 20, {0x20, 0x00});
  ParsedPacket p = MustParse(first);
  EXPECT_TRUE(p.is_fragment);
  EXPECT_TRUE(p.more_fragments);
  EXPECT_EQ(p.frag_offset, 0);
  EXPECT_TRUE(p.l4_parsed);
  EXPECT_EQ(p.sport, 1);
  // Non-first fragment: L3 only.
  auto later = Patched(full, 20, {0x00, 0x03});
  p = MustParse(later);
  EXPECT_TRUE(p.is_fragment);
  EXPECT_FALSE(p.more_fragments);
  EXPECT_EQ(p.frag_offset, 24);
  EXPECT_EQ(p.frag_id, 1u);
  EXPECT_FALSE(p.l4_parsed);
  EXPECT_EQ(p.sport, 0);
  EXPECT_EQ(p.payload_offset, 34u);
  // A first fragment too short for its L4 header is still a valid fragment.
  auto tiny = PacketBuilder().RawProto(kProtoTcp).Payload("abcd").Build();
  tiny = Patched(tiny, 20, {0x20, 0x00});
  p = MustParse(tiny);
  EXPECT_TRUE(p.is_fragment);
  EXPECT_FALSE(p.l4_parsed);
}

TEST(PacketParserTest, Ipv6FragmentHeader) {
  std::vector<uint8_t> fh_body = {0x00, 0x19, 0x12, 0x34, 0x56, 0x78};  // offset 24, M=1
  auto f = PacketBuilder()
               .Ipv6("2001:db8::1", "2001:db8::2")
               .Ipv6ExtHeader(0, std::vector<uint8_t>(6))
               .Ipv6ExtHeader(44, fh_body)
               .RawProto(kProtoUdp)
               .Payload(std::string(16, 'z'))
               .Build();
  ParsedPacket p = MustParse(f);
  EXPECT_TRUE(p.is_fragment);
  EXPECT_TRUE(p.more_fragments);
  EXPECT_EQ(p.frag_offset, 24);
  EXPECT_EQ(p.frag_id, 0x12345678u);
  EXPECT_EQ(p.frag_header_offset, 14u + 40 + 8);
  EXPECT_EQ(p.frag_nexthdr_field_offset, 14u + 40);
  EXPECT_EQ(p.proto, kProtoUdp);
  EXPECT_FALSE(p.l4_parsed);
  EXPECT_EQ(p.l3_header_len, 56);
  // Atomic fragment (offset 0, no M): not a fragment, L4 parsed through it.
  std::vector<uint8_t> atomic_body = {0, 0, 0, 0, 0, 9};
  auto a = PacketBuilder()
               .Ipv6("2001:db8::1", "2001:db8::2")
               .Ipv6ExtHeader(44, atomic_body)
               .Udp(5, 6)
               .Build();
  p = MustParse(a);
  EXPECT_FALSE(p.is_fragment);
  EXPECT_NE(p.frag_header_offset, 0u);
  EXPECT_TRUE(p.l4_parsed);
  EXPECT_EQ(p.dport, 6);
}

TEST(PacketParserTest, EveryCorpusFrameParses) {
  auto frames = AllCorpusFrames();
  ASSERT_GT(frames.size(), 100u) << "corpus not found at " << testing_frames::ScenarioDir();
  for (const auto& f : frames) {
    SCOPED_TRACE(f.scenario + "/" + f.file + "#" + std::to_string(f.ordinal));
    ParsedPacket p;
    ParseResult r = ParseEthernet(f.bytes, &p);
    ASSERT_TRUE(r.ok()) << ParseErrorName(r.error());
    ExpectInBounds(p, f.bytes.size());
    EXPECT_NE(p.family, Family::kNone);
  }
}

// Random mutations of valid frames and random bytes: never crash, never point outside.
TEST(PacketParserTest, FuzzedInputStaysInBounds) {
  std::mt19937 rng(12345);
  std::vector<std::vector<uint8_t>> seeds;
  for (const GoodCase& c : GoodCases()) seeds.push_back(c.frame);
  for (const HostileCase& c : HostileCases()) seeds.push_back(c.frame);
  int ok = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<uint8_t> f = seeds[rng() % seeds.size()];
    const int flips = 1 + rng() % 4;
    for (int i = 0; i < flips && !f.empty(); ++i) f[rng() % f.size()] = rng();
    if (rng() % 3 == 0) f.resize(rng() % (f.size() + 1));
    ParsedPacket p;
    for (ParseMode mode : {ParseMode::kFull, ParseMode::kQuoted}) {
      if (ParseEthernet(f, &p, mode).ok()) {
        ++ok;
        SCOPED_TRACE(testing::Message() << "iter " << iter << " mode " << int(mode) << " proto "
                                        << int(p.proto) << " frag " << p.is_fragment);
        ExpectInBounds(p, f.size());
        if (p.inner_offset) {
          ParsedPacket q;
          if (ParseIp(absl::MakeConstSpan(f).subspan(p.inner_offset), &q, ParseMode::kQuoted)
                  .ok()) {
            ExpectInBounds(q, f.size() - p.inner_offset);
          }
        }
        (void)VerifyL4Checksum(p, f);
      }
    }
  }
  EXPECT_GT(ok, 0);  // the mutations keep some frames valid, so both paths are exercised
}

}  // namespace
}  // namespace ctsync

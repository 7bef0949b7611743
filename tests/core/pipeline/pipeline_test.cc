#include "core/pipeline/pipeline.h"

#include <memory>
#include <string>

#include "core/nat/nat_engine.h"
#include "core/packet/checksum.h"
#include "core/packet/packet_builder.h"
#include "gtest/gtest.h"

namespace ctsync {
namespace {

constexpr PacketBuilder::Mac kLanFw = {2, 0, 0, 0, 1, 1};
constexpr PacketBuilder::Mac kLanHost = {2, 0, 0, 0, 1, 2};

class PipelineTest : public ::testing::Test {
 protected:
  void Build(const std::string& rules, PipelineOptions po = {}) {
    ConntrackOptions o;
    o.settings.nf_conntrack_max = 1024;
    o.settings.nf_conntrack_buckets = 256;
    ct_ = std::move(*ConntrackEngine::Create(o, 0));
    nat_ = std::make_unique<NatEngine>(NatOptions{1}, ct_.get());
    pipe_ = std::make_unique<Pipeline>(po, Topology::OracleFirewall(), ct_.get(), nat_.get());
    if (!rules.empty()) {
      auto rs = rules::RuleSet::Parse(rules, Family::kIpv4);
      ASSERT_TRUE(rs.ok()) << rs.status();
      pipe_->SetRules(Family::kIpv4, std::make_unique<rules::RuleSet>(std::move(*rs)));
    }
  }
  std::vector<Transmit> FromLan(std::vector<uint8_t> frame) {
    std::vector<Transmit> tx;
    pipe_->Receive(0, frame, now_, &tx);
    return tx;
  }
  PacketBuilder Lan() const { return PacketBuilder().SrcMac(kLanHost).DstMac(kLanFw); }

  Nanos now_ = kNanosPerSecond;
  std::unique_ptr<ConntrackEngine> ct_;
  std::unique_ptr<NatEngine> nat_;
  std::unique_ptr<Pipeline> pipe_;
};

ParsedPacket Parse(const std::vector<uint8_t>& f) {
  ParsedPacket p;
  EXPECT_TRUE(ParseEthernet(f, &p).ok());
  return p;
}

TEST_F(PipelineTest, ForwardsWithTtlDecrementMacRewriteAndValidChecksums) {
  Build("");
  auto tx = FromLan(Lan().Ipv4("192.0.2.10", "198.51.100.20").Ttl(64).Udp(5000, 53).Payload("q").Build());
  ASSERT_EQ(tx.size(), 1u);
  EXPECT_EQ(tx[0].interface, 1);  // wan0
  const ParsedPacket p = Parse(tx[0].frame);
  EXPECT_EQ(p.ttl, 63);
  EXPECT_EQ(p.dst_mac, (std::array<uint8_t, 6>{2, 0, 0, 0, 2, 2}));
  EXPECT_EQ(p.src_mac, (std::array<uint8_t, 6>{2, 0, 0, 0, 2, 1}));
  EXPECT_TRUE(VerifyIpv4HeaderChecksum(absl::Span<const uint8_t>(tx[0].frame).subspan(14, 20)));
  EXPECT_TRUE(VerifyL4Checksum(p, tx[0].frame));
  EXPECT_EQ(ct_->table().confirmed_count(), 1u);
}

TEST_F(PipelineTest, TtlOneIsAnsweredWithTimeExceededAndNotForwarded) {
  Build("");
  auto tx = FromLan(Lan().Ipv4("192.0.2.10", "198.51.100.20").Ttl(1).Udp(5000, 53).Build());
  ASSERT_EQ(tx.size(), 1u);
  EXPECT_EQ(tx[0].interface, 0);
  const ParsedPacket p = Parse(tx[0].frame);
  EXPECT_EQ(p.proto, kProtoIcmp);
  EXPECT_EQ(p.icmp_type, 11);
  EXPECT_EQ(p.src, *IpAddress::Parse("192.0.2.1"));  // the address facing the sender
  EXPECT_TRUE(VerifyL4Checksum(p, tx[0].frame));
  EXPECT_EQ(pipe_->counters().ttl_exceeded, 1u);
  EXPECT_EQ(ct_->table().confirmed_count(), 0u);  // the dropped packet left no entry
}

TEST_F(PipelineTest, RejectWithTcpResetAsTheKernelBuildsIt) {
  Build("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        "-A FORWARD -p tcp --dport 23 -j REJECT --reject-with tcp-reset\nCOMMIT\n");
  auto tx = FromLan(Lan().Ipv4("192.0.2.10", "198.51.100.20").Tcp(40000, 23).TcpFlags(kTcpSyn).Seq(1000).Build());
  ASSERT_EQ(tx.size(), 1u);
  EXPECT_EQ(tx[0].interface, 0);
  const ParsedPacket p = Parse(tx[0].frame);
  EXPECT_EQ(p.src, *IpAddress::Parse("198.51.100.20"));
  EXPECT_EQ(p.sport, 23);
  EXPECT_EQ(p.dport, 40000);
  EXPECT_EQ(p.tcp_flags, kTcpRst | kTcpAck);
  EXPECT_EQ(p.seq, 0u);
  EXPECT_EQ(p.ack, 1001u);  // SYN occupies one sequence number
  EXPECT_EQ(p.ip_id, 0);
  EXPECT_TRUE(p.df);
  EXPECT_EQ(p.ttl, 64);
  EXPECT_EQ(p.window, 0);
  EXPECT_TRUE(VerifyL4Checksum(p, tx[0].frame));
  EXPECT_EQ(ct_->table().confirmed_count(), 0u);  // REJECTed flows never enter the table
  // A segment with ACK gets a bare RST carrying its ack number.
  tx = FromLan(Lan().Ipv4("192.0.2.10", "198.51.100.20").Tcp(40001, 23).TcpFlags(kTcpAck).Seq(5).Ack(777).Build());
  ASSERT_EQ(tx.size(), 1u);
  const ParsedPacket q = Parse(tx[0].frame);
  EXPECT_EQ(q.tcp_flags, kTcpRst);
  EXPECT_EQ(q.seq, 777u);
}

TEST_F(PipelineTest, RejectWithIcmpQuotesTheOffenderAndIsRelated) {
  Build("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        "-A FORWARD -p udp --dport 69 -j REJECT\nCOMMIT\n");
  const auto offender = Lan().Ipv4("192.0.2.10", "198.51.100.20").Udp(5000, 69).Payload("rrq").Build();
  auto tx = FromLan(offender);
  ASSERT_EQ(tx.size(), 1u);
  const ParsedPacket p = Parse(tx[0].frame);
  EXPECT_EQ(p.icmp_type, 3);
  EXPECT_EQ(p.icmp_code, 3);
  EXPECT_EQ(p.tos, 0xc0);
  EXPECT_FALSE(p.df);
  EXPECT_EQ(p.src, *IpAddress::Parse("192.0.2.1"));
  // The quoted datagram is the offender as it arrived (from its IP header on).
  const std::vector<uint8_t> quoted(tx[0].frame.begin() + p.l4_offset + 8, tx[0].frame.end());
  EXPECT_EQ(quoted, std::vector<uint8_t>(offender.begin() + 14, offender.end()));
  EXPECT_TRUE(VerifyL4Checksum(p, tx[0].frame));
}

TEST_F(PipelineTest, ClosedLocalPortsAreAnsweredAsTheKernelDoes) {
  Build("");
  auto tx = FromLan(Lan().Ipv4("192.0.2.10", "192.0.2.1").Udp(5000, 9999).Build());
  ASSERT_EQ(tx.size(), 1u);
  EXPECT_EQ(Parse(tx[0].frame).icmp_type, 3);
  tx = FromLan(Lan().Ipv4("192.0.2.10", "192.0.2.1").Tcp(40000, 22).TcpFlags(kTcpSyn).Seq(9).Build());
  ASSERT_EQ(tx.size(), 1u);
  EXPECT_EQ(Parse(tx[0].frame).tcp_flags, kTcpRst | kTcpAck);
  // A RST is never answered.
  tx = FromLan(Lan().Ipv4("192.0.2.10", "192.0.2.1").Tcp(40000, 22).TcpFlags(kTcpRst).Build());
  EXPECT_TRUE(tx.empty());
  // Echo requests are answered.
  tx = FromLan(Lan().Ipv4("192.0.2.10", "192.0.2.1").IcmpEcho(true, 7, 1).Payload("ping").Build());
  ASSERT_EQ(tx.size(), 1u);
  const ParsedPacket p = Parse(tx[0].frame);
  EXPECT_EQ(p.icmp_type, 0);
  EXPECT_EQ(p.icmp_id, 7);
  EXPECT_TRUE(VerifyL4Checksum(p, tx[0].frame));
}

TEST_F(PipelineTest, MalformedInputIsCountedNeverFatal) {
  Build("");
  const auto good = Lan().Ipv4("192.0.2.10", "198.51.100.20").Tcp(40000, 80).TcpFlags(kTcpSyn).Build();
  for (size_t len = 0; len < good.size(); ++len) {
    std::vector<uint8_t> cut(good.begin(), good.begin() + len);
    std::vector<Transmit> tx;
    pipe_->Receive(0, cut, now_, &tx);
  }
  EXPECT_GT(pipe_->counters().rx_parse_errors, 0u);
  // Forwarding off: counted, not forwarded.
  PipelineOptions po;
  po.ipv4_forwarding = false;
  Build("", po);
  EXPECT_TRUE(FromLan(good).empty());
  EXPECT_EQ(pipe_->counters().forwarding_off, 1u);
}

}  // namespace
}  // namespace ctsync

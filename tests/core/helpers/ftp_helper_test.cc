#include "core/helpers/ftp_helper.h"

#include <string>

#include "core/helpers/seq_adjust.h"
#include "core/packet/checksum.h"
#include "core/packet/packet_builder.h"
#include "gtest/gtest.h"

namespace ctsync {
namespace {

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

struct ParseCase {
  const char* what;
  Direction dir;
  std::string text;
  int want;  // 1 match, 0 none, -1 partial (dropped)
  FtpCommand type;
  const char* address;
  uint16_t port;
};

TEST(FtpParseTest, CommandsAndRepliesAsTheKernelReadsThem) {
  const IpAddress sender = *IpAddress::Parse("192.0.2.10");
  const ParseCase cases[] = {
      {"PORT", Direction::kOriginal, "PORT 192,0,2,10,195,80\r\n", 1, FtpCommand::kPort, "192.0.2.10", 50000},
      {"port lower case", Direction::kOriginal, "port 192,0,2,10,0,21\r\n", 1, FtpCommand::kPort, "192.0.2.10", 21},
      {"EPRT v4", Direction::kOriginal, "EPRT |1|192.0.2.10|6275|\r\n", 1, FtpCommand::kEprt, "192.0.2.10", 6275},
      {"227", Direction::kReply, "227 Entering Passive Mode (198,51,100,20,117,48).\r\n", 1, FtpCommand::kPasv, "198.51.100.20", 30000},
      {"229", Direction::kReply, "229 Entering Extended Passive Mode (|||6446|)\r\n", 1, FtpCommand::kEpsv, "192.0.2.10", 6446},
      {"PORT in reply direction", Direction::kReply, "PORT 192,0,2,10,195,80\r\n", 0, FtpCommand::kPort, "", 0},
      {"other command", Direction::kOriginal, "USER anonymous\r\n", 0, FtpCommand::kPort, "", 0},
      {"short PORT (split)", Direction::kOriginal, "POR", -1, FtpCommand::kPort, "", 0},
      {"PORT with 5 numbers", Direction::kOriginal, "PORT 192,0,2,10,195\r\n", -1, FtpCommand::kPort, "", 0},
      {"PORT garbage", Direction::kOriginal, "PORT 192,0,x,10,195,80\r\n", -1, FtpCommand::kPort, "", 0},
      {"EPRT wrong family", Direction::kOriginal, "EPRT |2|2001:db8::1|6275|\r\n", -1, FtpCommand::kPort, "", 0},
      {"229 bad delimiter", Direction::kReply, "229 Entering (1116446|)\r\n", -1, FtpCommand::kPort, "", 0},
  };
  for (const ParseCase& c : cases) {
    FtpMatch m;
    const int r = FtpParse(Bytes(c.text), c.dir, Family::kIpv4, sender, &m);
    EXPECT_EQ(r, c.want) << c.what;
    if (r != 1) continue;
    EXPECT_EQ(m.type, c.type) << c.what;
    EXPECT_EQ(m.address, *IpAddress::Parse(c.address)) << c.what;
    EXPECT_EQ(m.port, c.port) << c.what;
    // The match covers exactly the text a NAT rewrite replaces.
    const std::string matched = c.text.substr(m.offset, m.length);
    EXPECT_EQ(matched.find_first_of("\r\n"), std::string::npos) << c.what << ": " << matched;
  }
}

TEST(FtpParseTest, MatchSpansTheNumbers) {
  FtpMatch m;
  const std::string t = "PORT 192,0,2,10,195,80\r\n";
  ASSERT_EQ(FtpParse(Bytes(t), Direction::kOriginal, Family::kIpv4, IpAddress{}, &m), 1);
  EXPECT_EQ(t.substr(m.offset, m.length), "192,0,2,10,195,80");
  const std::string p = "227 Entering Passive Mode (198,51,100,20,117,48).\r\n";
  ASSERT_EQ(FtpParse(Bytes(p), Direction::kReply, Family::kIpv4, IpAddress{}, &m), 1);
  EXPECT_EQ(p.substr(m.offset, m.length), "198,51,100,20,117,48");
}

PacketBuffer TcpPacket(uint32_t seq, uint32_t ack, const std::string& payload) {
  PacketBuffer b;
  b.frame = PacketBuilder()
                .Ipv4("192.0.2.10", "198.51.100.20")
                .Tcp(40021, 21)
                .TcpFlags(kTcpAck | kTcpPsh)
                .Seq(seq)
                .Ack(ack)
                .SackPermitted()
                .Payload(payload)
                .Build();
  EXPECT_TRUE(b.Reparse());
  return b;
}

TEST(MangleTcpPayloadTest, LongerAndShorterRewritesKeepChecksumsAndRecordOffsets) {
  PacketBuffer b = TcpPacket(1017, 5027, "PORT 192,0,2,10,195,80\r\n");
  SeqAdjust sa;
  bool changed = false;
  ASSERT_TRUE(MangleTcpPayload(b, 5, 17, "203,0,113,5,195,80", sa, Direction::kOriginal, &changed));
  EXPECT_TRUE(changed);
  EXPECT_EQ(std::string(b.frame.end() - 25, b.frame.end()), "PORT 203,0,113,5,195,80\r\n");
  EXPECT_EQ(b.pkt.ip_total_len, 20u + 24u + 25u);  // IP + TCP with SACK-permitted + payload
  EXPECT_TRUE(VerifyL4Checksum(b.pkt, b.frame));
  EXPECT_TRUE(VerifyIpv4HeaderChecksum(absl::Span<const uint8_t>(b.frame).subspan(14, 20)));
  EXPECT_EQ(sa.dir[0].correction_pos, 1017u);
  EXPECT_EQ(sa.dir[0].offset_after, 1);

  // A shorter rewrite later in the same direction accumulates (nf_ct_seqadj_set).
  PacketBuffer c = TcpPacket(1100, 5100, "PORT 203,0,113,55,1,2\r\n");
  ASSERT_TRUE(MangleTcpPayload(c, 5, 16, "1,2,3,4,1,2", sa, Direction::kOriginal, &changed));
  EXPECT_TRUE(VerifyL4Checksum(c.pkt, c.frame));
  EXPECT_EQ(sa.dir[0].correction_pos, 1100u);
  EXPECT_EQ(sa.dir[0].offset_before, 1);
  EXPECT_EQ(sa.dir[0].offset_after, 1 - 5);

  // Same text: nothing changes, nothing recorded.
  PacketBuffer d = TcpPacket(2000, 1, "227 (1,2,3,4,5,6)\r\n");
  const std::vector<uint8_t> before = d.frame;
  SeqAdjust none;
  ASSERT_TRUE(MangleTcpPayload(d, 5, 11, "1,2,3,4,5,6", none, Direction::kReply, &changed));
  EXPECT_FALSE(changed);
  EXPECT_EQ(d.frame, before);
  EXPECT_EQ(none, SeqAdjust{});
  // Out of range is refused.
  EXPECT_FALSE(MangleTcpPayload(d, 10, 100, "x", none, Direction::kReply, &changed));
}

TEST(SeqAdjustTest, ManySegmentsBothDirectionsAndSack) {
  SeqAdjust sa;
  ASSERT_TRUE(SeqAdjustSet(sa, Direction::kOriginal, 1017, +1));
  EXPECT_FALSE(SeqAdjustSet(sa, Direction::kOriginal, 1017, 0));
  // Segments before and at the correction point keep their sequence numbers; later ones
  // move by the offset. The other direction's ACKs move back.
  struct Step {
    Direction dir;
    uint32_t seq, ack;
    uint32_t want_seq, want_ack;
  } steps[] = {
      {Direction::kOriginal, 1001, 5001, 1001, 5001},
      {Direction::kOriginal, 1017, 5027, 1017, 5027},
      {Direction::kOriginal, 1041, 5040, 1042, 5040},
      {Direction::kReply, 5040, 1048, 5040, 1047},
      {Direction::kReply, 5053, 1010, 5053, 1010},  // acks data before the rewrite
      {Direction::kOriginal, 1047, 5053, 1048, 5053},
  };
  for (int i = 0; i < 200; ++i) {  // many segments: the adjustment never drifts
    for (const Step& s : steps) {
      PacketBuffer b = TcpPacket(s.seq, s.ack, "x");
      ASSERT_TRUE(SeqAdjustPacket(b, sa, s.dir));
      EXPECT_EQ(b.pkt.seq, s.want_seq);
      EXPECT_EQ(b.pkt.ack, s.want_ack);
      EXPECT_TRUE(VerifyL4Checksum(b.pkt, b.frame));
    }
  }
  // SACK blocks of the reply direction name original-direction sequence numbers.
  PacketBuffer b;
  b.frame = PacketBuilder()
                .Ipv4("198.51.100.20", "203.0.113.5")
                .Tcp(21, 40021)
                .TcpFlags(kTcpAck)
                .Seq(5060)
                .Ack(1048)
                .SackBlock(1100, 1200)
                .Build();
  ASSERT_TRUE(b.Reparse());
  ASSERT_TRUE(SeqAdjustPacket(b, sa, Direction::kReply));
  ASSERT_TRUE(b.Reparse());
  ASSERT_EQ(b.pkt.tcp_options.sack_count, 1);
  EXPECT_EQ(b.pkt.tcp_options.sack[0].left, 1099u);
  EXPECT_EQ(b.pkt.tcp_options.sack[0].right, 1199u);
  EXPECT_TRUE(VerifyL4Checksum(b.pkt, b.frame));
}

}  // namespace
}  // namespace ctsync

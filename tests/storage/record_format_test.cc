#include "storage/record_format.h"

#include "gtest/gtest.h"
#include "proto/flow_codec.h"
#include "tests/storage/test_flows.h"

namespace ctsync::storage {
namespace {

TEST(RecordFormatTest, KeyGoldenBytesV4) {
  Tuple t;
  t.family = Family::kIpv4;
  t.proto = kProtoTcp;
  t.src = *IpAddress::Parse("192.0.2.1");
  t.dst = *IpAddress::Parse("198.51.100.7");
  t.sport = 0x1234;
  t.dport = 80;
  const std::string key = EncodeFlowKey(0x0102, t);
  const std::string want("\x01\x02\x02\x06\xc0\x00\x02\x01\xc6\x33\x64\x07\x12\x34\x00\x50", 16);
  EXPECT_EQ(key, want);
  uint16_t zone;
  Tuple back;
  ASSERT_TRUE(DecodeFlowKey(key, &zone, &back).ok());
  EXPECT_EQ(zone, 0x0102);
  EXPECT_EQ(back, t);
  EXPECT_EQ(DescribeFlowKey(key), "zone 258 tcp 192.0.2.1:4660 -> 198.51.100.7:80");
}

TEST(RecordFormatTest, KeyRoundTripV6AndBadKeys) {
  Family fam;
  Tuple t;
  t.family = Family::kIpv6;
  t.proto = kProtoUdp;
  t.src = *IpAddress::Parse("2001:db8::1", &fam);
  t.dst = *IpAddress::Parse("2001:db8::2", &fam);
  t.sport = 5353;
  t.dport = 53;
  const std::string key = EncodeFlowKey(0, t);
  EXPECT_EQ(key.size(), 40u);
  uint16_t zone;
  Tuple back;
  ASSERT_TRUE(DecodeFlowKey(key, &zone, &back).ok());
  EXPECT_EQ(back, t);
  EXPECT_EQ(DescribeFlowKey(key), "zone 0 udp [2001:db8::1]:5353 -> [2001:db8::2]:53");
  EXPECT_FALSE(DecodeFlowKey(key.substr(0, 39), &zone, &back).ok());
  std::string wrong_family = key;
  wrong_family[2] = 2;  // IPv4 in a 40-byte key
  EXPECT_FALSE(DecodeFlowKey(wrong_family, &zone, &back).ok());
  EXPECT_EQ(DescribeFlowKey("ab"), "key 0x6162");
}

class RecordValueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const Flow f = testing::MakeFlow(7, kNanosPerSecond, 60 * kNanosPerSecond);
    codec::FlowToProto(f, kNanosPerSecond, 1'700'000'000 * kNanosPerSecond, {}, &msg_);
    ASSERT_TRUE(FlowKeyOf(msg_, &key_).ok());
    EncodeFlowValue(key_, msg_.SerializeAsString(), &value_);
  }
  proto::Flow msg_;
  std::string key_;
  std::string value_;
};

TEST_F(RecordValueTest, RoundTrip) {
  proto::Flow back;
  uint32_t crc = 0;
  ASSERT_TRUE(DecodeFlowValue(key_, value_, &back, &crc).ok());
  EXPECT_EQ(back.SerializeAsString(), msg_.SerializeAsString());
  EXPECT_NE(crc, 0u);
}

// The writer builds values in place (header room, then the body): same bytes.
TEST_F(RecordValueTest, SealedInPlaceEqualsEncoded) {
  std::string in_place(kFlowValueHeaderBytes, 'x');
  msg_.AppendToString(&in_place);
  SealFlowValue(key_, &in_place);
  EXPECT_EQ(in_place, value_);
}

// Version 2 records leave the original tuple to the key; both versions decode to the same
// message, and a version 2 body under a key that does not decode is an error, not a flow.
TEST_F(RecordValueTest, Version2BodyTakesTheOriginalTupleFromTheKey) {
  proto::Flow short_form = msg_;
  short_form.clear_original();
  std::string v2;
  EncodeFlowValue(key_, short_form.SerializeAsString(), &v2);
  EXPECT_LT(v2.size() + 20, value_.size());
  proto::Flow from_v1, from_v2;
  ASSERT_TRUE(DecodeFlowValue(key_, value_, &from_v1).ok());
  ASSERT_TRUE(DecodeFlowValue(key_, v2, &from_v2).ok());
  EXPECT_EQ(from_v2.SerializeAsString(), from_v1.SerializeAsString());
  EXPECT_EQ(from_v2.SerializeAsString(), msg_.SerializeAsString());

  const std::string bad_key = key_.substr(0, 15);
  std::string under_bad_key;
  EncodeFlowValue(bad_key, short_form.SerializeAsString(), &under_bad_key);
  absl::Status s = DecodeFlowValue(bad_key, under_bad_key, &from_v2);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("key is bad"), std::string_view::npos) << s;
}

// Every single-bit flip anywhere in the value is caught by the checksum.
TEST_F(RecordValueTest, EveryBitFlipIsCaught) {
  proto::Flow back;
  for (size_t i = 0; i < value_.size() * 8; ++i) {
    std::string bad = value_;
    bad[i / 8] ^= static_cast<char>(1 << (i % 8));
    absl::Status s = DecodeFlowValue(key_, bad, &back);
    ASSERT_FALSE(s.ok()) << "bit " << i;
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  }
}

TEST_F(RecordValueTest, ValueUnderAnotherKeyAndShortValueAreCaught) {
  proto::Flow back;
  std::string other = key_;
  other[15] ^= 1;
  absl::Status s = DecodeFlowValue(other, value_, &back);
  EXPECT_NE(s.message().find("checksum mismatch"), std::string_view::npos) << s;
  s = DecodeFlowValue(key_, value_.substr(0, 3), &back);
  EXPECT_NE(s.message().find("too short"), std::string_view::npos) << s;
}

}  // namespace
}  // namespace ctsync::storage

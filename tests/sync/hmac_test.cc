#include "sync/hmac.h"

#include <string>

#include "gtest/gtest.h"

namespace ctsync::sync {
namespace {

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// RFC 4231 test case 2.
TEST(HmacTest, MatchesRfc4231Vector) {
  const std::string key = "Jefe";
  const std::string data = "what do ya want for nothing?";
  const HmacTag tag = ComputeHmac(Bytes(key), Bytes(data));
  static constexpr uint8_t kExpected[] = {
      0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
      0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
  EXPECT_TRUE(std::equal(tag.begin(), tag.end(), std::begin(kExpected)));
  EXPECT_TRUE(VerifyHmac(Bytes(key), Bytes(data), tag));
}

TEST(HmacTest, RejectsFlippedBitAndWrongKeyAndShortTag) {
  const std::string key = "k1";
  std::string data = "datagram";
  const HmacTag tag = ComputeHmac(Bytes(key), Bytes(data));
  data[0] ^= 1;
  EXPECT_FALSE(VerifyHmac(Bytes(key), Bytes(data), tag));
  data[0] ^= 1;
  EXPECT_FALSE(VerifyHmac(Bytes(std::string("k2")), Bytes(data), tag));
  EXPECT_FALSE(VerifyHmac(Bytes(key), Bytes(data), absl::Span<const uint8_t>(tag.data(), 31)));
}

}  // namespace
}  // namespace ctsync::sync

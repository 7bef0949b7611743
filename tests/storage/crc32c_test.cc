#include "storage/crc32c.h"

#include <string>

#include "gtest/gtest.h"

namespace ctsync::storage {
namespace {

// Check values from RFC 3720 (iSCSI) appendix B.4 and the common "123456789" vector.
TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(Crc32c(""), 0u);
  EXPECT_EQ(Crc32c("123456789"), 0xe3069283u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8a9136aau);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62a8ab43u);
}

TEST(Crc32cTest, ExtendEqualsWhole) {
  const std::string data = "the quick brown fox jumps over the lazy dog, 0123456789";
  for (size_t cut = 0; cut <= data.size(); ++cut) {
    const uint32_t head = Crc32cExtend(0, data.data(), cut);
    EXPECT_EQ(Crc32cExtend(head, data.data() + cut, data.size() - cut), Crc32c(data)) << cut;
  }
}

}  // namespace
}  // namespace ctsync::storage

#include "core/util/huge_pages.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace ctsync {
namespace {

bool HugeAligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % kHugePageBytes == 0; }

TEST(HugePagesTest, AllocationsAreHugePageAlignedAndWritableToTheEnd) {
  // Not a multiple of the huge page size: the tail of the last page must be usable too.
  const size_t bytes = 3 * kHugePageBytes + 12345;
  auto* p = static_cast<uint8_t*>(AllocateHugePages(bytes));
  EXPECT_TRUE(HugeAligned(p));
  p[0] = 1;
  p[bytes - 1] = 2;
  EXPECT_EQ(p[0] + p[bytes - 1], 3);
  FreeHugePages(p);
}

TEST(HugePagesTest, AllocatorUsesHugePagesOnlyForLargeBlocks) {
  struct Op {
    char bytes[340];
  };
  std::vector<Op, HugePageAllocator<Op>> block;
  block.reserve(8192);  // a flow store queue block: ~2.8 MB
  EXPECT_TRUE(HugeAligned(block.data()));
  block.resize(8192);
  block.back().bytes[339] = 7;

  // Small vectors keep the ordinary heap; growing past the threshold moves them over.
  std::vector<int, HugePageAllocator<int>> small{1, 2, 3};
  for (int i = 0; i < (1 << 19); ++i) small.push_back(i);
  EXPECT_EQ(small[2], 3);
  EXPECT_EQ(small.back(), (1 << 19) - 1);
  EXPECT_GE(small.capacity() * sizeof(int), HugePageAllocator<int>::kMinBytes);
  EXPECT_TRUE(HugeAligned(small.data()));
}

}  // namespace
}  // namespace ctsync

#include "core/util/huge_pages.h"

#include <sys/mman.h>

namespace ctsync {

void* AllocateHugePages(size_t bytes) {
  bytes = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  void* p = ::operator new (bytes, std::align_val_t{kHugePageBytes});
  madvise(p, bytes, MADV_HUGEPAGE);
  return p;
}

void FreeHugePages(void* p) noexcept { ::operator delete (p, std::align_val_t{kHugePageBytes}); }

}  // namespace ctsync

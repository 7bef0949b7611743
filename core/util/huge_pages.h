// Memory for big arrays that are touched soon after allocation: 2 MiB aligned and marked
// for transparent huge pages (madvise), so the first touch costs one fault per 2 MiB instead
// of one per 4 KiB page, and lookups spread over the array miss the TLB less. Page faults
// are what a fresh 1M-flow table or a burst's queue blocks otherwise spend most of their
// first pass on (on a VM each one is a trip to the hypervisor). Without THP the memory
// works the same; the advice is only a hint.
#pragma once

#include <cstddef>
#include <memory>
#include <new>

namespace ctsync {

inline constexpr size_t kHugePageBytes = size_t{2} << 20;

// `bytes` rounded up to whole huge pages; free with FreeHugePages. Throws std::bad_alloc
// like operator new.
void* AllocateHugePages(size_t bytes);
void FreeHugePages(void* p) noexcept;

// A std allocator that takes huge pages for allocations of at least kMinBytes (a vector
// reserved once to a block's capacity) and the ordinary heap for smaller ones.
template <typename T>
struct HugePageAllocator {
  using value_type = T;
  static constexpr size_t kMinBytes = size_t{1} << 20;

  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}

  T* allocate(size_t n) {
    if (n * sizeof(T) >= kMinBytes) return static_cast<T*>(AllocateHugePages(n * sizeof(T)));
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, size_t n) noexcept {
    if (n * sizeof(T) >= kMinBytes) {
      FreeHugePages(p);
    } else {
      std::allocator<T>().deallocate(p, n);
    }
  }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace ctsync

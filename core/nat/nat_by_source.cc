#include "core/nat/nat_by_source.h"

#include <algorithm>
#include <cstring>

namespace ctsync::nat {
namespace {

inline uint64_t Mix(uint64_t h, uint64_t w) {
  h ^= w;
  h *= 0x9e3779b97f4a7c15ull;
  return h ^ (h >> 29);
}

}  // namespace

BySourceIndex::BySourceIndex(size_t capacity, size_t buckets, uint64_t seed)
    : capacity_(capacity),
      bucket_count_(std::max<size_t>(buckets, 1)),
      seed_(seed),
      buckets_(new Bucket[bucket_count_]),
      links_(new Link[capacity]) {}

uint32_t BySourceIndex::KeyHash(const Tuple& orig, uint16_t zone) const {
  uint64_t w[2];
  std::memcpy(w, orig.src.bytes.data(), 16);
  uint64_t h = Mix(seed_, w[0]);
  h = Mix(h, w[1]);
  h = Mix(h, uint64_t{orig.sport} | (uint64_t{orig.proto} << 16) |
                 (uint64_t{static_cast<uint8_t>(orig.family)} << 24) | (uint64_t{zone} << 32));
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  return static_cast<uint32_t>(h >> 32);
}

void BySourceIndex::SetHead(Bucket& b, uint32_t head) const {
  b.head = head;
  if (head == kNoFlow) {
    b.filter = 0;
    return;
  }
  b.filter = Filter(links_[head].hash) | (links_[head].next != kNoFlow ? kMore : 0);
}

void BySourceIndex::Add(FlowIndex idx, uint32_t hash) {
  if (idx >= capacity_) return;
  Remove(idx);
  Bucket& b = buckets_[BucketOf(hash)];
  links_[idx] = Link{b.head, hash};
  SetHead(b, idx);
}

void BySourceIndex::Remove(FlowIndex idx) {
  if (!linked(idx)) return;
  Bucket& b = buckets_[BucketOf(links_[idx].hash)];
  if (b.head == idx) {
    SetHead(b, links_[idx].next);
  } else {
    for (uint32_t* link = &links_[b.head].next; *link != kNoFlow; link = &links_[*link].next) {
      if (*link == idx) {
        *link = links_[idx].next;
        break;
      }
    }
    SetHead(b, b.head);  // the head may have lost its only successor
  }
  links_[idx].next = kUnlinked;
}

}  // namespace ctsync::nat

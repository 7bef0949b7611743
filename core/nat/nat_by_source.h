// The kernel's nf_nat_bysource: flows bound for a source manip, by their original source
// (address, port or id, protocol, zone), so that find_appropriate_src can give a new
// connection from a source the mapping an older connection from it already has.
//
// Intrusive, like the kernel's hlist in nf_conn: one link per flow slot in side arrays sized
// to the flow table (8 bytes a slot: chain link and key hash) and a fixed bucket array (4
// bytes a bucket), all allocated once, so adding a flow never allocates or rehashes. A flow
// leaves the index when conntrack frees it (nf_nat_cleanup_conntrack), through the engine's
// destroy hook. Chains are newest first, as hlist_add_head leaves them. The stored key hash
// lets a walk skip other sources without touching their flows.
//
// Owner: the NatBinder of one shard (same thread as its ConntrackEngine). Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/conntrack/flow.h"
#include "core/conntrack/tuple.h"

namespace ctsync::nat {

class BySourceIndex {
 public:
  // `capacity` flow slots (FlowIndex < capacity), `buckets` chains (the kernel sizes
  // nf_nat_htable_size like the conntrack hash).
  BySourceIndex(size_t capacity, size_t buckets, uint64_t seed);

  // The key hash of an original tuple's source half in `zone`.
  uint32_t KeyHash(const Tuple& orig, uint16_t zone) const;

  // Starts fetching the chain head for `hash` (the walk comes a little later).
  void Prefetch(uint32_t hash) const { __builtin_prefetch(&buckets_[BucketOf(hash)]); }

  // Links `idx` at the head of its chain (moving it if it is linked already).
  void Add(FlowIndex idx, uint32_t hash);
  // Unlinks `idx`; a no-op for a slot that is not linked.
  void Remove(FlowIndex idx);
  bool linked(FlowIndex idx) const { return idx < capacity_ && links_[idx].next != kUnlinked; }

  // Calls fn(idx) for the linked flows whose key hash is `hash`, newest first, until fn
  // returns true; returns whether it did. fn must not add or remove entries.
  template <typename Fn>
  bool FindIf(uint32_t hash, Fn fn) const {
    for (uint32_t n = buckets_[BucketOf(hash)]; n != kNoFlow; n = links_[n].next) {
      if (links_[n].hash == hash && fn(static_cast<FlowIndex>(n))) return true;
    }
    return false;
  }

 private:
  static constexpr uint32_t kUnlinked = kNoFlow - 1;
  // One slot's link and key hash side by side: a chain step is one memory access.
  struct Link {
    uint32_t next = kUnlinked;  // next in chain, kNoFlow at the end, kUnlinked: not linked
    uint32_t hash = 0;          // key hash while linked
  };
  size_t BucketOf(uint32_t hash) const {
    return static_cast<size_t>((uint64_t{hash} * bucket_count_) >> 32);
  }

  size_t capacity_;
  size_t bucket_count_;
  uint64_t seed_;
  std::unique_ptr<uint32_t[]> buckets_;  // chain heads (kNoFlow: empty)
  std::unique_ptr<Link[]> links_;        // per flow slot
};

}  // namespace ctsync::nat

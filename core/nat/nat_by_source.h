// The kernel's nf_nat_bysource: flows bound for a source manip, by their original source
// (address, port or id, protocol, zone), so that find_appropriate_src can give a new
// connection from a source the mapping an older connection from it already has.
//
// Intrusive, like the kernel's hlist in nf_conn: one link per flow slot in side arrays sized
// to the flow table (8 bytes a slot: chain link and key hash) and a fixed bucket array (8
// bytes a bucket: head and its hash), all allocated once, so adding a flow never allocates
// or rehashes. A flow leaves the index when conntrack frees it (nf_nat_cleanup_conntrack),
// through the engine's destroy hook. Chains are newest first, as hlist_add_head leaves them.
// The stored key hash lets a walk skip other sources without touching their flows.
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
    const Bucket& b = buckets_[BucketOf(hash)];
    if (b.head == kNoFlow) return false;
    // The head's link is read only when the filter matches: to rule out a hash differing in
    // the dropped bit.
    if (Filter(hash) == (b.filter & ~kMore) && links_[b.head].hash == hash &&
        fn(static_cast<FlowIndex>(b.head)))
      return true;
    if (!(b.filter & kMore)) return false;
    for (uint32_t n = links_[b.head].next; n != kNoFlow; n = links_[n].next) {
      if (links_[n].hash == hash && fn(static_cast<FlowIndex>(n))) return true;
    }
    return false;
  }

 private:
  static constexpr uint32_t kUnlinked = kNoFlow - 1;
  static constexpr uint32_t kMore = 1;  // Bucket::filter: the head has a successor
  // A chain head and what a walk needs to know about it without reading its link: its key
  // hash (low bit dropped) and whether anything follows. Most chains hold at most one flow,
  // so a lookup for a new source usually ends at the bucket, whose fetch starts early
  // (Prefetch), instead of waiting for the head's link, a second miss nothing can start
  // sooner.
  struct Bucket {
    uint32_t head = kNoFlow;
    uint32_t filter = 0;
  };
  static uint32_t Filter(uint32_t hash) { return hash & ~kMore; }
  // Rewrites `b` for a chain that now starts at `head`.
  void SetHead(Bucket& b, uint32_t head) const;
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
  std::unique_ptr<Bucket[]> buckets_;
  std::unique_ptr<Link[]> links_;  // per flow slot
};

}  // namespace ctsync::nat

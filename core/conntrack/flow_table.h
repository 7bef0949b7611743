// The connection table: flows in a fixed slab addressed by FlowIndex, findable under both
// of their tuples through a chained hash, expired through a TimerWheel. The userspace twin
// of the kernel's conntrack hash + unconfirmed list + gc worker (nf_conntrack_core.c).
//
// Thread rules: single writer. A FlowTable is one shard and belongs to one thread; every
// method, including the const ones, must be called from that thread. Other threads post
// work to the owner. Nothing in here locks.
//
// Life of an entry (as in the kernel):
//   Allocate()  -> unconfirmed: the caller fills tuple[kReply] (NAT), tcp, timeout, ...;
//                  not findable. Counts toward size() (the kernel's nf_conntrack_count).
//   Confirm()   -> hashed under both tuples, on the timer wheel, IPS_CONFIRMED set.
//   Release()   -> frees an unconfirmed entry (packet dropped before confirmation).
//   Remove()    -> frees a confirmed entry (RST, ctnetlink delete, flush).
//   Expire()    -> frees confirmed entries whose `expires` has passed.
// The table never changes a confirmed flow's tuples: to re-key one, Remove and re-insert.
//
// Memory (1M flows, buckets = max): sizeof(Flow) 232 (timer links included) + 8 bytes of
// chain links + 4 bytes of bucket. The slab, links and buckets are allocated once by Create
// (on transparent huge pages where the system allows, to spare TLB misses); nothing grows or
// rehashes later.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/conntrack/conntrack_stats.h"
#include "core/conntrack/flow.h"
#include "core/conntrack/timer_wheel.h"
#include "core/conntrack/tuple.h"
#include "core/util/clock.h"

namespace ctsync {

struct FlowTableOptions {
  // nf_conntrack_max: entries (confirmed + unconfirmed) the table holds.
  size_t max_flows = 262144;
  // nf_conntrack_buckets. Linux 6.x sets max = buckets = 262144 on hosts with > 4 GiB.
  size_t buckets = 262144;
  // Hash seed (the kernel's nf_conntrack_hash_rnd); pick it at random in production.
  uint64_t seed = 0;
  // nf_conntrack_acct: keep packet and byte counters (32 bytes a slot, allocated only then).
  bool accounting = false;
};

// How many hash buckets early drop scans, starting at the new tuple's (NF_CT_EVICTION_RANGE).
inline constexpr size_t kEarlyDropBuckets = 8;
// Longest hash chain Confirm extends (kernel: MIN_CHAINLEN + random below MAX_CHAINLEN).
inline constexpr size_t kMaxChainLength = 8 + 64;

struct FlowLookup {
  FlowIndex idx = kNoFlow;
  Direction dir = Direction::kOriginal;  // which of the flow's tuples matched
  bool found() const { return idx != kNoFlow; }
};

class FlowTable {
 public:
  // Called for a flow just before the table frees it (expiry, early drop): the engine emits
  // its DESTROY event here. The callback must not call Remove/Release/Allocate/Confirm.
  using DestroyFn = absl::FunctionRef<void(FlowIndex, const Flow&)>;

  // Allocates the slab, buckets and wheel. `now` starts the timer wheel.
  static absl::StatusOr<std::unique_ptr<FlowTable>> Create(const FlowTableOptions& options,
                                                           Nanos now = 0);

  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  // A fresh unconfirmed entry with tuple[kOriginal] = original, zone, created = now, a new
  // id and everything else zero. When the table is full, first runs the kernel's early drop
  // (evicting entries that are not ASSURED from up to kEarlyDropBuckets buckets, on_destroy
  // is called for each) and returns kNoFlow if that freed nothing; the caller then counts
  // `drop` and drops the packet.
  FlowIndex Allocate(const Tuple& original, uint16_t zone, Nanos now, DestroyFn on_destroy);

  // Inserts an unconfirmed entry under both tuples and schedules it at flow.expires.
  // Errors leave the entry unconfirmed; the caller counts insert_failed (and drop), then
  // resolves the clash or Releases the entry:
  //   AlreadyExists      either tuple is taken in the zone (a clash);
  //   ResourceExhausted  a hash chain is longer than kMaxChainLength (the table counts
  //                      chaintoolong, as the kernel does).
  absl::Status Confirm(FlowIndex idx);
  // Frees an unconfirmed entry.
  void Release(FlowIndex idx);
  // Unhashes and frees a confirmed entry (no callback: the caller reports the destroy).
  void Remove(FlowIndex idx);

  // Looks a tuple up among confirmed entries. An entry found here may already be past its
  // `expires` (until Expire reaps it): the kernel then treats it as gone, and so must the
  // caller (report and Remove it).
  FlowLookup Find(const Tuple& tuple, uint16_t zone) const;
  // Starts fetching the hash bucket Find(tuple, zone) reads first, for a caller that has
  // other work to do before the Find (e.g. NAT checking a candidate tuple).
  void PrefetchBucket(const Tuple& tuple, uint16_t zone) const {
    __builtin_prefetch(&buckets_[BucketOf(Hash(tuple, zone))]);
  }
  // Find for a batch of packets (VPP style): hashes all keys and prefetches their buckets,
  // then their first entries, then walks the chains, so the cache misses of the batch
  // overlap. Same results as calling Find for each; out.size() must equal tuples.size().
  // zones holds one zone per tuple, or a single zone for all of them.
  void FindBatch(absl::Span<const Tuple> tuples, absl::Span<const uint16_t> zones,
                 absl::Span<FlowLookup> out) const;

  // Sets flow.expires. Later deadlines cost only the store (the wheel re-checks when the old
  // slot fires); earlier ones move the timer. Unconfirmed entries just take the value.
  void SetTimeout(FlowIndex idx, Nanos expires);

  // Frees up to `budget` confirmed flows whose expires <= now, calling on_destroy for each
  // before it is freed. Returns how many were freed. Flows left over (budget exhausted) stay
  // queued and go first next time.
  size_t Expire(Nanos now, size_t budget, DestroyFn on_destroy);

  // Calls fn for every confirmed flow (slab order). fn must not add or remove entries.
  void ForEach(absl::FunctionRef<void(FlowIndex, const Flow&)> fn) const;

  Flow& flow(FlowIndex idx) { return slab_[idx]; }
  const Flow& flow(FlowIndex idx) const { return slab_[idx]; }
  bool IsConfirmed(FlowIndex idx) const {
    return idx < options_.max_flows && slab_[idx].slot == FlowSlot::kConfirmed;
  }

  // NAT sequence adjustment side table (rare: FTP behind NAT). Cleared when the flow is freed.
  const SeqAdjust* seq_adjust(FlowIndex idx) const;
  SeqAdjust& MutableSeqAdjust(FlowIndex idx) { return seq_adjust_[idx]; }
  void ClearSeqAdjust(FlowIndex idx) { seq_adjust_.erase(idx); }
  // Accounting (nf_conntrack_acct): the flow's counters, zeroed when the entry is
  // allocated; nullptr when the table keeps none.
  FlowAccounting* accounting(FlowIndex idx) { return acct_ ? &acct_[idx] : nullptr; }
  const FlowAccounting* accounting(FlowIndex idx) const { return acct_ ? &acct_[idx] : nullptr; }
  // Starts keeping counters (the sysctl switched on at run time): flows already in the
  // table count from zero.
  void EnableAccounting();
  // Helper state of flows with a helper (nf_conn_help); freed with the flow.
  const FtpLineState* ftp_state(FlowIndex idx) const;
  FtpLineState& MutableFtpState(FlowIndex idx) { return ftp_state_[idx]; }

  // Entries in use, confirmed or not (the kernel's nf_conntrack_count).
  size_t size() const { return used_; }
  size_t confirmed_count() const { return confirmed_; }
  size_t capacity() const { return options_.max_flows; }
  // Slots below this have held a flow at some time; none above it ever has.
  FlowIndex high_water() const { return high_water_; }
  size_t bucket_count() const { return options_.buckets; }
  const FlowTableOptions& options() const { return options_; }

  ConntrackStats& stats() { return stats_; }
  const ConntrackStats& stats() const { return stats_; }

  // Bytes the table holds per flow slot (slab, hash links, buckets, counters), for the
  // benchmarks.
  size_t BytesPerFlow() const;

 private:
  explicit FlowTable(const FlowTableOptions& options, Nanos now);

  // Hash-chain nodes are (index << 1) | direction.
  static uint32_t Node(FlowIndex idx, Direction d) { return (idx << 1) | static_cast<uint32_t>(d); }
  uint64_t Hash(const Tuple& t, uint16_t zone) const;
  size_t BucketOf(uint64_t hash) const;
  size_t BucketOfNode(FlowIndex idx, Direction d) const;
  // A chain link: the next node, with the low bits of that node's hash above it (its tag),
  // so a walk skips entries whose tag differs without touching them: in a big table every
  // entry visited is a cache miss, and most chain entries are not the one looked for.
  uint32_t Tag(uint64_t hash) const {
    return static_cast<uint32_t>(uint64_t{static_cast<uint32_t>(hash)} << node_bits_);
  }
  uint32_t TagOf(uint32_t link) const { return link & ~node_mask_; }
  uint32_t NodeOf(uint32_t link) const { return link & node_mask_; }
  // Whether the node `link` points to is `tuple` in `zone`; the entry is read only when the
  // tags agree.
  bool Holds(uint32_t link, uint32_t tag, const Tuple& tuple, uint16_t zone) const {
    if (TagOf(link) != tag) return false;
    const uint32_t node = NodeOf(link);
    const Flow& f = slab_[node >> 1];
    return f.zone == zone && f.tuple[node & 1] == tuple;
  }
  void LinkNode(FlowIndex idx, Direction d, uint64_t hash, size_t bucket);
  void UnlinkNode(FlowIndex idx, Direction d, size_t bucket);
  void RemoveConfirmed(FlowIndex idx, size_t orig_bucket, size_t reply_bucket);
  void Free(FlowIndex idx);
  // Early drop starting at the bucket of `hash`; true if something was evicted.
  bool EarlyDrop(uint64_t hash, Nanos now, DestroyFn on_destroy);

  struct SlabDeleter {
    void operator()(void* p) const;
  };
  FlowLookup FindInChain(uint32_t link, uint32_t tag, const Tuple& tuple, uint16_t zone) const;

  FlowTableOptions options_;
  std::unique_ptr<Flow[], SlabDeleter> slab_;  // huge-page aligned
  std::unique_ptr<uint32_t[], SlabDeleter> buckets_;  // head link of each chain
  // Per node (index << 1 | direction): the link to the next node of its chain. A node's
  // bits fit under node_mask_ and never make up kNoFlow, which ends a chain.
  std::unique_ptr<uint32_t[], SlabDeleter> links_;
  std::unique_ptr<FlowAccounting[], SlabDeleter> acct_;  // with accounting only
  uint32_t node_bits_;
  uint32_t node_mask_;
  TimerWheel wheel_;
  absl::flat_hash_map<FlowIndex, SeqAdjust> seq_adjust_;
  absl::flat_hash_map<FlowIndex, FtpLineState> ftp_state_;
  FlowIndex free_head_ = kNoFlow;  // free entries chained through their kOriginal link
  FlowIndex high_water_ = 0;       // slab entries below this have been used at least once
  size_t used_ = 0;
  size_t confirmed_ = 0;
  uint32_t next_id_ = 1;  // wraps, as the kernel's 32-bit ids may repeat
  ConntrackStats stats_;
};

}  // namespace ctsync

// See flow_table.h. Kernel references are to Linux 6.18 net/netfilter/nf_conntrack_core.c.
#include "core/conntrack/flow_table.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <new>
#include <type_traits>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "core/util/huge_pages.h"

namespace ctsync {
namespace {

inline uint64_t Mix(uint64_t h, uint64_t w) {
  h ^= w;
  h *= 0x9e3779b97f4a7c15ull;
  return h ^ (h >> 29);
}

inline uint64_t Finish(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  return h ^ (h >> 33);
}

}  // namespace

absl::StatusOr<std::unique_ptr<FlowTable>> FlowTable::Create(const FlowTableOptions& options,
                                                             Nanos now) {
  if (options.max_flows == 0 || options.buckets == 0) {
    return absl::InvalidArgumentError("flow table: max_flows and buckets must be > 0");
  }
  // Hash nodes carry the index shifted left by one, and kNoFlow marks "none".
  if (options.max_flows >= (1u << 31) || options.buckets > 0xffffffffu) {
    return absl::InvalidArgumentError(absl::StrCat("flow table: max_flows ", options.max_flows,
                                                   " or buckets ", options.buckets, " too large"));
  }
  return std::unique_ptr<FlowTable>(new FlowTable(options, now));
}

namespace {

Flow* NewSlab(size_t count) {
  Flow* p = static_cast<Flow*>(AllocateHugePages(count * sizeof(Flow)));
  for (size_t i = 0; i < count; ++i) new (p + i) Flow();
  return p;
}

// Bucket heads and chain links alike start as kNoFlow, "end of chain".
uint32_t* NewLinks(size_t count) {
  uint32_t* p = static_cast<uint32_t*>(AllocateHugePages(count * sizeof(uint32_t)));
  std::fill(p, p + count, kNoFlow);
  return p;
}

FlowAccounting* NewAccounting(size_t count) {
  auto* p = static_cast<FlowAccounting*>(AllocateHugePages(count * sizeof(FlowAccounting)));
  for (size_t i = 0; i < count; ++i) new (p + i) FlowAccounting();
  return p;
}

}  // namespace

void FlowTable::SlabDeleter::operator()(void* p) const {
  static_assert(std::is_trivially_destructible_v<Flow>);
  FreeHugePages(p);
}

FlowTable::FlowTable(const FlowTableOptions& options, Nanos now)
    : options_(options),
      slab_(NewSlab(options.max_flows)),
      buckets_(NewLinks(options.buckets)),
      links_(NewLinks(2 * options.max_flows)),
      acct_(options.accounting ? NewAccounting(options.max_flows) : nullptr),
      node_bits_(static_cast<uint32_t>(std::bit_width(2 * options.max_flows))),
      node_mask_(static_cast<uint32_t>((uint64_t{1} << node_bits_) - 1)),
      wheel_(&slab_[0].timer, sizeof(Flow), static_cast<uint32_t>(options.max_flows), now) {}

void FlowTable::EnableAccounting() {
  if (acct_) return;
  acct_.reset(NewAccounting(options_.max_flows));
  options_.accounting = true;
}

uint64_t FlowTable::Hash(const Tuple& t, uint16_t zone) const {
  uint64_t w[4];
  std::memcpy(w, t.src.bytes.data(), 16);
  std::memcpy(w + 2, t.dst.bytes.data(), 16);
  uint64_t h = options_.seed;
  h = Mix(h, w[0]);
  h = Mix(h, w[1]);
  h = Mix(h, w[2]);
  h = Mix(h, w[3]);
  h = Mix(h, uint64_t{t.sport} | (uint64_t{t.dport} << 16) | (uint64_t{t.proto} << 32) |
                 (uint64_t{static_cast<uint8_t>(t.family)} << 40) | (uint64_t{zone} << 48));
  return Finish(h);
}

size_t FlowTable::BucketOf(uint64_t hash) const {
  // Like the kernel's reciprocal_scale: any bucket count, no modulo.
  return static_cast<size_t>((static_cast<unsigned __int128>(hash) * options_.buckets) >> 64);
}

size_t FlowTable::BucketOfNode(FlowIndex idx, Direction d) const {
  const Flow& f = slab_[idx];
  return BucketOf(Hash(f.tuple_of(d), f.zone));
}

void FlowTable::LinkNode(FlowIndex idx, Direction d, uint64_t hash, size_t bucket) {
  const uint32_t node = Node(idx, d);
  links_[node] = buckets_[bucket];
  buckets_[bucket] = Tag(hash) | node;
}

void FlowTable::UnlinkNode(FlowIndex idx, Direction d, size_t bucket) {
  const uint32_t target = Node(idx, d);
  uint32_t* link = &buckets_[bucket];
  while (*link != kNoFlow) {
    if (NodeOf(*link) == target) {
      *link = links_[target];
      links_[target] = kNoFlow;
      return;
    }
    link = &links_[NodeOf(*link)];
  }
}

FlowLookup FlowTable::Find(const Tuple& tuple, uint16_t zone) const {
  const uint64_t hash = Hash(tuple, zone);
  return FindInChain(buckets_[BucketOf(hash)], Tag(hash), tuple, zone);
}

void FlowTable::FindBatch(absl::Span<const Tuple> tuples, absl::Span<const uint16_t> zones,
                          absl::Span<FlowLookup> out) const {
  // Stages over a group of keys, each stage issuing the next memory access of every key
  // before using any of them: bucket heads, then one chain step per round (the entry when
  // the link's tag matches, else the next link), so the misses of different keys overlap
  // instead of queueing behind each other.
  constexpr size_t kGroup = 16;
  uint32_t link[kGroup];
  uint32_t tag[kGroup];
  const bool one_zone = zones.size() == 1;
  auto prefetch_step = [this](uint32_t l, uint32_t t) {
    const uint32_t node = NodeOf(l);
    if (TagOf(l) == t) {
      const Flow* f = &slab_[node >> 1];
      __builtin_prefetch(&f->tuple[node & 1]);
      __builtin_prefetch(&f->zone);
    } else {
      __builtin_prefetch(&links_[node]);
    }
  };
  for (size_t base = 0; base < tuples.size(); base += kGroup) {
    const size_t n = std::min(kGroup, tuples.size() - base);
    for (size_t i = 0; i < n; ++i) {
      const uint16_t zone = one_zone ? zones[0] : zones[base + i];
      const uint64_t hash = Hash(tuples[base + i], zone);
      const size_t b = BucketOf(hash);
      link[i] = static_cast<uint32_t>(b);  // bucket index for now
      tag[i] = Tag(hash);
      __builtin_prefetch(&buckets_[b]);
    }
    for (size_t i = 0; i < n; ++i) {
      link[i] = buckets_[link[i]];
      if (link[i] != kNoFlow) prefetch_step(link[i], tag[i]);
    }
    size_t pending = n;
    for (size_t i = 0; i < n; ++i) out[base + i] = FlowLookup{};
    while (pending > 0) {
      pending = 0;
      for (size_t i = 0; i < n; ++i) {
        if (link[i] == kNoFlow) continue;
        const uint32_t node = NodeOf(link[i]);
        const uint16_t zone = one_zone ? zones[0] : zones[base + i];
        if (Holds(link[i], tag[i], tuples[base + i], zone)) {
          out[base + i] = {node >> 1, static_cast<Direction>(node & 1)};
          // The caller updates timeout, TCP state and counters next: start fetching those.
          __builtin_prefetch(&slab_[node >> 1].expires, 1);
          __builtin_prefetch(&slab_[node >> 1].tcp.last_end, 1);
          if (acct_) __builtin_prefetch(&acct_[node >> 1], 1);
          link[i] = kNoFlow;
          continue;
        }
        link[i] = links_[node];
        if (link[i] != kNoFlow) {
          prefetch_step(link[i], tag[i]);
          ++pending;
        }
      }
    }
  }
}

FlowLookup FlowTable::FindInChain(uint32_t link, uint32_t tag, const Tuple& tuple,
                                  uint16_t zone) const {
  for (; link != kNoFlow; link = links_[NodeOf(link)]) {
    if (Holds(link, tag, tuple, zone))
      return {NodeOf(link) >> 1, static_cast<Direction>(NodeOf(link) & 1)};
  }
  return {};
}

FlowIndex FlowTable::Allocate(const Tuple& original, uint16_t zone, Nanos now,
                              DestroyFn on_destroy) {
  if (used_ >= options_.max_flows) {
    // __nf_conntrack_alloc: a full table tries early_drop() once, else the packet is dropped.
    if (!EarlyDrop(Hash(original, zone), now, on_destroy)) return kNoFlow;
  }
  FlowIndex idx;
  if (free_head_ != kNoFlow) {
    idx = free_head_;
    free_head_ = links_[Node(idx, Direction::kOriginal)];
  } else {
    idx = high_water_++;
  }
  Flow& f = slab_[idx];
  f = Flow{};
  f.tuple[0] = original;
  f.zone = zone;
  f.created = now;
  f.id = next_id_++;
  f.slot = FlowSlot::kUnconfirmed;
  if (acct_) acct_[idx] = FlowAccounting{};
  ++used_;
  return idx;
}

absl::Status FlowTable::Confirm(FlowIndex idx) {
  if (idx >= options_.max_flows || slab_[idx].slot != FlowSlot::kUnconfirmed) {
    return absl::FailedPreconditionError(absl::StrCat("flow ", idx, " is not unconfirmed"));
  }
  Flow& f = slab_[idx];
  // __nf_conntrack_confirm refuses the insert when either tuple is already in the table.
  // Both buckets are fetched before either chain is walked, so the two misses overlap.
  uint64_t hash[2];
  size_t bucket[2];
  for (int d = 0; d < 2; ++d) {
    hash[d] = Hash(f.tuple[d], f.zone);
    bucket[d] = BucketOf(hash[d]);
    __builtin_prefetch(&buckets_[bucket[d]], 1);
  }
  for (int d = 0; d < 2; ++d) {
    const Tuple& key = f.tuple[d];
    const uint32_t tag = Tag(hash[d]);
    size_t chain_len = 0;
    for (uint32_t link = buckets_[bucket[d]]; link != kNoFlow; link = links_[NodeOf(link)]) {
      if (Holds(link, tag, key, f.zone)) {
        return absl::AlreadyExistsError(absl::StrCat("flow ", idx, ": ",
                                                     d == 0 ? "original" : "reply",
                                                     " tuple clashes with flow ",
                                                     NodeOf(link) >> 1));
      }
      // The kernel refuses to grow a chain past a (randomised) 8..72 entries: such chains
      // only come from hash flooding. We use the fixed upper bound.
      if (chain_len++ > kMaxChainLength) {
        ++stats_.chaintoolong;
        return absl::ResourceExhaustedError(
            absl::StrCat("flow ", idx, ": hash chain longer than ", kMaxChainLength));
      }
    }
  }
  LinkNode(idx, Direction::kOriginal, hash[0], bucket[0]);
  LinkNode(idx, Direction::kReply, hash[1], bucket[1]);
  f.status |= kIpsConfirmed;
  f.slot = FlowSlot::kConfirmed;
  ++confirmed_;
  wheel_.Schedule(idx, f.expires);
  return absl::OkStatus();
}

void FlowTable::Free(FlowIndex idx) {
  Flow& f = slab_[idx];
  f.slot = FlowSlot::kFree;
  links_[Node(idx, Direction::kOriginal)] = free_head_;
  free_head_ = idx;
  --used_;
  if (!seq_adjust_.empty()) seq_adjust_.erase(idx);
  if (!ftp_state_.empty()) ftp_state_.erase(idx);
}

void FlowTable::Release(FlowIndex idx) {
  if (idx >= options_.max_flows || slab_[idx].slot != FlowSlot::kUnconfirmed) return;
  Free(idx);
}

void FlowTable::Remove(FlowIndex idx) {
  if (!IsConfirmed(idx)) return;
  RemoveConfirmed(idx, BucketOfNode(idx, Direction::kOriginal),
                  BucketOfNode(idx, Direction::kReply));
}

void FlowTable::RemoveConfirmed(FlowIndex idx, size_t orig_bucket, size_t reply_bucket) {
  UnlinkNode(idx, Direction::kOriginal, orig_bucket);
  UnlinkNode(idx, Direction::kReply, reply_bucket);
  wheel_.Cancel(idx);
  slab_[idx].status &= ~kIpsConfirmed;
  --confirmed_;
  Free(idx);
}

void FlowTable::SetTimeout(FlowIndex idx, Nanos expires) {
  Flow& f = slab_[idx];
  const Nanos old = f.expires;
  f.expires = expires;
  if (f.slot != FlowSlot::kConfirmed) return;
  // A timer filed for the old deadline fires no later than a later deadline needs: leave it
  // and let the wheel re-file it when its slot comes (this is the per-packet case). A timer
  // already on the due list would be freed by Expire's re-check anyway; moving it keeps the
  // due list to flows that are really due.
  if (expires >= old && !wheel_.IsDue(idx)) return;
  wheel_.Schedule(idx, expires);
}

size_t FlowTable::Expire(Nanos now, size_t budget, DestroyFn on_destroy) {
  wheel_.Advance(now, [this](uint32_t id) { return slab_[id].expires; });
  // Destroy in small groups whose hash buckets are fetched together, so the unlinking
  // misses of a group overlap.
  constexpr size_t kGroup = 8;
  size_t freed = 0;
  while (freed < budget) {
    FlowIndex group[kGroup];
    size_t bucket[kGroup][2];
    size_t n = 0;
    while (n < kGroup && freed + n < budget) {
      const uint32_t idx = wheel_.PopDue();
      if (idx == TimerWheel::kNone) break;
      const Flow& f = slab_[idx];
      if (f.expires > now) {
        wheel_.Schedule(idx, f.expires);  // refreshed after it came due
        continue;
      }
      for (int d = 0; d < 2; ++d) {
        bucket[n][d] = BucketOfNode(idx, static_cast<Direction>(d));
        __builtin_prefetch(&buckets_[bucket[n][d]], 1);
      }
      group[n++] = idx;
    }
    if (n == 0) break;
    for (size_t i = 0; i < n; ++i) {
      on_destroy(group[i], slab_[group[i]]);
      RemoveConfirmed(group[i], bucket[i][0], bucket[i][1]);
    }
    freed += n;
  }
  return freed;
}

bool FlowTable::EarlyDrop(uint64_t hash, Nanos now, DestroyFn on_destroy) {
  // early_drop(): look at up to NF_CT_EVICTION_RANGE buckets from the new tuple's; in each,
  // reap expired entries and evict every entry that is not ASSURED (nor dying); stop at the
  // first bucket that gave up at least one entry. Expired entries reaped on the way free
  // room but do not count as drops, so on their own they do not let the packet through.
  size_t bucket = BucketOf(hash);
  for (size_t i = 0; i < kEarlyDropBuckets; ++i, bucket = (bucket + 1) % options_.buckets) {
    // Collect first: freeing a flow unlinks its other node, which may be in this chain.
    absl::InlinedVector<FlowIndex, 16> expired;
    absl::InlinedVector<FlowIndex, 16> victims;
    for (uint32_t link = buckets_[bucket]; link != kNoFlow; link = links_[NodeOf(link)]) {
      const FlowIndex idx = NodeOf(link) >> 1;
      const Flow& f = slab_[idx];
      absl::InlinedVector<FlowIndex, 16>* list = &victims;
      if (f.expires <= now) {
        list = &expired;
      } else if (f.status & (kIpsAssured | kIpsDying)) {
        continue;
      }
      // Both of a flow's tuples may hash to this bucket.
      bool seen = false;
      for (FlowIndex v : *list) seen |= v == idx;
      if (!seen) list->push_back(idx);
    }
    for (FlowIndex idx : expired) {
      on_destroy(idx, slab_[idx]);
      Remove(idx);
    }
    for (FlowIndex idx : victims) {
      on_destroy(idx, slab_[idx]);
      Remove(idx);
    }
    if (!victims.empty()) {
      stats_.early_drop += static_cast<uint32_t>(victims.size());
      return true;
    }
  }
  return false;
}

void FlowTable::ForEach(absl::FunctionRef<void(FlowIndex, const Flow&)> fn) const {
  for (FlowIndex idx = 0; idx < high_water_; ++idx) {
    if (slab_[idx].slot == FlowSlot::kConfirmed) fn(idx, slab_[idx]);
  }
}

const FtpLineState* FlowTable::ftp_state(FlowIndex idx) const {
  auto it = ftp_state_.find(idx);
  return it == ftp_state_.end() ? nullptr : &it->second;
}

const SeqAdjust* FlowTable::seq_adjust(FlowIndex idx) const {
  auto it = seq_adjust_.find(idx);
  return it == seq_adjust_.end() ? nullptr : &it->second;
}

size_t FlowTable::BytesPerFlow() const {
  return sizeof(Flow) + 2 * sizeof(uint32_t) + (acct_ ? sizeof(FlowAccounting) : 0) +
         (options_.buckets * sizeof(uint32_t) + options_.max_flows - 1) / options_.max_flows;
}

}  // namespace ctsync

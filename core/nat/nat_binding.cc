#include "core/nat/nat_binding.h"

#include <algorithm>
#include <utility>

#include "core/conntrack/l4_trackers.h"

namespace ctsync::nat {
namespace {

inline uint32_t Rol32(uint32_t w, unsigned s) { return (w << s) | (w >> (32 - s)); }

// Four bytes of an address as the kernel's u32 view of a __be32 word reads them on a
// little-endian machine, so that the hash spreads exactly as the kernel's does.
inline uint32_t RawWord(const IpAddress& a, int i) {
  const uint8_t* p = a.bytes.data() + 4 * i;
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}
inline uint32_t HostWord(const IpAddress& a, int i) {
  const uint8_t* p = a.bytes.data() + 4 * i;
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline void SetHostWord(IpAddress* a, int i, uint32_t v) {
  uint8_t* p = a->bytes.data() + 4 * i;
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// reciprocal_scale: maps a 32-bit hash onto [0, n) without a division.
inline uint32_t ReciprocalScale(uint32_t v, uint32_t n) {
  return static_cast<uint32_t>((uint64_t{v} * n) >> 32);
}

bool HasL4Key(uint8_t proto) {
  return proto == kProtoTcp || proto == kProtoUdp || proto == kProtoSctp;
}

// Protocols whose tracker sets allow_clash (two packets racing to create the same entry
// may both pass): UDP, UDP-Lite, ICMP, ICMPv6 and the generic tracker.
bool AllowClash(uint8_t proto) {
  return proto != kProtoTcp && proto != kProtoSctp && proto != kProtoDccp && proto != kProtoGre;
}

// nf_nat_inet_in_range: always judged on the tuple's source address.
bool AddrInRange(const Tuple& t, const NatRange& r) {
  return t.src >= r.min_addr && t.src <= r.max_addr;
}

// l4proto_in_range.
bool L4InRange(const Tuple& t, ManipType manip, const NatRange& r) {
  switch (t.proto) {
    case kProtoIcmp:
    case kProtoIcmpv6:
      return t.sport >= r.min_proto && t.sport <= r.max_proto;
    case kProtoGre:
    case kProtoTcp:
    case kProtoUdp:
    case kProtoSctp: {
      const uint16_t port = manip == ManipType::kSrc ? t.sport : t.dport;
      return port >= r.min_proto && port <= r.max_proto;
    }
    default:
      return true;
  }
}

// nf_in_range: would a source mapping to `t` satisfy the range?
bool InRange(const Tuple& t, const NatRange& r) {
  if ((r.flags & kRangeMapIps) && !AddrInRange(t, r)) return false;
  if (!(r.flags & kRangeProtoSpecified)) return true;
  return L4InRange(t, ManipType::kSrc, r);
}

}  // namespace

namespace {
// One step of the kernel's __jhash_mix (six per round) and of __jhash_final (seven).
inline void MixStep(uint32_t& x, uint32_t& y, uint32_t& z, int r) {
  x -= z;
  x ^= Rol32(z, r);
  z += y;
}
inline void FinalStep(uint32_t& x, uint32_t y, int r) {
  x ^= y;
  x -= Rol32(y, r);
}
}  // namespace

uint32_t Jhash2(const uint32_t* k, uint32_t length, uint32_t initval) {
  uint32_t a, b, c;
  a = b = c = 0xdeadbeefu + (length << 2) + initval;
  while (length > 3) {
    a += k[0];
    b += k[1];
    c += k[2];
    MixStep(a, b, c, 4);
    MixStep(b, c, a, 6);
    MixStep(c, a, b, 8);
    MixStep(a, b, c, 16);
    MixStep(b, c, a, 19);
    MixStep(c, a, b, 4);
    length -= 3;
    k += 3;
  }
  if (length == 0) return c;
  if (length >= 3) c += k[2];
  if (length >= 2) b += k[1];
  a += k[0];
  FinalStep(c, b, 14);
  FinalStep(a, c, 11);
  FinalStep(b, a, 25);
  FinalStep(c, b, 16);
  FinalStep(a, c, 4);
  FinalStep(b, a, 14);
  FinalStep(c, b, 24);
  return c;
}

NatBinder::NatBinder(ConntrackEngine* conntrack, uint64_t seed)
    : conntrack_(conntrack),
      rng_(seed ^ 0x6a09e667f3bcc909ull),
      by_source_(conntrack->table().capacity(), conntrack->table().bucket_count(), seed) {
  conntrack_->add_destroy_hook([this](FlowIndex idx) { by_source_.Remove(idx); });
}

uint16_t NatBinder::RandomU16() {
  // splitmix64
  uint64_t z = (rng_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return static_cast<uint16_t>((z ^ (z >> 31)) >> 48);
}

FlowLookup NatBinder::FindLive(const Tuple& t, uint16_t zone, Nanos now) {
  FlowTable& table = conntrack_->table();
  const FlowLookup l = table.Find(t, zone);
  if (l.found() && table.flow(l.idx).expires <= now) {
    // nf_ct_gc_expired: a dead entry found on the way is reaped, not counted as a clash.
    conntrack_->Kill(l.idx, now);
    return FlowLookup{};
  }
  return l;
}

bool NatBinder::UsedTuple(const Tuple& t, const Flow& ct, Nanos now) {
  const std::optional<Tuple> reply = InvertTuple(t);
  if (!reply) return false;
  const FlowLookup l = FindLive(*reply, ct.zone, now);
  if (!l.found()) return false;
  const Flow& other = conntrack_->table().flow(l.idx);
  // Same original tuple: the same flow created twice (racing packets); confirmation's
  // clash resolution deals with it, so the tuple does not count as taken.
  if (other.tuple[0] == ct.tuple[0] && other.zone == ct.zone) return false;
  ++conntrack_->stats().found;
  return true;
}

bool NatBinder::UsedTupleNew(const Tuple& t, const Flow& ct, Nanos now) {
  constexpr uint32_t kUsesNat = kIpsNatMask | kIpsSeqAdjust;
  if (!UsedTuple(t, ct, now)) return false;
  if (!AllowClash(ct.proto())) return true;
  if (ct.status & kUsesNat) return true;
  // A clash in the reverse direction (both ends opened the "same" flow at once) between
  // flows that are not NATed is left to confirmation's clash resolution.
  FlowLookup l = FindLive(t, ct.zone, now);
  if (!l.found()) {
    const std::optional<Tuple> reply = InvertTuple(t);
    if (reply) l = FindLive(*reply, ct.zone, now);
    if (!l.found()) return false;
  }
  const Flow& other = conntrack_->table().flow(l.idx);
  if (other.status & kUsesNat) return true;
  return !(other.tuple[0] == ct.tuple[1]);
}

bool NatBinder::UsedTupleHarder(const Tuple& t, const Flow& ct, unsigned attempts_left, Nanos now) {
  if (attempts_left > kHarderThreshold || t.proto != kProtoTcp ||
      ct.tcp.state != TcpState::kSynSent)
    return UsedTuple(t, ct, now);
  // The last few attempts for a TCP SYN may evict a TIME_WAIT (or later) SNAT entry whose
  // sequence space the new connection has already passed.
  const std::optional<Tuple> reply = InvertTuple(t);
  if (!reply) return false;
  const FlowLookup l = FindLive(*reply, ct.zone, now);
  if (!l.found()) return false;
  if (l.dir == Direction::kOriginal) return true;
  const Flow& other = conntrack_->table().flow(l.idx);
  if (other.tcp.state < TcpState::kTimeWait) return true;
  if (other.status & (kIpsFixedTimeout | kIpsDying)) return true;
  if (!(other.status & kIpsSrcNat)) return true;
  if (static_cast<int32_t>(ct.tcp.seen[0].td_end - other.tcp.seen[0].td_end) <= 0) return true;
  const bool offloaded = other.status & (kIpsOffload | kIpsHwOffload);
  conntrack_->Kill(l.idx, now);
  return offloaded;
}

bool NatBinder::FindAppropriateSrc(const Tuple& orig, uint32_t src_hash, uint16_t zone,
                                   const NatRange& range, Tuple* result) {
  const FlowTable& table = conntrack_->table();
  return by_source_.FindIf(src_hash, [&](FlowIndex idx) {
    const Flow& f = table.flow(idx);
    const Tuple& t = f.tuple[0];
    if (f.slot == FlowSlot::kFree || t.proto != orig.proto || t.family != orig.family ||
        t.src != orig.src || t.sport != orig.sport || f.zone != zone)
      return false;
    const std::optional<Tuple> inv = InvertTuple(f.tuple[1]);
    if (!inv) return false;
    *result = *inv;
    result->dst = orig.dst;
    result->dport = orig.dport;
    result->proto = orig.proto;
    return InRange(*result, range);
  });
}

void NatBinder::FindBestIpsProto(uint16_t zone, Tuple* t, const NatRange& range,
                                 ManipType manip) const {
  if (!(range.flags & kRangeMapIps)) return;
  IpAddress* var = manip == ManipType::kSrc ? &t->src : &t->dst;
  if (range.min_addr == range.max_addr) {
    *var = range.min_addr;
    return;
  }
  const int max = t->family == Family::kIpv4 ? 0 : 3;
  const bool persistent = range.flags & kRangePersistent;
  // Hash of the source (and, unless --persistent, the destination and zone): a client keeps
  // its address for every server it talks to (or for all of them with --persistent).
  uint32_t words[4];
  for (int i = 0; i < 4; ++i) words[i] = RawWord(t->src, i);
  uint32_t j = Jhash2(words, 4, persistent ? 0 : RawWord(t->dst, max) ^ zone);
  bool full_range = false;
  for (int i = 0; i <= max; ++i) {
    uint32_t minip, dist;
    if (!full_range) {
      minip = HostWord(range.min_addr, i);
      dist = HostWord(range.max_addr, i) - minip + 1;
    } else {
      minip = 0;
      dist = ~0u;
    }
    SetHostWord(var, i, minip + ReciprocalScale(j, dist));
    if (HostWord(*var, i) != HostWord(range.max_addr, i)) full_range = true;
    if (!persistent) j ^= RawWord(t->dst, i);
  }
}

void NatBinder::UniqueL4(Tuple* t, const NatRange& range, ManipType manip, const Flow& ct,
                         Nanos now) {
  uint16_t* key;
  unsigned min, range_size;
  const bool specified = range.flags & kRangeProtoSpecified;
  if (t->proto == kProtoIcmp || t->proto == kProtoIcmpv6) {
    // The id sits in the source half and means the same in both directions.
    key = &t->sport;
    if (!specified) {
      min = 0;
      range_size = 65536;
    } else {
      min = range.min_proto;
      range_size = static_cast<uint16_t>(range.max_proto - range.min_proto) + 1u;
    }
  } else if (HasL4Key(t->proto)) {
    key = manip == ManipType::kSrc ? &t->sport : &t->dport;
    if (!specified) {
      // Without a range a destination port is never changed; a source port keeps its
      // class (below 512, 600-1023, 1024 and up: "privileged" ports stay privileged).
      if (manip == ManipType::kDst) return;
      if (*key < 1024) {
        if (*key < 512) {
          min = 1;
          range_size = 511;
        } else {
          min = 600;
          range_size = 1023 - 600 + 1;
        }
      } else {
        min = 1024;
        range_size = 65535 - 1024 + 1;
      }
    } else {
      unsigned lo = range.min_proto, hi = range.max_proto;
      if (hi < lo) std::swap(lo, hi);
      min = lo;
      range_size = hi - lo + 1;
    }
  } else {
    return;
  }

  uint16_t off =
      ((range.flags & kRangeProtoRandomAll) || manip != ManipType::kDst) ? RandomU16() : 0;
  unsigned attempts = std::min(range_size, kMaxAttempts);
  // Bounded search: a full scan of a crowded range would stall the datapath, so try a
  // window from a random offset, then ever smaller windows from new random offsets.
  for (;;) {
    for (unsigned i = 0; i < attempts; ++i, ++off) {
      *key = static_cast<uint16_t>(min + off % range_size);
      if (!UsedTupleHarder(*t, ct, attempts - i, now)) return;
    }
    if (attempts >= range_size || attempts < 16) return;
    attempts /= 2;
    off = RandomU16();
  }
}

void NatBinder::GetUniqueTuple(Tuple* out, const Tuple& orig, const NatRange& range, const Flow& ct,
                               ManipType manip, Nanos now) {
  const bool random_all = range.flags & kRangeProtoRandomAll;
  bool have_best = false;
  // 1) A source mapping keeps the original tuple when it fits and is free, else reuses the
  //    mapping another connection from the same source already has.
  if (manip == ManipType::kSrc && !random_all) {
    if (InRange(orig, range)) {
      if (!UsedTupleNew(orig, ct, now)) {
        *out = orig;
        return;
      }
    } else {
      // The by-source chain and the table chain of step 2's tuple are independent: start
      // fetching both before walking either, so their cache misses overlap.
      const uint32_t src_hash = by_source_.KeyHash(orig, ct.zone);
      by_source_.Prefetch(src_hash);
      *out = orig;
      FindBestIpsProto(ct.zone, out, range, manip);
      have_best = true;
      if (const std::optional<Tuple> reply = InvertTuple(*out))
        conntrack_->table().PrefetchBucket(*reply, ct.zone);
      Tuple mapped;
      if (FindAppropriateSrc(orig, src_hash, ct.zone, range, &mapped) &&
          !UsedTuple(mapped, ct, now)) {
        *out = mapped;
        return;
      }
    }
  }
  // 2) The address from the range (hash-chosen when there are several).
  if (!have_best) {
    *out = orig;
    FindBestIpsProto(ct.zone, out, range, manip);
  }
  // 3) Keep the port when it is in range and free.
  if (!random_all) {
    if (range.flags & kRangeProtoSpecified) {
      if (L4InRange(*out, manip, range) &&
          (range.min_proto == range.max_proto || !UsedTuple(*out, ct, now)))
        return;
    } else if (!UsedTuple(*out, ct, now)) {
      return;
    }
  }
  // 4) Search the port / id range.
  UniqueL4(out, range, manip, ct, now);
}

bool NatBinder::SetupInfo(FlowIndex idx, const NatRange& range, ManipType manip, Nanos now) {
  FlowTable& table = conntrack_->table();
  if (table.IsConfirmed(idx)) return true;
  Flow& f = table.flow(idx);
  const uint32_t done_bit = manip == ManipType::kSrc ? kIpsSrcNatDone : kIpsDstNatDone;
  if (f.status & done_bit) return false;

  // Every forwarded flow reaches the source manip (a SNAT rule or the null binding) and its
  // by-source bucket: start fetching that at the destination manip, so the fetch overlaps
  // this binding's uniqueness lookup instead of stalling the source manip.
  if (manip == ManipType::kDst) by_source_.Prefetch(by_source_.KeyHash(f.tuple[0], f.zone));
  // The tuple as it looks after earlier manips: the inverse of the current reply.
  const std::optional<Tuple> curr = InvertTuple(f.tuple[1]);
  if (curr) {
    Tuple chosen;
    GetUniqueTuple(&chosen, *curr, range, f, manip, now);
    if (!(chosen == *curr)) {
      const std::optional<Tuple> reply = InvertTuple(chosen);
      if (reply) {
        f.tuple[1] = *reply;
        f.status |= manip == ManipType::kSrc ? kIpsSrcNat : kIpsDstNat;
      }
    }
  }
  if (manip == ManipType::kSrc) by_source_.Add(idx, by_source_.KeyHash(f.tuple[0], f.zone));
  f.status |= done_bit;
  return true;
}

bool NatBinder::NullBinding(FlowIndex idx, ManipType manip, Nanos now) {
  const Flow& f = conntrack_->table().flow(idx);
  NatRange r;
  r.flags = kRangeMapIps;
  // The reply tuple, in case an earlier manip already moved this end.
  r.min_addr = r.max_addr = manip == ManipType::kSrc ? f.tuple[1].dst : f.tuple[1].src;
  return SetupInfo(idx, r, manip, now);
}

}  // namespace ctsync::nat

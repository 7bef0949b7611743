// IPv4 and IPv6 reassembly before connection tracking (the kernel's nf_defrag_ipv4 /
// nf_defrag_ipv6 via ip_defrag and nf_ct_frag6_gather), and re-fragmentation of the
// tracked, possibly NATed datagram into the sizes it arrived in (ip_do_fragment's and
// ip6_fragment's frag_list fast path).
//
// Owned by one datapath thread (the one owning the flow-table shard); not thread-safe.
// Time is passed in; nothing here reads a clock.
//
// Kernel rules followed (net/ipv4/ip_fragment.c, net/ipv4/inet_fragment.c,
// net/ipv6/netfilter/nf_conntrack_reasm.c):
//  - Queue key: family, source, destination, identification, IPv4 protocol, conntrack zone
//    (the kernel's defrag "user" is IP_DEFRAG_CONNTRACK_IN + zone).
//  - A queue lives ipfrag_time (30 s) for IPv4 and nf_conntrack_frag6_timeout (60 s) for
//    IPv6 from its creation; fragments do not extend it. Expiry sends nothing (the kernel
//    skips the ICMP time-exceeded for conntrack defrag users).
//  - Memory: when the charged memory is above the high threshold (4 MiB), every fragment is
//    dropped (also those of existing queues: inet_frag_find checks before the lookup); old
//    queues are not evicted (there is no evictor since 4.17). Charges are an estimate of
//    the kernel's skb truesize: frame bytes + kFragmentOverhead, kQueueOverhead per queue.
//  - Overlap (RFC 5722 + errata 3089, applied to IPv4 too since 4.19): a fragment that
//    lies entirely within an already received in-order run is a duplicate and is dropped
//    alone; any other overlap kills the whole queue.
//  - IPv4: a non-last fragment's length is rounded down to 8; a last fragment that ends
//    before data already seen, or a second different last fragment, or data beyond a known
//    end, or an empty fragment kill the queue; a reassembled length above 65535 kills it.
//    IPv6: a non-last fragment not a multiple of 8 kills the queue (the kernel instead
//    passes that one fragment on untracked: a deliberate difference), and the other
//    inconsistencies drop just the fragment, as nf_ct_frag6_queue does.
//  - ECN: fragments mixing Not-ECT with ECT/CE are dropped with their queue; CE on any
//    fragment marks the datagram CE (ip_frag_ecn_table).
//  - The reassembled IPv4 header is the first fragment's, with total length fixed, DF set
//    only if the largest fragment had DF, offset/MF clear, and its checksum recomputed.
//    The IPv6 datagram drops the fragment header and fixes the payload length.
//  - Not modelled: ipfrag_max_dist (the per-source "too far" reinitialisation).
//
// Replication (issue #5, beyond the kernel): so that a backup promoted in the middle of a
// fragmented datagram reassembles it as the single kernel would have, the owner may record
// DefragEvents (a fragment queued, a queue gone) for sync to send, and a backup re-adds a
// peer's fragments with Import / ImportGone. Learnt fragments go through the same checks and
// limits as received ones, keep the peer queue's deadline (never extended), and are never
// passed on by themselves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/net/ip_address.h"
#include "core/packet/parsed_packet.h"
#include "core/util/clock.h"

namespace ctsync {

struct DefragOptions {
  Nanos ipv4_timeout = 30 * kNanosPerSecond;  // net.ipv4.ipfrag_time
  Nanos ipv6_timeout = 60 * kNanosPerSecond;  // net.netfilter.nf_conntrack_frag6_timeout
  size_t high_thresh = 4 * 1024 * 1024;       // ipfrag_high_thresh / frag6_high_thresh
  size_t max_queues = 65536;                  // hard cap on queues (kernel: memory only)
  // DefragEvents held for the owner to replicate (PopEvent); 0: none are recorded. Beyond
  // it new events are dropped and counted (export_overflow).
  size_t export_capacity = 0;
};

// A fragment queue's identity (the kernel's inet_frag key). `proto` is 0 for IPv6.
struct FragmentQueueKey {
  Family family = Family::kNone;
  uint8_t proto = 0;
  uint16_t zone = 0;
  uint32_t id = 0;
  IpAddress src;
  IpAddress dst;
  friend bool operator==(const FragmentQueueKey&, const FragmentQueueKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const FragmentQueueKey& k) {
    return H::combine(std::move(h), k.family, k.proto, k.zone, k.id, k.src, k.dst);
  }
};

// What a peer needs to hold the same queues: a fragment this node queued (with the frame
// exactly as Add got it), or the end of a queue that had such fragments (completed, killed
// or expired), so the peer drops its copy instead of holding it until it expires.
struct DefragEvent {
  enum class Kind : uint8_t { kQueued, kGone };
  Kind kind = Kind::kQueued;
  FragmentQueueKey key;
  Nanos deadline = 0;          // kQueued: when the queue expires (this node's clock)
  std::vector<uint8_t> frame;  // kQueued
};

// How a datagram arrived: what Refragment needs to send it on in the same pieces.
struct FragmentLayout {
  Family family = Family::kNone;
  uint32_t id = 0;                      // IPv4 identification or IPv6 fragment id
  std::vector<uint16_t> payload_sizes;  // fragmentable bytes of each fragment, by offset
  uint16_t max_fragment_size = 0;       // largest fragment's IP length (frag_max_size)
  // IPv6: length of the unfragmentable part (IPv6 header + extension headers before the
  // fragment header) and the offset, from the IP header, of the next-header byte that
  // named the fragment header.
  uint16_t v6_unfragmentable_len = 0;
  uint16_t v6_nexthdr_field = 0;
};

#define CTSYNC_DEFRAG_COUNTERS(X)                                               \
  X(fragments)         /* fragments handed to Add */                            \
  X(reassembled)       /* datagrams completed */                                \
  X(duplicates)        /* fragment dropped alone: already covered */            \
  X(overlaps)          /* queue killed: overlapping fragment */                 \
  X(invalid)           /* fragment or queue dropped: inconsistent length/end */ \
  X(oversize)          /* queue killed: reassembled length > 65535 */           \
  X(ecn_mismatch)      /* queue killed: Not-ECT mixed with ECT/CE */            \
  X(memory_drops)      /* fragment dropped: memory above the high threshold */  \
  X(queue_limit_drops) /* fragment dropped: max_queues reached */               \
  X(timeouts)          /* queues expired */                                     \
  X(bad_input)         /* not a fragment, or offsets do not fit the frame */        \
  X(learnt)            /* peer fragments queued by Import */                    \
  X(learnt_bad)        /* peer fragment dropped: unparsable or not a fragment */ \
  X(learnt_stale)      /* peer fragment dropped: its queue's lifetime is over */ \
  X(learnt_complete)   /* peer fragments alone made a datagram: dropped */      \
  X(learnt_gone)       /* queues dropped because the peer's queue ended */      \
  X(export_overflow)   /* DefragEvents not recorded: export_capacity reached */

struct DefragCounters {
#define CTSYNC_DEFRAG_COUNTER_FIELD(name) uint64_t name = 0;
  CTSYNC_DEFRAG_COUNTERS(CTSYNC_DEFRAG_COUNTER_FIELD)
#undef CTSYNC_DEFRAG_COUNTER_FIELD

  // Calls fn(name, value) for every counter, in declaration order (for stats dumps).
  template <typename Fn>
  void ForEach(Fn&& fn) const {
#define CTSYNC_DEFRAG_COUNTER_VISIT(name) fn(#name, name);
    CTSYNC_DEFRAG_COUNTERS(CTSYNC_DEFRAG_COUNTER_VISIT)
#undef CTSYNC_DEFRAG_COUNTER_VISIT
  }
};

struct DefragResult {
  enum class Kind : uint8_t {
    kQueued,       // held; nothing to pass on (the kernel's NF_STOLEN)
    kReassembled,  // `frame` holds the whole datagram, `layout` how it came
    kDropped,      // see the counters for why
  };
  Kind kind = Kind::kDropped;
  std::vector<uint8_t> frame;
  FragmentLayout layout;
};

class Defragmenter {
 public:
  // Per-fragment and per-queue charges against high_thresh (an estimate of skb truesize
  // and of struct ipq / frag_queue).
  static constexpr size_t kFragmentOverhead = 256;
  static constexpr size_t kQueueOverhead = 128;

  explicit Defragmenter(const DefragOptions& options = {});

  // Adds one fragment. `pkt` must be ParseEthernet's result for `frame` with
  // pkt.is_fragment set. `zone` is the conntrack zone the packet will be tracked in.
  DefragResult Add(const ParsedPacket& pkt, absl::Span<const uint8_t> frame, uint16_t zone,
                   Nanos now);

  // Drops queues whose time is up, looking at no more than `max_steps` expiry records per
  // call so one tick's work is bounded. Records of queues that already completed or died
  // also take a step (they are discarded), so call this every tick rather than until it
  // returns 0. Returns the number of queues expired by this call.
  size_t Expire(Nanos now, size_t max_steps = 64);

  // Replication, sending side: the oldest recorded event (see DefragOptions::
  // export_capacity). False when there is none.
  bool PopEvent(DefragEvent* out);

  // Replication, receiving side. Re-adds a fragment a peer queued: `frame` is the peer's
  // DefragEvent frame (untrusted: parsed and checked here), `lifetime` what was left of the
  // peer queue's life when it was sent. A queue created by it expires after that lifetime
  // (at most the family's timeout); an existing queue keeps its deadline. Memory and queue
  // limits apply as to received fragments. Returns kQueued or kDropped, never
  // kReassembled: fragments the peer had all of, it passed on itself. Records no event.
  DefragResult Import(absl::Span<const uint8_t> frame, uint16_t zone, Nanos lifetime, Nanos now);
  // The peer's queue `key` ended: drops ours. False when there was none.
  bool ImportGone(const FragmentQueueKey& key);

  const DefragCounters& counters() const { return counters_; }
  size_t queue_count() const { return queues_.size(); }
  size_t memory_used() const { return memory_; }

 private:
  using Key = FragmentQueueKey;
  struct Fragment {
    uint32_t offset;
    uint32_t end;
    std::vector<uint8_t> data;  // fragmentable bytes [offset, end)
  };
  // A run of fragments received back to back (inet_frag_queue_insert's "fragrun").
  struct Run {
    uint32_t offset;
    uint32_t end;
  };
  struct Queue {
    Nanos deadline = 0;
    uint64_t generation = 0;
    size_t memory = 0;
    uint32_t len = 0;   // datagram end as known so far
    uint32_t meat = 0;  // bytes received
    bool first_in = false;
    bool last_in = false;
    uint16_t max_size = 0;
    uint16_t max_df_size = 0;
    uint8_t ecn = 0;            // IPFRAG_ECN_* bits seen
    std::vector<uint8_t> head;  // L2 + unfragmentable L3 header of the offset-0 fragment
    uint16_t l3_offset = 0;
    uint16_t v6_nexthdr_field = 0;  // from the IP header
    uint8_t v6_next = 0;            // the fragment header's next header (offset 0 one)
    bool exported = false;          // a kQueued event was recorded: record its end too
    std::vector<Run> runs;          // sorted, disjoint
    std::vector<Fragment> fragments;
  };

  using QueueMap = absl::flat_hash_map<Key, Queue>;

  void Kill(QueueMap::iterator it);
  // Add's work; `learnt_lifetime` set for Import (peer fragments).
  DefragResult Insert(const ParsedPacket& pkt, absl::Span<const uint8_t> frame, uint16_t zone,
                      Nanos now, std::optional<Nanos> learnt_lifetime);
  void Record(DefragEvent e);
  DefragResult Reassemble(QueueMap::iterator it);

  DefragOptions options_;
  DefragCounters counters_;
  QueueMap queues_;
  // Queues by deadline; a record is stale when its queue is gone or was recreated
  // (generation differs). Local deadlines are non-decreasing per family, so one FIFO per
  // family; a learnt queue's shorter deadline is inserted in order (near the back).
  struct ExpiryRecord {
    Nanos deadline;
    uint64_t generation;
    Key key;
  };
  std::deque<ExpiryRecord> expiry_v4_;
  std::deque<ExpiryRecord> expiry_v6_;
  std::deque<DefragEvent> events_;
  uint64_t next_generation_ = 1;
  size_t memory_ = 0;
};

// Splits a whole datagram (an Ethernet frame: L2 header, then IP) into Ethernet frames
// carrying the same L2 header, following `layout`. When the fragmentable length still
// equals the sum of layout.payload_sizes the pieces have exactly those sizes (the kernel's
// frag_list fast path); otherwise (a helper changed the length) pieces of at most
// layout.max_fragment_size bytes are cut (the slow path with frag_max_size as MTU).
// IPv4: every piece keeps the id, DF is cleared, MF set on all but the last, options not
// marked "copied" become NOPs after the first piece, header checksums are recomputed.
// IPv6: a fragment header with layout.id follows the unfragmentable part of each piece.
absl::StatusOr<std::vector<std::vector<uint8_t>>> Refragment(absl::Span<const uint8_t> frame,
                                                             const FragmentLayout& layout);

}  // namespace ctsync

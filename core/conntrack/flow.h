// One tracked connection: the userspace twin of the kernel's struct nf_conn.
//
// Owned by FlowTable (flow_table.h), which keeps flows in a slab addressed by FlowIndex; an
// index stays valid (the entry never moves) until the flow is released or removed. Only the
// thread that owns the table's shard may read or write a Flow. Plain data: the trackers, NAT
// and the engine write the fields; the table owns only the fields marked "table-owned".
//
// Size matters: at 1M flows the entry, its hash links and its bucket share are the memory a
// flow costs, on the live table and on a backup (tests/bench/flow_table_bench.cc,
// sync_bench.cc). Rare or optional data (NAT sequence adjustment, helper state, accounting)
// lives in side tables keyed by FlowIndex instead of inline.
#pragma once

#include <cstdint>

#include "core/conntrack/tcp_state.h"
#include "core/conntrack/timer_wheel.h"
#include "core/conntrack/tuple.h"
#include "core/util/clock.h"

namespace ctsync {

using FlowIndex = uint32_t;
inline constexpr FlowIndex kNoFlow = ~0u;

// Status bits, numbered exactly as the kernel's enum ip_conntrack_status (IPS_*_BIT), so
// that replicated and printed status words mean the same thing as the kernel's.
inline constexpr uint32_t kIpsExpected = 1u << 0;
inline constexpr uint32_t kIpsSeenReply = 1u << 1;
inline constexpr uint32_t kIpsAssured = 1u << 2;
inline constexpr uint32_t kIpsConfirmed = 1u << 3;
inline constexpr uint32_t kIpsSrcNat = 1u << 4;
inline constexpr uint32_t kIpsDstNat = 1u << 5;
inline constexpr uint32_t kIpsNatMask = kIpsSrcNat | kIpsDstNat;
inline constexpr uint32_t kIpsSeqAdjust = 1u << 6;
inline constexpr uint32_t kIpsSrcNatDone = 1u << 7;
inline constexpr uint32_t kIpsDstNatDone = 1u << 8;
inline constexpr uint32_t kIpsNatDoneMask = kIpsSrcNatDone | kIpsDstNatDone;
inline constexpr uint32_t kIpsDying = 1u << 9;
inline constexpr uint32_t kIpsFixedTimeout = 1u << 10;
inline constexpr uint32_t kIpsTemplate = 1u << 11;
inline constexpr uint32_t kIpsUntracked = 1u << 12;
inline constexpr uint32_t kIpsNatClash = 1u << 12;  // kernel reuses the UNTRACKED bit
inline constexpr uint32_t kIpsHelper = 1u << 13;
inline constexpr uint32_t kIpsOffload = 1u << 14;
inline constexpr uint32_t kIpsHwOffload = 1u << 15;

// The connection-tracking helper attached to a flow (kernel: nf_conn_help->helper).
enum class FlowHelper : uint8_t { kNone = 0, kFtp = 1 };

// Per-direction accounting (kernel: nf_conn_counter). As the kernel's acct extension, it is
// kept only with nf_conntrack_acct=1, and then beside the flow (FlowTable::accounting), not
// in it: 32 bytes a flow that tables without accounting do not pay.
struct FlowCounters {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  friend bool operator==(const FlowCounters&, const FlowCounters&) = default;
};
// Both directions' counters (kernel: struct nf_conn_acct).
struct FlowAccounting {
  FlowCounters dir[2];  // indexed by Direction
  friend bool operator==(const FlowAccounting&, const FlowAccounting&) = default;
};

// Where an entry is in its life, as the table sees it.
enum class FlowSlot : uint8_t {
  kFree = 0,         // on the free list, fields meaningless
  kUnconfirmed = 1,  // allocated, not findable (kernel: the unconfirmed list)
  kConfirmed = 2,    // in the hash under both tuples and on the timer wheel
};

// Field order is for the lookup: everything Find compares (both tuples, the zone) is in
// the first 78 bytes, so a chain step touches two cache lines (three for entries that start
// late in a line), not the whole 184-byte entry. The rest is packed without a byte of
// padding (the timer link lends its tail padding to the learnt mark).
struct Flow {
  // tuple[kOriginal] is what the first packet carried; tuple[kReply] is what a reply
  // carries, so it holds the NAT translation (kernel: tuplehash[IP_CT_DIR_REPLY]).
  Tuple tuple[2];
  uint16_t zone = 0;  // conntrack zone (CT --zone); part of the lookup key
  // Expectations and child (RELATED) flows that hold this flow; conntrack prints
  // use = 1 + this.
  uint16_t child_count = 0;
  uint16_t status = 0;  // kIps* bits: the kernel defines none above bit 15
  FlowHelper helper = FlowHelper::kNone;
  FlowSlot slot = FlowSlot::kFree;  // table-owned
  uint32_t mark = 0;                // ct mark (CONNMARK)
  FlowIndex master = kNoFlow;       // master of a RELATED (expected) flow
  // Stable identifier, as ctnetlink's CTA_ID (32 bits there too); table-assigned in
  // sequence, so a batch of new flows delta-encodes its ids in a byte each.
  uint32_t id = 0;

  Nanos expires = 0;  // absolute monotonic time; change it through FlowTable::SetTimeout
  Nanos created = 0;  // monotonic time of allocation (UDP "stream" rule, listings)

  TcpConnState tcp;  // meaningful only when tuple[0].proto == kProtoTcp
  // When the event stream last carried this flow (NEW/UPDATE), in EventStamp units: a flow
  // whose lifetime keeps being extended by traffic alone is re-announced before peers'
  // copies could expire.
  uint32_t last_event = 0;
  [[no_unique_address]] TimerLink timer;  // table-owned: expiry wheel links
  // Set by sync::ExternalCache on a flow learnt from a peer and not yet promoted: the
  // cache's generation when it was learnt (0: local) and the peer's slot there.
  uint8_t learnt_generation = 0;
  uint8_t learnt_peer = 0;

  const Tuple& tuple_of(Direction d) const { return tuple[static_cast<int>(d)]; }
  Tuple& tuple_of(Direction d) { return tuple[static_cast<int>(d)]; }
  uint8_t proto() const { return tuple[0].proto; }
  Family family() const { return tuple[0].family; }
  bool has(uint32_t bits) const { return (status & bits) == bits; }
};
static_assert(sizeof(Flow) <= 184, "Flow grew: re-check the bytes/flow budget");

// Flow::last_event's unit: milliseconds, wrapping after 49 days; compare stamps by their
// unsigned difference.
inline uint32_t EventStamp(Nanos now) { return static_cast<uint32_t>(now / kNanosPerMilli); }

// NAT sequence adjustment for one direction (kernel: struct nf_ct_seqadj). Rare (FTP with
// NAT), so it is kept outside Flow, in FlowTable's side table.
struct SeqAdjustDir {
  uint32_t correction_pos = 0;
  int32_t offset_before = 0;
  int32_t offset_after = 0;
  friend bool operator==(const SeqAdjustDir&, const SeqAdjustDir&) = default;
};
struct SeqAdjust {
  SeqAdjustDir dir[2];  // indexed by Direction
  friend bool operator==(const SeqAdjust&, const SeqAdjust&) = default;
};

// The FTP helper's per-flow state (the kernel's nf_ct_ftp_master): the sequence numbers
// right after the last two line ends seen in each direction. Only a segment starting at
// one of them is parsed, so a backup needs these to parse the next command as the old
// active would have.
struct FtpLineState {
  uint32_t seq_aft_nl[2][2] = {};  // [Direction][newest two]
  uint8_t seq_aft_nl_num[2] = {};
  friend bool operator==(const FtpLineState&, const FtpLineState&) = default;
};

}  // namespace ctsync

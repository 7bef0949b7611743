// The connection tracker proper: the userspace twin of the kernel's nf_conntrack_in and
// __nf_conntrack_confirm (nf_conntrack_core.c) over a FlowTable. It classifies each packet
// (NEW / ESTABLISHED / RELATED / INVALID / UNTRACKED), creates unconfirmed entries, runs
// the protocol trackers, confirms entries when a packet leaves, expires them, and emits the
// flow event stream.
//
// Owner: one datapath thread (one shard). Every method must be called from that thread.
// Time is always passed in (`now`), never read from a clock.
#pragma once

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/conntrack/conntrack_settings.h"
#include "core/conntrack/ct_info.h"
#include "core/conntrack/expectations.h"
#include "core/conntrack/flow_events.h"
#include "core/conntrack/flow_table.h"
#include "core/conntrack/tcp_tracker.h"
#include "core/packet/parsed_packet.h"
#include "core/util/log_sink.h"

namespace ctsync {

struct ConntrackOptions {
  ConntrackSettings settings;
  uint64_t hash_seed = 0;
  // Capacity of the event ring (0: no event stream, e.g. ctreplay).
  size_t event_ring_capacity = 0;
  // Emit an UPDATE whenever a TCP flow's window-tracking state changes (not only its
  // state), so a peer taking over checks windows exactly as this node would have.
  bool replicate_tcp_windows = true;
  // Where "table full, dropping packet" goes (rate-limited as the kernel's); may be null.
  LogSink* log = nullptr;
};

// Where In() runs: the kernel verifies checksums only in PREROUTING.
enum class CtHookPoint : uint8_t { kPrerouting, kLocalOut };

enum class CtVerdict : uint8_t { kAccept, kDrop };

class ConntrackEngine {
 public:
  static absl::StatusOr<std::unique_ptr<ConntrackEngine>> Create(const ConntrackOptions& options,
                                                                Nanos now);

  // nf_conntrack_in. `pkt` is the parsed (defragmented) packet, `data` the buffer its
  // offsets point into. `l4_malformed` says the parser found the L4 header unusable
  // (truncated, bad offset), which the kernel's trackers treat as INVALID. Fills *ct.
  // kDrop only when no entry could be made (table full) or a tracker asks for a drop.
  CtVerdict In(const ParsedPacket& pkt, absl::Span<const uint8_t> data, bool l4_malformed,
               CtHookPoint hook, const CtTemplate& tmpl, Nanos now, CtAttachment* ct);

  // __nf_conntrack_confirm: called when a packet leaves the stack (POSTROUTING / INPUT).
  // Inserts an unconfirmed entry; kDrop (counting insert_failed and drop) on a clash.
  CtVerdict Confirm(const CtAttachment& ct, Nanos now);

  // The packet that owned an unconfirmed entry was dropped or consumed before
  // confirmation: the entry goes, as in the kernel (nothing is left in the table).
  void DropUnconfirmed(const CtAttachment& ct);

  // nf_ct_kill: removes a confirmed flow now and reports DESTROY.
  void Kill(FlowIndex idx, Nanos now);
  // A tracker decided a flow dies with the packet being processed (a RST as the only
  // reply). The packet still sees the flow as it was (hooks, NAT); the caller ends it
  // when the packet is done. Later lookups already treat it as gone.
  void FlushKills(Nanos now);

  // Reaps up to `budget` expired flows (DESTROY events); returns how many.
  size_t Expire(Nanos now, size_t budget);

  // Inserts a complete flow from outside the datapath (ctnetlink create, a peer's flow, a
  // restored one): tuples, status, zone, mark, TCP state, helper, expiry and the learnt
  // mark come from `f`, and the counters from `counters` when given and the table keeps
  // them. AlreadyExists when a tuple is taken, ResourceExhausted when the table is full.
  absl::StatusOr<FlowIndex> Insert(const Flow& f, const FlowAccounting* counters, Nanos now);

  // Emits an UPDATE for a change made outside In() (NAT, mark, helper, ...).
  void NotifyUpdate(FlowIndex idx, uint32_t changes, Nanos now);

  // The event a confirmed flow would be announced with now: the flow and everything a peer
  // or the store needs beside it (sequence adjustment, master tuple, FTP line state, the
  // pending expectation). For dumps (resync, store rewrite); emits nothing.
  FlowEvent Describe(FlowEventType type, FlowIndex idx, Nanos now) const;

  FlowTable& table() { return *table_; }
  const FlowTable& table() const { return *table_; }
  ConntrackStats& stats() { return table_->stats(); }
  FlowEventRing& events() { return events_; }
  const ConntrackSettings& settings() const { return options_.settings; }
  // Applies new sysctls at runtime (table size settings apply at the next Create).
  void SetSettings(const ConntrackSettings& s);

  // `use` as conntrack prints it: 1 + the RELATED children holding the flow (a pending
  // expectation does not show, as in the corpus).
  int UseCount(FlowIndex idx) const;

  ExpectationTable& expectations() { return expectations_; }
  // nf_ct_expect_related: registers what a helper announced, counting expect_create.
  bool AddExpectation(const Expectation& e, int max_per_master);

  // Called when a new connection matched an expectation, before its protocol tracker runs
  // (the kernel's exp->expectfn: NAT uses it to make the data connection follow its master).
  using ExpectedFn = std::function<void(FlowIndex flow, const Expectation& exp, Nanos now)>;
  void set_expected_fn(ExpectedFn fn) { expected_fn_ = std::move(fn); }
  // Called for every flow just before it is freed (helpers drop their per-flow state).
  using DestroyHook = std::function<void(FlowIndex flow)>;
  void add_destroy_hook(DestroyHook fn) { destroy_hooks_.push_back(std::move(fn)); }

 private:
  ConntrackEngine(const ConntrackOptions& options, std::unique_ptr<FlowTable> table);

  // Builds the packet's tuple; false when the protocol gives none (kernel get_tuple fail).
  bool TupleOf(const ParsedPacket& pkt, Tuple* t) const;
  // ICMP(v6) before the normal path: errors become RELATED or INVALID (counted `error`).
  // Returns true when the packet is fully handled (ct set or INVALID).
  bool HandleIcmp(const ParsedPacket& pkt, absl::Span<const uint8_t> data, CtHookPoint hook,
                  const CtTemplate& tmpl, Nanos now, CtAttachment* ct);
  // The protocol tracker for an attached flow; false = packet INVALID.
  enum class TrackResult { kAccept, kInvalid, kRepeat };
  TrackResult Track(const ParsedPacket& pkt, absl::Span<const uint8_t> data, CtHookPoint hook,
                    bool is_new, CtAttachment* ct, Nanos now);
  bool ChecksumOk(const ParsedPacket& pkt, absl::Span<const uint8_t> data,
                  CtHookPoint hook) const;
  void Emit(FlowEventType type, FlowIndex idx, uint32_t changes, Nanos now);
  // Lookup that treats an entry past its deadline as gone (reaping it), as the kernel does.
  FlowLookup FindLive(const Tuple& t, uint16_t zone, Nanos now);

  ConntrackOptions options_;
  TcpSettings tcp_settings_;
  std::unique_ptr<FlowTable> table_;
  // Frees an unconfirmed entry (and what it holds on its master).
  void ReleaseNew(FlowIndex idx);
  // A flow is going: children lose their master, expectations and helper state go.
  void Forget(FlowIndex idx, const Flow& f);

  FlowEventRing events_;
  RateLimit table_full_log_;
  std::vector<FlowIndex> pending_kills_;
  ExpectationTable expectations_;
  ExpectedFn expected_fn_;
  std::vector<DestroyHook> destroy_hooks_;
};

}  // namespace ctsync

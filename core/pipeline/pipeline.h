// The netfilter hook pipeline of one node: a received frame goes through defragmentation,
// PREROUTING (raw, conntrack, mangle, nat), the routing decision, INPUT or FORWARD,
// POSTROUTING (mangle, nat, confirm) and leaves as frames to transmit, with the kernel's
// table order and its forwarding rules (TTL, MAC rewrite, re-fragmentation). Packets the
// node answers itself (REJECT, closed local ports, TTL exceeded) run the OUTPUT path.
//
// Owner: one datapath thread, which also owns the ConntrackEngine (and NatEngine) it was
// given. Not thread-safe. Time is passed in with every packet.
#pragma once

#include <memory>
#include <vector>

#include "absl/types/span.h"
#include "core/conntrack/conntrack_engine.h"
#include "core/helpers/ftp_helper.h"
#include "core/packet/defrag.h"
#include "core/pipeline/packet_buffer.h"
#include "core/pipeline/topology.h"
#include "core/rules/rule_set.h"

namespace ctsync {

class NatEngine;

struct PipelineOptions {
  bool ipv4_forwarding = true;  // net.ipv4.ip_forward
  bool ipv6_forwarding = true;  // net.ipv6.conf.all.forwarding
  uint64_t seed = 0;            // IP ids of generated ICMP errors
  // A next hop with no neighbour entry: hand the frame out with an all-zero destination
  // MAC for the I/O layer to resolve (ARP / ND), instead of dropping it (no_neighbour).
  bool emit_unresolved = false;
  // Reassembly limits and timeouts; export_capacity > 0 when fragment queues are
  // replicated to a peer (the owner drains defragmenter().PopEvent).
  DefragOptions defrag;
};

// Sees every packet just before a table runs at a hook (ctreplay's probes sit there, at
// position 1 of the built-in chain, as the oracle harness's probe chains do).
class HookObserver {
 public:
  virtual ~HookObserver() = default;
  virtual void BeforeTable(rules::Table table, rules::Hook hook,
                           const rules::MatchContext& ctx) = 0;
};

struct Transmit {
  int interface = -1;
  std::vector<uint8_t> frame;
};

#define CTSYNC_PIPELINE_COUNTERS(X)                                              \
  X(rx_frames)          /* frames handed to Receive */                          \
  X(rx_parse_errors)    /* L2/L3 malformed: dropped (see parse_counters) */     \
  X(not_for_us)         /* unicast to another MAC */                            \
  X(not_ip)             /* neither IPv4 nor IPv6 */                             \
  X(defrag_held)        /* fragments waiting for the rest */                    \
  X(defrag_dropped)     /* fragments the reassembler refused */                 \
  X(ct_drops)           /* conntrack could not make an entry (table full) */    \
  X(rule_drops)         /* DROP verdicts and policies */                        \
  X(rule_rejects)       /* REJECT verdicts */                                   \
  X(nat_drops)          /* NAT could not map the packet */                      \
  X(confirm_drops)      /* insert clashes at confirmation */                    \
  X(helper_drops)       /* a helper or sequence adjustment refused the packet */\
  X(no_route)           /* no route to the destination */                       \
  X(forwarding_off)     /* forwarding disabled for the family */                \
  X(ttl_exceeded)       /* TTL / hop limit ran out */                           \
  X(no_neighbour)       /* next hop has no neighbour entry */                   \
  X(too_big)            /* larger than the egress MTU */                        \
  X(local_delivered)    /* packets for this node's own addresses */             \
  X(local_replies)      /* RSTs / ICMP errors / echo replies this node sent */  \
  X(tx_frames)          /* frames transmitted */

struct PipelineCounters {
#define CTSYNC_PIPELINE_COUNTER_FIELD(name) uint64_t name = 0;
  CTSYNC_PIPELINE_COUNTERS(CTSYNC_PIPELINE_COUNTER_FIELD)
#undef CTSYNC_PIPELINE_COUNTER_FIELD
};

class Pipeline {
 public:
  Pipeline(const PipelineOptions& options, Topology topology, ConntrackEngine* conntrack,
           NatEngine* nat);
  ~Pipeline();

  // Installs (or replaces, e.g. on SIGHUP) the rules of one family. Conntrack state is
  // untouched. A family without rules accepts everything.
  void SetRules(Family family, std::unique_ptr<rules::RuleSet> rules);
  rules::RuleSet* rules(Family family);
  void set_observer(HookObserver* observer) { observer_ = observer; }

  // One frame received on interface `in`. Frames to send are appended to *tx.
  void Receive(int in, absl::Span<const uint8_t> frame, Nanos now, std::vector<Transmit>* tx);

  // Housekeeping: expires conntrack entries and fragment queues, bounded work per call.
  void Tick(Nanos now);

  const Topology& topology() const { return topology_; }
  const PipelineCounters& counters() const { return counters_; }
  const ParseCounters& parse_counters() const { return parse_counters_; }
  const Defragmenter& defragmenter() const { return defrag_; }
  // For replication: draining its events and importing a peer's fragments (same thread).
  Defragmenter& defragmenter() { return defrag_; }
  ConntrackEngine& conntrack() { return *conntrack_; }

 private:
  void ReceiveFrame(int in, absl::Span<const uint8_t> frame, Nanos now, std::vector<Transmit>* tx);
  // Runs one table at one hook; applies non-terminating effects to the packet.
  rules::Verdict RunTable(rules::Table table, rules::Hook hook, PacketBuffer& b, Nanos now);
  rules::MatchContext Context(const PacketBuffer& b, rules::Hook hook) const;
  void ApplyEffects(const rules::PacketEffects& e, PacketBuffer& b, Nanos now);
  // NAT at a hook (nf_nat_inet_fn); false = drop.
  bool RunNat(rules::Hook hook, PacketBuffer& b, Nanos now);

  void Prerouting(PacketBuffer b, Nanos now, std::vector<Transmit>* tx);
  // mangle then filter at INPUT/FORWARD: false when the packet was dropped or rejected.
  bool MangleAndFilter(rules::Hook hook, PacketBuffer& b, Nanos now, std::vector<Transmit>* tx);
  void Forward(PacketBuffer& b, Nanos now, std::vector<Transmit>* tx);
  void Input(PacketBuffer& b, Nanos now, std::vector<Transmit>* tx);
  // The OUTPUT path for packets this node generates. `attached` is set for packets REJECT
  // attaches to the rejected connection (they skip the conntrack lookup).
  void LocalOut(PacketBuffer b, Nanos now, std::vector<Transmit>* tx);
  // nf_confirm: the flow's helper, sequence adjustment, then confirmation. False = dropped.
  bool ConfirmStep(PacketBuffer& b, Nanos now);
  // POSTROUTING, confirmation and transmission.
  void Postrouting(PacketBuffer& b, Nanos now, std::vector<Transmit>* tx);
  void Transmit(PacketBuffer& b, std::vector<struct Transmit>* tx);
  // A packet was dropped: forget its unconfirmed entry.
  void Drop(PacketBuffer& b);

  // What the local stack answers to a packet delivered to this node.
  void LocalDeliver(PacketBuffer& b, Nanos now, std::vector<struct Transmit>* tx);
  // REJECT: the TCP RST or ICMP error the kernel sends for `b`.
  void SendReject(const rules::RejectSpec& spec, PacketBuffer& b, Nanos now,
                  std::vector<struct Transmit>* tx);
  // Sends an ICMP(v6) error about `b` (type/code), attaching it as RELATED when asked.
  void SendIcmpError(PacketBuffer& b, uint8_t type, uint8_t code, uint32_t rest, bool attach,
                     Nanos now, std::vector<struct Transmit>* tx);
  void SendTcpReset(PacketBuffer& b, bool attach, Nanos now, std::vector<struct Transmit>* tx);
  uint16_t NextIcmpId();

  PipelineOptions options_;
  Topology topology_;
  ConntrackEngine* conntrack_;
  NatEngine* nat_;
  std::unique_ptr<rules::RuleSet> rules_v4_;
  std::unique_ptr<rules::RuleSet> rules_v6_;
  HookObserver* observer_ = nullptr;
  FtpHelper ftp_;
  Defragmenter defrag_;
  PipelineCounters counters_;
  ParseCounters parse_counters_;
  uint64_t rng_state_;
};

}  // namespace ctsync

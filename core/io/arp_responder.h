// Answers ARP and IPv6 Neighbour Solicitations for the node's addresses on each interface
// (its configured addresses plus the virtual IPs it currently holds there), and builds the
// announcements a node sends when it takes a virtual IP over. Pure logic: frames in,
// frames out; the datapath loop does the I/O.
//
// Kernel behaviour followed (net/ipv4/arp.c arp_process, net/ipv6/ndisc.c ndisc_recv_ns):
// replies go to the requester's hardware address from the ARP body; a probe with sender IP
// 0 gets a reply with target IP 0; NS answers carry S=1, and O plus a TLLAO only when the
// NS was multicast; a DAD probe is answered to ff02::1 with S=0; R=1 because this node
// forwards. Any ARP frame refreshes a neighbour already known, and a request for us
// creates one (LearnedNeighbour::may_create).
// Deliberate difference: an address is answered only on the interface that holds it (the
// kernel's arp_ignore=1, which VRRP setups set anyway), so a VIP never leaks to the wrong
// segment.
//
// Owner: the datapath thread. Not thread-safe; other threads change VIPs via Post().
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/types/span.h"
#include "core/io/neighbour_frames.h"
#include "core/pipeline/topology.h"

namespace ctsync {

struct ArpResponderOptions {
  bool router = true;  // the R flag in neighbour advertisements (IPv6 forwarding on)
};

#define CTSYNC_ARP_RESPONDER_COUNTERS(X)                                          \
  X(arp_requests_answered) /* requests (and probes) for our addresses */          \
  X(arp_requests_not_ours) /* requests for someone else */                        \
  X(arp_replies_seen)      /* replies (and gratuitous replies) */                 \
  X(arp_malformed)         /* ARP ethertype but a body arp_rcv would drop */      \
  X(not_for_us)            /* ARP unicast to another MAC (veth delivers those) */ \
  X(ns_answered)           /* NS for our addresses, DAD probes included */        \
  X(ns_not_ours)           /* NS for someone else */                              \
  X(na_seen)               /* advertisements */                                   \
  X(nd_malformed)          /* NS/NA that fail RFC 4861 validation */

struct ArpResponderCounters {
#define CTSYNC_ARP_RESPONDER_COUNTER_FIELD(name) uint64_t name = 0;
  CTSYNC_ARP_RESPONDER_COUNTERS(CTSYNC_ARP_RESPONDER_COUNTER_FIELD)
#undef CTSYNC_ARP_RESPONDER_COUNTER_FIELD
};

// A neighbour mapping a received frame revealed.
struct LearnedNeighbour {
  Family family = Family::kNone;
  IpAddress address;
  MacAddress mac{};
  // True when the kernel would create an entry (a request/NS addressed to us); false when
  // it only refreshes an entry that already exists (replies, NA, other ARP traffic).
  bool may_create = false;
};

struct NeighbourFrameResult {
  bool consumed = false;       // ARP or NS/NA: handled here, never given to the pipeline
  std::vector<uint8_t> reply;  // empty: nothing to send
  std::optional<LearnedNeighbour> learned;
};

struct VirtualAddress {
  int interface = -1;
  Family family = Family::kNone;
  IpAddress address;
};

class ArpResponder {
 public:
  // `topology` must outlive the responder (the pipeline's).
  ArpResponder(const Topology& topology, ArpResponderOptions options = {});

  // VIPs this node holds. Add returns false if the interface index is bad or the address is
  // already held there; Remove returns false if it was not held.
  bool AddVirtualAddress(int interface, Family family, const IpAddress& address);
  bool RemoveVirtualAddress(int interface, Family family, const IpAddress& address);
  const std::vector<VirtualAddress>& virtual_addresses() const { return vips_; }

  // Addresses configured in the topology on every node of a cluster (so routing and NAT
  // treat them as local everywhere) that are answered for only while held as a VIP.
  void SetStandbyAddresses(std::vector<VirtualAddress> standby) { standby_ = std::move(standby); }

  // True if `address` is a VIP held on `interface`, or configured on it and not a standby
  // address.
  bool Owns(int interface, Family family, const IpAddress& address) const;

  // One received frame; frames that are not ARP or NS/NA come back with consumed=false.
  NeighbourFrameResult Handle(int interface, absl::Span<const uint8_t> frame);

  // Frames announcing `address` at this interface's MAC: gratuitous ARP (request, then
  // reply form) for IPv4, an unsolicited NA for IPv6.
  std::vector<std::vector<uint8_t>> Announce(int interface, Family family,
                                             const IpAddress& address) const;

  const ArpResponderCounters& counters() const { return counters_; }

 private:
  NeighbourFrameResult HandleArp(int interface, absl::Span<const uint8_t> frame);
  NeighbourFrameResult HandleNd(int interface, absl::Span<const uint8_t> frame);

  const Topology& topology_;
  ArpResponderOptions options_;
  std::vector<VirtualAddress> vips_;
  std::vector<VirtualAddress> standby_;
  ArpResponderCounters counters_;
};

}  // namespace ctsync

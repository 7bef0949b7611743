// What a node replicates and what it accepts from peers: by protocol, by address range and
// by TCP state (conntrackd's "Filter" section, applied to the sync stream). The same filter
// type serves both directions; the replicator holds one for sending and one for accepting.
//
// A plain value, read-only after construction: any thread.
#pragma once

#include <cstdint>
#include <vector>

#include "core/conntrack/flow.h"
#include "core/net/ip_address.h"

namespace ctsync::sync {

struct SyncFilter {
  // IP protocol numbers; empty: every protocol.
  std::vector<uint8_t> protocols;
  // When non-empty, the original source or destination must lie in one of these.
  std::vector<IpPrefix> accept_prefixes;
  // Flows whose original source or destination lies in one of these are left out
  // (conntrackd's "Address Ignore", e.g. the firewall's own addresses).
  std::vector<IpPrefix> ignore_prefixes;
  // TCP states replicated; empty: every state. Applies to TCP flows only.
  std::vector<TcpState> tcp_states;

  // Protocol and address checks, for events that carry only the key (DESTROY).
  bool MatchesKey(const Tuple& original) const;
  // Everything, for NEW and UPDATE.
  bool Matches(const Flow& f) const;
};

}  // namespace ctsync::sync

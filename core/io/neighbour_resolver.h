// Resolves next-hop MAC addresses that the topology has no static neighbour entry for, the
// way the kernel's neighbour layer does in miniature: the first frame to an unknown next
// hop triggers an ARP request / Neighbour Solicitation and waits (with at most a few
// others) in a short per-neighbour queue until the answer arrives; unanswered after
// `max_probes` tries, the entry fails and its frames are dropped. Everything bounded and
// every drop counted.
//
// Kernel defaults mirrored: unres_qlen 3 (the pre-4.x packet limit; newer kernels count
// bytes), mcast_solicit 3, retrans_time 1 s, base_reachable_time 30 s, gc_stale_time 60 s.
// Simplification: instead of NUD's STALE/DELAY/PROBE dance, an entry older than
// reachable_time keeps being used while one refresh request per retransmit interval goes
// out; an entry not confirmed for stale_time is forgotten and resolved afresh.
//
// Owner: the datapath thread. Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "core/io/arp_responder.h"
#include "core/pipeline/pipeline.h"
#include "core/pipeline/topology.h"
#include "core/util/clock.h"

namespace ctsync {

struct NeighbourResolverOptions {
  size_t max_held_per_neighbour = 3;  // unres_qlen; the oldest frame goes when it overflows
  size_t max_entries = 1024;          // learned + pending neighbours, all interfaces
  int max_probes = 3;                 // mcast_solicit
  Nanos retransmit_interval = 1 * kNanosPerSecond;  // retrans_time_ms
  Nanos reachable_time = 30 * kNanosPerSecond;      // base_reachable_time_ms
  Nanos stale_time = 60 * kNanosPerSecond;          // gc_stale_time
};

#define CTSYNC_NEIGHBOUR_RESOLVER_COUNTERS(X)                                           \
  X(solicitations_sent)  /* ARP requests / NS sent (first tries, retries, refreshes) */ \
  X(resolved)            /* pending entries that got an answer */                       \
  X(learned)             /* entries created from requests addressed to us */            \
  X(frames_held)         /* frames queued waiting for an answer */                      \
  X(frames_released)     /* held frames sent after the answer */                        \
  X(drops_queue_full)    /* oldest held frame pushed out by a newer one */              \
  X(drops_unresolved)    /* held frames dropped when resolution failed */               \
  X(drops_table_full)    /* no room for a new pending entry */                          \
  X(drops_no_source)     /* interface has no address of the family to ask from */       \
  X(resolution_failures) /* entries that ran out of probes */                           \
  X(expired)             /* entries forgotten after stale_time */

struct NeighbourResolverCounters {
#define CTSYNC_NEIGHBOUR_RESOLVER_COUNTER_FIELD(name) uint64_t name = 0;
  CTSYNC_NEIGHBOUR_RESOLVER_COUNTERS(CTSYNC_NEIGHBOUR_RESOLVER_COUNTER_FIELD)
#undef CTSYNC_NEIGHBOUR_RESOLVER_COUNTER_FIELD
};

class NeighbourResolver {
 public:
  // `topology` must outlive the resolver (the pipeline's).
  NeighbourResolver(const Topology& topology, NeighbourResolverOptions options = {});

  // The MAC for `next_hop` on `interface`: a static topology entry first, then a resolved
  // learned one.
  std::optional<MacAddress> Lookup(Family family, int interface, const IpAddress& next_hop) const;

  // Sends `frame` (a complete Ethernet frame whose destination MAC is still to be written)
  // to `next_hop` via `interface`: appended to *out with the MAC filled in when known;
  // otherwise held, with a solicitation appended to *out when one is due.
  void Submit(Family family, int interface, const IpAddress& next_hop, std::vector<uint8_t> frame,
              Nanos now, std::vector<Transmit>* out);

  // What the responder saw on `interface`: confirms or creates an entry and releases the
  // frames held for it into *out.
  void Learn(int interface, const LearnedNeighbour& n, Nanos now, std::vector<Transmit>* out);

  // Retries solicitations, fails entries out of probes, forgets stale ones.
  void Tick(Nanos now, std::vector<Transmit>* out);

  size_t size() const { return entries_.size(); }
  const NeighbourResolverCounters& counters() const { return counters_; }

 private:
  using Key = std::tuple<int, Family, IpAddress>;
  struct Entry {
    bool resolved = false;
    MacAddress mac{};
    Nanos confirmed_at = 0;     // resolved: last answer
    Nanos next_solicit_at = 0;  // pending: next retry; resolved: earliest refresh
    int probes_sent = 0;
    std::deque<std::vector<uint8_t>> held;
  };

  // Appends a solicitation for `key`; false if the interface has no address to ask from.
  bool Solicit(const Key& key, const std::optional<MacAddress>& unicast_to,
               std::vector<Transmit>* out);
  void Release(const Key& key, Entry& e, std::vector<Transmit>* out);

  const Topology& topology_;
  NeighbourResolverOptions options_;
  absl::flat_hash_map<Key, Entry> entries_;
  NeighbourResolverCounters counters_;
};

}  // namespace ctsync

#include "core/io/neighbour_resolver.h"

#include <algorithm>

namespace ctsync {
namespace {

bool IsLinkLocalV6(const IpAddress& a) { return a.bytes[0] == 0xfe && (a.bytes[1] & 0xc0) == 0x80; }

// The source address to ask from: for IPv4 the interface address on the target's subnet,
// else the primary one (inet_select_addr with scope link); for IPv6 a link-local address
// if configured, else the primary one (what ipv6_dev_get_saddr prefers for ff02::/16).
std::optional<IpAddress> SourceFor(const Interface& iface, Family family, const IpAddress& target) {
  std::optional<IpAddress> primary = iface.PrimaryAddress(family);
  for (const auto& a : iface.addresses) {
    if (a.family != family) continue;
    if (family == Family::kIpv4 &&
        IpPrefix::Of(family, a.address, a.prefix_len).Contains(family, target))
      return a.address;
    if (family == Family::kIpv6 && IsLinkLocalV6(a.address)) return a.address;
  }
  return primary;
}

void WriteDestinationMac(std::vector<uint8_t>& frame, const MacAddress& mac) {
  if (frame.size() >= 6) std::copy(mac.begin(), mac.end(), frame.begin());
}

}  // namespace

NeighbourResolver::NeighbourResolver(const Topology& topology, NeighbourResolverOptions options)
    : topology_(topology), options_(options) {}

std::optional<MacAddress> NeighbourResolver::Lookup(Family family, int interface,
                                                    const IpAddress& next_hop) const {
  if (auto mac = topology_.ResolveNeighbour(family, next_hop, interface)) return mac;
  auto it = entries_.find(Key{interface, family, next_hop});
  if (it != entries_.end() && it->second.resolved) return it->second.mac;
  return std::nullopt;
}

bool NeighbourResolver::Solicit(const Key& key, const std::optional<MacAddress>& unicast_to,
                                std::vector<Transmit>* out) {
  const auto& [interface, family, target] = key;
  const Interface& iface = topology_.interface(interface);
  const std::optional<IpAddress> src = SourceFor(iface, family, target);
  if (!src) return false;
  std::vector<uint8_t> frame;
  if (family == Family::kIpv4) {
    // A refresh goes unicast to the MAC we believe in, as the kernel's NUD_PROBE does.
    frame = unicast_to ? BuildArp(kArpOpRequest, *unicast_to, iface.mac, iface.mac, *src,
                                  MacAddress{}, target)
                       : BuildArpRequest(iface.mac, *src, target);
  } else {
    frame = BuildNeighbourSolicitation(iface.mac, *src, target);
    if (unicast_to) WriteDestinationMac(frame, *unicast_to);
  }
  ++counters_.solicitations_sent;
  out->push_back({interface, std::move(frame)});
  return true;
}

void NeighbourResolver::Submit(Family family, int interface, const IpAddress& next_hop,
                               std::vector<uint8_t> frame, Nanos now, std::vector<Transmit>* out) {
  if (interface < 0 || interface >= topology_.interface_count()) return;
  if (auto mac = topology_.ResolveNeighbour(family, next_hop, interface)) {
    WriteDestinationMac(frame, *mac);
    out->push_back({interface, std::move(frame)});
    return;
  }
  const Key key{interface, family, next_hop};
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second.resolved) {
    Entry& e = it->second;
    if (now - e.confirmed_at >= options_.reachable_time && now >= e.next_solicit_at) {
      Solicit(key, e.mac, out);
      e.next_solicit_at = now + options_.retransmit_interval;
    }
    WriteDestinationMac(frame, e.mac);
    out->push_back({interface, std::move(frame)});
    return;
  }
  if (it == entries_.end()) {
    if (entries_.size() >= options_.max_entries) {
      ++counters_.drops_table_full;
      return;
    }
    if (!SourceFor(topology_.interface(interface), family, next_hop)) {
      ++counters_.drops_no_source;
      return;
    }
    it = entries_.emplace(key, Entry{}).first;
    Entry& e = it->second;
    Solicit(key, std::nullopt, out);
    e.probes_sent = 1;
    e.next_solicit_at = now + options_.retransmit_interval;
  }
  Entry& e = it->second;
  if (e.held.size() >= options_.max_held_per_neighbour) {
    // __neigh_event_send drops the oldest queued packet to make room.
    e.held.pop_front();
    ++counters_.drops_queue_full;
  }
  if (options_.max_held_per_neighbour == 0) return;
  e.held.push_back(std::move(frame));
  ++counters_.frames_held;
}

void NeighbourResolver::Release(const Key& key, Entry& e, std::vector<Transmit>* out) {
  const int interface = std::get<0>(key);
  for (auto& f : e.held) {
    WriteDestinationMac(f, e.mac);
    out->push_back({interface, std::move(f)});
    ++counters_.frames_released;
  }
  e.held.clear();
}

void NeighbourResolver::Learn(int interface, const LearnedNeighbour& n, Nanos now,
                              std::vector<Transmit>* out) {
  if (interface < 0 || interface >= topology_.interface_count()) return;
  const Key key{interface, n.family, n.address};
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    if (!n.may_create || entries_.size() >= options_.max_entries) return;
    it = entries_.emplace(key, Entry{}).first;
    ++counters_.learned;
  } else if (!it->second.resolved) {
    ++counters_.resolved;
  }
  Entry& e = it->second;
  e.resolved = true;
  e.mac = n.mac;
  e.confirmed_at = now;
  e.next_solicit_at = now;
  e.probes_sent = 0;
  Release(key, e, out);
}

void NeighbourResolver::Tick(Nanos now, std::vector<Transmit>* out) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& e = it->second;
    bool erase = false;
    if (e.resolved) {
      if (now - e.confirmed_at >= options_.stale_time) {
        ++counters_.expired;
        erase = true;
      }
    } else if (now >= e.next_solicit_at) {
      if (e.probes_sent >= options_.max_probes) {
        ++counters_.resolution_failures;
        counters_.drops_unresolved += e.held.size();
        erase = true;
      } else {
        Solicit(it->first, std::nullopt, out);
        ++e.probes_sent;
        e.next_solicit_at = now + options_.retransmit_interval;
      }
    }
    if (erase) {
      entries_.erase(it++);
    } else {
      ++it;
    }
  }
}

}  // namespace ctsync

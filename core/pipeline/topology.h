// A node's network view: interfaces with their MACs and addresses, static routes and
// neighbour entries, and the kernel's routing decision over them (local delivery or forward,
// egress interface, next hop). Built once from config (or, for ctreplay, the corpus
// topology); read-only afterwards, so any thread may call the const methods.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/net/ip_address.h"

namespace ctsync {

using MacAddress = std::array<uint8_t, 6>;
std::optional<MacAddress> ParseMac(std::string_view text);
std::string FormatMac(const MacAddress& mac);

struct InterfaceAddress {
  Family family = Family::kNone;
  IpAddress address;  // the host address, not masked
  int prefix_len = 0;
};

struct Interface {
  std::string name;
  MacAddress mac{};
  int mtu = 1500;
  std::vector<InterfaceAddress> addresses;  // the first of a family is the primary one

  std::optional<IpAddress> PrimaryAddress(Family family) const;
};

struct Route {
  IpPrefix destination;
  std::optional<IpAddress> gateway;
  int interface = -1;  // index into Topology::interfaces
};

struct Neighbour {
  Family family = Family::kNone;
  IpAddress address;
  MacAddress mac{};
  int interface = -1;
};

struct RouteDecision {
  enum class Kind { kLocal, kForward, kUnreachable } kind = Kind::kUnreachable;
  int out_interface = -1;  // for kForward
  IpAddress next_hop;      // gateway, or the destination itself on a connected network
};

class Topology {
 public:
  // Interface index by name, or -1.
  int FindInterface(std::string_view name) const;
  const Interface& interface(int index) const { return interfaces_[index]; }
  int interface_count() const { return static_cast<int>(interfaces_.size()); }

  absl::Status AddInterface(Interface iface);
  // `via` may be empty for a device route. The destination "default" means 0/0.
  absl::Status AddRoute(std::string_view destination, std::string_view via,
                        std::string_view dev);
  absl::Status AddNeighbour(std::string_view address, std::string_view mac, std::string_view dev);

  // True if `addr` is one of this node's own addresses (Linux's weak host model: any
  // interface's address is local whatever interface the packet came in on).
  bool IsLocalAddress(Family family, const IpAddress& addr) const;

  // Longest-prefix match over connected networks (from interface addresses) and static
  // routes, as `ip route get` would answer; local addresses win.
  RouteDecision Lookup(Family family, const IpAddress& dst) const;

  std::optional<MacAddress> ResolveNeighbour(Family family, const IpAddress& addr,
                                             int interface) const;

  // The oracle's firewall: lan0 (192.0.2.1/24, 2001:db8:1::1/64) and wan0
  // (198.51.100.1/24, 2001:db8:2::1/64), default via 198.51.100.254, permanent neighbours
  // for the corpus hosts. See tests/oracle/ORACLE_README.md, "Topology".
  static Topology OracleFirewall();

 private:
  std::vector<Interface> interfaces_;
  std::vector<Route> routes_;
  std::vector<Neighbour> neighbours_;
};

}  // namespace ctsync

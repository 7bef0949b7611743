#include "core/pipeline/topology.h"

#include <cstdio>

#include "absl/strings/str_cat.h"

namespace ctsync {

std::optional<MacAddress> ParseMac(std::string_view text) {
  MacAddress mac{};
  if (text.size() != 17) return std::nullopt;
  for (int i = 0; i < 6; ++i) {
    if (i > 0 && text[3 * i - 1] != ':') return std::nullopt;
    int v = 0;
    for (int j = 0; j < 2; ++j) {
      char c = text[3 * i + j];
      int d = (c >= '0' && c <= '9')   ? c - '0'
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                       : -1;
      if (d < 0) return std::nullopt;
      v = v * 16 + d;
    }
    mac[i] = static_cast<uint8_t>(v);
  }
  return mac;
}

std::string FormatMac(const MacAddress& m) {
  char buf[18];
  std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                m[5]);
  return buf;
}

std::optional<IpAddress> Interface::PrimaryAddress(Family family) const {
  for (const auto& a : addresses)
    if (a.family == family) return a.address;
  return std::nullopt;
}

int Topology::FindInterface(std::string_view name) const {
  for (size_t i = 0; i < interfaces_.size(); ++i)
    if (interfaces_[i].name == name) return static_cast<int>(i);
  return -1;
}

absl::Status Topology::AddInterface(Interface iface) {
  if (iface.name.empty() || iface.name.size() > 15)
    return absl::InvalidArgumentError(absl::StrCat("bad interface name '", iface.name, "'"));
  if (FindInterface(iface.name) >= 0)
    return absl::AlreadyExistsError(absl::StrCat("interface ", iface.name, " defined twice"));
  interfaces_.push_back(std::move(iface));
  return absl::OkStatus();
}

absl::Status Topology::AddRoute(std::string_view destination, std::string_view via,
                                std::string_view dev) {
  Route r;
  std::optional<IpPrefix> dst;
  if (destination == "default") {
    Family f = Family::kIpv4;
    if (!via.empty()) IpAddress::Parse(via, &f);
    dst = IpPrefix::Parse(f == Family::kIpv6 ? "::/0" : "0.0.0.0/0");
  } else {
    dst = IpPrefix::Parse(destination);
  }
  if (!dst) return absl::InvalidArgumentError(absl::StrCat("bad route destination '", std::string(destination), "'"));
  r.destination = *dst;
  if (!via.empty()) {
    Family f;
    auto gw = IpAddress::Parse(via, &f);
    if (!gw || f != dst->family)
      return absl::InvalidArgumentError(absl::StrCat("bad gateway '", std::string(via), "'"));
    r.gateway = *gw;
  }
  if (!dev.empty()) {
    r.interface = FindInterface(dev);
    if (r.interface < 0) return absl::NotFoundError(absl::StrCat("no interface '", std::string(dev), "'"));
  } else if (r.gateway) {
    // Like `ip route add ... via GW` without dev: the connected network that holds GW.
    RouteDecision d = Lookup(dst->family, *r.gateway);
    if (d.kind != RouteDecision::Kind::kForward)
      return absl::InvalidArgumentError(absl::StrCat("gateway ", std::string(via), " is not on a connected network"));
    r.interface = d.out_interface;
  } else {
    return absl::InvalidArgumentError("route needs a gateway or a device");
  }
  routes_.push_back(r);
  return absl::OkStatus();
}

absl::Status Topology::AddNeighbour(std::string_view address, std::string_view mac,
                                    std::string_view dev) {
  Neighbour n;
  auto a = IpAddress::Parse(address, &n.family);
  if (!a) return absl::InvalidArgumentError(absl::StrCat("bad neighbour address '", std::string(address), "'"));
  n.address = *a;
  auto m = ParseMac(mac);
  if (!m) return absl::InvalidArgumentError(absl::StrCat("bad MAC '", std::string(mac), "'"));
  n.mac = *m;
  n.interface = FindInterface(dev);
  if (n.interface < 0) return absl::NotFoundError(absl::StrCat("no interface '", std::string(dev), "'"));
  neighbours_.push_back(n);
  return absl::OkStatus();
}

bool Topology::IsLocalAddress(Family family, const IpAddress& addr) const {
  for (const auto& i : interfaces_)
    for (const auto& a : i.addresses)
      if (a.family == family && a.address == addr) return true;
  return false;
}

RouteDecision Topology::Lookup(Family family, const IpAddress& dst) const {
  RouteDecision best;
  if (IsLocalAddress(family, dst)) {
    best.kind = RouteDecision::Kind::kLocal;
    return best;
  }
  int best_len = -1;
  for (size_t i = 0; i < interfaces_.size(); ++i) {
    for (const auto& a : interfaces_[i].addresses) {
      const IpPrefix net = IpPrefix::Of(a.family, a.address, a.prefix_len);
      if (net.Contains(family, dst) && a.prefix_len > best_len) {
        best_len = a.prefix_len;
        best.kind = RouteDecision::Kind::kForward;
        best.out_interface = static_cast<int>(i);
        best.next_hop = dst;
      }
    }
  }
  for (const auto& r : routes_) {
    if (r.destination.Contains(family, dst) && r.destination.length > best_len) {
      best_len = r.destination.length;
      best.kind = RouteDecision::Kind::kForward;
      best.out_interface = r.interface;
      best.next_hop = r.gateway ? *r.gateway : dst;
    }
  }
  return best;
}

std::optional<MacAddress> Topology::ResolveNeighbour(Family family, const IpAddress& addr,
                                                     int interface) const {
  for (const auto& n : neighbours_)
    if (n.family == family && n.address == addr && n.interface == interface) return n.mac;
  return std::nullopt;
}

Topology Topology::OracleFirewall() {
  Topology t;
  auto v4 = [](const char* s, int len) {
    InterfaceAddress a;
    a.address = *IpAddress::Parse(s, &a.family);
    a.prefix_len = len;
    return a;
  };
  Interface lan{"lan0", *ParseMac("02:00:00:00:01:01"), 1500,
                {v4("192.0.2.1", 24), v4("2001:db8:1::1", 64)}};
  Interface wan{"wan0", *ParseMac("02:00:00:00:02:01"), 1500,
                {v4("198.51.100.1", 24), v4("2001:db8:2::1", 64)}};
  (void)t.AddInterface(lan);
  (void)t.AddInterface(wan);
  (void)t.AddRoute("default", "198.51.100.254", "wan0");
  for (const char* h : {"192.0.2.10", "192.0.2.11", "192.0.2.12", "2001:db8:1::10"})
    (void)t.AddNeighbour(h, "02:00:00:00:01:02", "lan0");
  for (const char* h : {"198.51.100.20", "198.51.100.21", "198.51.100.254", "2001:db8:2::20"})
    (void)t.AddNeighbour(h, "02:00:00:00:02:02", "wan0");
  return t;
}

}  // namespace ctsync

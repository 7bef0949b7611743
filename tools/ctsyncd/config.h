// ctsyncd's configuration: one file, one statement per line, read once at start (and the
// rules files again on SIGHUP). Every statement is validated at load; errors name the file,
// the line and the word. The format is documented in deploy/ctsyncd.conf.example.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/net/ip_address.h"
#include "core/pipeline/topology.h"

namespace ctsync::daemon {

struct InterfaceConfig {
  std::string name;
  std::optional<MacAddress> mac;  // "auto" = read from the system at start
  int mtu = 1500;
  std::vector<InterfaceAddress> addresses;
};

struct RouteConfig {
  std::string destination;  // "default" or a prefix
  std::string via;          // may be empty
  std::string dev;          // may be empty
};

struct NeighbourConfig {
  std::string address;
  std::string lladdr;
  std::string dev;
};

struct VipConfig {
  Family family = Family::kIpv4;
  IpAddress address;
  int prefix_len = 32;
  std::string dev;
};

struct SyncLinkConfig {
  enum class Kind { kUdpUnicast, kUdpMulticast, kTcp } kind = Kind::kUdpUnicast;
  std::string local;               // local address to bind (unicast / tcp listen)
  uint16_t port = 3780;            // default sync port
  std::vector<std::string> peers;  // "address[:port]" (unicast / tcp)
  std::string group;               // multicast group
  std::string interface;           // multicast interface
  int priority = 0;                // lower = preferred (order of appearance by default)
};

struct DaemonConfig {
  std::string path;  // where it was read from (for messages)
  uint32_t node_id = 0;
  std::string control_socket = "/run/ctsyncd.sock";
  std::string log_level = "info";  // error, warning, info, debug
  std::vector<InterfaceConfig> interfaces;
  std::vector<RouteConfig> routes;
  std::vector<NeighbourConfig> neighbours;
  std::vector<VipConfig> vips;
  bool ipv4_forwarding = true;
  bool ipv6_forwarding = true;
  std::string rules_v4;  // iptables-restore file
  std::string rules_v6;
  std::map<std::string, int64_t> sysctls;
  // Sync.
  std::string sync_key_file;
  std::string sync_previous_key_file;
  int64_t sync_previous_key_until = 0;  // unix seconds; 0 = no previous key
  std::string sync_mode = "reliable";   // reliable, best-effort, refresh
  std::vector<SyncLinkConfig> sync_links;
  // Storage.
  std::string storage_dir;  // empty = no persistence
  std::string storage_sync = "interval";  // none, interval, every-batch
  int storage_sync_interval_ms = 100;
  int snapshot_interval_s = 0;  // 0 = only on command and at shutdown
  int snapshot_retention = 10;
  // Metrics (Prometheus text) endpoint, "address:port"; empty = off.
  std::string metrics_listen;
  std::string start_state = "backup";  // backup or active
};

// Parses the configuration text; `path` is used in error messages only.
absl::StatusOr<DaemonConfig> ParseConfig(std::string_view text, const std::string& path);
absl::StatusOr<DaemonConfig> LoadConfig(const std::string& path);

// The node's topology (interfaces with resolved MACs, routes, neighbours).
absl::StatusOr<Topology> BuildTopology(const DaemonConfig& c);

}  // namespace ctsync::daemon

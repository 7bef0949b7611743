#include "tools/ctsyncd/config.h"

#include <fstream>
#include <iterator>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/util/status_macros.h"

namespace ctsync::daemon {
namespace {

class LineError {
 public:
  LineError(const std::string& path, int line) : path_(path), line_(line) {}
  absl::Status operator()(const std::string& msg) const {
    return absl::InvalidArgumentError(absl::StrCat(path_, ":", line_, ": ", msg));
  }

 private:
  const std::string& path_;
  int line_;
};

bool ParseInt(const std::string& s, int64_t lo, int64_t hi, int64_t* out) {
  return absl::SimpleAtoi(s, out) && *out >= lo && *out <= hi;
}

bool ParseOnOff(const std::string& s, bool* out) {
  if (s == "on" || s == "yes" || s == "1") return (*out = true), true;
  if (s == "off" || s == "no" || s == "0") return (*out = false), true;
  return false;
}

absl::StatusOr<InterfaceAddress> ParseIfaceAddress(const std::string& s) {
  InterfaceAddress a;
  const size_t slash = s.find('/');
  auto addr = IpAddress::Parse(s.substr(0, slash), &a.family);
  if (!addr) return absl::InvalidArgumentError(absl::StrCat("bad address '", s, "'"));
  a.address = *addr;
  a.prefix_len = a.family == Family::kIpv4 ? 32 : 128;
  if (slash != std::string::npos) {
    int64_t n;
    if (!ParseInt(s.substr(slash + 1), 0, a.prefix_len, &n))
      return absl::InvalidArgumentError(absl::StrCat("bad prefix length in '", s, "'"));
    a.prefix_len = static_cast<int>(n);
  }
  return a;
}

}  // namespace

absl::StatusOr<DaemonConfig> ParseConfig(std::string_view text, const std::string& path) {
  DaemonConfig c;
  c.path = path;
  int lineno = 0;
  bool have_node_id = false;
  for (absl::string_view raw : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    ++lineno;
    const LineError err(path, lineno);
    absl::string_view line = raw;
    if (size_t hash = line.find('#'); hash != absl::string_view::npos) line = line.substr(0, hash);
    std::vector<std::string> w = absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (w.empty()) continue;
    const std::string& key = w[0];
    auto need = [&](size_t n) -> absl::Status {
      if (w.size() < n + 1)
        return err(absl::StrCat("'", key, "' needs ", n, n == 1 ? " value" : " values"));
      return absl::OkStatus();
    };
    // Options of the form "word value" after the leading arguments.
    auto options = [&](size_t from, const std::vector<std::string>& allowed,
                       std::map<std::string, std::vector<std::string>>* out) -> absl::Status {
      for (size_t i = from; i < w.size(); i += 2) {
        if (std::find(allowed.begin(), allowed.end(), w[i]) == allowed.end())
          return err(absl::StrCat("unknown word '", w[i], "' in '", key, "'"));
        if (i + 1 >= w.size()) return err(absl::StrCat("'", w[i], "' needs a value"));
        (*out)[w[i]].push_back(w[i + 1]);
      }
      return absl::OkStatus();
    };
    int64_t n = 0;
    if (key == "node-id") {
      RETURN_IF_ERROR(need(1));
      if (!ParseInt(w[1], 1, 0xffffffffLL, &n)) return err(absl::StrCat("bad node id '", w[1], "'"));
      c.node_id = static_cast<uint32_t>(n);
      have_node_id = true;
    } else if (key == "control-socket") {
      RETURN_IF_ERROR(need(1));
      c.control_socket = w[1];
    } else if (key == "log-level") {
      RETURN_IF_ERROR(need(1));
      if (w[1] != "error" && w[1] != "warning" && w[1] != "info" && w[1] != "debug")
        return err(absl::StrCat("unknown log level '", w[1], "'"));
      c.log_level = w[1];
    } else if (key == "interface") {
      RETURN_IF_ERROR(need(1));
      InterfaceConfig ic;
      ic.name = w[1];
      // Linux's dev_valid_name(): at most 15 bytes, no '/', no white space, not "." or "..".
      if (ic.name.size() > 15 || ic.name == "." || ic.name == ".." ||
          ic.name.find_first_of("/: \t") != std::string::npos)
        return err(absl::StrCat("bad interface name '", ic.name, "'"));
      std::map<std::string, std::vector<std::string>> o;
      RETURN_IF_ERROR(options(2, {"mac", "address", "mtu"}, &o));
      if (o.count("mac") && o["mac"][0] != "auto") {
        ic.mac = ParseMac(o["mac"][0]);
        if (!ic.mac) return err(absl::StrCat("bad MAC '", o["mac"][0], "'"));
      }
      for (const std::string& a : o["address"]) {
        auto ia = ParseIfaceAddress(a);
        if (!ia.ok()) return err(std::string(ia.status().message()));
        ic.addresses.push_back(*ia);
      }
      if (o.count("mtu")) {
        if (!ParseInt(o["mtu"][0], 576, 65535, &n)) return err(absl::StrCat("bad mtu '", o["mtu"][0], "'"));
        ic.mtu = static_cast<int>(n);
      }
      c.interfaces.push_back(ic);
    } else if (key == "route") {
      RETURN_IF_ERROR(need(1));
      RouteConfig r;
      r.destination = w[1];
      std::map<std::string, std::vector<std::string>> o;
      RETURN_IF_ERROR(options(2, {"via", "dev"}, &o));
      if (o.count("via")) r.via = o["via"][0];
      if (o.count("dev")) r.dev = o["dev"][0];
      c.routes.push_back(r);
    } else if (key == "neighbour" || key == "neighbor") {
      RETURN_IF_ERROR(need(1));
      NeighbourConfig nb;
      nb.address = w[1];
      std::map<std::string, std::vector<std::string>> o;
      RETURN_IF_ERROR(options(2, {"lladdr", "dev"}, &o));
      if (!o.count("lladdr") || !o.count("dev")) return err("neighbour needs lladdr and dev");
      nb.lladdr = o["lladdr"][0];
      nb.dev = o["dev"][0];
      c.neighbours.push_back(nb);
    } else if (key == "vip") {
      RETURN_IF_ERROR(need(1));
      auto a = ParseIfaceAddress(w[1]);
      if (!a.ok()) return err(std::string(a.status().message()));
      VipConfig v{a->family, a->address, a->prefix_len, ""};
      std::map<std::string, std::vector<std::string>> o;
      RETURN_IF_ERROR(options(2, {"dev"}, &o));
      if (!o.count("dev")) return err("vip needs dev");
      v.dev = o["dev"][0];
      c.vips.push_back(v);
    } else if (key == "forwarding") {
      RETURN_IF_ERROR(need(2));
      bool on;
      if (!ParseOnOff(w[2], &on)) return err(absl::StrCat("expected on or off, got '", w[2], "'"));
      if (w[1] == "ipv4") {
        c.ipv4_forwarding = on;
      } else if (w[1] == "ipv6") {
        c.ipv6_forwarding = on;
      } else {
        return err(absl::StrCat("unknown family '", w[1], "'"));
      }
    } else if (key == "rules") {
      RETURN_IF_ERROR(need(1));
      c.rules_v4 = w[1];
    } else if (key == "rules6") {
      RETURN_IF_ERROR(need(1));
      c.rules_v6 = w[1];
    } else if (key == "sysctl") {
      RETURN_IF_ERROR(need(2));
      if (!absl::SimpleAtoi(w[2], &n)) return err(absl::StrCat("bad value '", w[2], "'"));
      c.sysctls[w[1]] = n;
    } else if (key == "sync-key-file") {
      RETURN_IF_ERROR(need(1));
      c.sync_key_file = w[1];
    } else if (key == "sync-previous-key-file") {
      RETURN_IF_ERROR(need(3));
      if (w[2] != "until" || !ParseInt(w[3], 0, INT64_MAX, &n))
        return err("expected 'sync-previous-key-file FILE until UNIX-SECONDS'");
      c.sync_previous_key_file = w[1];
      c.sync_previous_key_until = n;
    } else if (key == "sync-mode") {
      RETURN_IF_ERROR(need(1));
      if (w[1] != "reliable" && w[1] != "best-effort" && w[1] != "refresh")
        return err(absl::StrCat("unknown sync mode '", w[1], "'"));
      c.sync_mode = w[1];
    } else if (key == "sync-link") {
      RETURN_IF_ERROR(need(1));
      SyncLinkConfig l;
      l.priority = static_cast<int>(c.sync_links.size());
      std::map<std::string, std::vector<std::string>> o;
      if (w[1] == "udp") {
        l.kind = SyncLinkConfig::Kind::kUdpUnicast;
        RETURN_IF_ERROR(options(2, {"local", "port", "peer"}, &o));
      } else if (w[1] == "multicast") {
        l.kind = SyncLinkConfig::Kind::kUdpMulticast;
        RETURN_IF_ERROR(options(2, {"group", "interface", "port", "local"}, &o));
        if (!o.count("group") || !o.count("interface"))
          return err("multicast link needs group and interface");
        l.group = o["group"][0];
        l.interface = o["interface"][0];
      } else if (w[1] == "tcp") {
        l.kind = SyncLinkConfig::Kind::kTcp;
        RETURN_IF_ERROR(options(2, {"local", "port", "peer"}, &o));
      } else {
        return err(absl::StrCat("unknown link kind '", w[1], "' (udp, multicast, tcp)"));
      }
      if (o.count("local")) l.local = o["local"][0];
      if (o.count("port")) {
        if (!ParseInt(o["port"][0], 1, 65535, &n)) return err(absl::StrCat("bad port '", o["port"][0], "'"));
        l.port = static_cast<uint16_t>(n);
      }
      l.peers = o["peer"];
      if (l.kind != SyncLinkConfig::Kind::kUdpMulticast && l.peers.empty())
        return err("link needs at least one peer");
      c.sync_links.push_back(l);
    } else if (key == "storage-dir") {
      RETURN_IF_ERROR(need(1));
      c.storage_dir = w[1];
    } else if (key == "storage-sync") {
      RETURN_IF_ERROR(need(1));
      if (w[1] != "none" && w[1] != "interval" && w[1] != "every-batch")
        return err(absl::StrCat("unknown storage-sync '", w[1], "' (none, interval, every-batch)"));
      c.storage_sync = w[1];
      if (w.size() > 2) {
        if (!ParseInt(w[2], 1, 60000, &n)) return err(absl::StrCat("bad interval '", w[2], "'"));
        c.storage_sync_interval_ms = static_cast<int>(n);
      }
    } else if (key == "snapshot-interval") {
      RETURN_IF_ERROR(need(1));
      if (!ParseInt(w[1], 0, 86400 * 365, &n)) return err(absl::StrCat("bad interval '", w[1], "'"));
      c.snapshot_interval_s = static_cast<int>(n);
    } else if (key == "snapshot-retention") {
      RETURN_IF_ERROR(need(1));
      if (!ParseInt(w[1], 1, 100000, &n)) return err(absl::StrCat("bad retention '", w[1], "'"));
      c.snapshot_retention = static_cast<int>(n);
    } else if (key == "metrics-listen") {
      RETURN_IF_ERROR(need(1));
      c.metrics_listen = w[1];
    } else if (key == "start-state") {
      RETURN_IF_ERROR(need(1));
      if (w[1] != "backup" && w[1] != "active")
        return err(absl::StrCat("unknown start state '", w[1], "' (backup, active)"));
      c.start_state = w[1];
    } else {
      return err(absl::StrCat("unknown keyword '", key, "'"));
    }
  }
  if (!have_node_id) return absl::InvalidArgumentError(absl::StrCat(path, ": node-id is required"));
  if (c.interfaces.empty())
    return absl::InvalidArgumentError(absl::StrCat(path, ": no interface defined"));
  for (const VipConfig& v : c.vips) {
    bool found = false;
    for (const InterfaceConfig& i : c.interfaces) found |= i.name == v.dev;
    if (!found)
      return absl::InvalidArgumentError(absl::StrCat(path, ": vip on unknown interface '", v.dev, "'"));
  }
  return c;
}

absl::StatusOr<DaemonConfig> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config ", path));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return ParseConfig(text, path);
}

}  // namespace ctsync::daemon

namespace ctsync::daemon {

absl::StatusOr<Topology> BuildTopology(const DaemonConfig& c) {
  Topology t;
  for (const InterfaceConfig& ic : c.interfaces) {
    Interface i;
    i.name = ic.name;
    i.mtu = ic.mtu;
    i.addresses = ic.addresses;
    if (ic.mac) {
      i.mac = *ic.mac;
    } else {
      // "mac auto": the interface's own address, as the kernel reports it.
      std::ifstream in("/sys/class/net/" + ic.name + "/address");
      std::string text;
      if (!(in >> text))
        return absl::NotFoundError(absl::StrCat(c.path, ": interface ", ic.name,
                                                " does not exist (mac auto)"));
      auto mac = ParseMac(text);
      if (!mac) return absl::InternalError(absl::StrCat("unreadable MAC of ", ic.name, ": ", text));
      i.mac = *mac;
    }
    RETURN_IF_ERROR(t.AddInterface(std::move(i)));
  }
  for (const RouteConfig& r : c.routes) {
    if (absl::Status s = t.AddRoute(r.destination, r.via, r.dev); !s.ok())
      return absl::InvalidArgumentError(absl::StrCat(c.path, ": route ", r.destination, ": ", s.message()));
  }
  for (const NeighbourConfig& n : c.neighbours) {
    if (absl::Status s = t.AddNeighbour(n.address, n.lladdr, n.dev); !s.ok())
      return absl::InvalidArgumentError(absl::StrCat(c.path, ": neighbour ", n.address, ": ", s.message()));
  }
  return t;
}

}  // namespace ctsync::daemon

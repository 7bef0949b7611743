// Flows and temp directories shared by the storage tests.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

#include "core/conntrack/flow.h"
#include "core/conntrack/flow_events.h"

namespace ctsync::storage::testing {

// A fresh, empty directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    path_ = (std::filesystem::temp_directory_path() /
             ("ctsync-" + tag + "-" + std::to_string(::getpid()) + "-" +
              std::to_string(reinterpret_cast<uintptr_t>(this))))
                .string();
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline Tuple Reverse(const Tuple& t) {
  Tuple r = t;
  std::swap(r.src, r.dst);
  std::swap(r.sport, r.dport);
  return r;
}

// Flow number i: a TCP flow 192.0.2.x -> 198.51.100.20:80 (or UDP to :53 when udp), whose
// reply is SNATed to 203.0.113.5 when nat. Expires `ttl` after `now`.
inline Flow MakeFlow(uint32_t i, Nanos now, Nanos ttl, bool udp = false, bool nat = false) {
  Flow f;
  Tuple& o = f.tuple[0];
  o.family = Family::kIpv4;
  o.proto = udp ? kProtoUdp : kProtoTcp;
  o.src = IpAddress::FromV4(0xc0000200u + (i >> 16));  // 192.0.2.x
  o.dst = IpAddress::FromV4(0xc6336414u);              // 198.51.100.20
  o.sport = static_cast<uint16_t>(i & 0xffff);
  o.dport = udp ? 53 : 80;
  f.tuple[1] = Reverse(o);
  f.status = kIpsConfirmed | kIpsSeenReply | kIpsAssured;
  if (nat) {
    f.tuple[1].dst = IpAddress::FromV4(0xcb007105u);  // 203.0.113.5
    f.tuple[1].dport = static_cast<uint16_t>(10000 + (i & 0x7fff));
    f.status |= kIpsSrcNat | kIpsSrcNatDone;
  }
  f.created = now;
  f.expires = now + ttl;
  f.id = i + 1;
  if (!udp) f.tcp.state = TcpState::kEstablished;
  return f;
}

inline FlowEvent Event(FlowEventType type, const Flow& f, Nanos now) {
  FlowEvent e;
  e.type = type;
  e.time = now;
  e.flow = f;
  return e;
}

}  // namespace ctsync::storage::testing

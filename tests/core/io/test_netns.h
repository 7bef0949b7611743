// Network namespaces for the io tests that need root: two namespaces joined by a veth
// pair, created per test process (names ctsio-<pid>-a / -b) and deleted by the destructor,
// also when a test fails. InNetns runs a function on a thread that entered a namespace;
// sockets opened there stay in that namespace and may be used from any thread after.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ctsync::io_test {

inline bool Shell(const std::string& cmd) {
  return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
}

inline std::string ShellOutput(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[512];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

// Why root-only tests cannot run here, or nullopt when they can.
inline std::optional<std::string> NetnsUnavailable() {
  if (geteuid() != 0) return "needs root (network namespaces, AF_PACKET)";
  if (!Shell("ip -V")) return "needs iproute2 (ip)";
  return std::nullopt;
}

// Namespaces ctsio-<pid>-<suffix>, deleted (with their veths) by the destructor.
class NetnsSet {
 public:
  static std::unique_ptr<NetnsSet> Create(const std::vector<std::string>& suffixes,
                                          std::string* error) {
    std::unique_ptr<NetnsSet> set(new NetnsSet());
    for (const auto& suffix : suffixes) {
      const std::string name = "ctsio-" + std::to_string(getpid()) + "-" + suffix;
      Shell("ip netns del " + name);  // leftovers of a crashed run with the same pid
      if (!Shell("ip netns add " + name) || !Shell("ip -n " + name + " link set lo up")) {
        *error = "cannot create namespace " + name;
        return nullptr;
      }
      set->names_.push_back(name);
    }
    return set;
  }

  ~NetnsSet() {
    for (const auto& n : names_) Shell("ip netns del " + n);
  }

  const std::string& name(size_t i) const { return names_[i]; }

  // A veth pair, up on both ends, without link-local addresses (addrgenmode none).
  bool Veth(size_t ns1, const std::string& if1, size_t ns2, const std::string& if2) const {
    const std::string& a = names_[ns1];
    const std::string& b = names_[ns2];
    return Shell("ip -n " + a + " link add name " + if1 + " type veth peer name " + if2 +
                 " netns " + b) &&
           Shell("ip -n " + a + " link set " + if1 + " addrgenmode none") &&
           Shell("ip -n " + b + " link set " + if2 + " addrgenmode none") &&
           Shell("ip -n " + a + " link set " + if1 + " up") &&
           Shell("ip -n " + b + " link set " + if2 + " up");
  }

  // `ip -n <ns> <args>`
  bool Ip(const std::string& ns, const std::string& args) const {
    return Shell("ip -n " + ns + " " + args);
  }

  // The MAC of `iface` in `ns` as text, or "".
  std::string MacOf(const std::string& ns, const std::string& iface) const {
    const std::string out = ShellOutput("ip -n " + ns + " -o link show " + iface +
                                        " | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2");
    return out.size() >= 17 ? out.substr(0, 17) : std::string();
  }

 private:
  NetnsSet() = default;
  std::vector<std::string> names_;
};

// Two namespaces a and b joined by veth "va" (in a) <-> "vb" (in b).
class NetnsPair {
 public:
  static std::unique_ptr<NetnsPair> Create(std::string* error) {
    std::unique_ptr<NetnsSet> set = NetnsSet::Create({"a", "b"}, error);
    if (set == nullptr) return nullptr;
    if (!set->Veth(0, "va", 1, "vb")) {
      *error = "cannot create veth va/vb";
      return nullptr;
    }
    return std::unique_ptr<NetnsPair>(new NetnsPair(std::move(set)));
  }

  bool Ip(const std::string& ns, const std::string& args) const { return set_->Ip(ns, args); }
  std::string MacOf(const std::string& ns, const std::string& iface) const {
    return set_->MacOf(ns, iface);
  }

  const std::string a;
  const std::string b;

 private:
  explicit NetnsPair(std::unique_ptr<NetnsSet> set)
      : a(set->name(0)), b(set->name(1)), set_(std::move(set)) {}
  std::unique_ptr<NetnsSet> set_;
};

// Runs `fn` on a fresh thread inside namespace `ns` and returns its result. If entering
// the namespace fails, returns `fn`'s default value.
template <typename F>
auto InNetns(const std::string& ns, F fn) -> decltype(fn()) {
  using R = decltype(fn());
  R result{};
  std::thread t([&] {
    const int fd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    const bool entered = setns(fd, CLONE_NEWNET) == 0;
    close(fd);
    if (entered) result = fn();
  });
  t.join();
  return result;
}

}  // namespace ctsync::io_test

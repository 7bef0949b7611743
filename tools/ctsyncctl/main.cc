// ctsyncctl: controls a running ctsyncd over its unix socket.
//
//   ctsyncctl [-S SOCKET] COMMAND [ARGS]
//
// Commands: state | promote | demote | stats | dump live|internal|external | commit |
// flush internal|external | resync | bulk | snapshot | sysctl NAME [VALUE] | counters |
// reload | expect.
// conntrackd-style flags, so a primary-backup script written for conntrackd needs only the
// program name changed: -c (commit), -f [internal|external] (flush; both without an
// argument), -n (request a resync), -B (bulk send), -s (stats), -i (dump the internal
// cache), -e (dump the external cache), -L (dump the live table), -k (shut the daemon down).
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tools/ctsyncd/control_server.h"

namespace {

constexpr const char* kDefaultSocket = "/run/ctsyncd.sock";

int Usage() {
  std::fprintf(stderr,
               "usage: ctsyncctl [-S SOCKET] COMMAND [ARGS]\n"
               "  state | promote | demote | stats | counters | expect\n"
               "  dump live|internal|external | commit | flush internal|external\n"
               "  resync | bulk | snapshot | reload | sysctl NAME [VALUE]\n"
               "  conntrackd-style: -c -f [internal|external] -n -B -s -i -e -L -k\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket = kDefaultSocket;
  if (const char* env = std::getenv("CTSYNCD_SOCKET")) socket = env;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() >= 2 && args[0] == "-S") {
    socket = args[1];
    args.erase(args.begin(), args.begin() + 2);
  }
  if (args.empty()) return Usage();
  std::vector<std::string> req;
  const std::string& a = args[0];
  if (a == "-h" || a == "--help") {
    Usage();
    return 0;
  } else if (a == "-c") {
    req = {"commit"};
  } else if (a == "-f") {
    req = {"flush", args.size() > 1 ? args[1] : "all"};
  } else if (a == "-n") {
    req = {"resync"};
  } else if (a == "-B") {
    req = {"bulk"};
  } else if (a == "-s") {
    req = {"stats"};
  } else if (a == "-i") {
    req = {"dump", "internal"};
  } else if (a == "-e") {
    req = {"dump", "external"};
  } else if (a == "-L") {
    req = {"dump", "live"};
  } else if (a == "-k") {
    req = {"shutdown"};
  } else if (a[0] == '-') {
    std::fprintf(stderr, "ctsyncctl: unknown option %s\n", a.c_str());
    return Usage();
  } else {
    req = args;
  }
  auto r = ctsync::daemon::ControlRequest(socket, req);
  if (!r.ok()) {
    std::fprintf(stderr, "ctsyncctl: %s\n", std::string(r.status().message()).c_str());
    return 1;
  }
  if (!r->first) {
    std::fprintf(stderr, "ctsyncctl: %s\n", r->second.c_str());
    return 1;
  }
  std::fputs(r->second.c_str(), stdout);
  return 0;
}

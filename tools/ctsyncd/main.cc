// ctsyncd: the ctsync daemon. Usage: ctsyncd -c CONFIG [--check]
//   --check  parse the configuration and the rules, print what is wrong, and exit.
// Signals: SIGTERM/SIGINT stop (with a snapshot when storage is configured), SIGHUP
// reloads the rules files without touching flows.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "tools/ctsyncd/config.h"
#include "tools/ctsyncd/daemon.h"

namespace {
std::atomic<bool> g_stop{false};
ctsync::daemon::Daemon* g_daemon = nullptr;

void OnSignal(int sig) {
  if (sig == SIGHUP) {
    if (g_daemon) g_daemon->RequestReload();
  } else {
    g_stop.store(true);
  }
}
}  // namespace

int main(int argc, char** argv) {
  std::string config_path = "/etc/ctsync/ctsyncd.conf";
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "-c") && i + 1 < argc) {
      config_path = argv[++i];
    } else if (!std::strcmp(argv[i], "--check")) {
      check = true;
    } else {
      std::fprintf(stderr, "usage: ctsyncd -c CONFIG [--check]\n");
      return 2;
    }
  }
  auto config = ctsync::daemon::LoadConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "ctsyncd: %s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  if (check) {
    std::printf("%s: ok\n", config_path.c_str());
    return 0;
  }
  auto daemon = ctsync::daemon::Daemon::Create(*config);
  if (!daemon.ok()) {
    std::fprintf(stderr, "ctsyncd: %s\n", std::string(daemon.status().message()).c_str());
    return 1;
  }
  g_daemon = daemon->get();
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  absl::Status s = (*daemon)->Run(g_stop);
  g_daemon = nullptr;
  if (!s.ok()) {
    std::fprintf(stderr, "ctsyncd: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}

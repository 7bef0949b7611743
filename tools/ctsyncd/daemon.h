// ctsyncd: wires one node together — the engine (conntrack, NAT, rules, pipeline) on the
// datapath thread with live AF_PACKET I/O, replication with the peers on the sync thread,
// the RocksDB store, the control socket and the metrics endpoint.
//
// Threads: the datapath thread owns the engine and everything in it; the sync thread owns
// the replicator and its links; other threads reach the engine only through
// DatapathLoop::Post (and wait for the answer when they need one).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/ctsyncd/config.h"

namespace ctsync::daemon {

class Daemon {
 public:
  static absl::StatusOr<std::unique_ptr<Daemon>> Create(const DaemonConfig& config);
  ~Daemon();

  // Runs until `stop` is set (SIGTERM/SIGINT) or a `shutdown` command; then snapshots (when
  // storage is configured) and stops everything in order.
  absl::Status Run(std::atomic<bool>& stop);

  // SIGHUP: reads the rules files again and swaps them in; flows are untouched.
  void RequestReload() { reload_.store(true); }

  class Impl;

 private:
  explicit Daemon(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> reload_{false};
};

}  // namespace ctsync::daemon

// Two engines joined by ctsync's real replication: a Replicator per node over UDP sockets
// on 127.0.0.1, node B applying what it learns into its live table as external flows
// (sync/external_apply.h) and A's fragment queues into its reassembler
// (sync/fragment_update_codec.h), exactly as a backup does. Single-threaded: Replicate() pumps the
// sockets until B holds everything A announced. For ctreplay --failover-at.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "core/conntrack/conntrack_engine.h"
#include "core/pipeline/pipeline.h"
#include "core/util/clock.h"

namespace ctsync::ctreplay {

class SyncPair {
 public:
  // A's pipeline should record fragment events (PipelineOptions::defrag.export_capacity).
  static absl::StatusOr<std::unique_ptr<SyncPair>> Create(Pipeline& a, Pipeline& b,
                                                          const Clock& clock);
  ~SyncPair();

  // Publishes A's pending flow and fragment events and waits (real time, bounded) until B applied them all.
  absl::Status Replicate();
  // B takes over: its external flows become its own.
  void Promote();

  class Impl;

 private:
  explicit SyncPair(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ctsync::ctreplay

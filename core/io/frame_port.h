// The seam between the datapath loop and one interface's frame I/O. PacketSocket is the
// live implementation (AF_PACKET); tests use fakes that signal an eventfd.
//
// Owner: the datapath thread that polls fd(); a port is not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/types/span.h"

namespace ctsync {

class FramePort {
 public:
  virtual ~FramePort() = default;

  // A non-blocking descriptor that becomes readable (level-triggered) while frames wait.
  virtual int fd() const = 0;

  // Hands up to `max` waiting frames to `fn`, in arrival order; returns how many. The span
  // is valid only during the call. Never blocks.
  virtual size_t Receive(absl::FunctionRef<void(absl::Span<const uint8_t>)> fn, size_t max) = 0;

  // Queues (or sends) one complete Ethernet frame. A port may hold frames until Flush().
  virtual absl::Status Send(absl::Span<const uint8_t> frame) = 0;

  // Pushes every queued frame to the wire. Called once per batch by the loop.
  virtual absl::Status Flush() = 0;

  // Folds kernel-side statistics (ring drops) into the port's counters; periodic.
  virtual void UpdateKernelStatistics() {}
};

}  // namespace ctsync

// Where engine messages go. core/ has no logging of its own (no globals, no I/O): the owner
// (the daemon, a test) hands a sink in. Called on the thread that runs the engine.
#pragma once

#include <string_view>

#include "core/util/clock.h"

namespace ctsync {

enum class LogSeverity { kError, kWarning, kInfo };

class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void Log(LogSeverity severity, std::string_view message) = 0;
};

// The kernel's net_ratelimit(): at most `burst` messages per `interval`, then silence
// until the interval has passed, counting what was suppressed.
class RateLimit {
 public:
  RateLimit(int burst = 10, Nanos interval = 5 * kNanosPerSecond)
      : burst_(burst), interval_(interval) {}
  bool Allow(Nanos now) {
    if (now - begin_ >= interval_ || begin_ == 0) {
      begin_ = now == 0 ? 1 : now;
      printed_ = 0;
    }
    if (printed_ < burst_) {
      ++printed_;
      return true;
    }
    ++suppressed_;
    return false;
  }
  uint64_t suppressed() const { return suppressed_; }

 private:
  int burst_;
  Nanos interval_;
  Nanos begin_ = 0;
  int printed_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace ctsync

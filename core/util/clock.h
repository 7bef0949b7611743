// The injected clock. Every component that needs time takes a Clock& so tests can drive
// timeouts with a ManualClock and never sleep. Time is nanoseconds on a monotonic scale;
// WallNanos() is the Unix wall clock, used only where time must survive a restart.
#pragma once

#include <atomic>
#include <cstdint>

namespace ctsync {

using Nanos = int64_t;
inline constexpr Nanos kNanosPerSecond = 1'000'000'000;
inline constexpr Nanos kNanosPerMilli = 1'000'000;

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time; thread-safe.
  virtual Nanos Now() const = 0;
  // Wall-clock time since the Unix epoch; thread-safe.
  virtual Nanos WallNanos() const = 0;
};

// The real clocks (CLOCK_MONOTONIC and CLOCK_REALTIME).
class SystemClock final : public Clock {
 public:
  Nanos Now() const override;
  Nanos WallNanos() const override;
  static SystemClock& Get();
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Nanos start = kNanosPerSecond, Nanos wall_offset = 1'700'000'000 * kNanosPerSecond)
      : now_(start), wall_offset_(wall_offset) {}
  Nanos Now() const override { return now_.load(std::memory_order_relaxed); }
  Nanos WallNanos() const override { return Now() + wall_offset_; }
  void Set(Nanos t) { now_.store(t, std::memory_order_relaxed); }
  void Advance(Nanos d) { now_.fetch_add(d, std::memory_order_relaxed); }

 private:
  std::atomic<Nanos> now_;
  Nanos wall_offset_;
};

}  // namespace ctsync

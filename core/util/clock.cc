#include "core/util/clock.h"

#include <time.h>

namespace ctsync {
namespace {
Nanos Read(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return static_cast<Nanos>(ts.tv_sec) * kNanosPerSecond + ts.tv_nsec;
}
}  // namespace

Nanos SystemClock::Now() const { return Read(CLOCK_MONOTONIC); }
Nanos SystemClock::WallNanos() const { return Read(CLOCK_REALTIME); }
SystemClock& SystemClock::Get() {
  static SystemClock clock;
  return clock;
}

}  // namespace ctsync

#include "core/util/clock.h"

#include "core/util/status_macros.h"
#include "gtest/gtest.h"

namespace ctsync {
namespace {

TEST(ManualClockTest, MovesOnlyWhenTold) {
  ManualClock clock(5 * kNanosPerSecond);
  EXPECT_EQ(clock.Now(), 5 * kNanosPerSecond);
  clock.Advance(kNanosPerMilli);
  EXPECT_EQ(clock.Now(), 5 * kNanosPerSecond + kNanosPerMilli);
  EXPECT_EQ(clock.WallNanos() - clock.Now(), 1'700'000'000 * kNanosPerSecond);
}

TEST(SystemClockTest, IsMonotonic) {
  Nanos a = SystemClock::Get().Now();
  Nanos b = SystemClock::Get().Now();
  EXPECT_LE(a, b);
  EXPECT_GT(SystemClock::Get().WallNanos(), 1'600'000'000 * kNanosPerSecond);
}

absl::StatusOr<int> Half(int x) {
  if (x % 2) return absl::InvalidArgumentError("odd");
  return x / 2;
}
absl::Status Quarter(int x, int* out) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(*out, Half(h));
  RETURN_IF_ERROR(absl::OkStatus());
  return absl::OkStatus();
}

TEST(StatusMacrosTest, PropagateErrorsAndValues) {
  int out = 0;
  EXPECT_TRUE(Quarter(8, &out).ok());
  EXPECT_EQ(out, 2);
  EXPECT_EQ(Quarter(6, &out).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ctsync

#include "core/conntrack/timer_wheel.h"

#include <algorithm>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace ctsync {
namespace {

constexpr Nanos kSec = kNanosPerSecond;
constexpr Nanos kMs = kNanosPerMilli;

class TimerWheelTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kCap = 64;
  TimerWheelTest()
      : links_(kCap), wheel_(links_.data(), sizeof(TimerLink), kCap, 0), deadline_(kCap, 0) {}

  void Schedule(uint32_t id, Nanos d) {
    deadline_[id] = d;
    wheel_.Schedule(id, d);
  }
  std::vector<uint32_t> AdvanceAndDrain(Nanos now) {
    wheel_.Advance(now, [this](uint32_t id) { return deadline_[id]; });
    std::vector<uint32_t> out;
    for (uint32_t id = wheel_.PopDue(); id != TimerWheel::kNone; id = wheel_.PopDue()) {
      out.push_back(id);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  std::vector<TimerLink> links_;
  TimerWheel wheel_;
  std::vector<Nanos> deadline_;
};

TEST_F(TimerWheelTest, FiresExactlyWhenDeadlinePasses) {
  struct Case {
    Nanos deadline;
  };
  // One per level, plus sub-tick and beyond-the-wheel deadlines.
  const Case cases[] = {{1},         {500 * 1000},      {3 * kMs},       {700 * kMs},
                        {90 * kSec}, {5 * 3600 * kSec}, {432000 * kSec}, {70LL * 86400 * kSec}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.deadline);
    TimerLink link;
    TimerWheel wheel(&link, sizeof(link), 1, 0);
    Nanos deadline = c.deadline;
    auto dl = [&](uint32_t) { return deadline; };
    wheel.Schedule(0, deadline);
    wheel.Advance(deadline - 1, dl);
    EXPECT_FALSE(wheel.has_due());
    EXPECT_TRUE(wheel.IsScheduled(0));
    wheel.Advance(deadline, dl);
    EXPECT_EQ(wheel.PopDue(), 0u);
    EXPECT_FALSE(wheel.IsScheduled(0));
  }
}

TEST_F(TimerWheelTest, LargeJumpFiresEverythingDue) {
  Schedule(1, 2 * kSec);
  Schedule(2, 100 * kSec);
  Schedule(3, 40000 * kSec);
  Schedule(4, 50000 * kSec);
  EXPECT_EQ(AdvanceAndDrain(45000 * kSec), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(AdvanceAndDrain(50000 * kSec - 1), (std::vector<uint32_t>{}));
  EXPECT_EQ(AdvanceAndDrain(50000 * kSec), (std::vector<uint32_t>{4}));
}

TEST_F(TimerWheelTest, LazyExtensionIsRefiledNotFired) {
  Schedule(1, 10 * kSec);
  deadline_[1] = 30 * kSec;  // moved later without telling the wheel
  EXPECT_EQ(AdvanceAndDrain(10 * kSec), (std::vector<uint32_t>{}));
  EXPECT_TRUE(wheel_.IsScheduled(1));
  EXPECT_EQ(AdvanceAndDrain(30 * kSec - 1), (std::vector<uint32_t>{}));
  EXPECT_EQ(AdvanceAndDrain(30 * kSec), (std::vector<uint32_t>{1}));
}

TEST_F(TimerWheelTest, EarlierDeadlineNeedsReschedule) {
  Schedule(1, 100 * kSec);
  Schedule(1, 5 * kSec);
  EXPECT_EQ(AdvanceAndDrain(5 * kSec), (std::vector<uint32_t>{1}));
}

TEST_F(TimerWheelTest, CancelRemovesFromWheelAndDueList) {
  Schedule(1, 1 * kSec);
  Schedule(2, 1 * kSec);
  Schedule(3, 1 * kSec);
  wheel_.Cancel(1);
  wheel_.Advance(2 * kSec, [this](uint32_t id) { return deadline_[id]; });
  wheel_.Cancel(2);  // on the due list now
  EXPECT_EQ(wheel_.PopDue(), 3u);
  EXPECT_EQ(wheel_.PopDue(), TimerWheel::kNone);
  wheel_.Cancel(3);  // unscheduled: no-op
}

TEST_F(TimerWheelTest, PastDeadlineIsDueAtOnce) {
  wheel_.Advance(10 * kSec, [](uint32_t) { return Nanos{0}; });
  Schedule(5, 3 * kSec);
  EXPECT_TRUE(wheel_.IsDue(5));
  EXPECT_EQ(wheel_.PopDue(), 5u);
}

TEST_F(TimerWheelTest, AdvanceCostsWhatComesDueNotWhatIsHeld) {
  for (uint32_t id = 1; id < kCap; ++id) Schedule(id, 86400 * kSec + id);
  Schedule(0, 1 * kSec);
  int reads = 0;
  auto counting = [&](uint32_t id) {
    ++reads;
    return deadline_[id];
  };
  for (Nanos t = 0; t <= 2 * kSec; t += 10 * kMs) wheel_.Advance(t, counting);
  EXPECT_EQ(wheel_.PopDue(), 0u);
  // Timer 0 is read once per level it cascades through; the 63 far timers not at all.
  EXPECT_LE(reads, TimerWheel::kLevels);
  EXPECT_GE(reads, 1);
}

TEST_F(TimerWheelTest, RandomizedAgainstBruteForce) {
  std::mt19937_64 rng(42);
  // Links embedded in bigger objects, as in the flow slab.
  struct Obj {
    char pad[20];
    TimerLink link;
  };
  std::vector<Obj> objs(kCap);
  TimerWheel wheel(&objs[0].link, sizeof(Obj), kCap, 0);
  std::vector<Nanos> deadline(kCap, -1);  // -1: not scheduled
  auto dl = [&](uint32_t id) { return deadline[id]; };
  Nanos now = 0;
  for (int step = 0; step < 20000; ++step) {
    const uint32_t id = rng() % kCap;
    const Nanos span = (rng() % 4 == 0) ? 600000 * kSec : (rng() % 2 ? 200 * kSec : 2 * kSec);
    const Nanos d = now + static_cast<Nanos>(rng() % span);
    switch (rng() % 4) {
      case 0:  // lazy extension only if later
        if (deadline[id] >= 0 && d >= deadline[id]) {
          deadline[id] = d;
          break;
        }
        [[fallthrough]];
      case 1:
        deadline[id] = d;
        wheel.Schedule(id, d);
        break;
      case 2:
        deadline[id] = -1;
        wheel.Cancel(id);
        break;
      default: {
        now += static_cast<Nanos>(rng() % (rng() % 8 == 0 ? 40000 * kSec : 3 * kSec));
        wheel.Advance(now, dl);
        std::vector<uint32_t> got;
        for (uint32_t x = wheel.PopDue(); x != TimerWheel::kNone; x = wheel.PopDue()) {
          got.push_back(x);
          ASSERT_LE(deadline[x], now);
          deadline[x] = -1;
        }
        for (uint32_t x = 0; x < kCap; ++x) {
          ASSERT_TRUE(deadline[x] < 0 || deadline[x] > now)
              << "timer " << x << " due at " << deadline[x] << " not fired at " << now;
        }
      }
    }
  }
}

}  // namespace
}  // namespace ctsync

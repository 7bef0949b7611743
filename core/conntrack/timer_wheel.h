// A hierarchical timer wheel with intrusive, index-addressed links: the expiry engine behind
// FlowTable. Cost is O(timers that come due), never O(timers held), and rescheduling to a
// later time is free (the wheel re-reads the deadline when a slot fires and re-files the
// timer if it moved: "lazy" rescheduling, as the engine pushes flow timeouts on every packet).
//
// Owned by one FlowTable and used only by the thread that owns that table's shard. The
// links are intrusive: each timed object (a Flow) embeds a TimerLink, and the wheel finds
// the link of timer `id` at first + id * stride, so linking touches only the objects
// involved and the wheel itself is a few KiB of list heads.
//
// Layout: kLevels levels of 1024 slots. A level-L slot spans 2^(kTickShift + 10L) ns: about
// 66 us, 67 ms, 69 s and 19.5 h; the top level reaches 2.3 years. A timer is filed in the
// lowest level whose slots reach its deadline; when that slot's time starts the timer is
// either due or re-filed lower (cascading happens only for timers that are still alive, and
// a 30 s or 120 s conntrack timeout cascades once or twice). Timers further out than the top
// level reaches are parked in its farthest slot and re-filed.
//
// The level-0 slot that holds `now` is re-read on every Advance (it may hold timers due
// later within the tick); the short tick keeps that re-read small when Advance runs often.
#pragma once

#include <cstdint>
#include <vector>

#include "core/util/clock.h"

namespace ctsync {

// The per-timer part of the wheel, embedded in the timed object. Copying an object copies
// its link; only the wheel may change it.
// Flow keeps fields in this struct's tail padding ([[no_unique_address]]): assign a
// TimerLink, never memset or memcpy sizeof(TimerLink) over one.
struct TimerLink {
  uint32_t next = ~0u;
  uint32_t prev = ~0u;
  uint16_t slot = 0xffff;  // wheel slot, the due list, or unscheduled
};

class TimerWheel {
 public:
  static constexpr uint32_t kNone = ~0u;
  static constexpr int kTickShift = 16;
  static constexpr int kLevelBits = 10;
  static constexpr int kLevels = 4;
  static constexpr uint32_t kSlotsPerLevel = 1u << kLevelBits;

  // Holds timers with ids in [0, capacity) whose links are at first + id * stride bytes
  // (all default-constructed, i.e. unscheduled). `start` is the wheel's initial time.
  TimerWheel(TimerLink* first, size_t stride, uint32_t capacity, Nanos start);

  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // Files an unscheduled timer. A deadline at or before the wheel's time is due at once.
  void Schedule(uint32_t id, Nanos deadline);
  // Unlinks a timer wherever it is (wheel or due list); no-op when unscheduled.
  void Cancel(uint32_t id);
  bool IsScheduled(uint32_t id) const { return link(id).slot != kUnscheduled; }
  bool IsDue(uint32_t id) const { return link(id).slot == kDueSlot; }

  // Moves the wheel to `now` (never backwards). Every timer whose slot came due is checked
  // against deadline_of(id): if it is <= now the timer goes on the due list, otherwise it is
  // re-filed. After the call every timer with deadline_of(id) <= now is on the due list,
  // provided deadlines were only moved later without telling the wheel. The due list is not
  // sorted by deadline.
  template <typename DeadlineFn>
  void Advance(Nanos now, DeadlineFn&& deadline_of);

  // Takes the first timer off the due list (it becomes unscheduled); kNone when empty.
  uint32_t PopDue();
  bool has_due() const { return heads_[kDueSlot] != kNone; }

  Nanos now() const { return now_; }
  uint32_t capacity() const { return capacity_; }

 private:
  static constexpr uint16_t kDueSlot = kLevels * kSlotsPerLevel;
  static constexpr uint16_t kUnscheduled = TimerLink{}.slot;
  static constexpr int Shift(int level) { return kTickShift + kLevelBits * level; }

  TimerLink& link(uint32_t id) const {
    return *reinterpret_cast<TimerLink*>(base_ + static_cast<size_t>(id) * stride_);
  }

  void Link(uint32_t id, uint16_t slot);
  void Unlink(uint32_t id);
  // Files a timer whose deadline is after now_.
  void Place(uint32_t id, Nanos deadline);
  template <typename DeadlineFn>
  void FireSlot(uint16_t slot, DeadlineFn& deadline_of);

  char* base_;
  size_t stride_;
  uint32_t capacity_;
  Nanos now_;
  std::vector<uint32_t> heads_;  // kLevels * kSlotsPerLevel slot lists + the due list
  uint32_t due_tail_ = kNone;    // the due list is FIFO
};

template <typename DeadlineFn>
void TimerWheel::FireSlot(uint16_t slot, DeadlineFn& deadline_of) {
  uint32_t id = heads_[slot];
  heads_[slot] = kNone;
  while (id != kNone) {
    TimerLink& l = link(id);
    const uint32_t next = l.next;
    l.slot = kUnscheduled;
    const Nanos deadline = deadline_of(id);
    if (deadline <= now_) {
      Link(id, kDueSlot);
    } else {
      Place(id, deadline);
    }
    id = next;
  }
}

template <typename DeadlineFn>
void TimerWheel::Advance(Nanos now, DeadlineFn&& deadline_of) {
  if (now < now_) now = now_;
  const uint64_t prev = static_cast<uint64_t>(now_);
  now_ = now;
  const uint64_t cur = static_cast<uint64_t>(now);
  // Upper levels first, so timers they re-file into lower levels are seen in this call.
  for (int level = kLevels - 1; level >= 0; --level) {
    const uint64_t old_bucket = prev >> Shift(level);
    const uint64_t new_bucket = cur >> Shift(level);
    // Level 0 re-checks the current bucket every time: it holds timers due within the tick.
    const uint64_t first = level == 0 ? old_bucket : old_bucket + 1;
    if (new_bucket < first) continue;
    uint64_t count = new_bucket - first + 1;
    if (count > kSlotsPerLevel) count = kSlotsPerLevel;
    for (uint64_t b = new_bucket - count + 1; b <= new_bucket; ++b) {
      FireSlot(static_cast<uint16_t>(level * kSlotsPerLevel + (b & (kSlotsPerLevel - 1))),
               deadline_of);
    }
  }
}

}  // namespace ctsync

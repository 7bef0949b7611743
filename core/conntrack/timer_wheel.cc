// See timer_wheel.h.
#include "core/conntrack/timer_wheel.h"

namespace ctsync {

TimerWheel::TimerWheel(TimerLink* first, size_t stride, uint32_t capacity, Nanos start)
    : base_(reinterpret_cast<char*>(first)),
      stride_(stride),
      capacity_(capacity),
      now_(start < 0 ? 0 : start),
      heads_(kDueSlot + 1, kNone) {}

void TimerWheel::Link(uint32_t id, uint16_t slot) {
  TimerLink& l = link(id);
  l.slot = slot;
  l.next = kNone;
  if (slot == kDueSlot) {
    // FIFO, so timers leave the due list in the order they came due.
    l.prev = due_tail_;
    if (due_tail_ != kNone) {
      link(due_tail_).next = id;
    } else {
      heads_[slot] = id;
    }
    due_tail_ = id;
    return;
  }
  const uint32_t head = heads_[slot];
  l.next = head;
  l.prev = kNone;
  if (head != kNone) link(head).prev = id;
  heads_[slot] = id;
}

void TimerWheel::Unlink(uint32_t id) {
  TimerLink& l = link(id);
  if (l.prev != kNone) {
    link(l.prev).next = l.next;
  } else {
    heads_[l.slot] = l.next;
  }
  if (l.next != kNone) {
    link(l.next).prev = l.prev;
  } else if (l.slot == kDueSlot) {
    due_tail_ = l.prev;
  }
  l = TimerLink{};
}

void TimerWheel::Place(uint32_t id, Nanos deadline) {
  const uint64_t d = static_cast<uint64_t>(deadline);
  const uint64_t now = static_cast<uint64_t>(now_);
  for (int level = 0; level < kLevels; ++level) {
    const uint64_t bucket = d >> Shift(level);
    // A bucket a full revolution or more ahead would alias a nearer one.
    if (bucket - (now >> Shift(level)) < kSlotsPerLevel) {
      Link(id, static_cast<uint16_t>(level * kSlotsPerLevel + (bucket & (kSlotsPerLevel - 1))));
      return;
    }
  }
  // Beyond the wheel's reach: park in the farthest top-level slot; it is re-filed then.
  const int top = kLevels - 1;
  const uint64_t far = (now >> Shift(top)) + kSlotsPerLevel - 1;
  Link(id, static_cast<uint16_t>(top * kSlotsPerLevel + (far & (kSlotsPerLevel - 1))));
}

void TimerWheel::Schedule(uint32_t id, Nanos deadline) {
  if (IsScheduled(id)) Unlink(id);
  if (deadline <= now_) {
    Link(id, kDueSlot);
  } else {
    Place(id, deadline);
  }
}

void TimerWheel::Cancel(uint32_t id) {
  if (IsScheduled(id)) Unlink(id);
}

uint32_t TimerWheel::PopDue() {
  const uint32_t id = heads_[kDueSlot];
  if (id != kNone) Unlink(id);
  return id;
}

}  // namespace ctsync

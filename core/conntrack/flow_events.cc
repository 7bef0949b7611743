#include "core/conntrack/flow_events.h"

namespace ctsync {

FlowEventRing::FlowEventRing(size_t capacity) : mask_(~size_t{0}) {
  if (capacity == 0) return;
  size_t n = 1;
  while (n < capacity) n <<= 1;
  slots_ = std::make_unique<FlowEvent[]>(n);
  mask_ = n - 1;
}

bool FlowEventRing::Push(const FlowEvent& e) {
  if (!enabled()) return false;
  const size_t head = head_.load(std::memory_order_relaxed);
  if (head - tail_.load(std::memory_order_acquire) > mask_) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  slots_[head & mask_] = e;
  head_.store(head + 1, std::memory_order_release);
  pushed_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

std::optional<FlowEvent> FlowEventRing::Pop() {
  if (!enabled()) return std::nullopt;
  const size_t tail = tail_.load(std::memory_order_relaxed);
  if (tail == head_.load(std::memory_order_acquire)) return std::nullopt;
  FlowEvent e = slots_[tail & mask_];
  tail_.store(tail + 1, std::memory_order_release);
  return e;
}

}  // namespace ctsync

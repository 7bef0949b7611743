#include "core/conntrack/flow_events.h"

#include <sys/mman.h>

#include <new>
#include <type_traits>

namespace ctsync {

// Blocks hold events as raw bytes, constructed on push: a fresh block is not written
// before it is used, and nothing needs destroying.
static_assert(std::is_trivially_copyable_v<FlowEvent>);
static_assert(std::is_trivially_destructible_v<FlowEvent>);

FlowEventRing::FlowEventRing(size_t capacity) {
  if (capacity == 0) return;
  size_t n = 1;
  while (n < capacity) n <<= 1;
  write_block_ = read_block_ = NewBlock();
  if (write_block_ == nullptr) throw std::bad_alloc();
  capacity_ = n;
}

FlowEventRing::~FlowEventRing() {
  for (Block* b = read_block_; b != nullptr;) {
    Block* next = b->next.load(std::memory_order_acquire);
    Unmap(b);
    b = next;
  }
  for (size_t t = spare_tail_.load(); t != spare_head_.load(); ++t) Unmap(spares_[t % kSpareBlocks]);
}

FlowEventRing::Block* FlowEventRing::NewBlock() {
  static_assert(sizeof(Block) <= 128 * 1024, "a block should fill whole pages, not spill");
  const size_t t = spare_tail_.load(std::memory_order_relaxed);
  if (t != spare_head_.load(std::memory_order_acquire)) {
    Block* b = spares_[t % kSpareBlocks];
    spare_tail_.store(t + 1, std::memory_order_release);
    b->next.store(nullptr, std::memory_order_relaxed);
    return b;
  }
  void* p = mmap(nullptr, sizeof(Block), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED) return nullptr;
  mapped_.fetch_add(1, std::memory_order_relaxed);
  return new (p) Block;
}

void FlowEventRing::RetireBlock(Block* b) {
  const size_t h = spare_head_.load(std::memory_order_relaxed);
  if (h - spare_tail_.load(std::memory_order_acquire) < kSpareBlocks) {
    spares_[h % kSpareBlocks] = b;
    spare_head_.store(h + 1, std::memory_order_release);
    return;
  }
  Unmap(b);
}

void FlowEventRing::Unmap(Block* b) {
  b->~Block();
  munmap(b, sizeof(Block));
  mapped_.fetch_sub(1, std::memory_order_relaxed);
}

bool FlowEventRing::NextWriteBlock() {
  Block* b = NewBlock();
  if (b == nullptr) return false;
  // Linked before the event that needs it is published (head_), so a consumer that sees
  // the event sees the link.
  write_block_->next.store(b, std::memory_order_release);
  write_block_ = b;
  write_pos_ = 0;
  return true;
}

bool FlowEventRing::Push(const FlowEvent& e) {
  if (!enabled()) return false;
  const size_t head = head_.load(std::memory_order_relaxed);
  if (head - tail_.load(std::memory_order_acquire) >= capacity_ ||
      (write_pos_ == kRingBlockEvents && !NextWriteBlock())) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  new (write_block_->slot(write_pos_++)) FlowEvent(e);
  head_.store(head + 1, std::memory_order_release);
  pushed_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

std::optional<FlowEvent> FlowEventRing::Pop() {
  if (!enabled()) return std::nullopt;
  const size_t tail = tail_.load(std::memory_order_relaxed);
  if (tail == head_.load(std::memory_order_acquire)) return std::nullopt;
  if (read_pos_ == kRingBlockEvents) {
    // This block is read to its end and the producer has moved on (the event just seen
    // lives in a later block), so it is ours to hand back.
    Block* next = read_block_->next.load(std::memory_order_acquire);
    RetireBlock(read_block_);
    read_block_ = next;
    read_pos_ = 0;
  }
  FlowEvent e = *read_block_->slot(read_pos_++);
  tail_.store(tail + 1, std::memory_order_release);
  return e;
}

}  // namespace ctsync

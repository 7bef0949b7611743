#include "core/conntrack/flow_events.h"

#include <cstdint>
#include <thread>

#include "gtest/gtest.h"

namespace ctsync {
namespace {

FlowEvent Numbered(uint64_t i) {
  FlowEvent e;
  e.index = static_cast<FlowIndex>(i);
  e.time = static_cast<Nanos>(i);
  e.flow.mark = static_cast<uint32_t>(i * 7);
  return e;
}

TEST(FlowEventRingTest, DisabledRingTakesNothing) {
  FlowEventRing ring(0);
  EXPECT_FALSE(ring.enabled());
  EXPECT_FALSE(ring.Push(Numbered(1)));
  EXPECT_FALSE(ring.Pop());
  EXPECT_EQ(ring.blocks_mapped(), 0u);
}

// Across many blocks, with the reader a little behind the writer: every event comes out
// once, in order, whole; beyond the capacity (rounded up to a power of two) pushes count
// drops and change nothing.
TEST(FlowEventRingTest, FifoAcrossBlocksAndBoundedByCapacity) {
  FlowEventRing ring(1000);  // 1024
  uint64_t next_in = 0, next_out = 0;
  for (int round = 0; round < 30; ++round) {  // the backlog grows by 10 a round
    for (int k = 0; k < 700; ++k) ASSERT_TRUE(ring.Push(Numbered(next_in++)));
    for (int k = 0; k < 690; ++k) {
      const std::optional<FlowEvent> e = ring.Pop();
      ASSERT_TRUE(e);
      ASSERT_EQ(e->time, static_cast<Nanos>(next_out));
      ASSERT_EQ(e->flow.mark, static_cast<uint32_t>(next_out * 7));
      ++next_out;
    }
  }
  EXPECT_EQ(ring.size(), next_in - next_out);
  while (ring.size() < 1024) ASSERT_TRUE(ring.Push(Numbered(next_in++)));
  EXPECT_FALSE(ring.Push(Numbered(next_in)));
  EXPECT_EQ(ring.dropped(), 1u);
  while (const std::optional<FlowEvent> e = ring.Pop())
    ASSERT_EQ(e->time, static_cast<Nanos>(next_out++));
  EXPECT_EQ(next_out, next_in);
  EXPECT_EQ(ring.pushed(), next_in);
}

// Memory follows what the ring holds: a burst maps blocks, reading it hands them back
// (all but the spares kept for reuse), and a ring drained as it goes keeps a few blocks
// however many events pass through it.
TEST(FlowEventRingTest, MemoryFollowsTheBacklogNotTheCapacity) {
  FlowEventRing ring(size_t{1} << 20);
  EXPECT_EQ(ring.blocks_mapped(), 1u);
  constexpr uint64_t kBurst = 100000;
  for (uint64_t i = 0; i < kBurst; ++i) ASSERT_TRUE(ring.Push(Numbered(i)));
  EXPECT_EQ(ring.blocks_mapped(), (kBurst + kRingBlockEvents - 1) / kRingBlockEvents);
  for (uint64_t i = 0; i < kBurst; ++i) ASSERT_TRUE(ring.Pop());
  EXPECT_LE(ring.blocks_mapped(), 64u + 2u);
  const size_t after_burst = ring.blocks_mapped();
  // A million more events, never more than 1,000 queued: the spares are enough.
  for (uint64_t i = 0; i < 1000000; ++i) {
    ASSERT_TRUE(ring.Push(Numbered(i)));
    if (i % 1000 == 999)
      while (ring.Pop()) {
      }
  }
  EXPECT_LE(ring.blocks_mapped(), after_burst);
}

// One producer and one consumer thread, a small ring: the consumer sees the pushed events
// in order with none missing (the producer retries a full ring), and blocks are handed
// back and reused between the threads throughout.
TEST(FlowEventRingTest, OneProducerOneConsumerThread) {
  FlowEventRing ring(2048);
  constexpr uint64_t kEvents = 400000;
  std::thread producer([&] {
    for (uint64_t i = 0; i < kEvents; ++i)
      while (!ring.Push(Numbered(i))) std::this_thread::yield();
  });
  uint64_t next = 0;
  bool in_order = true;
  while (next < kEvents) {
    const std::optional<FlowEvent> e = ring.Pop();
    if (!e) {
      std::this_thread::yield();
      continue;
    }
    in_order &= e->time == static_cast<Nanos>(next) &&
                e->flow.mark == static_cast<uint32_t>(next * 7);
    ++next;
  }
  producer.join();
  EXPECT_TRUE(in_order);
  EXPECT_FALSE(ring.Pop());
  EXPECT_LE(ring.blocks_mapped(), 2048 / kRingBlockEvents + 2 + 64);
}

}  // namespace
}  // namespace ctsync

// The event stream: every confirmed create (NEW), every change worth replicating (UPDATE)
// and every destroy (DESTROY) of a flow, carrying the flow's full state, for sync and
// storage to consume. A bounded single-producer / single-consumer ring: the datapath thread
// pushes and never blocks (a full ring counts a drop: consumers must then resync from the
// table, as ctsyncd does with a store rewrite and a bulk update to its peers), one
// consumer thread pops and fans out.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstddef>
#include <new>
#include <optional>

#include "core/conntrack/expectations.h"
#include "core/conntrack/flow.h"

namespace ctsync {

enum class FlowEventType : uint8_t { kNew = 1, kUpdate = 2, kDestroy = 3 };

// Why an UPDATE was emitted (bits), so consumers can filter what they replicate.
inline constexpr uint32_t kChangeStatus = 1u << 0;   // ASSURED, SEEN_REPLY, ...
inline constexpr uint32_t kChangeProtoState = 1u << 1;  // TCP state
inline constexpr uint32_t kChangeNat = 1u << 2;
inline constexpr uint32_t kChangeMark = 1u << 3;
inline constexpr uint32_t kChangeSeqAdjust = 1u << 4;
inline constexpr uint32_t kChangeTimeout = 1u << 5;  // lifetime extended by traffic
inline constexpr uint32_t kChangeWindow = 1u << 6;   // TCP window-tracking data
inline constexpr uint32_t kChangeHelper = 1u << 7;   // helper state or expectations

struct FlowEvent {
  FlowEventType type = FlowEventType::kNew;
  uint32_t changes = 0;
  FlowIndex index = kNoFlow;
  Nanos time = 0;
  Flow flow;  // a copy: the slab entry may be reused before the consumer runs
  // What the Flow does not hold inline, for consumers that must reproduce it exactly.
  bool has_counters = false;  // the table keeps accounting (nf_conntrack_acct)
  FlowAccounting counters;
  bool has_seq_adjust = false;
  SeqAdjust seq_adjust;  // NAT sequence adjustment (a helper resized a payload)
  bool has_master = false;
  Tuple master;  // original tuple of the master of a RELATED flow
  // Flows with a helper: its parsing state, and the expectation the flow has pending (the
  // FTP helper allows one per master), so a backup can relate the data connection.
  bool has_ftp_state = false;
  FtpLineState ftp_state;
  bool has_expectation = false;
  Expectation expectation;
};

// The ring's memory follows what it holds, not its capacity: events live in blocks of
// kRingBlockEvents (128 KiB each) mapped on demand and handed back once read, up to
// kSpareBlocks of them kept for reuse. The capacity must cover the largest burst (a flush
// or restore of the whole table: ctsyncd allows 2^20 events); as one array that was 512 MiB
// written at start-up, most of ctsyncd's ~575 MB resident. Drained every millisecond, the
// ring now holds a few blocks, and a burst's blocks go back to the system once read.
// 255 events and the link to the next block fit in 128 KiB (32 pages).
inline constexpr size_t kRingBlockEvents = 255;

class FlowEventRing {
 public:
  // capacity is rounded up to a power of two; 0 disables the stream (every push is a no-op).
  explicit FlowEventRing(size_t capacity);
  ~FlowEventRing();
  FlowEventRing(const FlowEventRing&) = delete;
  FlowEventRing& operator=(const FlowEventRing&) = delete;

  bool enabled() const { return capacity_ != 0; }
  // Producer side. False (and dropped() + 1) when full, or when no memory is left for a
  // new block.
  bool Push(const FlowEvent& e);
  // Consumer side.
  std::optional<FlowEvent> Pop();
  size_t size() const {
    return head_.load(std::memory_order_acquire) - tail_.load(std::memory_order_acquire);
  }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  uint64_t pushed() const { return pushed_.load(std::memory_order_relaxed); }
  // Blocks mapped right now (in use or kept for reuse), for the memory tests.
  size_t blocks_mapped() const { return mapped_.load(std::memory_order_relaxed); }

 private:
  struct Block {
    FlowEvent* slot(size_t i) {
      return std::launder(reinterpret_cast<FlowEvent*>(raw) + i);
    }
    alignas(FlowEvent) unsigned char raw[kRingBlockEvents * sizeof(FlowEvent)];
    std::atomic<Block*> next{nullptr};
  };
  // Read blocks go back to the producer through this small single-producer (the consumer)
  // / single-consumer (the producer) ring of pointers; when it is full they are unmapped.
  static constexpr size_t kSpareBlocks = 64;

  Block* NewBlock();           // producer: a reused block, else a freshly mapped one
  bool NextWriteBlock();       // producer: moves writing to a new block; false: no memory
  void RetireBlock(Block* b);  // consumer: keep for reuse, else unmap
  void Unmap(Block* b);

  size_t capacity_ = 0;
  // Producer's: the block being written and the next slot in it.
  Block* write_block_ = nullptr;
  size_t write_pos_ = 0;
  // Consumer's: the block being read and the next slot in it.
  Block* read_block_ = nullptr;
  size_t read_pos_ = 0;
  Block* spares_[kSpareBlocks] = {};
  alignas(64) std::atomic<size_t> spare_head_{0};  // next retire (consumer)
  alignas(64) std::atomic<size_t> spare_tail_{0};  // next reuse (producer)
  alignas(64) std::atomic<size_t> head_{0};  // next write
  alignas(64) std::atomic<size_t> tail_{0};  // next read
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> pushed_{0};
  std::atomic<size_t> mapped_{0};
};

}  // namespace ctsync

// FlowTable on one core: lookup+refresh of existing flows, the new-flow cycle
// (allocate, confirm, expire) and the memory each flow slot costs, at 1M flows.
// Targets (issue): >= 10M lookups+updates/s, >= 2M new flows/s, <= 256 bytes/flow.
#include <malloc.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "core/conntrack/flow_table.h"

namespace ctsync {
namespace {

constexpr size_t kFlows = 1 << 20;
constexpr Nanos kSec = kNanosPerSecond;

Tuple MakeTuple(uint32_t i) {
  Tuple t;
  t.family = Family::kIpv4;
  t.proto = kProtoUdp;
  t.src = IpAddress::FromV4(0x0a000000 | (i >> 4));
  t.dst = IpAddress::FromV4(0xc6336414);
  t.sport = static_cast<uint16_t>(1024 + (i & 15) * 4000);
  t.dport = 53;
  return t;
}

Tuple Reverse(const Tuple& t) {
  Tuple r = t;
  std::swap(r.src, r.dst);
  std::swap(r.sport, r.dport);
  return r;
}

void NoDestroy(FlowIndex, const Flow&) {}

std::unique_ptr<FlowTable> Filled(size_t n, Nanos expires, bool accounting) {
  auto table = *FlowTable::Create({kFlows, kFlows, 0x5eed, accounting}, 0);
  for (uint32_t i = 0; i < n; ++i) {
    const Tuple t = MakeTuple(i);
    const FlowIndex idx = table->Allocate(t, 0, 0, NoDestroy);
    table->flow(idx).tuple[1] = Reverse(t);
    table->SetTimeout(idx, expires);
    if (!table->Confirm(idx).ok()) std::abort();
  }
  return table;
}

// Lookup of an existing flow (either direction, random order) plus the per-packet update:
// counters (nf_conntrack_acct=1, the costlier case) and a timeout refresh.
void BM_LookupHitAndRefresh(benchmark::State& state) {
  auto table = Filled(kFlows, 120 * kSec, /*accounting=*/true);
  std::vector<Tuple> keys;
  keys.reserve(kFlows);
  for (uint32_t i = 0; i < kFlows; ++i) {
    keys.push_back(i & 1 ? Reverse(MakeTuple(i)) : MakeTuple(i));
  }
  std::shuffle(keys.begin(), keys.end(), std::mt19937_64(1));
  size_t i = 0;
  Nanos now = 0;
  for (auto _ : state) {
    const FlowLookup hit = table->Find(keys[i], 0);
    FlowCounters& c = table->accounting(hit.idx)->dir[static_cast<int>(hit.dir)];
    ++c.packets;
    c.bytes += 100;
    table->SetTimeout(hit.idx, now + 120 * kSec);
    if (++i == kFlows) i = 0;
    now += 1000;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LookupHitAndRefresh);

// Same, in batches of 32 lookups with prefetch (FindBatch), as a vector datapath does.
void BM_LookupHitAndRefreshBatch32(benchmark::State& state) {
  auto table = Filled(kFlows, 120 * kSec, /*accounting=*/true);
  std::vector<Tuple> keys;
  keys.reserve(kFlows);
  for (uint32_t i = 0; i < kFlows; ++i) {
    keys.push_back(i & 1 ? Reverse(MakeTuple(i)) : MakeTuple(i));
  }
  std::shuffle(keys.begin(), keys.end(), std::mt19937_64(1));
  constexpr size_t kBatch = 32;
  const uint16_t zone = 0;
  FlowLookup out[kBatch];
  size_t i = 0;
  Nanos now = 0;
  for (auto _ : state) {
    table->FindBatch(absl::MakeConstSpan(&keys[i], kBatch), absl::MakeConstSpan(&zone, 1),
                     absl::MakeSpan(out));
    for (const FlowLookup& hit : out) {
      FlowCounters& c = table->accounting(hit.idx)->dir[static_cast<int>(hit.dir)];
      ++c.packets;
      c.bytes += 100;
      table->SetTimeout(hit.idx, now + 120 * kSec);
    }
    i += kBatch;
    if (i + kBatch > kFlows) i = 0;
    now += 1000;
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_LookupHitAndRefreshBatch32);

// Steady state at N live flows with a 1 s timeout: every iteration creates and
// confirms one flow while time moves on so that about one flow expires per new one;
// expiry runs every 64 new flows.
void BM_NewFlowCycle(benchmark::State& state) {
  const uint32_t kLive = static_cast<uint32_t>(state.range(0));
  constexpr Nanos kTimeout = kSec;
  const Nanos kStep = kTimeout / kLive;
  auto table = *FlowTable::Create({kFlows, kFlows, 0x5eed}, 0);
  // Prefill with deadlines spread over the next timeout, as a running system has.
  for (uint32_t i = 0; i < kLive; ++i) {
    const Tuple t = MakeTuple(i);
    const FlowIndex idx = table->Allocate(t, 0, 0, NoDestroy);
    table->flow(idx).tuple[1] = Reverse(t);
    table->SetTimeout(idx, static_cast<Nanos>(i + 1) * kStep);
    if (!table->Confirm(idx).ok()) std::abort();
  }
  uint32_t next = kLive;
  Nanos now = 0;
  size_t expired = 0;
  for (auto _ : state) {
    const Tuple t = MakeTuple(next++ & ((1u << 24) - 1));
    const FlowIndex idx = table->Allocate(t, 0, now, NoDestroy);
    if (idx == kNoFlow) {
      state.SkipWithError("table full");
      break;
    }
    table->flow(idx).tuple[1] = Reverse(t);
    table->SetTimeout(idx, now + kTimeout);
    // Tuples wrap after 2^24; a clash means the older flow is still alive.
    if (!table->Confirm(idx).ok()) table->Release(idx);
    now += kStep;
    if ((next & 63) == 0) expired += table->Expire(now, 1024, NoDestroy);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["live_flows"] = static_cast<double>(table->size());
  state.counters["expired"] = static_cast<double>(expired);
}
// 786k live flows (the target case) and 48k (cache-resident: the CPU cost alone).
BENCHMARK(BM_NewFlowCycle)->Arg(kFlows / 4 * 3)->Arg(kFlows / 64 * 3);

// Heap bytes per flow slot of a 1M-flow table (slab + hash buckets + timer links, and the
// counters with accounting: range(0)), measured with mallinfo2 around Create and filling,
// next to the table's own accounting.
void BM_MemoryPerFlow(benchmark::State& state) {
  for (auto _ : state) {
    const size_t before = mallinfo2().uordblks + mallinfo2().hblkhd;
    auto table = Filled(kFlows, 120 * kSec, state.range(0) != 0);
    const size_t after = mallinfo2().uordblks + mallinfo2().hblkhd;
    state.counters["bytes_per_flow"] = static_cast<double>(after - before) / kFlows;
    state.counters["accounted_bytes_per_flow"] = static_cast<double>(table->BytesPerFlow());
  }
}
BENCHMARK(BM_MemoryPerFlow)->Arg(0)->Arg(1)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace ctsync

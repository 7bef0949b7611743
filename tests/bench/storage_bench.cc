// The flow store (storage/): how many engine events per second the store absorbs, batched,
// with each sync policy; what one Enqueue costs the producer; the time to restore 1M flows
// at start (read + decode, and insert into the engine); snapshot time and size at 1M flows.
// Targets (issue): restore of 1M flows < 2 s; keep up with 1M events/s without blocking
// the packet path.
//
// Run: build/bin/storage_bench (uses a directory under the system temp dir, removed after).
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"
#include "storage/flow_store.h"

namespace ctsync::storage {
namespace {

constexpr Nanos kSec = kNanosPerSecond;
constexpr uint32_t kMillion = 1 << 20;

double ProcessCpuSeconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double ThreadCpuSecondsOfCaller() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// CPU seconds so far of this process's threads, by thread name: "ctsync-store" (the
// writer), "rocksdb:high" (memtable flushes), "rocksdb:low" (compactions), and the rest
// (producer, benchmark). Per-thread figures say what each stage would sustain on a core of
// its own, which wall time on a busy shared machine cannot.
std::map<std::string, double> ThreadCpuSeconds() {
  std::map<std::string, double> out;
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm_file(task.path() / "comm");
    std::string comm;
    std::getline(comm_file, comm);
    std::ifstream stat_file(task.path() / "stat");
    std::string stat;
    std::getline(stat_file, stat);
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stod(field);
      if (i == 15) stime = std::stod(field);
    }
    if (comm != "ctsync-store" && comm.rfind("rocksdb:", 0) != 0) comm = "other";
    out[comm] += (utime + stime) / tick;
  }
  return out;
}

// Peak resident set since the last ResetPeakRss(), from /proc/self/status (VmHWM).
long PeakRssBytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6)) * 1024;
  return 0;
}
long RssBytes() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, rss = 0;
  f >> pages >> rss;
  return rss * ::sysconf(_SC_PAGESIZE);
}
void ResetPeakRss() { std::ofstream("/proc/self/clear_refs") << "5"; }

std::string BenchDir(const std::string& tag) {
  const std::string p = (std::filesystem::temp_directory_path() /
                         ("ctsync-bench-" + tag + "-" + std::to_string(::getpid())))
                            .string();
  std::filesystem::remove_all(p);
  return p;
}

Flow BenchFlow(uint32_t i, Nanos now) {
  Flow f;
  Tuple& o = f.tuple[0];
  o.family = Family::kIpv4;
  o.proto = (i & 3) == 0 ? kProtoUdp : kProtoTcp;
  o.src = IpAddress::FromV4(0x0a000000u | (i >> 4));
  o.dst = IpAddress::FromV4(0xc6336414u);
  o.sport = static_cast<uint16_t>(1024 + (i & 15) * 4000);
  o.dport = o.proto == kProtoUdp ? 53 : 443;
  f.tuple[1] = o;
  std::swap(f.tuple[1].src, f.tuple[1].dst);
  std::swap(f.tuple[1].sport, f.tuple[1].dport);
  // SNAT to 203.0.113.(i >> 16), port i & 0xffff: unique reply tuples, as NAT makes them.
  f.tuple[1].dst = IpAddress::FromV4(0xcb007100u | ((i >> 16) & 0xff));
  f.tuple[1].dport = static_cast<uint16_t>(i & 0xffff);
  f.status = kIpsConfirmed | kIpsSeenReply | kIpsAssured | kIpsSrcNat | kIpsSrcNatDone;
  f.created = now;
  f.expires = now + 3600 * kSec;
  f.id = i + 1;
  if (o.proto == kProtoTcp) {
    f.tcp.state = TcpState::kEstablished;
    f.tcp.seen[0] = {1000 + i, 2000 + i, 64240, 1500, 7, kTcpFlagWindowScale};
    f.tcp.seen[1] = {5000 + i, 6000 + i, 65535, 900, 7, kTcpFlagWindowScale};
  }
  return f;
}

FlowStoreOptions Options(const std::string& path, Clock* clock, SyncPolicy sync) {
  FlowStoreOptions o;
  o.path = path;
  o.node_id = "bench";
  o.clock = clock;
  o.sync = sync;
  o.queue_capacity = 1 << 20;
  o.snapshot_on_close = false;
  return o;
}

// Events absorbed per second, end to end (queue -> WriteBatch -> WAL -> memtable), for
// 1M events over range(1) flows (NEW, then UPDATEs in flow order), producer retrying when
// the queue is full. 256K flows: no flow repeats within a batch (worst case, nothing
// coalesces); 2K flows: hot flows, 3 of 4 events coalesce within their batch.
// proc_cpu_s_per_1M: CPU seconds of the whole process (writer, producer, RocksDB's
// flush and compaction threads) per 1M events: the figure that does not depend on how
// busy the machine's other cores are. peak_rss_growth_MB: the most memory the burst held
// at once (queue, memtables).
void BM_StoreAbsorbEvents(benchmark::State& state) {
  const auto sync = static_cast<SyncPolicy>(state.range(0));
  ManualClock clock(kSec);
  const std::string dir = BenchDir("absorb");
  auto store = *FlowStore::Create(Options(dir, &clock, sync));
  const auto kFlows = static_cast<uint32_t>(state.range(1));
  std::vector<FlowEvent> events(4096);
  uint64_t total = 0;
  ResetPeakRss();
  const long rss0 = RssBytes();
  const double cpu0 = ProcessCpuSeconds();
  // Threads are created lazily (RocksDB's pools) and the store's writer lives as long as
  // the store: measure from here, a thread missing at the start counts from zero.
  const std::map<std::string, double> threads0 = ThreadCpuSeconds();
  for (auto _ : state) {
    for (uint32_t i = 0; i < kMillion; i += events.size()) {
      for (uint32_t k = 0; k < events.size(); ++k) {
        const uint32_t n = i + k;
        events[k].type = n < kFlows ? FlowEventType::kNew : FlowEventType::kUpdate;
        events[k].time = kSec;
        events[k].flow = BenchFlow(n % kFlows, kSec);
      }
      absl::Span<const FlowEvent> rest(events);
      while (!rest.empty()) {
        const size_t took = store->EnqueueBatch(Stream::kLive, rest);
        rest.remove_prefix(took);
        // Queue full: back off instead of spinning on yield(), which on a 2-core machine
        // takes the CPU the writer and RocksDB's flush need to drain it.
        if (!rest.empty()) std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
    if (!store->Flush().ok()) state.SkipWithError("flush failed");
    total += kMillion;
  }
  state.counters["proc_cpu_s_per_1M"] = (ProcessCpuSeconds() - cpu0) * kMillion / total;
  // Queue blocks, memtables and RocksDB's buffers at their highest: fresh memory the burst
  // made the kernel zero (and, in a VM, the host back) page by page.
  state.counters["peak_rss_growth_MB"] = static_cast<double>(PeakRssBytes() - rss0) / (1 << 20);
  std::map<std::string, double> threads = ThreadCpuSeconds();
  for (const auto& [name, cpu0_thread] : threads0) threads[name] -= cpu0_thread;
  // Compaction may still be running when the last Flush returns: that part is missing here.
  state.counters["writer_cpu_s_per_1M"] = threads["ctsync-store"] * kMillion / total;
  state.counters["flush_cpu_s_per_1M"] = threads["rocksdb:high"] * kMillion / total;
  state.counters["compact_cpu_s_per_1M"] = threads["rocksdb:low"] * kMillion / total;
  const FlowStoreCounters c = store->counters();
  state.SetItemsProcessed(static_cast<int64_t>(total));
  state.counters["batches"] = static_cast<double>(c.batches);
  state.counters["coalesced"] = static_cast<double>(c.coalesced);
  state.counters["write_errors"] = static_cast<double>(c.write_errors);
  state.SetLabel(sync == SyncPolicy::kNone         ? "sync=none"
                 : sync == SyncPolicy::kEveryBatch ? "sync=every-batch"
                                                   : "sync=100ms");
  store.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_StoreAbsorbEvents)
    ->Args({static_cast<int>(SyncPolicy::kNone), 1 << 18})
    ->Args({static_cast<int>(SyncPolicy::kInterval), 1 << 18})
    ->Args({static_cast<int>(SyncPolicy::kEveryBatch), 1 << 18})
    ->Args({static_cast<int>(SyncPolicy::kInterval), 1 << 11})
    ->Args({static_cast<int>(SyncPolicy::kEveryBatch), 1 << 11})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(3);

// The target read literally: the engine's events arrive at a steady rate (range(1) events/s,
// blocks of 1024 paced by the wall clock) for 10 s over 256K flows (nothing coalesces),
// with the real clock, so kInterval syncs every 100 ms as in production. The store keeps
// up when nothing is dropped and the backlog stays bounded.
//   dropped        events the full queue refused (must be 0)
//   max_backlog    most events enqueued and not yet committed, seen at a block boundary
//   behind_ms      how far the producer fell behind its schedule at the end (0: on time)
//   drain_ms       from the last event to Flush done (commit and sync)
//   proc_cpu_s_per_1M  CPU seconds of the whole process per 1M events
void BM_StoreSustainedRate(benchmark::State& state) {
  const auto sync = static_cast<SyncPolicy>(state.range(0));
  const auto rate = static_cast<uint64_t>(state.range(1));
  constexpr uint32_t kFlows = 1 << 18;
  constexpr size_t kBlock = 1024;
  constexpr int kSeconds = 10;
  SystemClock clock;
  const std::string dir = BenchDir("sustained");
  auto store = *FlowStore::Create(Options(dir, &clock, sync));
  const uint64_t total = rate * kSeconds;
  // Flows are made before the clock starts: the producer's cost here is the enqueue.
  std::vector<FlowEvent> events(kFlows);
  for (uint32_t i = 0; i < kFlows; ++i) {
    events[i].type = FlowEventType::kUpdate;
    events[i].time = clock.Now();
    events[i].flow = BenchFlow(i, clock.Now());
  }
  uint64_t max_backlog = 0;
  double behind_ms = 0, drain_ms = 0, cpu = 0;
  for (auto _ : state) {
    const double cpu0 = ProcessCpuSeconds();
    const auto start = std::chrono::steady_clock::now();
    const auto period = std::chrono::nanoseconds(kNanosPerSecond * kBlock / rate);
    for (uint64_t sent = 0; sent < total; sent += kBlock) {
      std::this_thread::sleep_until(start + period * (sent / kBlock));
      const size_t at = sent % kFlows;  // kFlows is a multiple of kBlock
      store->EnqueueBatch(Stream::kLive, absl::MakeConstSpan(&events[at], kBlock));
      const FlowStoreCounters c = store->counters();
      max_backlog = std::max(max_backlog, c.enqueued - c.committed - c.lost_to_errors);
    }
    const auto last = std::chrono::steady_clock::now();
    behind_ms = std::max(0.0, std::chrono::duration<double, std::milli>(
                                  last - (start + period * (total / kBlock - 1))).count());
    if (!store->Flush().ok()) state.SkipWithError("flush failed");
    drain_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - last)
                   .count();
    cpu = ProcessCpuSeconds() - cpu0;
  }
  const FlowStoreCounters c = store->counters();
  state.counters["dropped"] = static_cast<double>(c.dropped_queue_full);
  state.counters["max_backlog"] = static_cast<double>(max_backlog);
  state.counters["behind_ms"] = behind_ms;
  state.counters["drain_ms"] = drain_ms;
  state.counters["syncs"] = static_cast<double>(c.syncs);
  state.counters["proc_cpu_s_per_1M"] = cpu * 1e6 / static_cast<double>(total);
  state.SetItemsProcessed(static_cast<int64_t>(total));
  store.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_StoreSustainedRate)
    ->Args({static_cast<int>(SyncPolicy::kInterval), 1000000})
    ->Args({static_cast<int>(SyncPolicy::kEveryBatch), 1000000})
    ->Args({static_cast<int>(SyncPolicy::kInterval), 1500000})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);

// What the producer (the event fan-out thread, never the packet thread) pays per event:
// EnqueueBatch of 256 events into a queue with room (the writer drains concurrently).
// 128 batches = 32K events per run: a burst the reserved queue holds without growing.
void BM_EnqueueCost(benchmark::State& state) {
  ManualClock clock(kSec);
  const std::string dir = BenchDir("enqueue");
  FlowStoreOptions o = Options(dir, &clock, SyncPolicy::kNone);
  o.queue_capacity = 4 * kMillion;
  auto store = *FlowStore::Create(o);
  std::vector<FlowEvent> events(256);
  for (uint32_t k = 0; k < events.size(); ++k) {
    events[k].type = FlowEventType::kUpdate;
    events[k].flow = BenchFlow(k, kSec);
  }
  uint64_t accepted = 0;
  for (auto _ : state) accepted += store->EnqueueBatch(Stream::kLive, events);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * events.size()));
  state.counters["dropped"] = static_cast<double>(state.iterations() * events.size() - accepted);
  store.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_EnqueueCost)->Iterations(128)->Repetitions(5)->ReportAggregatesOnly(true);

// A store holding 1M flows, written once per benchmark.
std::unique_ptr<FlowStore> Filled(const std::string& dir, Clock* clock, bool snapshots) {
  FlowStoreOptions o = Options(dir + "/store", clock, SyncPolicy::kNone);
  if (snapshots) o.snapshot_root = dir;
  auto store = *FlowStore::Create(o);
  std::vector<FlowEvent> events(4096);
  for (uint32_t i = 0; i < kMillion; i += events.size()) {
    for (uint32_t k = 0; k < events.size(); ++k) {
      events[k].type = FlowEventType::kNew;
      events[k].time = kSec;
      events[k].flow = BenchFlow(i + k, kSec);
    }
    absl::Span<const FlowEvent> rest(events);
    while (!rest.empty()) {
      rest.remove_prefix(store->EnqueueBatch(Stream::kLive, rest));
      if (!rest.empty()) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  (void)store->Flush();
  return store;
}

// Restore at start: reopen a 1M-flow store, read + verify + decode every record
// (with_engine = 0: into vectors, FlowStore::Restore), or the whole restore the daemon does
// (with_engine = 1): read + decode + insert into a ConntrackEngine, streamed chunk by chunk
// (timeouts shortened by the downtime, NAT bindings held by the reply tuples). Only the
// engine's creation (allocating its table) is outside the timing.
void BM_Restore1M(benchmark::State& state) {
  const bool with_engine = state.range(0) == 1;
  ManualClock clock(kSec);
  const std::string dir = BenchDir("restore");
  Filled(dir, &clock, false)->Close().IgnoreError();
  const double cpu0 = ProcessCpuSeconds();
  double caller_cpu = 0;
  Nanos read_cpu = 0, decode_cpu = 0;
  const Nanos downtime = 60 * kSec;
  for (auto _ : state) {
    std::unique_ptr<ConntrackEngine> engine;
    if (with_engine) {
      state.PauseTiming();
      ConntrackOptions co;
      co.settings.nf_conntrack_max = kMillion;
      co.settings.nf_conntrack_buckets = kMillion;
      engine = *ConntrackEngine::Create(co, 0);
      state.ResumeTiming();
    }
    const double caller0 = ThreadCpuSecondsOfCaller();
    auto store = *FlowStore::Create(Options(dir + "/store", &clock, SyncPolicy::kNone));
    const Nanos now = clock.Now() + downtime;
    const Nanos wall_now = clock.WallNanos() + downtime;
    size_t restored = 0;
    absl::StatusOr<RestoredFlows> r;
    EngineRestoreResult e;
    if (with_engine) {
      EngineRestorer restorer(*engine, now);
      r = store->Restore(now, wall_now, [&](Stream s, absl::Span<codec::DecodedFlow> flows) {
        if (s != Stream::kLive) return;
        restored += flows.size();
        restorer.Add(flows);
      });
      e = restorer.Finish();
    } else {
      r = store->Restore(now, wall_now);
      if (r.ok()) restored = r->live().size();
    }
    caller_cpu += ThreadCpuSecondsOfCaller() - caller0;
    if (r.ok()) {
      read_cpu += r->read_cpu;
      decode_cpu += r->decode_cpu;
    }
    if (!r.ok() || restored != kMillion) {
      state.SkipWithError(r.ok() ? ("restored " + std::to_string(restored) + " expired " +
                                    std::to_string(r->expired) + " corrupt " +
                                    std::to_string(r->corrupt))
                                       .c_str()
                                 : "restore failed");
      break;
    }
    if (with_engine) {
      if (e.inserted != kMillion || engine->table().size() != kMillion) {
        state.SkipWithError(("engine took " + std::to_string(e.inserted) + " table_full " +
                             std::to_string(e.table_full) + " clashed " + std::to_string(e.clashed))
                                .c_str());
        break;
      }
      state.PauseTiming();
      engine.reset();
      state.ResumeTiming();
    }
  }
  state.counters["proc_cpu_s"] =
      (ProcessCpuSeconds() - cpu0) / static_cast<double>(state.iterations());
  // The calling thread: opening the store, then (with_engine) the engine inserts, which
  // overlap the reader and decoder threads; the rest of proc_cpu_s is those threads and
  // RocksDB's (a compaction of the freshly written store may run during the first pass).
  state.counters["caller_cpu_s"] = caller_cpu / static_cast<double>(state.iterations());
  // The restore's reader thread (RocksDB iteration, copying records into chunks) and its
  // decode workers (checksum, parse, FlowFromProto).
  state.counters["read_cpu_s"] =
      static_cast<double>(read_cpu) / kSec / static_cast<double>(state.iterations());
  state.counters["decode_cpu_s"] =
      static_cast<double>(decode_cpu) / kSec / static_cast<double>(state.iterations());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kMillion);
  state.SetLabel(with_engine ? "read+decode+engine insert" : "read+decode");
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_Restore1M)
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(2);

// A snapshot of a 1M-flow store: checkpoint (memtable flush, hard links) + manifest (file
// checksums, a read-only open and a walk of every record). Reports the snapshot's size.
void BM_Snapshot1M(benchmark::State& state) {
  ManualClock clock(kSec);
  const std::string dir = BenchDir("snapshot");
  auto store = Filled(dir, &clock, true);
  double bytes = 0;
  for (auto _ : state) {
    absl::StatusOr<SnapshotInfo> s = store->TakeSnapshot("bench");
    if (!s.ok()) {
      state.SkipWithError(std::string(s.status().message()).c_str());
      break;
    }
    bytes = 0;
    for (const auto& f : s->manifest.files()) bytes += static_cast<double>(f.size());
  }
  // kMillion is 2^20, so MiB and bytes per flow are the same number.
  state.counters["snapshot_MiB"] = bytes / (1 << 20);
  store.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_Snapshot1M)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace
}  // namespace ctsync::storage

// Bulk replication of N flows over loopback UDP between two in-process nodes, the way the
// conntrackd reference was measured (/work/shared/anchors/conntrackd/README.md, table 1):
// the primary replicates N NATed TCP flows; the clock stops when the backup's table holds
// all N. The primary runs on the benchmark thread, the backup on its own thread with its own
// io_context (two cores, as on the reference VM).
//
// Counters:
//   flows_per_s       N / time until the backup holds all N
//   flows_per_backup_cpu_s  N / CPU time of the backup's thread (contention-free figure)
//   wire_B_per_event  bytes the primary put on the wire (headers, tags, UDP payload) / N
//   backup_B_per_flow table bytes per slot, the external-cache mark included (preallocated)
//   backup_rss_B_per_flow  RSS growth of the process while the backup filled, / N
//   backup_lag_ms     time from the primary's last event to the backup holding everything
//   promote_ms        ExternalCache::Commit at N flows
//   lost              flows missing at the end (must be 0)
//   retransmits, resyncs   repair work done on the way
#include <atomic>
#include <chrono>
#include <fstream>
#include <pthread.h>
#include <time.h>
#include <thread>

#include "benchmark/benchmark.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/steady_timer.hpp"
#include "sync/external_apply.h"
#include "sync/flow_record_codec.h"
#include "sync/replicator.h"
#include "sync/udp_channel.h"
#include "tests/sync/test_flows.h"

namespace ctsync::sync {
namespace {

namespace asio = boost::asio;
using asio::ip::udp;

long RssBytes() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, rss = 0;
  f >> pages >> rss;
  return rss * 4096;
}

struct Backup {
  explicit Backup(size_t n) {
    ConntrackOptions co;
    co.settings.nf_conntrack_max = static_cast<int>(n);
    co.settings.nf_conntrack_buckets = static_cast<int>(n);
    engine = std::move(*ConntrackEngine::Create(co, clock.Now()));
    ext = std::make_unique<ExternalCache>(*engine);
    UdpUnicastOptions uo;
    uo.bind_address = "127.0.0.1";
    uo.port = 0;
    chan = std::move(*UdpUnicastChannel::Create(io, uo));
    ReplicatorOptions ro;
    ro.mtu = chan->max_datagram();  // the link's: 65507 on loopback
    ro.node_id = 2;
    ro.incarnation = 2;
    ro.keys.key = "bench-key";
    Replicator::Callbacks cb;
    cb.send = [this](absl::Span<const uint8_t> d) { chan->Send(d); };
    cb.apply = [this](const PeerFlowUpdate& u) { Count(ext->Apply(u, clock.Now())); };
    cb.apply_batch = [this](absl::Span<const PeerFlowUpdate> us) {
      size_t counts[kResults] = {};
      ext->ApplyBatch(us, clock.Now(), [&](const PeerFlowUpdate&, ExternalCache::Result r) {
        ++counts[static_cast<size_t>(r)];
      });
      for (size_t r = 0; r < kResults; ++r)
        if (counts[r] != 0) results[r].fetch_add(counts[r], std::memory_order_relaxed);
    };
    rep = std::move(*Replicator::Create(ro, std::move(cb), clock));
    chan->SetReceiver([this](absl::Span<const uint8_t> d) { rep->OnDatagram(d); });
  }
  void Start() {
    thread = std::thread([this] {
      asio::steady_timer timer(io);
      std::function<void()> tick = [&] {
        rep->Tick();
        if (stop.load()) return;
        timer.expires_after(std::chrono::milliseconds(1));
        timer.async_wait([&](const boost::system::error_code&) { tick(); });
      };
      tick();
      io.run();
    });
    pthread_setname_np(thread.native_handle(), "sync_backup");  // for perf --sort comm
  }
  // CPU time the backup's thread has used so far (receive, verify, decode, apply).
  double CpuSeconds() {
    clockid_t id;
    timespec ts{};
    if (pthread_getcpuclockid(thread.native_handle(), &id) != 0 || clock_gettime(id, &ts) != 0)
      return 0;
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
  }
  void Count(ExternalCache::Result r) {
    results[static_cast<size_t>(r)].fetch_add(1, std::memory_order_relaxed);
  }
  size_t Seen(ExternalCache::Result r) const {
    return results[static_cast<size_t>(r)].load(std::memory_order_relaxed);
  }
  void Stop() {
    stop = true;
    io.stop();  // the receive wait would keep run() going forever
    thread.join();
  }

  SystemClock clock;
  asio::io_context io;
  std::unique_ptr<ConntrackEngine> engine;
  std::unique_ptr<ExternalCache> ext;
  std::unique_ptr<UdpUnicastChannel> chan;
  std::unique_ptr<Replicator> rep;
  // Apply results by kind (ExternalCache::Result), written by the backup's thread.
  static constexpr size_t kResults = static_cast<size_t>(ExternalCache::Result::kInsertError) + 1;
  std::atomic<size_t> results[kResults] = {};
  std::atomic<bool> stop{false};
  std::thread thread;
};

// The active node: a replicator on the benchmark thread, sending to the backup.
struct Primary {
  explicit Primary(Backup& backup) {
    UdpUnicastOptions uo;
    uo.bind_address = "127.0.0.1";
    uo.port = 0;
    chan = std::move(*UdpUnicastChannel::Create(io, uo));
    chan->SetPeers({udp::endpoint(asio::ip::make_address("127.0.0.1"), backup.chan->local_port())});
    backup.chan->SetPeers({udp::endpoint(asio::ip::make_address("127.0.0.1"), chan->local_port())});
    ro.mtu = chan->max_datagram();
    ro.node_id = 1;
    ro.incarnation = 1;
    ro.keys.key = "bench-key";
    Replicator::Callbacks cb;
    cb.send = [this](absl::Span<const uint8_t> d) { chan->Send(d); };
    cb.apply = [](const PeerFlowUpdate&) {};
    rep = std::move(*Replicator::Create(ro, std::move(cb), clock));
    chan->SetReceiver([this](absl::Span<const uint8_t> d) { rep->OnDatagram(d); });
  }

  struct Timing {
    double secs = 0;    // first event published -> `done` true
    double lag_ms = 0;  // last event published -> `done` true
    bool complete = false;
  };
  // Publishes `events` (while the retransmission queue has room), then waits at most 60 s
  // for `done()`, which reads the backup's counters.
  template <typename Done>
  Timing Replicate(const std::vector<FlowEvent>& events, Done done) {
    const auto t0 = std::chrono::steady_clock::now();
    size_t next = 0;
    auto last_tick = t0;
    while (next < events.size()) {
      for (size_t k = 0; k < 256 && next < events.size() && !rep->backlogged(); ++k)
        rep->Publish(events[next++]);
      io.poll();
      const auto now = std::chrono::steady_clock::now();
      if (now - last_tick >= std::chrono::milliseconds(1)) {
        rep->Tick();
        last_tick = now;
      }
    }
    rep->Flush();
    const auto t_last = std::chrono::steady_clock::now();
    const auto deadline = t_last + std::chrono::seconds(60);
    bool complete = done();
    while (!complete && std::chrono::steady_clock::now() < deadline) {
      io.run_for(std::chrono::microseconds(500));
      rep->Tick();
      complete = done();
    }
    const auto t_end = std::chrono::steady_clock::now();
    return {std::chrono::duration<double>(t_end - t0).count(),
            std::chrono::duration<double, std::milli>(t_end - t_last).count(), complete};
  }

  SystemClock clock;
  asio::io_context io;
  std::unique_ptr<UdpUnicastChannel> chan;
  ReplicatorOptions ro;
  std::unique_ptr<Replicator> rep;
};

// Events are made before the clock starts: we time replication, not the test's flow factory.
std::vector<FlowEvent> NewEvents(size_t n) {
  std::vector<FlowEvent> events;
  events.reserve(n);
  for (uint32_t i = 0; i < n; ++i)
    events.push_back(testing::MakeEvent(FlowEventType::kNew, testing::MakeTcpNatFlow(i, 0), 0));
  return events;
}

void BM_BulkReplication(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    const std::vector<FlowEvent> events = NewEvents(n);
    const long rss0 = RssBytes();
    auto backup = std::make_unique<Backup>(n);
    Primary primary(*backup);
    backup->Start();
    state.ResumeTiming();

    const Primary::Timing t = primary.Replicate(
        events, [&] { return backup->Seen(ExternalCache::Result::kInserted) >= n; });
    state.PauseTiming();

    const size_t held = backup->Seen(ExternalCache::Result::kInserted);
    const double backup_cpu = backup->CpuSeconds();
    backup->Stop();
    const long rss2 = RssBytes();
    const ReplicatorStats& ps = primary.rep->stats();
    state.counters["flows_per_s"] = n / t.secs;
    // The machine is shared: the backup's own CPU time says what it could do undisturbed.
    state.counters["flows_per_backup_cpu_s"] = backup_cpu > 0 ? n / backup_cpu : 0;
    state.counters["wire_B_per_event"] =
        static_cast<double>(ps.bytes_sent) / static_cast<double>(n);
    state.counters["backup_B_per_flow"] = static_cast<double>(
        backup->engine->table().BytesPerFlow());
    // Includes the primary's retransmission queue (bounded) and socket buffers: an upper
    // bound for the backup.
    state.counters["backup_rss_B_per_flow"] = static_cast<double>(rss2 - rss0) / n;
    state.counters["backup_lag_ms"] = t.lag_ms;
    state.counters["lost"] = static_cast<double>(n - held);
    state.counters["retransmits"] = static_cast<double>(ps.retransmits);
    state.counters["resyncs"] = static_cast<double>(ps.resyncs_served);
    state.counters["datagrams"] = static_cast<double>(ps.data_sent);
    state.counters["mtu"] = static_cast<double>(primary.ro.mtu);

    const auto p0 = std::chrono::steady_clock::now();
    backup->ext->Commit();
    state.counters["promote_ms"] =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - p0).count();
    backup.reset();
    state.ResumeTiming();
  }
}
BENCHMARK(BM_BulkReplication)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMillisecond)
    ->Iterations(1)->UseRealTime();

// Churn on N replicated flows, as the reference's bench_churn.sh measures conntrackd
// (/work/shared/anchors/conntrackd/README.md, "update/delete churn"): every flow changes once
// (an UPDATE: the TCP state moves on and the ct mark is set), then every flow goes (a
// DESTROY). Each phase's clock stops when the backup has applied all N of its events.
void BM_ChurnReplication(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    const std::vector<FlowEvent> created = NewEvents(n);
    std::vector<FlowEvent> updates = created, deletes = created;
    for (FlowEvent& e : updates) {
      e.type = FlowEventType::kUpdate;
      e.flow.tcp.state = TcpState::kFinWait;
      e.flow.mark = 1;
    }
    for (FlowEvent& e : deletes) e.type = FlowEventType::kDestroy;
    auto backup = std::make_unique<Backup>(n);
    Primary primary(*backup);
    backup->Start();
    using R = ExternalCache::Result;
    const bool filled = primary.Replicate(created, [&] { return backup->Seen(R::kInserted) >= n; })
                            .complete;
    state.ResumeTiming();

    const Primary::Timing up =
        primary.Replicate(updates, [&] { return backup->Seen(R::kUpdated) >= n; });
    const Primary::Timing del =
        primary.Replicate(deletes, [&] { return backup->Seen(R::kDestroyed) >= n; });
    state.PauseTiming();

    if (!filled || !up.complete || !del.complete) state.SkipWithError("backup fell short");
    state.counters["updates_per_s"] = n / up.secs;
    state.counters["update_lag_ms"] = up.lag_ms;
    state.counters["deletes_per_s"] = n / del.secs;
    state.counters["delete_lag_ms"] = del.lag_ms;
    state.counters["left_in_backup"] = static_cast<double>(backup->engine->table().size());
    state.counters["other_results"] = static_cast<double>(
        backup->Seen(R::kReplaced) + backup->Seen(R::kLocalConflict) + backup->Seen(R::kUnknown) +
        backup->Seen(R::kExpired) + backup->Seen(R::kTableFull) + backup->Seen(R::kInsertError));
    state.counters["retransmits"] = static_cast<double>(primary.rep->stats().retransmits);
    backup->Stop();
    backup.reset();
    state.ResumeTiming();
  }
}
BENCHMARK(BM_ChurnReplication)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMillisecond)
    ->Iterations(1)->UseRealTime();

// What the active node pays per event to pack it (AppendFlowRecord into 64 KiB batches,
// each starting from an empty delta context), without sockets or a peer.
void BM_EncodeRecords(benchmark::State& state) {
  const std::vector<FlowEvent> events = NewEvents(1 << 16);
  RecordContext ctx;
  std::string body;
  body.reserve(1 << 16);
  size_t i = 0;
  for (auto _ : state) {
    if (body.size() > 65000) {
      body.clear();
      ctx = RecordContext{};
    }
    AppendFlowRecord(events[i++ & 0xffff], 0, 1'700'000'000 * kNanosPerSecond, &ctx, &body);
  }
  benchmark::DoNotOptimize(body.data());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_EncodeRecords);

// What the backup pays per event to unpack and check it (ReadFlowRecord), on the batches
// BM_EncodeRecords makes.
void BM_DecodeRecords(benchmark::State& state) {
  const std::vector<FlowEvent> events = NewEvents(1 << 16);
  const Nanos wall = 1'700'000'000 * kNanosPerSecond;
  std::vector<std::string> batches(1);
  RecordContext ctx;
  proto::Flow scratch;
  for (const FlowEvent& e : events) {
    if (batches.back().size() > 65000) {
      batches.emplace_back();
      ctx = RecordContext{};
    }
    AppendFlowRecord(e, 0, wall, &ctx, &batches.back());
  }
  size_t b = 0, pos = 0;
  PeerFlowUpdate u;
  ctx = RecordContext{};
  for (auto _ : state) {
    if (pos == batches[b].size()) {
      b = (b + 1) % batches.size();
      pos = 0;
      ctx = RecordContext{};
    }
    if (!ReadFlowRecord(batches[b], &pos, wall / kNanosPerMilli, 0, 0, &ctx, &scratch, &u).ok())
      state.SkipWithError("decode failed");
  }
  benchmark::DoNotOptimize(u);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_DecodeRecords);

}  // namespace
}  // namespace ctsync::sync

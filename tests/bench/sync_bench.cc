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
//   backup_B_per_flow table bytes per slot + the external-cache mark (fixed, preallocated)
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
    cb.apply = [this](const PeerFlowUpdate& u) {
      if (ext->Apply(u, clock.Now()) == ExternalCache::Result::kInserted)
        held.fetch_add(1, std::memory_order_relaxed);
    };
    cb.apply_batch = [this](absl::Span<const PeerFlowUpdate> us) {
      size_t inserted = 0;
      ext->ApplyBatch(us, clock.Now(), [&](const PeerFlowUpdate&, ExternalCache::Result r) {
        inserted += r == ExternalCache::Result::kInserted;
      });
      held.fetch_add(inserted, std::memory_order_relaxed);
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
  std::atomic<size_t> held{0};
  std::atomic<bool> stop{false};
  std::thread thread;
};

void BM_BulkReplication(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    // Events are made before the clock starts: we time replication, not the test's flow
    // factory.
    std::vector<FlowEvent> events;
    events.reserve(n);
    for (uint32_t i = 0; i < n; ++i)
      events.push_back(testing::MakeEvent(FlowEventType::kNew, testing::MakeTcpNatFlow(i, 0), 0));
    const long rss0 = RssBytes();
    auto backup = std::make_unique<Backup>(n);
    SystemClock clock;
    asio::io_context io;
    UdpUnicastOptions uo;
    uo.bind_address = "127.0.0.1";
    uo.port = 0;
    auto chan = std::move(*UdpUnicastChannel::Create(io, uo));
    chan->SetPeers({udp::endpoint(asio::ip::make_address("127.0.0.1"), backup->chan->local_port())});
    backup->chan->SetPeers({udp::endpoint(asio::ip::make_address("127.0.0.1"), chan->local_port())});
    ReplicatorOptions ro;
    ro.mtu = chan->max_datagram();
    ro.node_id = 1;
    ro.incarnation = 1;
    ro.keys.key = "bench-key";
    Replicator::Callbacks cb;
    cb.send = [&](absl::Span<const uint8_t> d) { chan->Send(d); };
    cb.apply = [](const PeerFlowUpdate&) {};
    auto primary = std::move(*Replicator::Create(ro, std::move(cb), clock));
    chan->SetReceiver([&](absl::Span<const uint8_t> d) { primary->OnDatagram(d); });
    backup->Start();
    state.ResumeTiming();

    const auto t0 = std::chrono::steady_clock::now();
    size_t next = 0;
    auto last_tick = t0;
    while (next < n) {
      // Flow control: publish while the retransmission queue has room.
      for (size_t k = 0; k < 256 && next < n && !primary->backlogged(); ++k)
        primary->Publish(events[next++]);
      io.poll();
      const auto now = std::chrono::steady_clock::now();
      if (now - last_tick >= std::chrono::milliseconds(1)) {
        primary->Tick();
        last_tick = now;
      }
    }
    primary->Flush();
    const auto t_last = std::chrono::steady_clock::now();
    const auto deadline = t_last + std::chrono::seconds(60);
    while (backup->held.load(std::memory_order_relaxed) < n &&
           std::chrono::steady_clock::now() < deadline) {
      io.run_for(std::chrono::microseconds(500));
      primary->Tick();
    }
    const auto t_end = std::chrono::steady_clock::now();
    state.PauseTiming();

    const size_t held = backup->held.load();
    const double backup_cpu = backup->CpuSeconds();
    backup->Stop();
    const long rss2 = RssBytes();
    const double secs = std::chrono::duration<double>(t_end - t0).count();
    state.counters["flows_per_s"] = n / secs;
    // The machine is shared: the backup's own CPU time says what it could do undisturbed.
    state.counters["flows_per_backup_cpu_s"] = backup_cpu > 0 ? n / backup_cpu : 0;
    state.counters["wire_B_per_event"] =
        static_cast<double>(primary->stats().bytes_sent) / static_cast<double>(n);
    state.counters["backup_B_per_flow"] = static_cast<double>(
        backup->engine->table().BytesPerFlow() + ExternalCache::kBytesPerSlot);
    // Includes the primary's retransmission queue (bounded) and socket buffers: an upper
    // bound for the backup.
    state.counters["backup_rss_B_per_flow"] = static_cast<double>(rss2 - rss0) / n;
    state.counters["backup_lag_ms"] =
        std::chrono::duration<double, std::milli>(t_end - t_last).count();
    state.counters["lost"] = static_cast<double>(n - held);
    state.counters["retransmits"] = static_cast<double>(primary->stats().retransmits);
    state.counters["resyncs"] = static_cast<double>(primary->stats().resyncs_served);
    state.counters["datagrams"] = static_cast<double>(primary->stats().data_sent);
    state.counters["mtu"] = static_cast<double>(ro.mtu);

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

}  // namespace
}  // namespace ctsync::sync

// Engine benchmarks (one core): the datapath cost of tracking as ctsync runs it —
// parse + lookup + state update (+ confirm for new flows) — with 1M flows in the table.
//   build/bin/conntrack_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "core/conntrack/conntrack_engine.h"
#include "core/packet/packet_builder.h"
#include "core/packet/packet_parser.h"

namespace ctsync {
namespace {

constexpr size_t kFlows = 1'000'000;

IpAddress Client(size_t i) { return IpAddress::FromV4(0xc0000200u | (i & 0xff)); }  // 192.0.2.x
IpAddress Server(size_t i) { return IpAddress::FromV4(0xc6336400u | ((i >> 8) & 0xff)); }
uint16_t Port(size_t i) { return static_cast<uint16_t>(1024 + (i >> 16)); }

std::unique_ptr<ConntrackEngine> Engine(size_t max) {
  ConntrackOptions o;
  o.settings.nf_conntrack_max = static_cast<int>(max);
  o.settings.nf_conntrack_buckets = static_cast<int>(max);
  o.hash_seed = 7;
  return std::move(*ConntrackEngine::Create(o, 0));
}

// 1M established UDP flows (SEEN_REPLY|ASSURED), inserted as a peer would.
void Fill(ConntrackEngine& e, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    Flow f;
    f.tuple[0] = {Client(i), Server(i), Port(i), 53, Family::kIpv4, kProtoUdp};
    f.tuple[1] = {Server(i), Client(i), 53, Port(i), Family::kIpv4, kProtoUdp};
    f.status = kIpsSeenReply | kIpsAssured;
    f.expires = 3600 * kNanosPerSecond;
    (void)e.Insert(f, nullptr, 0);
  }
}

std::vector<std::vector<uint8_t>> Frames(size_t n, size_t stride) {
  std::vector<std::vector<uint8_t>> out;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (k * stride) % kFlows;
    out.push_back(PacketBuilder()
                      .Addresses(Family::kIpv4, Client(i), Server(i))
                      .Udp(Port(i), 53)
                      .Payload("0123456789abcdef0123456789abcdef")
                      .Build());
  }
  return out;
}

// Established packets of random flows among 1M: parse + lookup + UDP update + confirm.
void BM_EstablishedPackets(benchmark::State& state) {
  auto e = Engine(kFlows + 1024);
  Fill(*e, kFlows);
  const auto frames = Frames(4096, 7919);
  size_t k = 0;
  Nanos now = kNanosPerSecond;
  for (auto _ : state) {
    const auto& fr = frames[k++ & 4095];
    ParsedPacket p;
    (void)ParseEthernet(fr, &p);
    CtAttachment ct;
    e->In(p, fr, false, CtHookPoint::kPrerouting, CtTemplate{}, now, &ct);
    benchmark::DoNotOptimize(e->Confirm(ct, now));
  }
  state.counters["pkts/s"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EstablishedPackets)->Unit(benchmark::kNanosecond);

// One flow, cache-hot (the OVS reference figure: ~4.2 Mpps).
void BM_EstablishedSingleFlow(benchmark::State& state) {
  auto e = Engine(1024);
  Fill(*e, 1);
  const auto frames = Frames(1, 1);
  for (auto _ : state) {
    ParsedPacket p;
    (void)ParseEthernet(frames[0], &p);
    CtAttachment ct;
    e->In(p, frames[0], false, CtHookPoint::kPrerouting, CtTemplate{}, kNanosPerSecond, &ct);
    benchmark::DoNotOptimize(e->Confirm(ct, kNanosPerSecond));
  }
  state.counters["pkts/s"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EstablishedSingleFlow);

// New flows with 1M in the table: create + confirm, and expiry of as many (steady state).
void BM_NewFlows(benchmark::State& state) {
  auto e = Engine(kFlows + (1 << 17));
  Fill(*e, kFlows);
  std::vector<std::vector<uint8_t>> frames;
  for (size_t k = 0; k < 65536; ++k)
    frames.push_back(PacketBuilder()
                         .Addresses(Family::kIpv4, IpAddress::FromV4(0xcb007100u | (k & 0xff)),
                                    IpAddress::FromV4(0xc6336414u))
                         .Udp(static_cast<uint16_t>(2000 + (k >> 8)), 123)
                         .Build());
  ConntrackSettings s = e->settings();
  s.udp_timeout = 1;  // new flows live 1 s of simulated time, then expiry reclaims them
  e->SetSettings(s);
  Nanos now = 10 * kNanosPerSecond;
  size_t k = 0;
  for (auto _ : state) {
    if ((k & 65535) == 0) {
      now += 2 * kNanosPerSecond;
      e->Expire(now, ~size_t{0});
    }
    const auto& fr = frames[k++ & 65535];
    ParsedPacket p;
    (void)ParseEthernet(fr, &p);
    CtAttachment ct;
    e->In(p, fr, false, CtHookPoint::kPrerouting, CtTemplate{}, now, &ct);
    benchmark::DoNotOptimize(e->Confirm(ct, now));
  }
  state.counters["flows/s"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_NewFlows);

// Memory per tracked flow at 1M flows (slab + buckets + timers), reported as a counter.
void BM_MemoryPerFlow(benchmark::State& state) {
  auto e = Engine(kFlows);
  Fill(*e, kFlows);
  for (auto _ : state) benchmark::DoNotOptimize(e->table().size());
  state.counters["bytes/flow"] = static_cast<double>(e->table().BytesPerFlow());
  state.counters["flows"] = static_cast<double>(e->table().size());
}
BENCHMARK(BM_MemoryPerFlow)->Iterations(1);

}  // namespace
}  // namespace ctsync

// NAT on one core: established packets through conntrack with and without SNAT (parse +
// lookup + rewrite + incremental checksums at PREROUTING and POSTROUTING), and the cost of
// new SNATed flows (binding with a uniqueness check, rewrite, confirmation).
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "benchmark/benchmark.h"
#include "core/conntrack/conntrack_engine.h"
#include "core/nat/nat_engine.h"
#include "core/packet/packet_builder.h"
#include "core/packet/packet_parser.h"
#include "core/pipeline/packet_buffer.h"
#include "core/pipeline/topology.h"

namespace ctsync {
namespace {

constexpr int kEstablishedFlows = 4096;

rules::Verdict SnatVerdict() {
  rules::Verdict v;
  v.kind = rules::Verdict::kNat;
  v.nat.kind = rules::NatKind::kSnat;
  v.nat.has_addr = true;
  v.nat.min_addr = v.nat.max_addr = IpAddress::FromV4(0xcb007105);  // 203.0.113.5
  return v;
}
rules::Verdict AcceptVerdict() { return rules::Verdict{}; }

struct Bench {
  explicit Bench(size_t max_flows) : topology(Topology::OracleFirewall()) {
    ConntrackOptions o;
    o.settings.nf_conntrack_max = static_cast<int>(max_flows);
    o.settings.nf_conntrack_buckets = static_cast<int>(max_flows);
    conntrack = std::move(*ConntrackEngine::Create(o, 0));
    nat = std::make_unique<NatEngine>(NatOptions{}, conntrack.get());
    lan = topology.FindInterface("lan0");
    wan = topology.FindInterface("wan0");
  }

  // One packet LAN -> WAN: parse, conntrack, NAT at both hooks (if `with_nat`), confirm.
  bool Forward(PacketBuffer& b, bool with_nat, Nanos now) {
    if (ParseEthernet(b.frame, &b.pkt).ok() == false) return false;
    if (conntrack->In(b.pkt, b.frame, false, CtHookPoint::kPrerouting, b.tmpl, now, &b.ct) ==
        CtVerdict::kDrop)
      return false;
    if (with_nat) {
      if (!nat->Apply(rules::Hook::kPrerouting, b, AcceptVerdict, topology, now)) return false;
      b.out_iface = wan;
      if (!nat->Apply(rules::Hook::kPostrouting, b, SnatVerdict, topology, now)) return false;
    }
    return conntrack->Confirm(b.ct, now) == CtVerdict::kAccept;
  }

  Topology topology;
  std::unique_ptr<ConntrackEngine> conntrack;
  std::unique_ptr<NatEngine> nat;
  int lan = -1, wan = -1;
};

// Flow i: 128 LAN hosts times 2048 source ports, each to its own server address, so that
// SNAT to one pool address rarely clashes (one address and server port hold at most
// 64512 SNATed flows; a benchmark of exhausted ranges would measure only the failing search).
std::vector<uint8_t> UdpFrame(uint32_t i) {
  return PacketBuilder()
      .Addresses(Family::kIpv4, IpAddress::FromV4(0xc0000200 | (10 + (i & 127))),
                 IpAddress::FromV4(0xc6330000 | (i & 0xffff)))
      .Udp(static_cast<uint16_t>(10000 + (i >> 7)), 53)
      .Payload(std::string_view("0123456789abcdef0123456789abcdef"))
      .Build();
}

void EstablishedPackets(benchmark::State& state, bool with_nat) {
  Bench bench(1 << 16);
  std::vector<std::vector<uint8_t>> frames;
  for (int i = 0; i < kEstablishedFlows; ++i) {
    frames.push_back(UdpFrame(i));
    PacketBuffer b;
    b.frame = frames.back();
    b.in_iface = bench.lan;
    if (!bench.Forward(b, with_nat, 0)) state.SkipWithError("setup failed");
  }
  PacketBuffer b;
  b.in_iface = bench.lan;
  size_t i = 0;
  for (auto _ : state) {
    const std::vector<uint8_t>& f = frames[i++ & (kEstablishedFlows - 1)];
    b.frame.assign(f.begin(), f.end());  // NAT rewrites in place: start from the wire bytes
    b.ct = CtAttachment{};
    benchmark::DoNotOptimize(bench.Forward(b, with_nat, 1));
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_EstablishedTrackOnly(benchmark::State& state) { EstablishedPackets(state, false); }
void BM_EstablishedSnat(benchmark::State& state) { EstablishedPackets(state, true); }
BENCHMARK(BM_EstablishedTrackOnly);
BENCHMARK(BM_EstablishedSnat);

void NewFlows(benchmark::State& state, bool with_nat) {
  constexpr size_t kMax = 1 << 18;
  static const std::vector<std::vector<uint8_t>>* const frames = [] {
    auto* v = new std::vector<std::vector<uint8_t>>;
    for (uint32_t i = 0; i < kMax; ++i) v->push_back(UdpFrame(i));
    return v;
  }();
  auto bench = std::make_unique<Bench>(kMax + 1);
  PacketBuffer b;
  b.in_iface = bench->lan;
  size_t n = 0;
  for (auto _ : state) {
    if (n == kMax) {
      state.PauseTiming();
      bench = std::make_unique<Bench>(kMax + 1);
      n = 0;
      state.ResumeTiming();
    }
    const std::vector<uint8_t>& f = (*frames)[n++];
    b.frame.assign(f.begin(), f.end());
    b.ct = CtAttachment{};
    benchmark::DoNotOptimize(bench->Forward(b, with_nat, 1));
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_NewFlowsTrackOnly(benchmark::State& state) { NewFlows(state, false); }
void BM_NewFlowsSnat(benchmark::State& state) { NewFlows(state, true); }
BENCHMARK(BM_NewFlowsTrackOnly);
BENCHMARK(BM_NewFlowsSnat);

}  // namespace
}  // namespace ctsync

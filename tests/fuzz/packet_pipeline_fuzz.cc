// Fuzz target: Ethernet frames through the parser and the whole hook pipeline of the
// oracle firewall (conntrack, NAT, the FTP helper, filter with ctstate, REJECT).
//
// The engine is static and its table small (64 entries), so state carries over from one
// input to the next and the fuzzer can reach multi-packet states (established flows, FTP
// expectations, a full table, NAT port exhaustion). Each input is used three ways:
//   1. ParseEthernet on the whole input;
//   2. the whole input as one frame received on lan0;
//   3. the input split into records (fuzz_input.h): kind bit 0 = received on wan0 instead
//      of lan0, kind >> 1 = seconds the clock moves before the frame (127: one day, so
//      established flows expire too); the body is the frame.
// Every event the engine emits must survive the sync codec (EncodeFlowUpdate then
// DecodeFlowUpdate) with its tuple and zone unchanged: a flow the engine made is one a
// peer must accept.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/conntrack/conntrack_engine.h"
#include "core/nat/nat_engine.h"
#include "core/packet/packet_parser.h"
#include "core/pipeline/pipeline.h"
#include "core/pipeline/topology.h"
#include "core/rules/rule_set.h"
#include "sync/flow_update_codec.h"
#include "tests/fuzz/fuzz_input.h"

namespace ctsync::fuzz {
namespace {

constexpr char kRulesV4[] =
    "*raw\n"
    ":PREROUTING ACCEPT [0:0]\n"
    ":OUTPUT ACCEPT [0:0]\n"
    "-A PREROUTING -i lan0 -p tcp --dport 21 -j CT --helper ftp\n"
    "-A PREROUTING -p udp --dport 53 -j NOTRACK\n"
    "-A PREROUTING -i wan0 -p udp --sport 4000 -j CT --zone 7\n"
    "COMMIT\n"
    "*mangle\n"
    ":PREROUTING ACCEPT [0:0]\n"
    ":INPUT ACCEPT [0:0]\n"
    ":FORWARD ACCEPT [0:0]\n"
    ":OUTPUT ACCEPT [0:0]\n"
    ":POSTROUTING ACCEPT [0:0]\n"
    "-A PREROUTING -m conntrack --ctstate NEW -j CONNMARK --set-mark 0x2a\n"
    "COMMIT\n"
    "*nat\n"
    ":PREROUTING ACCEPT [0:0]\n"
    ":INPUT ACCEPT [0:0]\n"
    ":OUTPUT ACCEPT [0:0]\n"
    ":POSTROUTING ACCEPT [0:0]\n"
    "-A PREROUTING -i wan0 -d 203.0.113.10 -p tcp --dport 80 -j DNAT --to-destination "
    "192.0.2.10:8080\n"
    "-A PREROUTING -i lan0 -p tcp --dport 3128 -j REDIRECT --to-ports 3129\n"
    "-A POSTROUTING -o wan0 -p udp -j SNAT --to-source 203.0.113.6:1024-1027\n"
    "-A POSTROUTING -o wan0 -j SNAT --to-source 203.0.113.5\n"
    "COMMIT\n"
    "*filter\n"
    ":INPUT ACCEPT [0:0]\n"
    ":FORWARD DROP [0:0]\n"
    ":OUTPUT ACCEPT [0:0]\n"
    "-A INPUT -p tcp --dport 22 -j REJECT --reject-with tcp-reset\n"
    "-A FORWARD -m conntrack --ctstate INVALID -j DROP\n"
    "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
    "-A FORWARD -m conntrack --ctstate UNTRACKED -j ACCEPT\n"
    "-A FORWARD -i lan0 -o wan0 -m conntrack --ctstate NEW -j ACCEPT\n"
    "-A FORWARD -i wan0 -o lan0 -m conntrack --ctstate DNAT,NEW -j ACCEPT\n"
    "-A FORWARD -p icmp -j REJECT --reject-with icmp-host-prohibited\n"
    "COMMIT\n";

constexpr char kRulesV6[] =
    "*raw\n"
    ":PREROUTING ACCEPT [0:0]\n"
    ":OUTPUT ACCEPT [0:0]\n"
    "-A PREROUTING -i lan0 -p tcp --dport 21 -j CT --helper ftp\n"
    "COMMIT\n"
    "*nat\n"
    ":PREROUTING ACCEPT [0:0]\n"
    ":INPUT ACCEPT [0:0]\n"
    ":OUTPUT ACCEPT [0:0]\n"
    ":POSTROUTING ACCEPT [0:0]\n"
    "-A PREROUTING -i wan0 -d 2001:db8:2::10/128 -p tcp --dport 80 -j DNAT --to-destination "
    "[2001:db8:1::10]:8080\n"
    "-A POSTROUTING -o wan0 -j MASQUERADE\n"
    "COMMIT\n"
    "*filter\n"
    ":INPUT ACCEPT [0:0]\n"
    ":FORWARD DROP [0:0]\n"
    ":OUTPUT ACCEPT [0:0]\n"
    "-A FORWARD -m conntrack --ctstate INVALID -j DROP\n"
    "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
    "-A FORWARD -i lan0 -o wan0 -m conntrack --ctstate NEW -j ACCEPT\n"
    "-A FORWARD -i wan0 -o lan0 -m conntrack --ctstate DNAT,NEW -j ACCEPT\n"
    "-A FORWARD -p ipv6-icmp -j REJECT --reject-with icmp6-adm-prohibited\n"
    "COMMIT\n";

struct Firewall {
  std::unique_ptr<ConntrackEngine> ct;
  std::unique_ptr<NatEngine> nat;
  std::unique_ptr<Pipeline> pipeline;
  int lan = -1;
  int wan = -1;
  Nanos now = kNanosPerSecond;
};

std::unique_ptr<rules::RuleSet> MustParse(const char* text, Family family) {
  auto rs = rules::RuleSet::Parse(text, family);
  if (!rs.ok()) {
    std::fprintf(stderr, "fixed ruleset does not parse: %s\n",
                 std::string(rs.status().message()).c_str());
    std::abort();
  }
  return std::make_unique<rules::RuleSet>(std::move(*rs));
}

// Time only moves forward; after about 36 years of fuzzing time the firewall starts over
// so that deadlines never overflow.
constexpr Nanos kRestartAfter = Nanos{1} << 60;

std::unique_ptr<Firewall> NewFirewall() {
  auto f = std::make_unique<Firewall>();
  ConntrackOptions o;
  o.settings.nf_conntrack_max = 64;
  o.settings.nf_conntrack_buckets = 64;
  o.settings.nf_conntrack_expect_max = 16;
  o.hash_seed = 1;
  o.event_ring_capacity = 256;
  auto ct = ConntrackEngine::Create(o, f->now);
  if (!ct.ok()) std::abort();
  f->ct = std::move(*ct);
  f->nat = std::make_unique<NatEngine>(NatOptions{1}, f->ct.get());
  f->pipeline = std::make_unique<Pipeline>(PipelineOptions{true, true, 1},
                                           Topology::OracleFirewall(), f->ct.get(), f->nat.get());
  f->pipeline->SetRules(Family::kIpv4, MustParse(kRulesV4, Family::kIpv4));
  f->pipeline->SetRules(Family::kIpv6, MustParse(kRulesV6, Family::kIpv6));
  f->lan = f->pipeline->topology().FindInterface("lan0");
  f->wan = f->pipeline->topology().FindInterface("wan0");
  return f;
}

Firewall& TheFirewall() {
  static std::unique_ptr<Firewall> fw;
  if (!fw || fw->now > kRestartAfter) fw = NewFirewall();
  return *fw;
}

void DrainEvents(Firewall& fw) {
  constexpr int64_t kBatchWallMs = 1'700'000'000'000;
  const Nanos wall_now = kBatchWallMs * kNanosPerMilli;
  while (std::optional<FlowEvent> e = fw.ct->events().Pop()) {
    proto::FlowUpdate fu;
    sync::EncodeFlowUpdate(*e, fw.now, wall_now, kBatchWallMs, &fu);
    sync::PeerFlowUpdate u;
    const absl::Status s = sync::DecodeFlowUpdate(fu, kBatchWallMs, fw.now, 0, &u);
    if (!s.ok()) {
      std::fprintf(stderr, "engine event does not decode: %s\n", std::string(s.message()).c_str());
      std::abort();
    }
    CTSYNC_FUZZ_CHECK(u.type == e->type);
    CTSYNC_FUZZ_CHECK(u.original == e->flow.tuple[0]);
    CTSYNC_FUZZ_CHECK(u.zone == e->flow.zone);
    if (e->type != FlowEventType::kDestroy) {
      CTSYNC_FUZZ_CHECK(u.decoded.flow.tuple[1] == e->flow.tuple[1]);
      // The receiver decides table membership, dying and template bits itself.
      CTSYNC_FUZZ_CHECK(u.decoded.flow.status ==
                        (e->flow.status & ~(kIpsConfirmed | kIpsDying | kIpsTemplate)));
    }
  }
}

void Receive(Firewall& fw, int in, absl::Span<const uint8_t> frame) {
  std::vector<Transmit> tx;
  fw.pipeline->Receive(in, frame, fw.now, &tx);
  for (const Transmit& t : tx) {
    CTSYNC_FUZZ_CHECK(t.interface >= 0 && t.interface < fw.pipeline->topology().interface_count());
    // What we send must be well-formed up to L3 (an untracked packet with a bad L4 header
    // is forwarded as it came, as the kernel does).
    ParsedPacket p;
    const ParseResult pr = ParseEthernet(t.frame, &p);
    CTSYNC_FUZZ_CHECK(pr.ok() || pr.error() == ParseError::kTruncatedL4 ||
                      pr.error() == ParseError::kBadTcpOffset ||
                      pr.error() == ParseError::kBadUdpLength ||
                      pr.error() == ParseError::kBadUdpliteCoverage);
  }
  DrainEvents(fw);
}

}  // namespace
}  // namespace ctsync::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ctsync;
  using namespace ctsync::fuzz;
  ParsedPacket parsed;
  (void)ParseEthernet(absl::MakeConstSpan(data, size), &parsed);
  (void)ParseEthernet(absl::MakeConstSpan(data, size), &parsed, ParseMode::kQuoted);
  (void)ParseIp(absl::MakeConstSpan(data, size), &parsed);

  Firewall& fw = TheFirewall();
  fw.now += kNanosPerMilli;
  Receive(fw, fw.lan, absl::MakeConstSpan(data, size));

  RecordReader reader(data, size);
  FuzzRecord r;
  while (reader.Next(&r)) {
    const int step = r.kind >> 1;
    fw.now += step == 127 ? 86400 * kNanosPerSecond : step * kNanosPerSecond;
    fw.pipeline->Tick(fw.now);
    Receive(fw, (r.kind & 1) ? fw.wan : fw.lan, r.body);
  }
  fw.pipeline->Tick(fw.now);
  DrainEvents(fw);
  return 0;
}

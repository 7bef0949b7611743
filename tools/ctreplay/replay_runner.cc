#include "tools/ctreplay/replay_runner.h"

#include <algorithm>
#include <map>
#include <memory>
#include <sstream>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/conntrack/conntrack_engine.h"
#include "core/conntrack/flow_listing.h"
#include "core/nat/nat_engine.h"
#include "core/pipeline/pipeline.h"
#include "tools/ctreplay/replay_engine.h"
#include "tools/ctreplay/sync_pair.h"

namespace ctsync::ctreplay {
namespace {

using json = nlohmann::json;
using rules::Hook;
using rules::Table;

// The oracle harness's probe chains (harness/oracle.py PROBES / PROBE_MATCHES): one rule per
// tag at position 1 of each built-in chain, so a rule's counter is the tag's count.
constexpr const char* kProbeTags[] = {
    "seen", "NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED", "SNAT", "DNAT",
    "dir:ORIGINAL", "dir:REPLY", "status:EXPECTED", "status:SEEN_REPLY", "status:ASSURED",
    "status:CONFIRMED"};
constexpr const char* kProbeMatches[] = {"",
                                         "-m conntrack --ctstate NEW",
                                         "-m conntrack --ctstate ESTABLISHED",
                                         "-m conntrack --ctstate RELATED",
                                         "-m conntrack --ctstate INVALID",
                                         "-m conntrack --ctstate UNTRACKED",
                                         "-m conntrack --ctstate SNAT",
                                         "-m conntrack --ctstate DNAT",
                                         "-m conntrack --ctdir ORIGINAL",
                                         "-m conntrack --ctdir REPLY",
                                         "-m conntrack --ctstatus EXPECTED",
                                         "-m conntrack --ctstatus SEEN_REPLY",
                                         "-m conntrack --ctstatus ASSURED",
                                         "-m conntrack --ctstatus CONFIRMED"};
constexpr int kNdTypes[] = {130, 131, 132, 133, 134, 135, 136, 137, 143};

struct ProbePoint {
  Table table;
  Hook hook;
  const char* builtin;
  const char* chain;
  const char* name;
};
constexpr ProbePoint kProbePoints[] = {
    {Table::kMangle, Hook::kPrerouting, "PREROUTING", "ORC_pre", "pre"},
    {Table::kFilter, Hook::kInput, "INPUT", "ORC_in", "in"},
    {Table::kFilter, Hook::kForward, "FORWARD", "ORC_fwd", "fwd"},
    {Table::kFilter, Hook::kOutput, "OUTPUT", "ORC_out", "out"},
    {Table::kMangle, Hook::kPostrouting, "POSTROUTING", "ORC_post", "post"},
};

std::string ProbeRestoreText(Family family) {
  std::string t;
  for (const char* table : {"mangle", "filter"}) {
    absl::StrAppend(&t, "*", table, "\n");
    const bool mangle = std::string(table) == "mangle";
    for (const char* c : mangle ? std::vector<const char*>{"PREROUTING", "INPUT", "FORWARD",
                                                           "OUTPUT", "POSTROUTING"}
                                : std::vector<const char*>{"INPUT", "FORWARD", "OUTPUT"})
      absl::StrAppend(&t, ":", c, " ACCEPT [0:0]\n");
    for (const ProbePoint& p : kProbePoints) {
      if ((p.table == Table::kMangle) != mangle) continue;
      absl::StrAppend(&t, ":", p.chain, " - [0:0]\n");
    }
    for (const ProbePoint& p : kProbePoints) {
      if ((p.table == Table::kMangle) != mangle) continue;
      absl::StrAppend(&t, "-A ", p.builtin, " -j ", p.chain, "\n");
      if (family == Family::kIpv6)
        for (int nd : kNdTypes)
          absl::StrAppend(&t, "-A ", p.chain, " -p ipv6-icmp -m icmp6 --icmpv6-type ", nd,
                          " -j RETURN\n");
      for (const char* m : kProbeMatches) {
        absl::StrAppend(&t, "-A ", p.chain, m[0] ? " " : "", m, "\n");
      }
    }
    absl::StrAppend(&t, "COMMIT\n");
  }
  return t;
}

// Counts the probe tags of every packet at the five probe points.
class ProbeObserver : public HookObserver {
 public:
  absl::Status Init() {
    for (Family f : {Family::kIpv4, Family::kIpv6}) {
      auto rs = rules::RuleSet::Parse(ProbeRestoreText(f), f);
      if (!rs.ok()) return rs.status();
      (f == Family::kIpv4 ? v4_ : v6_) = std::make_unique<rules::RuleSet>(std::move(*rs));
    }
    return absl::OkStatus();
  }
  void BeforeTable(Table table, Hook hook, const rules::MatchContext& ctx) override {
    for (const ProbePoint& p : kProbePoints) {
      if (p.table != table || p.hook != hook) continue;
      rules::RuleSet& rs = ctx.family == Family::kIpv6 ? *v6_ : *v4_;
      rules::PacketEffects effects;
      std::vector<rules::RuleHit> hits;
      rs.Evaluate(table, hook, ctx, &effects, &hits);
      const int skip = ctx.family == Family::kIpv6 ? 9 : 0;
      for (const rules::RuleHit& h : hits) {
        if (h.chain != p.chain || h.index < skip) continue;
        counts_[p.name][kProbeTags[h.index - skip]]++;
      }
    }
  }
  json TakeCounts() {
    json j = json::object();
    for (auto& [hook, tags] : counts_) {
      json t = json::object();
      for (auto& [tag, n] : tags) t[tag] = n;
      j[hook] = t;
    }
    counts_.clear();
    return j;
  }

 private:
  std::unique_ptr<rules::RuleSet> v4_, v6_;
  std::map<std::string, std::map<std::string, int>> counts_;
};

// harness/oracle.py parse_ct_line: the entry fields, read back from the printed line so
// the record says exactly what `conntrack -L -o extended` would let a script see.
json ParseCtLine(const std::string& line) {
  static const std::vector<std::string> kTupleKeys = {"src",  "dst", "sport", "dport", "type",
                                                      "code", "id",  "srckey", "dstkey"};
  static const std::vector<std::string> kIntKeys = {"sport", "dport", "type", "code", "id"};
  auto is_in = [](const std::vector<std::string>& v, const std::string& k) {
    return std::find(v.begin(), v.end(), k) != v.end();
  };
  std::vector<std::string> toks = absl::StrSplit(line, ' ', absl::SkipEmpty());
  json e = json::object();
  e["raw"] = line;
  size_t i = 0;
  if (toks.size() >= 2 && (toks[0] == "ipv4" || toks[0] == "ipv6")) {
    e["l3proto"] = toks[0];
    e["l3protonum"] = std::stoi(toks[1]);
    i = 2;
  }
  e["l4proto"] = toks[i];
  e["l4protonum"] = std::stoi(toks[i + 1]);
  e["timeout"] = std::stoll(toks[i + 2]);
  i += 3;
  if (i < toks.size() && toks[i].find('=') == std::string::npos && toks[i][0] != '[') {
    e["state"] = toks[i];
    ++i;
  }
  std::vector<json> tuples;
  json flags = json::array();
  for (; i < toks.size(); ++i) {
    const std::string& t = toks[i];
    if (t.front() == '[' && t.back() == ']') {
      flags.push_back(t.substr(1, t.size() - 2));
      continue;
    }
    const size_t eq = t.find('=');
    if (eq == std::string::npos) {
      e["extra"].push_back(t);
      continue;
    }
    const std::string k = t.substr(0, eq), v = t.substr(eq + 1);
    if (k == "src") tuples.push_back(json::object());
    if (is_in(kTupleKeys, k) && !tuples.empty() && tuples.size() <= 2 &&
        !tuples.back().contains(k)) {
      if (is_in(kIntKeys, k))
        tuples.back()[k] = std::stoll(v);
      else
        tuples.back()[k] = v;
      continue;
    }
    const bool digits = !v.empty() && std::all_of(v.begin(), v.end(), ::isdigit);
    if ((k == "mark" || k == "use" || k == "zone" || k == "id" || k == "secctx") && digits)
      e[k] = std::stoll(v);
    else
      e[k] = v;
  }
  e["orig"] = tuples.size() > 0 ? tuples[0] : json::object();
  e["reply"] = tuples.size() > 1 ? tuples[1] : json::object();
  e["flags"] = flags;
  if (!e.contains("mark")) e["mark"] = 0;
  if (!e.contains("zone")) e["zone"] = 0;
  return e;
}

// harness/oracle.py parse_expect_line.
json ParseExpectLine(const std::string& line) {
  std::vector<std::string> toks = absl::StrSplit(line, ' ', absl::SkipEmpty());
  json e = json::object();
  e["raw"] = line;
  e["timeout"] = std::stoll(toks[0]);
  json groups = {{"tuple", json::object()}, {"mask", json::object()}, {"master", json::object()}};
  std::string cur = "tuple";
  json flags = json::array();
  for (size_t i = 1; i < toks.size(); ++i) {
    const size_t eq = toks[i].find('=');
    if (eq == std::string::npos) {
      flags.push_back(toks[i]);
      continue;
    }
    std::string k = toks[i].substr(0, eq);
    const std::string v = toks[i].substr(eq + 1);
    if (k == "proto") {
      e["l4protonum"] = std::stoll(v);
      continue;
    }
    if (k.rfind("mask-", 0) == 0) {
      cur = "mask";
      k = k.substr(5);
    } else if (k.rfind("master-", 0) == 0) {
      cur = "master";
      k = k.substr(7);
    }
    if (k == "src" || k == "dst" || k == "sport" || k == "dport" || k == "type" || k == "code" ||
        k == "id") {
      json& g = groups[cur];
      if (g.contains(k)) continue;
      if (k == "src" || k == "dst")
        g[k] = v;
      else
        g[k] = std::stoll(v);
      continue;
    }
    const bool digits = !v.empty() && std::all_of(v.begin(), v.end(), ::isdigit);
    if (digits)
      e[k] = std::stoll(v);
    else
      e[k] = v;
  }
  for (auto& [k, v] : groups.items()) e[k] = v;
  e["flags"] = flags;
  return e;
}

auto CtSortKey(const json& e) {
  const json& o = e["orig"];
  auto s = [&](const char* k) { return o.contains(k) ? o[k].get<std::string>() : std::string(); };
  auto n = [&](const char* k) { return o.contains(k) ? o[k].get<int64_t>() : int64_t{0}; };
  return std::make_tuple(e.value("l3proto", std::string()), e["l4protonum"].get<int64_t>(),
                         s("src"), s("dst"), n("sport"), n("dport"), n("type"), n("id"),
                         e["zone"].get<int64_t>());
}

json StatsDelta(const ConntrackStats& a, const ConntrackStats& b) {
  json d = json::object();
  auto put = [&](const char* name, uint32_t before, uint32_t after) {
    if (after != before) d[name] = static_cast<int64_t>(after) - static_cast<int64_t>(before);
  };
  put("found", a.found, b.found);
  put("invalid", a.invalid, b.invalid);
  put("insert", a.insert, b.insert);
  put("insert_failed", a.insert_failed, b.insert_failed);
  put("drop", a.drop, b.drop);
  put("early_drop", a.early_drop, b.early_drop);
  put("error", a.error, b.error);
  put("search_restart", a.search_restart, b.search_restart);
  put("clash_resolve", a.clash_resolve, b.clash_resolve);
  put("chaintoolong", a.chaintoolong, b.chaintoolong);
  return d;
}

// `conntrack -L -d ADDR` style filter (the only one the corpus uses).
bool PassesListFilter(const Flow& f, const std::optional<std::vector<std::string>>& filter) {
  if (!filter) return true;
  const auto& args = *filter;
  for (size_t i = 0; i + 1 < args.size(); i += 2) {
    Family fam;
    auto a = IpAddress::Parse(args[i + 1], &fam);
    if (!a) continue;
    if ((args[i] == "-d" || args[i] == "--orig-dst") && f.tuple[0].dst != *a) return false;
    if ((args[i] == "-s" || args[i] == "--orig-src") && f.tuple[0].src != *a) return false;
  }
  return true;
}

absl::Status PrefillTable(const Scenario& sc, ConntrackEngine& ct, Nanos now) {
  const ctreplay::Prefill& p = *sc.prefill;
  const int64_t count = p.count ? *p.count : ct.settings().nf_conntrack_max;
  uint32_t status = 0;
  for (absl::string_view w : absl::StrSplit(p.status, ',', absl::SkipEmpty())) {
    if (w == "SEEN_REPLY") status |= kIpsSeenReply;
    if (w == "ASSURED") status |= kIpsAssured;
  }
  Family fam;
  auto dst = IpAddress::Parse(p.dst, &fam);
  if (!dst) return absl::InvalidArgumentError(absl::StrCat("prefill dst '", p.dst, "'"));
  for (int64_t i = 0; i < count; ++i) {
    Flow f;
    f.tuple[0].family = fam;
    f.tuple[0].proto = kProtoUdp;
    f.tuple[0].src = IpAddress::FromV4(0xc0000200u + 100 + static_cast<uint32_t>(i % 100));
    f.tuple[0].dst = *dst;
    f.tuple[0].sport = static_cast<uint16_t>(10000 + i / 100);
    f.tuple[0].dport = static_cast<uint16_t>(p.dport);
    f.tuple[1] = f.tuple[0];
    std::swap(f.tuple[1].src, f.tuple[1].dst);
    std::swap(f.tuple[1].sport, f.tuple[1].dport);
    f.status = status;
    f.expires = now + p.timeout_s * kNanosPerSecond;
    auto r = ct.Insert(f, nullptr, now);
    if (!r.ok()) return r.status();
  }
  return absl::OkStatus();
}

std::string Summary(const std::vector<uint8_t>& frame) {
  ParsedPacket p;
  if (!ParseEthernet(frame, &p).ok()) return "Ether";
  return absl::StrCat(p.family == Family::kIpv6 ? "IPv6 " : "IP ", p.src.ToString(p.family),
                      " > ", p.dst.ToString(p.family), " proto ", p.proto);
}

// One firewall: engine, NAT and pipeline on the corpus topology with the scenario's
// sysctls and rules, and the probe observer.
struct ReplayNode {
  std::unique_ptr<ConntrackEngine> ct;
  std::unique_ptr<NatEngine> nat;
  std::unique_ptr<Pipeline> pipeline;
  ProbeObserver probes;

  // `replicates`: the node's events feed the sync pair (an event ring sized for the
  // scenario: a prefilled table announces every entry before the first packet).
  static absl::StatusOr<std::unique_ptr<ReplayNode>> Create(const Scenario& sc, uint64_t seed,
                                                            bool replicates, Nanos now) {
    auto n = std::make_unique<ReplayNode>();
    ConntrackSettings settings;
    if (sc.expected && sc.expected->contains("prefill_count")) {
      // The corpus kernel's table was full at the global maximum; ours is sized the same.
      settings.nf_conntrack_max = (*sc.expected)["prefill_count"].get<int>();
      settings.nf_conntrack_buckets = settings.nf_conntrack_max;
    }
    if (absl::Status s = settings.SetAll(sc.sysctls); !s.ok()) return s;
    // Sized, not a fixed 1M: every failover point builds two engines, and a ring's slots are
    // written when it is made.
    size_t event_ring = 0;
    if (replicates) {
      event_ring = size_t{1} << 16;
      if (sc.prefill) {
        event_ring += static_cast<size_t>(
            sc.prefill->count ? *sc.prefill->count : settings.nf_conntrack_max);
      }
    }
    // A node that replicates (event ring) also replicates its fragment queues.
    auto e = BuildReplayEngine(settings, seed, event_ring, now, {sc.ruleset_v4, "ruleset_v4"},
                               {sc.ruleset_v6, "ruleset_v6"}, replicates ? 4096 : 0);
    if (!e.ok()) return e.status();
    n->ct = std::move(e->ct);
    n->nat = std::move(e->nat);
    n->pipeline = std::move(e->pipeline);
    if (absl::Status s = n->probes.Init(); !s.ok()) return s;
    n->pipeline->set_observer(&n->probes);
    return n;
  }

  // Injects one packet and records the step as the harness does.
  json Step(const Scenario& sc, const ScenarioPacket& pkt, Nanos now) {
    Pipeline& pipeline = *this->pipeline;
    const int lan = pipeline.topology().FindInterface("lan0");
    const int wan = pipeline.topology().FindInterface("wan0");
    pipeline.Tick(now);
    std::map<std::tuple<std::string, Table, std::string, int>, uint64_t> before;
    for (Family f : {Family::kIpv4, Family::kIpv6})
      if (rules::RuleSet* rs = pipeline.rules(f))
        for (const auto& r : rs->Rules())
          before[{f == Family::kIpv4 ? "v4" : "v6", r.table, r.chain, r.index}] = r.packets;
    const ConntrackStats stats_before = ct->stats();

    std::vector<Transmit> tx;
    const int in = pkt.inject == Side::kLan ? lan : wan;
    pipeline.Receive(in, pkt.frame, now, &tx);

    json step = json::object();
    step["index"] = pkt.index;
    step["inject"] = SideName(pkt.inject);
    json out = json::array();
    bool forwarded = false;
    for (const Transmit& t : tx) {
      const bool on_lan = t.interface == lan;
      if (on_lan != (pkt.inject == Side::kLan)) forwarded = true;
      out.push_back({{"side", on_lan ? "lan" : "wan"},
                     {"frame_hex", EncodeHex(t.frame)},
                     {"summary", Summary(t.frame)}});
    }
    step["forwarded"] = forwarded;
    step["out"] = out;
    step["probes"] = probes.TakeCounts();

    json hits = json::array();
    for (Family f : {Family::kIpv4, Family::kIpv6}) {
      rules::RuleSet* rs = pipeline.rules(f);
      if (!rs) continue;
      const std::string fam = f == Family::kIpv4 ? "v4" : "v6";
      for (const auto& r : rs->Rules()) {
        const uint64_t was = before[{fam, r.table, r.chain, r.index}];
        if (r.packets > was)
          hits.push_back({{"family", fam},
                          {"table", rules::TableName(r.table)},
                          {"chain", r.chain},
                          {"index", r.index},
                          {"rule", r.text},
                          {"packets", r.packets - was}});
      }
    }
    step["rule_hits"] = hits;

    json entries = json::array();
    const FlowTable& table = ct->table();
    table.ForEach([&](FlowIndex idx, const Flow& f) {
      if (f.expires <= now || !PassesListFilter(f, sc.conntrack_list_filter)) return;
      ListingOptions lo;
      lo.use = static_cast<uint32_t>(ct->UseCount(idx));
      lo.counters = table.accounting(idx);
      entries.push_back(ParseCtLine(FormatConntrackLine(f, now, ListingFormat::kExtended, lo)));
    });
    std::sort(entries.begin(), entries.end(),
              [](const json& a, const json& b) { return CtSortKey(a) < CtSortKey(b); });
    step["conntrack"] = entries;
    step["conntrack_count"] = table.size();
    json expect = json::array();
    for (const Expectation& x : ct->expectations().all())
      if (x.expires > now) expect.push_back(ParseExpectLine(FormatExpectation(x, now)));
    std::sort(expect.begin(), expect.end(), [](const json& a, const json& b) {
      return a["tuple"].dump() < b["tuple"].dump();
    });
    step["expect"] = expect;
    step["stats_delta"] = StatsDelta(stats_before, ct->stats());
    return step;
  }
};

json Document(const Scenario& sc, const ConntrackEngine& ct, size_t prefill_count, json steps) {
  json doc = json::object();
  doc["scenario"] = sc.name;
  doc["environment"] = {{"engine", "ctsync ctreplay"}};
  doc["nf_conntrack_max_global"] = ct.settings().nf_conntrack_max;
  doc["nondeterminism"] = json::array();
  doc["runs_compared"] = 1;
  doc["timeout_tolerance_s"] = 2;
  if (sc.prefill) doc["prefill_count"] = prefill_count;
  doc["steps"] = std::move(steps);
  return doc;
}

}  // namespace

absl::StatusOr<json> ReplayScenario(const Scenario& sc, const ReplayOptions& options) {
  Nanos now = 1000 * kNanosPerSecond;
  auto node = ReplayNode::Create(sc, options.seed, /*replicates=*/false, now);
  if (!node.ok()) return node.status();
  size_t prefill_count = 0;
  if (sc.prefill) {
    if (absl::Status s = PrefillTable(sc, *(*node)->ct, now); !s.ok()) return s;
    prefill_count = (*node)->ct->table().size();
  }
  json steps = json::array();
  for (const ScenarioPacket& pkt : sc.packets) {
    now += pkt.delay_before_ms * kNanosPerMilli;
    steps.push_back((*node)->Step(sc, pkt, now));
    now += options.step_gap_ms * kNanosPerMilli;
  }
  return Document(sc, *(*node)->ct, prefill_count, std::move(steps));
}

absl::StatusOr<json> ReplayScenarioWithFailover(const Scenario& sc, const ReplayOptions& options,
                                                int failover_at) {
  ManualClock clock(1000 * kNanosPerSecond);
  auto a = ReplayNode::Create(sc, options.seed, /*replicates=*/true, clock.Now());
  if (!a.ok()) return a.status();
  auto b = ReplayNode::Create(sc, options.seed + 1, /*replicates=*/true, clock.Now());
  if (!b.ok()) return b.status();
  auto pair = SyncPair::Create(*(*a)->pipeline, *(*b)->pipeline, clock);
  if (!pair.ok()) return pair.status();
  size_t prefill_count = 0;
  if (sc.prefill) {
    if (absl::Status s = PrefillTable(sc, *(*a)->ct, clock.Now()); !s.ok()) return s;
    prefill_count = (*a)->ct->table().size();
    if (absl::Status s = (*pair)->Replicate(); !s.ok()) return s;
  }
  json steps = json::array();
  for (const ScenarioPacket& pkt : sc.packets) {
    clock.Advance(pkt.delay_before_ms * kNanosPerMilli);
    if (pkt.index == failover_at) {
      // Node A dies here; B, which learnt everything A had over the sync protocol, takes
      // over (its peer flows become its own) before the next packet arrives.
      (*pair)->Promote();
    }
    ReplayNode& node = pkt.index < failover_at ? **a : **b;
    steps.push_back(node.Step(sc, pkt, clock.Now()));
    if (pkt.index < failover_at) {
      if (absl::Status s = (*pair)->Replicate(); !s.ok()) return s;
    }
    clock.Advance(options.step_gap_ms * kNanosPerMilli);
  }
  return Document(sc, *(*b)->ct, prefill_count, std::move(steps));
}

}  // namespace ctsync::ctreplay

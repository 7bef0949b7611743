// Fuzz target: iptables-restore text into rules::RuleSet for both families.
//
// Invariants checked on every text that parses:
//   - Save() output parses again and saves to the same text (save is a fixed point, up to
//     the order of the tables, see TableBlocks), with and without counters;
//   - Rules() and RuleText() agree with each other;
//   - evaluating every table at every hook terminates for a few fixed packets (a jump loop
//     the parser let through would hang or overflow the return stack here).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/rules/rule_set.h"
#include "tests/fuzz/fuzz_input.h"

namespace ctsync::fuzz {
namespace {

using rules::Hook;
using rules::RuleSet;
using rules::Table;

[[noreturn]] void Fail(const char* what, const std::string& text, const std::string& detail) {
  std::fprintf(stderr, "%s\n--- text ---\n%s\n--- detail ---\n%s\n", what, text.c_str(),
               detail.c_str());
  std::abort();
}

// Save() prints tables most recently registered first, as iptables-legacy-save does after a
// restore into a fresh namespace, so restoring saved text reverses the table order
// (core/rules/README.md). The round trip is therefore compared table by table.
std::vector<std::string> TableBlocks(const std::string& saved) {
  std::vector<std::string> blocks;
  size_t start = 0;
  while (start < saved.size()) {
    size_t end = saved.find("COMMIT\n", start);
    end = end == std::string::npos ? saved.size() : end + 7;
    blocks.push_back(saved.substr(start, end - start));
    start = end;
  }
  std::sort(blocks.begin(), blocks.end());
  return blocks;
}

void CheckRoundTrip(const RuleSet& rs, Family family, bool with_counters) {
  const std::string saved = rs.Save(with_counters);
  auto again = RuleSet::Parse(saved, family);
  if (!again.ok()) {
    Fail("Save() output does not parse", saved, std::string(again.status().message()));
  }
  const std::string resaved = again->Save(with_counters);
  if (TableBlocks(resaved) != TableBlocks(saved)) {
    Fail("parse(save(x)) != save(x)", saved, resaved);
  }
}

void Evaluate(RuleSet& rs, Family family) {
  const IpAddress a =
      family == Family::kIpv4 ? IpAddress::FromV4(0xc000020a) : *IpAddress::Parse("2001:db8:1::10");
  const IpAddress b =
      family == Family::kIpv4 ? IpAddress::FromV4(0xc6336414) : *IpAddress::Parse("2001:db8:2::20");
  Tuple orig;
  orig.src = a;
  orig.dst = b;
  orig.sport = 40000;
  orig.dport = 80;
  orig.family = family;
  orig.proto = kProtoTcp;
  Tuple reply = orig;
  std::swap(reply.src, reply.dst);
  std::swap(reply.sport, reply.dport);

  rules::MatchContext tcp;
  tcp.family = family;
  tcp.src = a;
  tcp.dst = b;
  tcp.proto = kProtoTcp;
  tcp.sport = 40000;
  tcp.dport = 80;
  tcp.has_ports = true;
  tcp.tcp_flags = 0x02;
  tcp.in_iface = "lan0";
  tcp.out_iface = "wan0";
  tcp.packet_len = 60;
  tcp.ctstate = rules::kCtNew;
  tcp.ct_orig = &orig;
  tcp.ct_reply = &reply;

  rules::MatchContext icmp = tcp;
  icmp.proto = family == Family::kIpv4 ? kProtoIcmp : kProtoIcmpv6;
  icmp.has_ports = false;
  icmp.has_icmp = true;
  icmp.icmp_type = family == Family::kIpv4 ? 8 : 128;
  icmp.ctstate = rules::kCtEstablished | rules::kCtSnat;
  icmp.ct_status = rules::kIpsConfirmed | rules::kIpsSeenReply;
  icmp.ct_dir_reply = true;
  icmp.mark = 0x2a;
  icmp.in_iface = "wan0";
  icmp.out_iface = "";

  for (const rules::MatchContext* ctx : {&tcp, &icmp}) {
    for (Table t : {Table::kRaw, Table::kMangle, Table::kNat, Table::kFilter}) {
      for (Hook h :
           {Hook::kPrerouting, Hook::kInput, Hook::kForward, Hook::kOutput, Hook::kPostrouting}) {
        rules::PacketEffects effects;
        std::vector<rules::RuleHit> hits;
        (void)rs.Evaluate(t, h, *ctx, &effects, &hits);
      }
    }
  }
}

void OneFamily(std::string_view text, Family family) {
  auto rs = RuleSet::Parse(text, family);
  if (!rs.ok()) return;
  CheckRoundTrip(*rs, family, false);
  const std::vector<rules::RuleInfo> infos = rs->Rules();
  for (const rules::RuleInfo& r : infos) {
    const std::optional<std::string> t = rs->RuleText(r.table, r.chain, r.index);
    if (!t || *t != r.text) Fail("RuleText() disagrees with Rules()", r.text, t ? *t : "(none)");
  }
  Evaluate(*rs, family);
  CheckRoundTrip(*rs, family, true);  // now with non-zero counters
  rs->ZeroCounters();
  CheckRoundTrip(*rs, family, true);
}

}  // namespace
}  // namespace ctsync::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ctsync::fuzz::OneFamily(text, ctsync::Family::kIpv4);
  ctsync::fuzz::OneFamily(text, ctsync::Family::kIpv6);
  return 0;
}

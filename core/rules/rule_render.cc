// Renders a parsed rule back to the text iptables-legacy-save (v1.8.9) prints for it:
// the IP header part in the fixed order -s -d -i -o -p -f, then matches in the order they
// were loaded (an implicit `-m tcp` sits where its first option was), then the target.
// Each extension prints its options in its own fixed order, as its libxt_*.c save() does.
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/rules/rule.h"

namespace ctsync::rules::internal {
namespace {

const char* Bang(bool invert) { return invert ? " !" : ""; }

std::string Hex(uint32_t v) { return absl::StrFormat("0x%x", v); }

std::string AddrWithLen(const IpPrefix& p) {
  return absl::StrCat(p.address.ToString(p.family), "/", p.length);
}

// conntrack's save prints the length only for a real prefix.
std::string AddrMaybeLen(const IpPrefix& p) {
  int full = p.family == Family::kIpv6 ? 128 : 32;
  if (p.length == full) return p.address.ToString(p.family);
  return AddrWithLen(p);
}

std::string Ports(const PortRange& r) {
  if (r.min == r.max) return absl::StrCat(r.min);
  return absl::StrCat(r.min, ":", r.max);
}

std::string TcpFlagNames(uint8_t flags) {
  static constexpr struct {
    const char* name;
    uint8_t bit;
  } kFlags[] = {{"FIN", 0x01}, {"SYN", 0x02}, {"RST", 0x04},
                {"PSH", 0x08}, {"ACK", 0x10}, {"URG", 0x20}};
  if (flags == 0) return "NONE";
  std::string out;
  for (const auto& f : kFlags) {
    if (flags & f.bit) absl::StrAppend(&out, out.empty() ? "" : ",", f.name);
  }
  return out;
}

std::string CtStateNames(uint16_t mask) {
  static constexpr struct {
    const char* name;
    uint16_t bit;
  } kStates[] = {{"INVALID", kCtInvalid},
                 {"NEW", kCtNew},
                 {"RELATED", kCtRelated},
                 {"ESTABLISHED", kCtEstablished},
                 {"UNTRACKED", kCtUntracked},
                 {"SNAT", kCtSnat},
                 {"DNAT", kCtDnat}};
  std::string out;
  for (const auto& s : kStates) {
    if (mask & s.bit) absl::StrAppend(&out, out.empty() ? "" : ",", s.name);
  }
  return out;
}

std::string CtStatusNames(uint32_t mask) {
  static constexpr struct {
    const char* name;
    uint32_t bit;
  } kStatus[] = {{"EXPECTED", kIpsExpected},
                 {"SEEN_REPLY", kIpsSeenReply},
                 {"ASSURED", kIpsAssured},
                 {"CONFIRMED", kIpsConfirmed}};
  if (mask == 0) return "NONE";
  std::string out;
  for (const auto& s : kStatus) {
    if (mask & s.bit) absl::StrAppend(&out, out.empty() ? "" : ",", s.name);
  }
  return out;
}

// xtables_save_string: bare when only [A-Za-z0-9_-], else double-quoted with ", \ and '
// escaped by a backslash.
std::string Quoted(const std::string& s) {
  bool bare = !s.empty();
  for (char c : s) {
    bare &= (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_' || c == '-';
  }
  if (bare) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\' || c == '\'') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

void RenderMatch(const Match& match, std::string* out) {
  if (const auto* m = std::get_if<TcpMatch>(&match)) {
    absl::StrAppend(out, " -m tcp");
    if (m->has_sport) absl::StrAppend(out, Bang(m->sport_inv), " --sport ", Ports(m->sport));
    if (m->has_dport) absl::StrAppend(out, Bang(m->dport_inv), " --dport ", Ports(m->dport));
    // A zero mask never matches anything but is also never printed (libxt_tcp).
    if (m->has_flags && (m->flags_mask != 0 || m->flags_inv)) {
      absl::StrAppend(out, Bang(m->flags_inv), " --tcp-flags ", TcpFlagNames(m->flags_mask), " ",
                      TcpFlagNames(m->flags_cmp));
    }
  } else if (const auto* u = std::get_if<UdpMatch>(&match)) {
    absl::StrAppend(out, " -m udp");
    if (u->has_sport) absl::StrAppend(out, Bang(u->sport_inv), " --sport ", Ports(u->sport));
    if (u->has_dport) absl::StrAppend(out, Bang(u->dport_inv), " --dport ", Ports(u->dport));
  } else if (const auto* i = std::get_if<IcmpMatch>(&match)) {
    if (i->v6) {
      absl::StrAppend(out, " -m icmp6", Bang(i->invert), " --icmpv6-type ", RenderIcmpType(*i));
    } else {
      absl::StrAppend(out, " -m icmp", Bang(i->invert), " --icmp-type ", RenderIcmpType(*i));
    }
  } else if (const auto* c = std::get_if<ConntrackMatch>(&match)) {
    using F = ConntrackMatch;
    auto inv = [&](uint16_t f) { return Bang(c->invert & f); };
    if (c->state_alias) {
      absl::StrAppend(out, " -m state", inv(F::kState), " --state ", CtStateNames(c->state_mask));
      return;
    }
    absl::StrAppend(out, " -m conntrack");
    if (c->flags & F::kState)
      absl::StrAppend(out, inv(F::kState), " --ctstate ", CtStateNames(c->state_mask));
    if (c->flags & F::kProto) absl::StrAppend(out, inv(F::kProto), " --ctproto ", c->proto);
    static constexpr const char* kAddrOpt[4] = {"--ctorigsrc", "--ctorigdst", "--ctreplsrc",
                                                "--ctrepldst"};
    static constexpr const char* kPortOpt[4] = {"--ctorigsrcport", "--ctorigdstport",
                                                "--ctreplsrcport", "--ctrepldstport"};
    for (int k = 0; k < 4; ++k) {
      uint16_t f = F::kOrigSrc << k;
      if (c->flags & f)
        absl::StrAppend(out, inv(f), " ", kAddrOpt[k], " ", AddrMaybeLen(c->addr[k]));
    }
    for (int k = 0; k < 4; ++k) {
      uint16_t f = F::kOrigSrcPort << k;
      if (c->flags & f) absl::StrAppend(out, inv(f), " ", kPortOpt[k], " ", Ports(c->port[k]));
    }
    if (c->flags & F::kStatus)
      absl::StrAppend(out, inv(F::kStatus), " --ctstatus ", CtStatusNames(c->status_mask));
    if (c->flags & F::kDir) absl::StrAppend(out, " --ctdir ", c->dir_reply ? "REPLY" : "ORIGINAL");
  } else if (const auto* mp = std::get_if<MultiportMatch>(&match)) {
    static constexpr const char* kWhich[3] = {"--sports", "--dports", "--ports"};
    absl::StrAppend(out, " -m multiport", Bang(mp->invert), " ", kWhich[mp->which], " ");
    for (size_t k = 0; k < mp->ranges.size(); ++k) {
      absl::StrAppend(out, k ? "," : "", Ports(mp->ranges[k]));
    }
  } else if (const auto* mk = std::get_if<MarkMatch>(&match)) {
    absl::StrAppend(out, mk->conn ? " -m connmark" : " -m mark", Bang(mk->invert), " --mark ",
                    Hex(mk->value));
    if (mk->mask != 0xffffffff) absl::StrAppend(out, "/", Hex(mk->mask));
  }
}

void RenderNat(const NatSpec& n, std::string* out) {
  bool v6 = n.family == Family::kIpv6;
  std::string range;
  if (n.has_addr) {
    range = n.min_addr.ToString(n.family);
    if (n.max_addr != n.min_addr) absl::StrAppend(&range, "-", n.max_addr.ToString(n.family));
    if (v6 && n.has_ports) range = absl::StrCat("[", range, "]");
  }
  std::string ports;
  if (n.has_ports) {
    ports = absl::StrCat(n.min_port);
    if (n.max_port != n.min_port) absl::StrAppend(&ports, "-", n.max_port);
  }
  switch (n.kind) {
    case NatKind::kSnat:
    case NatKind::kDnat:
      absl::StrAppend(out,
                      n.kind == NatKind::kSnat ? "SNAT --to-source " : "DNAT --to-destination ",
                      range, n.has_ports ? ":" : "", ports);
      break;
    case NatKind::kMasquerade:
      absl::StrAppend(out, "MASQUERADE");
      if (n.has_ports) absl::StrAppend(out, " --to-ports ", ports);
      break;
    case NatKind::kRedirect:
      absl::StrAppend(out, "REDIRECT");
      if (n.has_ports) absl::StrAppend(out, " --to-ports ", ports);
      break;
  }
  if (n.random) absl::StrAppend(out, " --random");
  if (n.random_fully) absl::StrAppend(out, " --random-fully");
  if (n.persistent) absl::StrAppend(out, " --persistent");
}

void RenderTarget(const Target& t, const TableData& table, std::string* out) {
  switch (t.kind) {
    case TargetKind::kNone:
      return;
    case TargetKind::kAccept:
      absl::StrAppend(out, " -j ACCEPT");
      return;
    case TargetKind::kDrop:
      absl::StrAppend(out, " -j DROP");
      return;
    case TargetKind::kReturn:
      absl::StrAppend(out, " -j RETURN");
      return;
    case TargetKind::kJump:
      absl::StrAppend(out, " -j ", table.chains[t.chain].name);
      return;
    case TargetKind::kGoto:
      absl::StrAppend(out, " -g ", table.chains[t.chain].name);
      return;
    case TargetKind::kReject:
      absl::StrAppend(out, " -j REJECT --reject-with ", RenderRejectWith(t.reject.with));
      return;
    case TargetKind::kNotrack:
      absl::StrAppend(out, " -j NOTRACK");
      return;
    case TargetKind::kCt:
      absl::StrAppend(out, " -j CT");
      if (t.ct_notrack) absl::StrAppend(out, " --notrack");
      if (!t.helper.empty()) absl::StrAppend(out, " --helper ", t.helper);
      if (t.has_zone) absl::StrAppend(out, " --zone ", t.zone);
      return;
    case TargetKind::kMark:
      absl::StrAppend(out, " -j MARK --set-xmark ", Hex(t.value), "/", Hex(t.mask));
      return;
    case TargetKind::kConnmark:
      absl::StrAppend(out, " -j CONNMARK");
      switch (t.connmark_mode) {
        case Target::kSetXmark:
          absl::StrAppend(out, " --set-xmark ", Hex(t.value), "/", Hex(t.mask));
          break;
        case Target::kSave:
          absl::StrAppend(out, " --save-mark --nfmask ", Hex(t.nfmask), " --ctmask ",
                          Hex(t.ctmask));
          break;
        case Target::kRestore:
          absl::StrAppend(out, " --restore-mark --nfmask ", Hex(t.nfmask), " --ctmask ",
                          Hex(t.ctmask));
          break;
      }
      return;
    case TargetKind::kLog:
      absl::StrAppend(out, " -j LOG");
      if (!t.log_prefix.empty()) absl::StrAppend(out, " --log-prefix ", Quoted(t.log_prefix));
      if (t.log_level != 4) absl::StrAppend(out, " --log-level ", t.log_level);
      if (t.log_flags & 1) absl::StrAppend(out, " --log-tcp-sequence");
      if (t.log_flags & 2) absl::StrAppend(out, " --log-tcp-options");
      if (t.log_flags & 4) absl::StrAppend(out, " --log-ip-options");
      if (t.log_flags & 8) absl::StrAppend(out, " --log-uid");
      if (t.log_flags & 16) absl::StrAppend(out, " --log-macdecode");
      return;
    case TargetKind::kNat:
      absl::StrAppend(out, " -j ");
      RenderNat(t.nat, out);
      return;
  }
}

}  // namespace

std::string RenderRule(const Rule& r, const TableData& table) {
  std::string out;
  // iptables prints an address when its mask is not zero or it is negated.
  if (r.src.set && (r.src.prefix.length != 0 || r.src.invert))
    absl::StrAppend(&out, Bang(r.src.invert), " -s ", AddrWithLen(r.src.prefix));
  if (r.dst.set && (r.dst.prefix.length != 0 || r.dst.invert))
    absl::StrAppend(&out, Bang(r.dst.invert), " -d ", AddrWithLen(r.dst.prefix));
  if (r.in.set)
    absl::StrAppend(&out, Bang(r.in.invert), " -i ", r.in.name, r.in.wildcard ? "+" : "");
  if (r.out.set)
    absl::StrAppend(&out, Bang(r.out.invert), " -o ", r.out.name, r.out.wildcard ? "+" : "");
  if (r.proto_set && (r.proto != 0 || r.proto_inv))
    absl::StrAppend(&out, Bang(r.proto_inv), " -p ",
                    r.proto == 0 ? std::string("all") : ProtoName(r.proto));
  if (r.frag != Rule::kAnyFrag) absl::StrAppend(&out, Bang(r.frag == Rule::kNoFrag), " -f");
  for (const Match& m : r.matches) RenderMatch(m, &out);
  RenderTarget(r.target, table, &out);
  // Every piece starts with a space; drop the first.
  if (!out.empty()) out.erase(0, 1);
  return out;
}

}  // namespace ctsync::rules::internal

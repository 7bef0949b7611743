// Reads the words of one rule (after "-A CHAIN") into a Rule, following iptables 1.8.9
// (legacy): an option is offered first to the target, then to the loaded matches (latest
// first), then implicitly loads the protocol match named by -p (which is why
// `-p tcp --dport 80` saves as `-p tcp -m tcp --dport 80`). The per-rule checks the kernel
// makes when a rule is loaded (a tcp match needs -p tcp, NAT ports need a port protocol, a CT
// helper needs the helper's protocol, ...) are made here too. Errors name line and word.
#include <cerrno>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/rules/rule.h"
#include "core/util/status_macros.h"

namespace ctsync::rules::internal {
namespace {

absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool ParseU32(std::string_view s, uint32_t* out) {
  // strtoul with base 0, as iptables' xtables_strtoui: 0x.. hex, 0.. octal, else decimal.
  if (s.empty() || s[0] == '-' || s[0] == '+' || s.size() > 32) return false;
  std::string buf(s);
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(buf.c_str(), &end, 0);
  if (errno != 0 || end != buf.c_str() + buf.size() || v > 0xffffffffULL) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

bool ParsePort(std::string_view s, uint16_t* out) {
  uint32_t v;
  if (s.empty() || !absl::SimpleAtoi(AV(s), &v) || v > 65535) return false;
  *out = static_cast<uint16_t>(v);
  return true;
}

// Reads one rule's words (after "-A CHAIN") into a Rule.
class RuleReader {
 public:
  RuleReader(std::vector<std::string> words, size_t pos, Family family, TableData* table, int line)
      : w_(std::move(words)), pos_(pos), family_(family), table_(table), line_(line) {}

  absl::Status Read(Rule* rule);

 private:
  absl::Status Err(std::string_view msg) const {
    return absl::InvalidArgumentError(absl::StrCat("line ", line_, ": ", AV(msg)));
  }
  absl::StatusOr<std::string> Value(std::string_view opt) {
    if (pos_ >= w_.size() || (w_[pos_] == "!"))
      return Err(absl::StrCat("option ", AV(opt), " requires an argument"));
    return w_[pos_++];
  }
  bool v6() const { return family_ == Family::kIpv6; }

  absl::Status ReadAddr(std::string_view opt, bool inv, AddrMatch* m);
  absl::Status ReadIface(std::string_view opt, bool inv, IfaceMatch* m);
  absl::StatusOr<IpPrefix> Prefix(std::string_view opt, std::string_view text);
  absl::StatusOr<PortRange> Range(std::string_view opt, std::string_view text, char sep,
                                  bool open_ends);
  absl::Status LoadMatch(std::string_view name, bool inv, Rule* rule);
  absl::Status LoadTarget(std::string_view name, bool is_goto, bool inv, Rule* rule);
  absl::Status Option(std::string_view opt, bool inv, Rule* rule);

  // Each returns false when the option is not one of the extension's.
  absl::StatusOr<bool> TcpOpt(TcpMatch& m, std::string_view opt, bool inv);
  absl::StatusOr<bool> UdpOpt(UdpMatch& m, std::string_view opt, bool inv);
  absl::StatusOr<bool> IcmpOpt(IcmpMatch& m, std::string_view opt, bool inv);
  absl::StatusOr<bool> ConntrackOpt(ConntrackMatch& m, std::string_view opt, bool inv);
  absl::StatusOr<bool> MultiportOpt(MultiportMatch& m, std::string_view opt, bool inv);
  absl::StatusOr<bool> MarkOpt(MarkMatch& m, std::string_view opt, bool inv);
  absl::StatusOr<bool> MatchOpt(Match& m, std::string_view opt, bool inv);
  absl::StatusOr<bool> TargetOpt(Target& t, std::string_view opt, bool inv);

  absl::Status Finish(Rule* rule);

  std::vector<std::string> w_;
  size_t pos_;
  Family family_;
  TableData* table_;
  int line_;
  bool target_given_ = false;
  bool nat_range_given_ = false;
  bool mark_op_given_ = false;
};

// iptables completes a short dotted address as a network: "10" is 10.0.0.0, "0/0" is
// 0.0.0.0/0 (xtables' numeric_to_ipaddr).
std::string CompleteV4(std::string_view text) {
  size_t slash = text.find('/');
  std::string addr(text.substr(0, slash));
  int dots = 0;
  for (char c : addr) {
    if (c == '.') {
      ++dots;
    } else if (c < '0' || c > '9') {
      return std::string(text);
    }
  }
  if (addr.empty() || dots >= 3 || addr.back() == '.') return std::string(text);
  for (; dots < 3; ++dots) addr += ".0";
  if (slash != std::string_view::npos) addr += std::string(text.substr(slash));
  return addr;
}

absl::StatusOr<IpPrefix> RuleReader::Prefix(std::string_view opt, std::string_view text) {
  std::string completed = v6() ? std::string(text) : CompleteV4(text);
  auto p = IpPrefix::Parse(completed);
  if (!p || p->family != family_) {
    return Err(absl::StrCat("host/network `", AV(text), "' not found (", AV(opt), ")"));
  }
  return *p;
}

absl::Status RuleReader::ReadAddr(std::string_view opt, bool inv, AddrMatch* m) {
  if (m->set) return Err(absl::StrCat("multiple ", AV(opt), " flags not allowed"));
  ASSIGN_OR_RETURN(std::string v, Value(opt));
  ASSIGN_OR_RETURN(m->prefix, Prefix(opt, v));
  m->set = true;
  m->invert = inv;
  return absl::OkStatus();
}

absl::Status RuleReader::ReadIface(std::string_view opt, bool inv, IfaceMatch* m) {
  if (m->set) return Err(absl::StrCat("multiple ", AV(opt), " flags not allowed"));
  ASSIGN_OR_RETURN(std::string v, Value(opt));
  // IFNAMSIZ is 16 with the terminating NUL.
  if (v.empty() || v.size() > 15) return Err(absl::StrCat("interface name `", v, "' invalid"));
  m->set = true;
  m->invert = inv;
  m->wildcard = v.back() == '+';
  m->name = m->wildcard ? v.substr(0, v.size() - 1) : v;
  return absl::OkStatus();
}

absl::StatusOr<PortRange> RuleReader::Range(std::string_view opt, std::string_view text, char sep,
                                            bool open_ends) {
  PortRange r;
  size_t at = text.find(sep);
  bool ok;
  if (at == std::string_view::npos) {
    ok = ParsePort(text, &r.min);
    r.max = r.min;
  } else {
    std::string_view a = text.substr(0, at), b = text.substr(at + 1);
    ok = (a.empty() ? open_ends : ParsePort(a, &r.min)) &&
         (b.empty() ? open_ends : ParsePort(b, &r.max));
    if (a.empty()) r.min = 0;
    if (b.empty()) r.max = 65535;
    if (ok && r.min > r.max) return Err(absl::StrCat("invalid port range `", AV(text), "'"));
  }
  if (!ok) {
    return Err(absl::StrCat("invalid port/service `", AV(text), "' specified (", AV(opt), ")"));
  }
  return r;
}

absl::StatusOr<bool> RuleReader::TcpOpt(TcpMatch& m, std::string_view opt, bool inv) {
  if (opt == "--sport" || opt == "--source-port") {
    if (m.has_sport) return Err("multiple --sport flags not allowed");
    ASSIGN_OR_RETURN(std::string v, Value(opt));
    ASSIGN_OR_RETURN(m.sport, Range(opt, v, ':', true));
    m.has_sport = true;
    m.sport_inv = inv;
    return true;
  }
  if (opt == "--dport" || opt == "--destination-port") {
    if (m.has_dport) return Err("multiple --dport flags not allowed");
    ASSIGN_OR_RETURN(std::string v, Value(opt));
    ASSIGN_OR_RETURN(m.dport, Range(opt, v, ':', true));
    m.has_dport = true;
    m.dport_inv = inv;
    return true;
  }
  if (opt == "--syn") {
    if (m.has_flags) return Err("multiple --tcp-flags/--syn flags not allowed");
    m.has_flags = true;
    m.flags_inv = inv;
    m.flags_mask = 0x17;  // FIN,SYN,RST,ACK
    m.flags_cmp = 0x02;   // SYN
    return true;
  }
  if (opt == "--tcp-flags") {
    if (m.has_flags) return Err("multiple --tcp-flags/--syn flags not allowed");
    uint8_t parts[2];
    for (uint8_t& part : parts) {
      ASSIGN_OR_RETURN(std::string v, Value(opt));
      part = 0;
      for (absl::string_view name : absl::StrSplit(v, ',')) {
        std::string n = absl::AsciiStrToUpper(name);
        if (n == "FIN")
          part |= 0x01;
        else if (n == "SYN")
          part |= 0x02;
        else if (n == "RST")
          part |= 0x04;
        else if (n == "PSH")
          part |= 0x08;
        else if (n == "ACK")
          part |= 0x10;
        else if (n == "URG")
          part |= 0x20;
        else if (n == "ALL")
          part |= 0x3f;
        else if (n == "NONE")
          part |= 0;
        else
          return Err(absl::StrCat("unknown TCP flag `", name, "'"));
      }
    }
    m.has_flags = true;
    m.flags_inv = inv;
    m.flags_mask = parts[0];
    m.flags_cmp = parts[1];
    return true;
  }
  return false;
}

absl::StatusOr<bool> RuleReader::UdpOpt(UdpMatch& m, std::string_view opt, bool inv) {
  TcpMatch t;
  bool is_port =
      opt == "--sport" || opt == "--source-port" || opt == "--dport" || opt == "--destination-port";
  if (!is_port) return false;
  t.has_sport = m.has_sport;
  t.has_dport = m.has_dport;
  ASSIGN_OR_RETURN(bool ok, TcpOpt(t, opt, inv));
  if (t.has_sport && !m.has_sport) {
    m.has_sport = true, m.sport = t.sport, m.sport_inv = t.sport_inv;
  }
  if (t.has_dport && !m.has_dport) {
    m.has_dport = true, m.dport = t.dport, m.dport_inv = t.dport_inv;
  }
  return ok;
}

absl::StatusOr<bool> RuleReader::IcmpOpt(IcmpMatch& m, std::string_view opt, bool inv) {
  if (opt != (m.v6 ? "--icmpv6-type" : "--icmp-type")) return false;
  if (m.set) return Err(absl::StrCat("multiple ", AV(opt), " flags not allowed"));
  ASSIGN_OR_RETURN(std::string v, Value(opt));
  if (!ParseIcmpType(v, m.v6, &m)) {
    return Err(absl::StrCat("unknown ICMP", m.v6 ? "v6" : "", " type `", v, "'"));
  }
  m.set = true;
  m.invert = inv;
  return true;
}

absl::StatusOr<bool> RuleReader::ConntrackOpt(ConntrackMatch& m, std::string_view opt, bool inv) {
  using F = ConntrackMatch;
  auto take = [&](uint16_t flag) -> absl::Status {
    if (m.flags & flag) return Err(absl::StrCat("multiple ", AV(opt), " flags not allowed"));
    m.flags |= flag;
    if (inv) m.invert |= flag;
    return absl::OkStatus();
  };
  bool state_opt = m.state_alias ? opt == "--state" : opt == "--ctstate";
  if (state_opt) {
    RETURN_IF_ERROR(take(F::kState));
    ASSIGN_OR_RETURN(std::string v, Value(opt));
    for (absl::string_view name : absl::StrSplit(v, ',')) {
      std::string n = absl::AsciiStrToUpper(name);
      if (n == "INVALID")
        m.state_mask |= kCtInvalid;
      else if (n == "NEW")
        m.state_mask |= kCtNew;
      else if (n == "ESTABLISHED")
        m.state_mask |= kCtEstablished;
      else if (n == "RELATED")
        m.state_mask |= kCtRelated;
      else if (n == "UNTRACKED")
        m.state_mask |= kCtUntracked;
      else if (n == "SNAT" && !m.state_alias)
        m.state_mask |= kCtSnat;
      else if (n == "DNAT" && !m.state_alias)
        m.state_mask |= kCtDnat;
      else
        return Err(absl::StrCat("bad ", AV(opt), " state `", name, "'"));
    }
    return true;
  }
  if (m.state_alias) return false;
  if (opt == "--ctproto") {
    RETURN_IF_ERROR(take(F::kProto));
    ASSIGN_OR_RETURN(std::string v, Value(opt));
    std::string lower = absl::AsciiStrToLower(v);
    if (!ParseProtoName(lower, &m.proto) || m.proto == 0) {
      return Err(absl::StrCat("unknown protocol `", v, "' specified (--ctproto)"));
    }
    return true;
  }
  static constexpr const char* kAddr[4] = {"--ctorigsrc", "--ctorigdst", "--ctreplsrc",
                                           "--ctrepldst"};
  static constexpr const char* kPort[4] = {"--ctorigsrcport", "--ctorigdstport", "--ctreplsrcport",
                                           "--ctrepldstport"};
  for (int k = 0; k < 4; ++k) {
    if (opt == kAddr[k]) {
      RETURN_IF_ERROR(take(static_cast<uint16_t>(F::kOrigSrc << k)));
      ASSIGN_OR_RETURN(std::string v, Value(opt));
      ASSIGN_OR_RETURN(m.addr[k], Prefix(opt, v));
      return true;
    }
    if (opt == kPort[k]) {
      RETURN_IF_ERROR(take(static_cast<uint16_t>(F::kOrigSrcPort << k)));
      ASSIGN_OR_RETURN(std::string v, Value(opt));
      ASSIGN_OR_RETURN(m.port[k], Range(opt, v, ':', false));
      return true;
    }
  }
  if (opt == "--ctstatus") {
    RETURN_IF_ERROR(take(F::kStatus));
    ASSIGN_OR_RETURN(std::string v, Value(opt));
    for (absl::string_view name : absl::StrSplit(v, ',')) {
      std::string n = absl::AsciiStrToUpper(name);
      if (n == "NONE") continue;
      if (n == "EXPECTED")
        m.status_mask |= kIpsExpected;
      else if (n == "SEEN_REPLY")
        m.status_mask |= kIpsSeenReply;
      else if (n == "ASSURED")
        m.status_mask |= kIpsAssured;
      else if (n == "CONFIRMED")
        m.status_mask |= kIpsConfirmed;
      else
        return Err(absl::StrCat("bad --ctstatus `", name, "'"));
    }
    return true;
  }
  if (opt == "--ctdir") {
    if (inv) return Err("unexpected ! before --ctdir");
    RETURN_IF_ERROR(take(F::kDir));
    ASSIGN_OR_RETURN(std::string v, Value(opt));
    std::string n = absl::AsciiStrToUpper(v);
    if (n == "ORIGINAL")
      m.dir_reply = false;
    else if (n == "REPLY")
      m.dir_reply = true;
    else
      return Err(absl::StrCat("bad --ctdir `", v, "'"));
    return true;
  }
  return false;
}

absl::StatusOr<bool> RuleReader::MultiportOpt(MultiportMatch& m, std::string_view opt, bool inv) {
  MultiportMatch::Which which;
  if (opt == "--sports" || opt == "--source-ports")
    which = MultiportMatch::kSource;
  else if (opt == "--dports" || opt == "--destination-ports")
    which = MultiportMatch::kDest;
  else if (opt == "--ports")
    which = MultiportMatch::kEither;
  else
    return false;
  if (!m.ranges.empty()) return Err("multiport can only have one option");
  ASSIGN_OR_RETURN(std::string v, Value(opt));
  int count = 0;
  for (absl::string_view item : absl::StrSplit(v, ',')) {
    ASSIGN_OR_RETURN(PortRange r,
                     Range(opt, std::string_view(item.data(), item.size()), ':', false));
    count += r.min == r.max ? 1 : 2;
    m.ranges.push_back(r);
  }
  if (count > 15) return Err("too many ports specified (multiport allows 15)");
  m.which = which;
  m.invert = inv;
  return true;
}

absl::StatusOr<bool> RuleReader::MarkOpt(MarkMatch& m, std::string_view opt, bool inv) {
  if (opt != "--mark") return false;
  if (m.set) return Err("multiple --mark flags not allowed");
  m.set = true;
  ASSIGN_OR_RETURN(std::string v, Value(opt));
  size_t slash = v.find('/');
  bool ok = ParseU32(std::string_view(v).substr(0, slash), &m.value);
  if (ok && slash != std::string::npos)
    ok = ParseU32(std::string_view(v).substr(slash + 1), &m.mask);
  if (!ok) return Err(absl::StrCat("bad --mark value `", v, "'"));
  m.invert = inv;
  return true;
}

absl::StatusOr<bool> RuleReader::MatchOpt(Match& m, std::string_view opt, bool inv) {
  if (auto* x = std::get_if<TcpMatch>(&m)) return TcpOpt(*x, opt, inv);
  if (auto* x = std::get_if<UdpMatch>(&m)) return UdpOpt(*x, opt, inv);
  if (auto* x = std::get_if<IcmpMatch>(&m)) return IcmpOpt(*x, opt, inv);
  if (auto* x = std::get_if<ConntrackMatch>(&m)) return ConntrackOpt(*x, opt, inv);
  if (auto* x = std::get_if<MultiportMatch>(&m)) return MultiportOpt(*x, opt, inv);
  if (auto* x = std::get_if<MarkMatch>(&m)) return MarkOpt(*x, opt, inv);
  return false;
}

absl::Status RuleReader::LoadMatch(std::string_view name, bool inv, Rule* rule) {
  if (inv) return Err("unexpected ! before -m");
  if (name == "tcp")
    rule->matches.emplace_back(TcpMatch{});
  else if (name == "udp")
    rule->matches.emplace_back(UdpMatch{});
  else if (name == "icmp" && !v6())
    rule->matches.emplace_back(IcmpMatch{});
  else if ((name == "icmp6" || name == "icmpv6") && v6())
    rule->matches.emplace_back(IcmpMatch{.v6 = true});
  else if (name == "conntrack")
    rule->matches.emplace_back(ConntrackMatch{});
  else if (name == "state")
    std::get<ConntrackMatch>(rule->matches.emplace_back(ConntrackMatch{})).state_alias = true;
  else if (name == "multiport")
    rule->matches.emplace_back(MultiportMatch{});
  else if (name == "mark")
    rule->matches.emplace_back(MarkMatch{});
  else if (name == "connmark")
    rule->matches.emplace_back(MarkMatch{.conn = true});
  else
    return Err(absl::StrCat("unknown match ", AV(name)));
  return absl::OkStatus();
}

absl::Status RuleReader::LoadTarget(std::string_view name, bool is_goto, bool inv, Rule* rule) {
  if (inv) return Err(absl::StrCat("unexpected ! before ", is_goto ? "-g" : "-j"));
  if (target_given_) return Err("multiple -j/-g flags not allowed");
  target_given_ = true;
  Target& t = rule->target;
  for (size_t i = 0; i < table_->chains.size(); ++i) {
    const Chain& c = table_->chains[i];
    if (c.name == name && !c.builtin) {
      t.kind = is_goto ? TargetKind::kGoto : TargetKind::kJump;
      t.chain = static_cast<int>(i);
      return absl::OkStatus();
    }
  }
  if (is_goto) return Err(absl::StrCat("unknown chain ", AV(name)));
  if (name == "ACCEPT")
    t.kind = TargetKind::kAccept;
  else if (name == "DROP")
    t.kind = TargetKind::kDrop;
  else if (name == "RETURN")
    t.kind = TargetKind::kReturn;
  else if (name == "REJECT") {
    t.kind = TargetKind::kReject;
    t.reject.with = v6() ? RejectWith::kIcmp6PortUnreachable : RejectWith::kIcmpPortUnreachable;
  } else if (name == "NOTRACK")
    t.kind = TargetKind::kNotrack;
  else if (name == "CT")
    t.kind = TargetKind::kCt;
  else if (name == "MARK")
    t.kind = TargetKind::kMark;
  else if (name == "CONNMARK")
    t.kind = TargetKind::kConnmark;
  else if (name == "LOG")
    t.kind = TargetKind::kLog;
  else if (name == "SNAT" || name == "DNAT" || name == "MASQUERADE" || name == "REDIRECT") {
    t.kind = TargetKind::kNat;
    t.nat.family = family_;
    t.nat.kind = name == "SNAT"         ? NatKind::kSnat
                 : name == "DNAT"       ? NatKind::kDnat
                 : name == "MASQUERADE" ? NatKind::kMasquerade
                                        : NatKind::kRedirect;
  } else {
    return Err(absl::StrCat("unknown target ", AV(name)));
  }
  return absl::OkStatus();
}

// "a[-b][:p[-q]]", with v6 addresses in brackets when ports follow.
absl::Status ParseNatRange(std::string_view text, Family family, bool want_addr, NatSpec* n,
                           bool* ok) {
  *ok = false;
  std::string_view addrs = text, ports;
  if (want_addr) {
    if (family == Family::kIpv6 && !text.empty() && text[0] == '[') {
      size_t close = text.find(']');
      if (close == std::string_view::npos) return absl::OkStatus();
      addrs = text.substr(1, close - 1);
      std::string_view rest = text.substr(close + 1);
      if (!rest.empty()) {
        if (rest[0] != ':') return absl::OkStatus();
        ports = rest.substr(1);
        if (ports.empty()) return absl::OkStatus();
      }
    } else if (family == Family::kIpv4) {
      size_t colon = text.find(':');
      if (colon != std::string_view::npos) {
        addrs = text.substr(0, colon);
        ports = text.substr(colon + 1);
        if (ports.empty()) return absl::OkStatus();
      }
    }
    size_t dash = addrs.find('-');
    Family f1 = Family::kNone, f2 = Family::kNone;
    auto a = IpAddress::Parse(addrs.substr(0, dash), &f1);
    auto b = dash == std::string_view::npos ? a : IpAddress::Parse(addrs.substr(dash + 1), &f2);
    if (dash == std::string_view::npos) f2 = f1;
    if (!a || !b || f1 != family || f2 != family) return absl::OkStatus();
    n->has_addr = true;
    n->min_addr = *a;
    n->max_addr = *b;
  } else {
    ports = text;
  }
  if (!ports.empty()) {
    size_t dash = ports.find('-');
    uint16_t lo, hi;
    if (!ParsePort(ports.substr(0, dash), &lo)) return absl::OkStatus();
    hi = lo;
    if (dash != std::string_view::npos && !ParsePort(ports.substr(dash + 1), &hi))
      return absl::OkStatus();
    if (lo > hi) return absl::OkStatus();
    n->has_ports = true;
    n->min_port = lo;
    n->max_port = hi;
  }
  *ok = true;
  return absl::OkStatus();
}

absl::StatusOr<bool> RuleReader::TargetOpt(Target& t, std::string_view opt, bool inv) {
  auto no_inv = [&]() -> absl::Status {
    if (inv) return Err(absl::StrCat("unexpected ! before ", AV(opt)));
    return absl::OkStatus();
  };
  switch (t.kind) {
    case TargetKind::kReject:
      if (opt != "--reject-with") return false;
      RETURN_IF_ERROR(no_inv());
      {
        ASSIGN_OR_RETURN(std::string v, Value(opt));
        if (!ParseRejectWith(v, family_, &t.reject.with))
          return Err(absl::StrCat("unknown reject type `", v, "'"));
      }
      return true;
    case TargetKind::kCt:
      if (opt == "--notrack") {
        RETURN_IF_ERROR(no_inv());
        t.ct_notrack = true;
        return true;
      }
      if (opt == "--zone") {
        RETURN_IF_ERROR(no_inv());
        ASSIGN_OR_RETURN(std::string v, Value(opt));
        uint32_t z;
        if (!ParseU32(v, &z) || z > 65535) return Err(absl::StrCat("bad --zone `", v, "'"));
        t.has_zone = true;
        t.zone = static_cast<uint16_t>(z);
        return true;
      }
      if (opt == "--helper") {
        RETURN_IF_ERROR(no_inv());
        ASSIGN_OR_RETURN(t.helper, Value(opt));
        return true;
      }
      return false;
    case TargetKind::kMark:
    case TargetKind::kConnmark: {
      bool conn = t.kind == TargetKind::kConnmark;
      bool set_x = opt == "--set-xmark", set = opt == "--set-mark", and_m = opt == "--and-mark",
           or_m = opt == "--or-mark", xor_m = opt == "--xor-mark";
      bool save = conn && opt == "--save-mark", restore = conn && opt == "--restore-mark";
      if (set_x || set || and_m || or_m || xor_m || save || restore) {
        RETURN_IF_ERROR(no_inv());
        if (mark_op_given_)
          return Err(absl::StrCat(conn ? "CONNMARK" : "MARK", ": only one action allowed"));
        mark_op_given_ = true;
        if (save || restore) {
          t.connmark_mode = save ? Target::kSave : Target::kRestore;
          return true;
        }
        ASSIGN_OR_RETURN(std::string v, Value(opt));
        uint32_t val = 0, mask = 0xffffffff;
        size_t slash = v.find('/');
        bool ok = ParseU32(std::string_view(v).substr(0, slash), &val);
        if ((set_x || set) && ok && slash != std::string::npos)
          ok = ParseU32(std::string_view(v).substr(slash + 1), &mask);
        else if (slash != std::string::npos)
          ok = false;
        if (!ok) return Err(absl::StrCat("bad value `", v, "' for ", AV(opt)));
        t.connmark_mode = Target::kSetXmark;
        // The userspace tools translate every form into set-xmark (value, mask).
        if (set_x)
          t.value = val, t.mask = mask;
        else if (set)
          t.value = val, t.mask = val | mask;
        else if (and_m)
          t.value = 0, t.mask = ~val;
        else if (or_m)
          t.value = val, t.mask = val;
        else
          t.value = val, t.mask = 0;
        return true;
      }
      if (conn && (opt == "--nfmask" || opt == "--ctmask" || opt == "--mask")) {
        RETURN_IF_ERROR(no_inv());
        ASSIGN_OR_RETURN(std::string v, Value(opt));
        uint32_t m;
        if (!ParseU32(v, &m)) return Err(absl::StrCat("bad value `", v, "' for ", AV(opt)));
        if (opt != "--ctmask") t.nfmask = m;
        if (opt != "--nfmask") t.ctmask = m;
        return true;
      }
      return false;
    }
    case TargetKind::kLog:
      if (opt == "--log-prefix") {
        RETURN_IF_ERROR(no_inv());
        ASSIGN_OR_RETURN(t.log_prefix, Value(opt));
        if (t.log_prefix.size() > 29) return Err("--log-prefix is longer than 29 characters");
        return true;
      }
      if (opt == "--log-level") {
        RETURN_IF_ERROR(no_inv());
        ASSIGN_OR_RETURN(std::string v, Value(opt));
        static constexpr const char* kLevels[] = {"emerg",   "alert",  "crit", "error",
                                                  "warning", "notice", "info", "debug"};
        uint32_t level = 8;
        for (uint32_t i = 0; i < 8; ++i)
          if (v == kLevels[i]) level = i;
        if (v == "panic") level = 0;
        if (v == "err") level = 3;
        if (v == "warn") level = 4;
        if (level == 8 && (!ParseU32(v, &level) || level > 7))
          return Err(absl::StrCat("bad --log-level `", v, "'"));
        t.log_level = static_cast<uint8_t>(level);
        return true;
      }
      {
        static constexpr const char* kFlags[] = {"--log-tcp-sequence", "--log-tcp-options",
                                                 "--log-ip-options", "--log-uid",
                                                 "--log-macdecode"};
        for (int i = 0; i < 5; ++i) {
          if (opt == kFlags[i]) {
            RETURN_IF_ERROR(no_inv());
            t.log_flags |= 1 << i;
            return true;
          }
        }
      }
      return false;
    case TargetKind::kNat: {
      NatSpec& n = t.nat;
      bool addr_kind = n.kind == NatKind::kSnat || n.kind == NatKind::kDnat;
      const char* range_opt = n.kind == NatKind::kSnat   ? "--to-source"
                              : n.kind == NatKind::kDnat ? "--to-destination"
                                                         : "--to-ports";
      if (opt == range_opt) {
        RETURN_IF_ERROR(no_inv());
        if (nat_range_given_) return Err(absl::StrCat("multiple ", AV(opt), " not supported"));
        nat_range_given_ = true;
        ASSIGN_OR_RETURN(std::string v, Value(opt));
        bool ok;
        RETURN_IF_ERROR(ParseNatRange(v, family_, addr_kind, &n, &ok));
        if (!ok) return Err(absl::StrCat("bad ", AV(opt), " `", v, "'"));
        return true;
      }
      if (opt == "--random") {
        RETURN_IF_ERROR(no_inv());
        n.random = true;
        return true;
      }
      if (opt == "--random-fully" && n.kind != NatKind::kDnat && n.kind != NatKind::kRedirect) {
        RETURN_IF_ERROR(no_inv());
        n.random_fully = true;
        return true;
      }
      if (opt == "--persistent" && addr_kind) {
        RETURN_IF_ERROR(no_inv());
        n.persistent = true;
        return true;
      }
      return false;
    }
    default:
      return false;
  }
}

absl::Status RuleReader::Option(std::string_view opt, bool inv, Rule* rule) {
  if (target_given_) {
    ASSIGN_OR_RETURN(bool mine, TargetOpt(rule->target, opt, inv));
    if (mine) return absl::OkStatus();
  }
  for (auto it = rule->matches.rbegin(); it != rule->matches.rend(); ++it) {
    ASSIGN_OR_RETURN(bool mine, MatchOpt(*it, opt, inv));
    if (mine) return absl::OkStatus();
  }
  // Implicit protocol match: iptables loads the extension named like -p's protocol once.
  if (rule->proto_set && !rule->proto_inv) {
    std::optional<Match> implicit;
    auto loaded = [&](auto probe) {
      for (const Match& m : rule->matches)
        if (std::holds_alternative<decltype(probe)>(m)) return true;
      return false;
    };
    if (rule->proto == kProtoTcp && !loaded(TcpMatch{})) implicit = TcpMatch{};
    if (rule->proto == kProtoUdp && !loaded(UdpMatch{})) implicit = UdpMatch{};
    if (rule->proto == kProtoIcmp && !v6() && !loaded(IcmpMatch{})) implicit = IcmpMatch{};
    if (rule->proto == kProtoIcmpv6 && v6() && !loaded(IcmpMatch{}))
      implicit = IcmpMatch{.v6 = true};
    if (implicit) {
      size_t saved = pos_;
      ASSIGN_OR_RETURN(bool mine, MatchOpt(*implicit, opt, inv));
      if (mine) {
        rule->matches.push_back(std::move(*implicit));
        return absl::OkStatus();
      }
      pos_ = saved;
    }
  }
  return Err(absl::StrCat("unknown option ", AV(opt)));
}

bool IsPortProto(uint8_t p) {
  return p == kProtoTcp || p == kProtoUdp || p == kProtoSctp || p == kProtoDccp ||
         p == kProtoUdplite;
}

absl::Status RuleReader::Finish(Rule* rule) {
  auto proto_is = [&](uint8_t p) {
    return rule->proto_set && !rule->proto_inv && rule->proto == p;
  };
  for (const Match& m : rule->matches) {
    if (std::holds_alternative<TcpMatch>(m) && !proto_is(kProtoTcp))
      return Err("tcp match: only valid for -p tcp");
    if (std::holds_alternative<UdpMatch>(m) && !proto_is(kProtoUdp))
      return Err("udp match: only valid for -p udp");
    if (const auto* i = std::get_if<IcmpMatch>(&m)) {
      if (!proto_is(i->v6 ? kProtoIcmpv6 : kProtoIcmp))
        return Err(i->v6 ? "icmp6 match: only valid for -p ipv6-icmp"
                         : "icmp match: only valid for -p icmp");
      if (!i->set)
        return Err(
            absl::StrCat(i->v6 ? "icmp6: option \"--icmpv6-type\"" : "icmp: option \"--icmp-type\"",
                         " must be specified"));
    }
    if (const auto* c = std::get_if<ConntrackMatch>(&m); c && c->flags == 0)
      return Err(c->state_alias ? "state match: option \"--state\" must be specified"
                                : "conntrack match: you must specify one or more options");
    if (const auto* mp = std::get_if<MultiportMatch>(&m)) {
      if (mp->ranges.empty()) return Err("multiport: no ports specified");
      if (!rule->proto_set || rule->proto_inv || !IsPortProto(rule->proto))
        return Err("multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or `-p dccp'");
    }
    if (const auto* mk = std::get_if<MarkMatch>(&m); mk && !mk->set)
      return Err(
          absl::StrCat(mk->conn ? "connmark" : "mark", ": option \"--mark\" must be specified"));
  }
  Target& t = rule->target;
  if (t.kind == TargetKind::kNat) {
    NatSpec& n = t.nat;
    if ((n.kind == NatKind::kSnat || n.kind == NatKind::kDnat) && !n.has_addr)
      return Err(absl::StrCat(n.kind == NatKind::kSnat ? "SNAT: option \"--to-source\""
                                                       : "DNAT: option \"--to-destination\"",
                              " must be specified"));
    if (n.has_ports && (!rule->proto_set || rule->proto_inv || !IsPortProto(rule->proto)))
      return Err("need TCP, UDP, SCTP or DCCP with port specification");
  }
  if ((t.kind == TargetKind::kMark) && !mark_op_given_)
    return Err("MARK target: parameter --set-xmark/--set-mark/... is required");
  if ((t.kind == TargetKind::kConnmark) && !mark_op_given_)
    return Err("CONNMARK target: no operation specified");
  if (t.kind == TargetKind::kReject && t.reject.with == RejectWith::kTcpReset &&
      !(rule->proto_set && !rule->proto_inv && rule->proto == kProtoTcp))
    return Err("REJECT: tcp-reset is only valid with -p tcp");
  if (t.kind == TargetKind::kCt && !t.helper.empty()) {
    static constexpr struct {
      const char* name;
      uint8_t proto;
    } kHelpers[] = {{"ftp", kProtoTcp},    {"irc", kProtoTcp},       {"sane", kProtoTcp},
                    {"pptp", kProtoTcp},   {"h323", kProtoTcp},      {"sip", kProtoTcp},
                    {"sip", kProtoUdp},    {"tftp", kProtoUdp},      {"snmp", kProtoUdp},
                    {"amanda", kProtoUdp}, {"netbios-ns", kProtoUdp}};
    bool found = false;
    for (const auto& h : kHelpers) found |= t.helper == h.name && proto_is(h.proto);
    if (!found) return Err(absl::StrCat("CT: no helper ", t.helper, " for this rule's protocol"));
  }
  if ((t.kind == TargetKind::kNotrack || t.kind == TargetKind::kCt) && table_->table != Table::kRaw)
    return Err(absl::StrCat("target ", t.kind == TargetKind::kCt ? "CT" : "NOTRACK",
                            " is only valid in the raw table"));
  if (t.kind == TargetKind::kNat && table_->table != Table::kNat)
    return Err("NAT targets are only valid in the nat table");
  return absl::OkStatus();
}

absl::Status RuleReader::Read(Rule* rule) {
  bool inv = false;
  bool frag_given = false;
  while (pos_ < w_.size()) {
    std::string word = w_[pos_++];
    if (word == "!") {
      if (inv) return Err("multiple consecutive ! not allowed");
      inv = true;
      continue;
    }
    if (word == "-s" || word == "--source" || word == "--src") {
      RETURN_IF_ERROR(ReadAddr(word, inv, &rule->src));
    } else if (word == "-d" || word == "--destination" || word == "--dst") {
      RETURN_IF_ERROR(ReadAddr(word, inv, &rule->dst));
    } else if (word == "-i" || word == "--in-interface") {
      RETURN_IF_ERROR(ReadIface(word, inv, &rule->in));
    } else if (word == "-o" || word == "--out-interface") {
      RETURN_IF_ERROR(ReadIface(word, inv, &rule->out));
    } else if (word == "-p" || word == "--protocol") {
      if (rule->proto_set) return Err("multiple -p flags not allowed");
      ASSIGN_OR_RETURN(std::string v, Value(word));
      std::string lower = absl::AsciiStrToLower(v);
      if (!ParseProtoName(lower, &rule->proto))
        return Err(absl::StrCat("unknown protocol `", v, "' specified"));
      rule->proto_set = true;
      rule->proto_inv = inv;
      if (rule->proto == 0 && inv) return Err("rule would never match protocol");
    } else if (word == "-f" || word == "--fragment") {
      if (v6()) return Err("unknown option -f (no fragment flag in ip6tables)");
      if (frag_given) return Err("multiple -f flags not allowed");
      frag_given = true;
      rule->frag = inv ? Rule::kNoFrag : Rule::kFragOnly;
    } else if (word == "-m" || word == "--match") {
      ASSIGN_OR_RETURN(std::string v, Value(word));
      RETURN_IF_ERROR(LoadMatch(v, inv, rule));
    } else if (word == "-j" || word == "--jump" || word == "-g" || word == "--goto") {
      ASSIGN_OR_RETURN(std::string v, Value(word));
      RETURN_IF_ERROR(LoadTarget(v, word == "-g" || word == "--goto", inv, rule));
    } else if (word == "-c" || word == "--set-counters") {
      if (inv) return Err("unexpected ! before -c");
      ASSIGN_OR_RETURN(std::string p, Value(word));
      ASSIGN_OR_RETURN(std::string b, Value(word));
      if (!absl::SimpleAtoi(p, &rule->packets) || !absl::SimpleAtoi(b, &rule->bytes))
        return Err(absl::StrCat("bad counters `", p, " ", b, "'"));
    } else if (word.size() > 2 && word[0] == '-' && word[1] == '-') {
      RETURN_IF_ERROR(Option(word, inv, rule));
    } else {
      return Err(absl::StrCat("unknown argument ", word));
    }
    inv = false;
  }
  if (inv) return Err("! at the end of the rule");
  return Finish(rule);
}

}  // namespace

absl::Status ReadRule(std::vector<std::string> words, size_t pos, Family family, TableData* table,
                      int line, Rule* rule) {
  RuleReader reader(std::move(words), pos, family, table, line);
  return reader.Read(rule);
}

}  // namespace ctsync::rules::internal

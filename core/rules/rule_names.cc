// Name tables iptables uses for protocols, ICMP/ICMPv6 types and REJECT types. Protocol
// names follow Debian's /etc/protocols (what iptables-save prints through getprotobynumber);
// they are embedded so output does not depend on the host's files.
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/rules/rule.h"

namespace ctsync::rules::internal {
namespace {

struct ProtoEntry {
  const char* name;
  uint8_t number;
};
constexpr ProtoEntry kProtos[] = {
    {"icmp", 1},  {"igmp", 2},   {"tcp", 6},    {"udp", 17},       {"dccp", 33},     {"ipv6", 41},
    {"gre", 47},  {"esp", 50},   {"ah", 51},    {"ipv6-icmp", 58}, {"ospf", 89},     {"ipip", 94},
    {"pim", 103}, {"vrrp", 112}, {"l2tp", 115}, {"sctp", 132},     {"udplite", 136},
};

struct IcmpName {
  const char* name;
  uint8_t type, code_min, code_max;
};
constexpr IcmpName kIcmpNames[] = {
    {"any", 0xff, 0, 0xff},
    {"echo-reply", 0, 0, 0xff},
    {"pong", 0, 0, 0xff},
    {"destination-unreachable", 3, 0, 0xff},
    {"network-unreachable", 3, 0, 0},
    {"host-unreachable", 3, 1, 1},
    {"protocol-unreachable", 3, 2, 2},
    {"port-unreachable", 3, 3, 3},
    {"fragmentation-needed", 3, 4, 4},
    {"source-route-failed", 3, 5, 5},
    {"network-unknown", 3, 6, 6},
    {"host-unknown", 3, 7, 7},
    {"network-prohibited", 3, 9, 9},
    {"host-prohibited", 3, 10, 10},
    {"TOS-network-unreachable", 3, 11, 11},
    {"TOS-host-unreachable", 3, 12, 12},
    {"communication-prohibited", 3, 13, 13},
    {"host-precedence-violation", 3, 14, 14},
    {"precedence-cutoff", 3, 15, 15},
    {"source-quench", 4, 0, 0xff},
    {"redirect", 5, 0, 0xff},
    {"network-redirect", 5, 0, 0},
    {"host-redirect", 5, 1, 1},
    {"TOS-network-redirect", 5, 2, 2},
    {"TOS-host-redirect", 5, 3, 3},
    {"echo-request", 8, 0, 0xff},
    {"ping", 8, 0, 0xff},
    {"router-advertisement", 9, 0, 0xff},
    {"router-solicitation", 10, 0, 0xff},
    {"time-exceeded", 11, 0, 0xff},
    {"ttl-exceeded", 11, 0, 0xff},
    {"ttl-zero-during-transit", 11, 0, 0},
    {"ttl-zero-during-reassembly", 11, 1, 1},
    {"parameter-problem", 12, 0, 0xff},
    {"ip-header-bad", 12, 0, 0},
    {"required-option-missing", 12, 1, 1},
    {"timestamp-request", 13, 0, 0xff},
    {"timestamp-reply", 14, 0, 0xff},
    {"address-mask-request", 17, 0, 0xff},
    {"address-mask-reply", 18, 0, 0xff},
};
constexpr IcmpName kIcmp6Names[] = {
    {"destination-unreachable", 1, 0, 0xff},
    {"no-route", 1, 0, 0},
    {"communication-prohibited", 1, 1, 1},
    {"beyond-scope", 1, 2, 2},
    {"address-unreachable", 1, 3, 3},
    {"port-unreachable", 1, 4, 4},
    {"failed-policy", 1, 5, 5},
    {"reject-route", 1, 6, 6},
    {"packet-too-big", 2, 0, 0xff},
    {"time-exceeded", 3, 0, 0xff},
    {"ttl-exceeded", 3, 0, 0xff},
    {"ttl-zero-during-transit", 3, 0, 0},
    {"ttl-zero-during-reassembly", 3, 1, 1},
    {"parameter-problem", 4, 0, 0xff},
    {"bad-header", 4, 0, 0},
    {"unknown-header-type", 4, 1, 1},
    {"unknown-option", 4, 2, 2},
    {"echo-request", 128, 0, 0xff},
    {"ping", 128, 0, 0xff},
    {"echo-reply", 129, 0, 0xff},
    {"pong", 129, 0, 0xff},
    {"mld-listener-query", 130, 0, 0xff},
    {"mld-listener-report", 131, 0, 0xff},
    {"mld-listener-done", 132, 0, 0xff},
    {"mld-listener-reduction", 132, 0, 0xff},
    {"router-solicitation", 133, 0, 0xff},
    {"router-advertisement", 134, 0, 0xff},
    {"neighbour-solicitation", 135, 0, 0xff},
    {"neighbor-solicitation", 135, 0, 0xff},
    {"neighbour-advertisement", 136, 0, 0xff},
    {"neighbor-advertisement", 136, 0, 0xff},
    {"redirect", 137, 0, 0xff},
};

struct RejectName {
  const char* name;
  RejectWith with;
  bool v6;
};
// The first name of each kind is the one iptables-save prints.
constexpr RejectName kRejectNames[] = {
    {"icmp-net-unreachable", RejectWith::kIcmpNetUnreachable, false},
    {"net-unreach", RejectWith::kIcmpNetUnreachable, false},
    {"icmp-host-unreachable", RejectWith::kIcmpHostUnreachable, false},
    {"host-unreach", RejectWith::kIcmpHostUnreachable, false},
    {"icmp-port-unreachable", RejectWith::kIcmpPortUnreachable, false},
    {"port-unreach", RejectWith::kIcmpPortUnreachable, false},
    {"icmp-proto-unreachable", RejectWith::kIcmpProtoUnreachable, false},
    {"proto-unreach", RejectWith::kIcmpProtoUnreachable, false},
    {"icmp-net-prohibited", RejectWith::kIcmpNetProhibited, false},
    {"net-prohib", RejectWith::kIcmpNetProhibited, false},
    {"icmp-host-prohibited", RejectWith::kIcmpHostProhibited, false},
    {"host-prohib", RejectWith::kIcmpHostProhibited, false},
    {"icmp-admin-prohibited", RejectWith::kIcmpAdminProhibited, false},
    {"admin-prohib", RejectWith::kIcmpAdminProhibited, false},
    {"tcp-reset", RejectWith::kTcpReset, false},
    {"tcp-rst", RejectWith::kTcpReset, false},
    {"icmp6-no-route", RejectWith::kIcmp6NoRoute, true},
    {"no-route", RejectWith::kIcmp6NoRoute, true},
    {"icmp6-adm-prohibited", RejectWith::kIcmp6AdmProhibited, true},
    {"adm-prohibited", RejectWith::kIcmp6AdmProhibited, true},
    {"icmp6-addr-unreachable", RejectWith::kIcmp6AddrUnreachable, true},
    {"addr-unreach", RejectWith::kIcmp6AddrUnreachable, true},
    {"icmp6-port-unreachable", RejectWith::kIcmp6PortUnreachable, true},
    {"port-unreach", RejectWith::kIcmp6PortUnreachable, true},
    {"icmp6-policy-fail", RejectWith::kIcmp6PolicyFail, true},
    {"policy-fail", RejectWith::kIcmp6PolicyFail, true},
    {"icmp6-reject-route", RejectWith::kIcmp6RejectRoute, true},
    {"reject-route", RejectWith::kIcmp6RejectRoute, true},
    {"tcp-reset", RejectWith::kTcpReset, true},
    {"tcp-rst", RejectWith::kTcpReset, true},
};

bool ParseU8(std::string_view s, uint8_t* out) {
  uint32_t v;
  if (s.empty() || !absl::SimpleAtoi(absl::string_view(s.data(), s.size()), &v) || v > 255)
    return false;
  *out = static_cast<uint8_t>(v);
  return true;
}

}  // namespace

std::string ProtoName(uint8_t proto) {
  for (const auto& p : kProtos)
    if (p.number == proto) return p.name;
  return absl::StrCat(proto);
}

bool ParseProtoName(std::string_view text, uint8_t* proto) {
  if (text == "all") {
    *proto = 0;
    return true;
  }
  if (text == "icmpv6") {
    *proto = kProtoIcmpv6;
    return true;
  }
  for (const auto& p : kProtos) {
    if (text == p.name) {
      *proto = p.number;
      return true;
    }
  }
  return ParseU8(text, proto);
}

bool ParseIcmpType(std::string_view text, bool v6, IcmpMatch* out) {
  const IcmpName* begin = v6 ? std::begin(kIcmp6Names) : std::begin(kIcmpNames);
  const IcmpName* end = v6 ? std::end(kIcmp6Names) : std::end(kIcmpNames);
  // iptables accepts any unambiguous prefix of a name; exact names are what rulesets use,
  // so only those are taken here.
  for (const IcmpName* n = begin; n != end; ++n) {
    if (text == n->name) {
      out->type = n->type;
      out->code_min = n->code_min;
      out->code_max = n->code_max;
      return true;
    }
  }
  size_t slash = text.find('/');
  uint8_t type, code;
  if (!ParseU8(text.substr(0, slash), &type)) return false;
  if (slash == std::string_view::npos) {
    out->type = type;
    out->code_min = 0;
    out->code_max = 0xff;
    return true;
  }
  if (!ParseU8(text.substr(slash + 1), &code)) return false;
  out->type = type;
  out->code_min = out->code_max = code;
  return true;
}

std::string RenderIcmpType(const IcmpMatch& m) {
  if (!m.v6 && m.type == 0xff) return "any";
  if (m.code_min == 0 && m.code_max == 0xff) return absl::StrCat(m.type);
  return absl::StrCat(m.type, "/", m.code_min);
}

std::string RenderRejectWith(RejectWith w) {
  for (const auto& r : kRejectNames)
    if (r.with == w) return r.name;
  return "?";
}

bool ParseRejectWith(std::string_view text, Family family, RejectWith* out) {
  bool v6 = family == Family::kIpv6;
  for (const auto& r : kRejectNames) {
    if (r.v6 == v6 && text == r.name) {
      *out = r.with;
      return true;
    }
  }
  return false;
}

}  // namespace ctsync::rules::internal

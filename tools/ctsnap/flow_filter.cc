#include "tools/ctsnap/flow_filter.h"

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/conntrack/tcp_tracker.h"

namespace ctsync::ctsnap {
namespace {

bool Is(const std::string& a, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (a == n) return true;
  return false;
}

absl::Status Bad(const std::string& option, const std::string& value, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(option, ": '", value, "' ", why));
}

absl::StatusOr<IpPrefix> ParsePrefix(const std::string& option, const std::string& text) {
  std::string full = text;
  if (full.find('/') == std::string::npos) {
    Family f = Family::kNone;
    if (!IpAddress::Parse(full, &f)) return Bad(option, text, "is not an IP address");
    absl::StrAppend(&full, f == Family::kIpv6 ? "/128" : "/32");
  }
  std::optional<IpPrefix> p = IpPrefix::Parse(full);
  if (!p) return Bad(option, text, "is not an IP address or prefix");
  return *p;
}

template <typename T>
absl::StatusOr<T> ParseNumber(const std::string& option, const std::string& text, uint64_t max) {
  uint64_t v = 0;
  bool ok = text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')
                ? absl::SimpleHexAtoi(text.substr(2), &v)
                : absl::SimpleAtoi(text, &v);
  if (!ok || v > max) return Bad(option, text, absl::StrCat("is not a number up to ", max));
  return static_cast<T>(v);
}

absl::StatusOr<uint8_t> ParseProto(const std::string& option, const std::string& text) {
  static constexpr std::pair<const char*, uint8_t> kNames[] = {
      {"tcp", kProtoTcp},         {"udp", kProtoUdp},  {"icmp", kProtoIcmp},
      {"icmpv6", kProtoIcmpv6},   {"gre", kProtoGre},  {"sctp", kProtoSctp},
      {"udplite", kProtoUdplite}, {"dccp", kProtoDccp}};
  const std::string lower = absl::AsciiStrToLower(text);
  for (const auto& [name, num] : kNames)
    if (lower == name) return num;
  return ParseNumber<uint8_t>(option, text, 255);
}

bool InPrefix(const std::optional<IpPrefix>& p, const Tuple& t, bool src) {
  if (!p) return true;
  if (p->family != t.family) return false;
  return p->Contains(t.family, src ? t.src : t.dst);
}

bool PortIs(const std::optional<uint16_t>& want, uint16_t have) { return !want || *want == have; }

}  // namespace

bool FlowFilter::Matches(const Flow& f) const {
  const Tuple& o = f.tuple[0];
  const Tuple& r = f.tuple[1];
  if (proto && o.proto != *proto) return false;
  if (family && o.family != *family) return false;
  if (!InPrefix(orig_src, o, true) || !InPrefix(orig_dst, o, false) ||
      !InPrefix(reply_src, r, true) || !InPrefix(reply_dst, r, false))
    return false;
  if (!PortIs(orig_sport, o.sport) || !PortIs(orig_dport, o.dport) ||
      !PortIs(reply_sport, r.sport) || !PortIs(reply_dport, r.dport))
    return false;
  if (state && (o.proto != kProtoTcp || f.tcp.state != *state)) return false;
  if ((f.status & status_all) != status_all) return false;
  if (status_unset &&
      (f.status & (kIpsAssured | kIpsSeenReply | kIpsFixedTimeout | kIpsExpected)) != 0)
    return false;
  if (mark && (f.mark & mark_mask) != (*mark & mark_mask)) return false;
  if (zone && f.zone != *zone) return false;
  if (src_nat && !(f.status & kIpsSrcNat)) return false;
  if (dst_nat && !(f.status & kIpsDstNat)) return false;
  if (any_nat && !(f.status & kIpsNatMask)) return false;
  return true;
}

absl::StatusOr<bool> ParseFilterOption(const std::vector<std::string>& args, size_t* i,
                                       FlowFilter* filter) {
  const std::string& a = args[*i];
  // Flags without a value.
  if (Is(a, {"-n", "--src-nat"})) {
    filter->src_nat = true;
  } else if (Is(a, {"-g", "--dst-nat"})) {
    filter->dst_nat = true;
  } else if (Is(a, {"-j", "--any-nat"})) {
    filter->any_nat = true;
  } else if (Is(a, {"-p",
                    "--proto",
                    "-s",
                    "--src",
                    "--orig-src",
                    "-d",
                    "--dst",
                    "--orig-dst",
                    "-r",
                    "--reply-src",
                    "-q",
                    "--reply-dst",
                    "--sport",
                    "--orig-port-src",
                    "--dport",
                    "--orig-port-dst",
                    "--reply-port-src",
                    "--reply-port-dst",
                    "--state",
                    "-u",
                    "--status",
                    "-m",
                    "--mark",
                    "-w",
                    "--zone",
                    "-f",
                    "--family"})) {
    if (*i + 1 >= args.size())
      return absl::InvalidArgumentError(absl::StrCat(a, ": needs a value"));
    const std::string& v = args[++*i];
    if (Is(a, {"-p", "--proto"})) {
      absl::StatusOr<uint8_t> p = ParseProto(a, v);
      if (!p.ok()) return p.status();
      filter->proto = *p;
    } else if (Is(a, {"-f", "--family"})) {
      if (v == "ipv4") {
        filter->family = Family::kIpv4;
      } else if (v == "ipv6") {
        filter->family = Family::kIpv6;
      } else {
        return Bad(a, v, "is not ipv4 or ipv6");
      }
    } else if (Is(a, {"-s", "--src", "--orig-src", "-d", "--dst", "--orig-dst", "-r", "--reply-src",
                      "-q", "--reply-dst"})) {
      absl::StatusOr<IpPrefix> p = ParsePrefix(a, v);
      if (!p.ok()) return p.status();
      if (Is(a, {"-s", "--src", "--orig-src"})) filter->orig_src = *p;
      if (Is(a, {"-d", "--dst", "--orig-dst"})) filter->orig_dst = *p;
      if (Is(a, {"-r", "--reply-src"})) filter->reply_src = *p;
      if (Is(a, {"-q", "--reply-dst"})) filter->reply_dst = *p;
    } else if (Is(a, {"--sport", "--orig-port-src", "--dport", "--orig-port-dst",
                      "--reply-port-src", "--reply-port-dst"})) {
      absl::StatusOr<uint16_t> port = ParseNumber<uint16_t>(a, v, 0xffff);
      if (!port.ok()) return port.status();
      if (Is(a, {"--sport", "--orig-port-src"})) filter->orig_sport = *port;
      if (Is(a, {"--dport", "--orig-port-dst"})) filter->orig_dport = *port;
      if (a == "--reply-port-src") filter->reply_sport = *port;
      if (a == "--reply-port-dst") filter->reply_dport = *port;
    } else if (a == "--state") {
      bool found = false;
      for (int s = 0; s < static_cast<int>(TcpState::kMax); ++s) {
        if (absl::AsciiStrToUpper(v) == TcpStateName(static_cast<TcpState>(s))) {
          filter->state = static_cast<TcpState>(s);
          found = true;
        }
      }
      if (!found) return Bad(a, v, "is not a TCP state (ESTABLISHED, SYN_SENT, ...)");
    } else if (Is(a, {"-u", "--status"})) {
      for (absl::string_view word : absl::StrSplit(v, ',')) {
        const std::string w = absl::AsciiStrToUpper(word);
        if (w == "ASSURED") {
          filter->status_all |= kIpsAssured;
        } else if (w == "SEEN_REPLY") {
          filter->status_all |= kIpsSeenReply;
        } else if (w == "FIXED_TIMEOUT") {
          filter->status_all |= kIpsFixedTimeout;
        } else if (w == "EXPECTED") {
          filter->status_all |= kIpsExpected;
        } else if (w == "UNSET") {
          filter->status_unset = true;
        } else {
          return Bad(a, std::string(word),
                     "is not ASSURED, SEEN_REPLY, FIXED_TIMEOUT, EXPECTED or UNSET");
        }
      }
    } else if (Is(a, {"-m", "--mark"})) {
      const size_t slash = v.find('/');
      absl::StatusOr<uint32_t> m = ParseNumber<uint32_t>(a, v.substr(0, slash), 0xffffffffu);
      if (!m.ok()) return m.status();
      filter->mark = *m;
      if (slash != std::string::npos) {
        absl::StatusOr<uint32_t> mask = ParseNumber<uint32_t>(a, v.substr(slash + 1), 0xffffffffu);
        if (!mask.ok()) return mask.status();
        filter->mark_mask = *mask;
      }
    } else if (Is(a, {"-w", "--zone"})) {
      absl::StatusOr<uint16_t> z = ParseNumber<uint16_t>(a, v, 0xffff);
      if (!z.ok()) return z.status();
      filter->zone = *z;
    }
  } else {
    return false;
  }
  ++*i;
  return true;
}

const char* FilterUsage() {
  return "  filters (as conntrack -L): -p/--proto P  -f/--family ipv4|ipv6\n"
         "    -s/--src/--orig-src A[/len]  -d/--dst/--orig-dst A[/len]\n"
         "    -r/--reply-src A[/len]  -q/--reply-dst A[/len]\n"
         "    --sport/--orig-port-src N  --dport/--orig-port-dst N\n"
         "    --reply-port-src N  --reply-port-dst N  --state TCPSTATE\n"
         "    -u/--status ASSURED,SEEN_REPLY,FIXED_TIMEOUT,EXPECTED,UNSET\n"
         "    -m/--mark V[/MASK]  -w/--zone N  -n/--src-nat  -g/--dst-nat  -j/--any-nat\n";
}

}  // namespace ctsync::ctsnap

// See flow_listing.h. The field order below is the tools' order; each piece is printed with
// its trailing blank, and conntrack-tools then drops the last blank of the line.
#include "core/conntrack/flow_listing.h"

#include "absl/strings/str_format.h"

namespace ctsync {
namespace {

// Names by kernel TCP_CONNTRACK_* number, as both the kernel and libnetfilter_conntrack
// print them. Private so listings do not depend on the tracker.
const char* TcpStateText(TcpState s) {
  static constexpr const char* kNames[] = {"NONE",     "SYN_SENT",   "SYN_RECV", "ESTABLISHED",
                                           "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT",
                                           "CLOSE",    "SYN_SENT2"};
  const auto i = static_cast<size_t>(s);
  // libnetfilter_conntrack prints NONE for anything past SYN_SENT2.
  return i < sizeof(kNames) / sizeof(kNames[0]) ? kNames[i] : kNames[0];
}

// The kernel's %pI6: eight groups of four hex digits, no compression.
std::string FullIpv6(const IpAddress& a) {
  std::string out;
  for (int i = 0; i < 16; i += 2) {
    absl::StrAppendFormat(&out, "%s%02x%02x", i == 0 ? "" : ":", a.bytes[i], a.bytes[i + 1]);
  }
  return out;
}

bool HasPorts(uint8_t proto, ListingFormat format) {
  switch (proto) {
    case kProtoTcp:
    case kProtoUdp:
    case kProtoUdplite:
    case kProtoSctp:
      return true;
    case kProtoDccp:
      // 6.18 has no DCCP tracker: the kernel treats it as generic, libnfct still prints ports.
      return format != ListingFormat::kProcNfConntrack;
    default:
      return false;
  }
}

void AppendTuple(std::string* out, const Tuple& t, ListingFormat format) {
  const bool proc = format == ListingFormat::kProcNfConntrack;
  if (t.family == Family::kIpv4) {
    absl::StrAppendFormat(out, "src=%s dst=%s ", t.src.ToString(Family::kIpv4),
                          t.dst.ToString(Family::kIpv4));
  } else if (t.family == Family::kIpv6) {
    if (proc) {
      absl::StrAppendFormat(out, "src=%s dst=%s ", FullIpv6(t.src), FullIpv6(t.dst));
    } else {
      absl::StrAppendFormat(out, "src=%s dst=%s ", t.src.ToString(Family::kIpv6),
                            t.dst.ToString(Family::kIpv6));
    }
  }
  if (HasPorts(t.proto, format)) {
    absl::StrAppendFormat(out, "sport=%u dport=%u ", t.sport, t.dport);
  } else if (t.proto == kProtoIcmp || t.proto == kProtoIcmpv6) {
    absl::StrAppendFormat(out, "type=%u code=%u id=%u ", t.icmp_type(), t.icmp_code(), t.icmp_id());
  } else if (t.proto == kProtoGre) {
    absl::StrAppendFormat(out, "srckey=0x%x dstkey=0x%x ", t.sport, t.dport);
  }
}

void AppendCounters(std::string* out, Direction d, const ListingOptions& o) {
  if (o.counters == nullptr) return;
  const FlowCounters& c = o.counters->dir[static_cast<int>(d)];
  absl::StrAppendFormat(out, "packets=%u bytes=%u ", c.packets, c.bytes);
}

const char* StatusTag(uint32_t status) {
  if (status & kIpsHwOffload) return "[HW_OFFLOAD] ";
  if (status & kIpsOffload) return "[OFFLOAD] ";
  if (status & kIpsAssured) return "[ASSURED] ";
  return "";
}

}  // namespace

const char* L3ProtoName(Family family) {
  switch (family) {
    case Family::kIpv4:
      return "ipv4";
    case Family::kIpv6:
      return "ipv6";
    default:
      return "unknown";
  }
}

const char* L4ProtoName(uint8_t proto, ListingFormat format) {
  switch (proto) {
    case kProtoTcp:
      return "tcp";
    case kProtoUdp:
      return "udp";
    case kProtoUdplite:
      return "udplite";
    case kProtoIcmp:
      return "icmp";
    case kProtoIcmpv6:
      return "icmpv6";
    case kProtoSctp:
      return "sctp";
    case kProtoGre:
      return "gre";
    case kProtoDccp:
      return format == ListingFormat::kProcNfConntrack ? "unknown" : "dccp";
    default:
      return "unknown";
  }
}

std::string FormatConntrackLine(const Flow& flow, Nanos now, ListingFormat format,
                                const ListingOptions& options) {
  const bool proc = format == ListingFormat::kProcNfConntrack;
  const Tuple& orig = flow.tuple[0];
  const uint8_t proto = orig.proto;
  // Whole seconds left, as nf_ct_expires(ct) / HZ: rounded down, never negative.
  const Nanos left = flow.expires > now ? flow.expires - now : 0;
  const int64_t timeout_s = left / kNanosPerSecond;

  std::string out;
  out.reserve(256);
  if (format != ListingFormat::kConntrackL) {
    absl::StrAppendFormat(&out, "%-8s %u ", L3ProtoName(orig.family),
                          static_cast<unsigned>(orig.family));
  }
  absl::StrAppendFormat(&out, "%-8s %u ", L4ProtoName(proto, format), proto);
  // The kernel leaves the timeout out for offloaded flows; ctnetlink always sends one.
  if (!proc || !(flow.status & kIpsOffload)) absl::StrAppendFormat(&out, "%d ", timeout_s);
  if (proto == kProtoTcp) {
    absl::StrAppendFormat(&out, "%s ", TcpStateText(flow.tcp.state));
  } else if (proc && proto == kProtoGre) {
    absl::StrAppendFormat(&out, "timeout=%u, stream_timeout=%u ", options.gre_timeout_s,
                          options.gre_stream_timeout_s);
  }

  AppendTuple(&out, orig, format);
  AppendCounters(&out, Direction::kOriginal, options);
  if (!(flow.status & kIpsSeenReply)) out += "[UNREPLIED] ";
  AppendTuple(&out, flow.tuple[1], format);
  AppendCounters(&out, Direction::kReply, options);
  out += StatusTag(flow.status);
  absl::StrAppendFormat(&out, "mark=%u ", flow.mark);

  if (proc) {
    // CONFIG_NF_CONNTRACK_ZONES prints the zone always; the reader holds one reference.
    absl::StrAppendFormat(&out, "zone=%u use=%u", flow.zone, options.use + 1);
    return out;
  }
  // ctnetlink sends the zone only when it is not the default one.
  if (flow.zone != 0) absl::StrAppendFormat(&out, "zone=%u ", flow.zone);
  if (flow.helper == FlowHelper::kFtp) out += "helper=ftp ";
  absl::StrAppendFormat(&out, "use=%u", options.use);
  return out;
}

}  // namespace ctsync

#include "core/conntrack/l4_trackers.h"

#include "core/conntrack/tcp_tracker.h"

namespace ctsync {

std::optional<uint8_t> InvertIcmpType(Family family, uint8_t type) {
  if (family == Family::kIpv4) {
    switch (type) {
      case 8: return 0;
      case 0: return 8;
      case 13: return 14;
      case 14: return 13;
      case 15: return 16;
      case 16: return 15;
      case 17: return 18;
      case 18: return 17;
      default: return std::nullopt;
    }
  }
  switch (type) {
    case 128: return 129;
    case 129: return 128;
    case 139: return 140;
    case 140: return 139;
    default: return std::nullopt;
  }
}

bool IcmpIsError(Family family, uint8_t type) {
  if (family == Family::kIpv4)
    return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
  return type < 128;
}

bool Icmpv6IsUntrackedType(uint8_t type) {
  switch (type) {
    case 130: case 131: case 132: case 133: case 134: case 135: case 136: case 137: case 143:
      return true;
    default:
      return false;
  }
}

L4Result UdpPacket(const Flow& flow, Nanos now, const ConntrackSettings& s) {
  L4Result r;
  r.timeout = Nanos{s.udp_timeout} * kNanosPerSecond;
  if (flow.status & kIpsSeenReply) {
    // A flow that still talks both ways two seconds after it began is a stream: it gets
    // the long timeout and becomes ASSURED (quirk 3 of the corpus).
    if (now > flow.created + 2 * kNanosPerSecond) {
      r.timeout = Nanos{s.udp_timeout_stream} * kNanosPerSecond;
      r.set_assured = !(flow.status & kIpsAssured);
    }
  }
  return r;
}

L4Result IcmpPacket(const Flow& flow, const ConntrackSettings& s) {
  L4Result r;
  const Tuple& orig = flow.tuple[0];
  const uint8_t type = orig.icmp_type();
  const bool valid_new = orig.family == Family::kIpv4
                             ? (type == 8 || type == 13 || type == 15 || type == 17)
                             : (type == 128 || type == 139);
  if (!valid_new) {
    r.valid = false;
    return r;
  }
  const int secs = orig.family == Family::kIpv4 ? s.icmp_timeout : s.icmpv6_timeout;
  r.timeout = Nanos{secs} * kNanosPerSecond;
  return r;
}

L4Result GrePacket(const Flow& flow, const ConntrackSettings& s) {
  L4Result r;
  if (flow.status & kIpsSeenReply) {
    r.timeout = Nanos{s.gre_timeout_stream} * kNanosPerSecond;
    r.set_assured = !(flow.status & kIpsAssured);
  } else {
    r.timeout = Nanos{s.gre_timeout} * kNanosPerSecond;
  }
  return r;
}

L4Result GenericPacket(const ConntrackSettings& s) {
  L4Result r;
  r.timeout = Nanos{s.generic_timeout} * kNanosPerSecond;
  return r;
}

bool CanEarlyDrop(const Flow& flow) {
  if (flow.proto() == kProtoTcp) return TcpCanEarlyDrop(flow.tcp.state);
  return true;
}

}  // namespace ctsync

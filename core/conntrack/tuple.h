// A connection-tracking tuple: what identifies one direction of a flow, as in the kernel's
// nf_conntrack_tuple. Both directions of a flow (original and reply) are Tuples; the flow
// table is keyed by (Tuple, zone). A plain value type, 40 bytes.
#pragma once

#include <cstdint>
#include <string>

#include "core/net/ip_address.h"

namespace ctsync {

// IP protocol numbers the engine treats specially.
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr uint8_t kProtoGre = 47;
inline constexpr uint8_t kProtoIcmpv6 = 58;
inline constexpr uint8_t kProtoSctp = 132;
inline constexpr uint8_t kProtoUdplite = 136;
inline constexpr uint8_t kProtoDccp = 33;

enum class Direction : uint8_t { kOriginal = 0, kReply = 1 };
inline Direction Opposite(Direction d) {
  return d == Direction::kOriginal ? Direction::kReply : Direction::kOriginal;
}

struct Tuple {
  IpAddress src;
  IpAddress dst;
  // TCP/UDP/UDP-Lite/SCTP/DCCP: ports. ICMP/ICMPv6 queries: sport = identifier,
  // dport = (type << 8) | code, as the kernel keeps id in src and type/code in dst.
  // Generic protocols: both zero.
  uint16_t sport = 0;
  uint16_t dport = 0;
  Family family = Family::kNone;
  uint8_t proto = 0;

  uint8_t icmp_type() const { return dport >> 8; }
  uint8_t icmp_code() const { return dport & 0xff; }
  uint16_t icmp_id() const { return sport; }

  friend bool operator==(const Tuple&, const Tuple&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const Tuple& t) {
    return H::combine(std::move(h), t.src, t.dst, t.sport, t.dport, t.family, t.proto);
  }
};

}  // namespace ctsync

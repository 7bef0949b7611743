// Zero-copy, defensive parsing of Ethernet frames and bare IP datagrams into ParsedPacket.
// Stateless free functions: any thread may call them on buffers it owns. They never
// allocate, never throw, and never read past the span they are given; every malformed or
// truncated input returns a ParseError the caller counts (ParseCounters).
//
// Kernel rules followed (PREROUTING view, i.e. after ip_rcv_core/ipv6_rcv):
//  - IPv4: version 4, IHL >= 5, total length >= IHL and <= the bytes received (Ethernet
//    padding beyond it is ignored), header checksum valid. Options are skipped, not judged
//    (the kernel parses them only after PREROUTING).
//  - IPv6: payload length must fit the received bytes; the extension chain is walked like
//    ipv6_skip_exthdr (hop-by-hop, routing, destination options, AH, fragment); a non-first
//    fragment ends the walk.
//  - L4 header checks mirror the trackers' error() callbacks: TCP data offset, UDP length,
//    UDP-Lite coverage, 8-byte ICMP header. The tracker-level judgements (flag combinations,
//    checksums) are left to the caller (see checksum.h).
#pragma once

#include <cstdint>

#include "absl/types/span.h"
#include "core/packet/parsed_packet.h"

namespace ctsync {

enum class ParseMode : uint8_t {
  // A frame received from the wire: full header checks, IPv4 header checksum verified.
  kFull,
  // The IP datagram quoted inside an ICMP error: it may be cut anywhere after the first
  // 8 bytes of L4 header (ports are enough for TCP/UDP, as for the kernel's inner tuple),
  // its stated length may exceed what is quoted, and its IPv4 header checksum is not
  // checked.
  kQuoted,
};

class [[nodiscard]] ParseResult {
 public:
  static constexpr ParseResult Ok() { return ParseResult(); }
  constexpr ParseResult(ParseError e) : ok_(false), error_(e) {}  // NOLINT: implicit on purpose
  constexpr bool ok() const { return ok_; }
  // Meaningful only when !ok().
  constexpr ParseError error() const { return error_; }

 private:
  constexpr ParseResult() = default;
  bool ok_ = true;
  ParseError error_ = ParseError::kTruncatedL2;
};

// Parses an Ethernet II frame with up to kMaxVlanTags 802.1Q/802.1ad tags. Offsets in *out
// are relative to frame.data(). *out is fully overwritten, also on error (partially filled).
ParseResult ParseEthernet(absl::Span<const uint8_t> frame, ParsedPacket* out,
                          ParseMode mode = ParseMode::kFull);

// Parses a bare IP datagram (version from the first nibble). Offsets are relative to
// ip_datagram.data(); l3_offset is 0 and the L2 fields are zero.
ParseResult ParseIp(absl::Span<const uint8_t> ip_datagram, ParsedPacket* out,
                    ParseMode mode = ParseMode::kFull);

// Big-endian loads used by the packet code (bounds are the caller's job).
inline uint16_t LoadBe16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t LoadBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline void StoreBe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void StoreBe32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

}  // namespace ctsync

// Internet checksums (RFC 1071), pseudo-header sums, the kernel's default L4 checksum
// verification, IPv4 header checksums and incremental updates (RFC 1624) for NAT.
// Stateless functions, callable from any thread on buffers the caller owns.
//
// Sums are carried as "partial" uint32 values: a one's-complement sum of big-endian 16-bit
// words, not yet folded or inverted. Partials of even-length pieces may be added freely and
// folded once with FoldChecksum.
#pragma once

#include <cstdint>

#include "absl/types/span.h"
#include "core/net/ip_address.h"
#include "core/packet/parsed_packet.h"

namespace ctsync {

// One's-complement sum of data (big-endian 16-bit words; an odd last byte is the high
// half of a word) plus `initial`. Returns a partial (at most 17 significant bits).
uint32_t OnesComplementSum(absl::Span<const uint8_t> data, uint32_t initial = 0);

// Folds a partial (or a sum of partials) to 16 bits. Not inverted.
inline uint16_t FoldChecksum(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// The checksum to store: ~fold(sum(data)).
inline uint16_t InternetChecksum(absl::Span<const uint8_t> data) {
  return static_cast<uint16_t>(~FoldChecksum(OnesComplementSum(data)));
}

// Pseudo-header partial for TCP/UDP/UDP-Lite/ICMPv6/DCCP: addresses, protocol and the
// L4 length (RFC 793 for IPv4, RFC 8200 section 8.1 for IPv6).
uint32_t PseudoHeaderSum(Family family, const IpAddress& src, const IpAddress& dst, uint8_t proto,
                         uint32_t l4_len);

// IPv4 header checksum over `header` (IHL*4 bytes).
bool VerifyIpv4HeaderChecksum(absl::Span<const uint8_t> header);
// The value for bytes 10-11, computed as if they were zero.
uint16_t ComputeIpv4HeaderChecksum(absl::Span<const uint8_t> header);
// Writes ComputeIpv4HeaderChecksum into bytes 10-11. Requires header.size() >= 20.
void SetIpv4HeaderChecksum(absl::Span<uint8_t> header);

// The kernel's L4 checksum verdict with nf_conntrack_checksum=1 (tcp_error, udp_error,
// udplite_error, icmp_error, icmpv6_error, sctp_error). The kernel checks only in
// PREROUTING; the caller decides when to call. False means INVALID.
//  - TCP: always verified, over the whole IP payload.
//  - UDP: checksum 0 means "none" and passes, for IPv6 too: udp_error() does not look at
//    the family (RFC 8200 forbids it, but the kernel leaves that to local delivery).
//  - UDP-Lite: checksum 0 fails (the kernel checks this in every hook, not only
//    PREROUTING); verified over the coverage with the full length in the pseudo-header.
//  - ICMP: over the ICMP message, no pseudo-header. ICMPv6: with the pseudo-header.
//  - SCTP: CRC32c. Everything else (GRE, DCCP, which 6.16+ kernels track generically...):
//    passes.
// Non-first fragments and packets whose L4 header was not parsed pass: conntrack only sees
// reassembled datagrams. A packet whose offsets do not fit `frame` fails.
bool VerifyL4Checksum(const ParsedPacket& pkt, absl::Span<const uint8_t> frame);

// Recomputes the L4 checksum of a parsed, unfragmented packet in place (after NAT or a
// builder edit). A UDP checksum of 0 ("none") is left at 0 (v4 and v6); a computed UDP 0 is
// stored as 0xffff. Returns false (touching nothing) when the packet is a fragment, its L4
// header was not parsed, the offsets do not fit, or the protocol has no checksum we own.
bool RecomputeL4Checksum(const ParsedPacket& pkt, absl::Span<uint8_t> frame);

// Incremental update (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')) of a stored checksum
// `csum` when a 16-bit field, a 32-bit field or an address changes. Note for UDP: a result
// of 0 must be stored as 0xffff by the caller (0 means "no checksum").
uint16_t ChecksumAdjust16(uint16_t csum, uint16_t old_value, uint16_t new_value);
// Inline: NAT calls it on the per-packet path.
inline uint16_t ChecksumAdjust32(uint16_t csum, uint32_t old_value, uint32_t new_value) {
  uint64_t sum = static_cast<uint16_t>(~csum);
  sum += static_cast<uint16_t>(~(old_value >> 16));
  sum += static_cast<uint16_t>(~old_value);
  sum += new_value >> 16;
  sum += new_value & 0xffff;
  return static_cast<uint16_t>(~FoldChecksum(sum));
}
uint16_t ChecksumAdjustAddress(uint16_t csum, Family family, const IpAddress& old_addr,
                               const IpAddress& new_addr);

// CRC32c (Castagnoli) as SCTP uses it: returns the value to store in the SCTP header's
// checksum field, read as a little-endian 32-bit number, computed with that field zero.
uint32_t SctpChecksum(absl::Span<const uint8_t> sctp_packet);

}  // namespace ctsync

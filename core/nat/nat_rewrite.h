// Packet rewriting for NAT: the userspace twin of nf_nat_proto.c (nf_nat_ipv{4,6}_manip_pkt,
// the per-protocol *_manip_pkt functions and nf_nat_icmp{,v6}_reply_translation).
// Addresses, ports and ICMP ids are changed in place with incremental checksum updates,
// exactly where the kernel updates them (and not where it does not, e.g. the TCP checksum
// of a quoted segment cut short inside an ICMP error).
//
// Stateless functions over a caller-owned buffer; any thread. Packet bytes are untrusted:
// every offset is bounds-checked and a packet too short to rewrite returns false (the
// caller drops and counts it, as skb_ensure_writable failing makes the kernel drop).
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"
#include "core/conntrack/flow.h"
#include "core/conntrack/tuple.h"
#include "core/nat/nat_range.h"

namespace ctsync::nat {

// nf_nat_ipv{4,6}_manip_pkt: makes the IP header at `ip_offset` of `datagram` (an IP
// datagram, `datagram` ending where the outermost IP header says it ends) carry `target`'s
// source (kSrc) or destination (kDst) address and port / ICMP id. The L4 header is
// dispatched on target.proto, as the kernel dispatches on the tuple, not on the header.
bool ManipPacket(absl::Span<uint8_t> datagram, size_t ip_offset, const Tuple& target,
                 ManipType manip);

// What IcmpReplyTranslation did, for the caller's counters.
enum class IcmpTranslateResult : uint8_t {
  kUnchanged,    // the flow has no NAT that this hook undoes for this direction
  kTranslated,   // inner and outer headers rewritten, ICMP checksum recomputed
  kTruncated,    // too short to hold the headers to rewrite: drop
  kBadChecksum,  // the ICMP checksum does not verify: drop
  kRedirect,     // an ICMP redirect for a NATed (or not yet fully bound) flow: drop
};

// nf_nat_icmp_reply_translation / nf_nat_icmpv6_reply_translation for an ICMP error that
// conntrack attached to `flow` as RELATED in direction `dir`. `l4_offset` is where the
// ICMP header starts in `datagram`. Rewrites the quoted packet to how the other side of
// the NAT sent it (addresses, ports or id, its IPv4 header checksum and, where the kernel
// does, its L4 checksum), recomputes the ICMP checksum over the whole message, then
// rewrites the outer addresses so the error reaches the real peer.
IcmpTranslateResult IcmpReplyTranslation(absl::Span<uint8_t> datagram, size_t l4_offset,
                                         const Flow& flow, Direction dir, ManipType manip);

// ipv6_skip_exthdr: walks extension headers from `offset` (whose protocol is *nexthdr).
// Returns the offset of the upper-layer header (updating *nexthdr and *frag_off, the raw
// fragment-offset word, 0 when there is no fragment header), or -1.
long SkipIpv6ExtHeaders(absl::Span<const uint8_t> datagram, size_t offset, uint8_t* nexthdr,
                        uint16_t* frag_off);

}  // namespace ctsync::nat

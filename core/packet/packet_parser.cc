#include "core/packet/packet_parser.h"

#include <algorithm>
#include <cstring>

#include "core/conntrack/tuple.h"
#include "core/packet/checksum.h"

namespace ctsync {

std::string_view ParseErrorName(ParseError e) {
  switch (e) {
#define CTSYNC_PARSE_ERROR_NAME(name, text) \
  case ParseError::name:                    \
    return text;
    CTSYNC_PARSE_ERRORS(CTSYNC_PARSE_ERROR_NAME)
#undef CTSYNC_PARSE_ERROR_NAME
  }
  return "unknown";
}

namespace {

constexpr uint32_t kEthHeaderLen = 14;
constexpr uint32_t kVlanTagLen = 4;
constexpr uint32_t kIpv4MinHeader = 20;
constexpr uint32_t kIpv6Header = 40;
constexpr uint32_t kMaxIpDatagram = 65535;

// IPv6 extension headers the kernel's ipv6_skip_exthdr walks through.
constexpr uint8_t kNextHopByHop = 0;
constexpr uint8_t kNextRouting = 43;
constexpr uint8_t kNextFragment = 44;
constexpr uint8_t kNextAuth = 51;
constexpr uint8_t kNextDestOpts = 60;

// TCP option kinds.
constexpr uint8_t kTcpOptEol = 0;
constexpr uint8_t kTcpOptNop = 1;
constexpr uint8_t kTcpOptMss = 2;
constexpr uint8_t kTcpOptWscale = 3;
constexpr uint8_t kTcpOptSackPerm = 4;
constexpr uint8_t kTcpOptSack = 5;
constexpr uint8_t kTcpOptTimestamp = 8;

bool IsIcmpV4Error(uint8_t type) {
  // Destination unreachable, source quench, redirect, time exceeded, parameter problem.
  return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

// The IPv4 header check on the hot path: IHL is a multiple of 4, so sum native 32-bit
// words and fold; a valid header folds to 0xffff in either byte order.
inline bool Ipv4HeaderSumsToOnes(const uint8_t* h, uint32_t ihl) {
  uint64_t sum = 0;
  for (uint32_t i = 0; i < ihl; i += 4) {
    uint32_t w;
    std::memcpy(&w, h + i, 4);
    sum += w;
  }
  return FoldChecksum(sum) == 0xffff;
}

// Walks TCP options like the kernel's tcp_options()/tcp_sack(): stop quietly at the first
// malformed option; a wrong-sized known option is skipped, not trusted.
void ParseTcpOptions(const uint8_t* p, int length, TcpOptions* o) {
  while (length > 0) {
    const uint8_t kind = *p++;
    --length;
    if (kind == kTcpOptEol) return;
    if (kind == kTcpOptNop) continue;
    if (length < 1) return;
    const int size = *p;
    if (size < 2 || size - 1 > length) return;
    const uint8_t* v = p + 1;
    switch (kind) {
      case kTcpOptMss:
        if (size == 4) o->mss = LoadBe16(v);
        break;
      case kTcpOptWscale:
        if (size == 3) o->wscale = v[0];
        break;
      case kTcpOptSackPerm:
        if (size == 2) o->sack_perm = true;
        break;
      case kTcpOptSack:
        if (size >= 10 && (size - 2) % 8 == 0) {
          const int n = std::min((size - 2) / 8, kMaxSackBlocks);
          o->sack_count = static_cast<uint8_t>(n);
          for (int i = 0; i < n; ++i) {
            o->sack[i].left = LoadBe32(v + 8 * i);
            o->sack[i].right = LoadBe32(v + 8 * i + 4);
          }
        }
        break;
      case kTcpOptTimestamp:
        if (size == 10) {
          o->has_timestamps = true;
          o->ts_val = LoadBe32(v);
          o->ts_ecr = LoadBe32(v + 4);
        }
        break;
      default:
        break;
    }
    p += size - 1;
    length -= size - 1;
  }
}

// Parses the L4 header at p->l4_offset; [pos, end) is the L4 part of the datagram.
ParseResult ParseL4(const uint8_t* d, uint32_t end, ParseMode mode, ParsedPacket* p) {
  const uint32_t pos = p->l4_offset;
  const uint32_t len = end - pos;
  const uint8_t* h = d + pos;
  const bool quoted = mode == ParseMode::kQuoted;
  switch (p->proto) {
    case kProtoTcp: {
      if (quoted) {
        if (len < 4) return ParseError::kTruncatedL4;
        p->sport = LoadBe16(h);
        p->dport = LoadBe16(h + 2);
        if (len >= 8) p->seq = LoadBe32(h + 4);
        if (len >= 20) {
          p->ack = LoadBe32(h + 8);
          p->tcp_data_offset = h[12] >> 4;
          p->tcp_flags = h[13];
          p->window = LoadBe16(h + 14);
        }
        p->payload_offset = end;
        p->payload_len = 0;
        p->l4_parsed = true;
        return ParseResult::Ok();
      }
      if (len < 20) return ParseError::kTruncatedL4;
      const uint32_t doff = h[12] >> 4;
      if (doff < 5 || doff * 4 > len) return ParseError::kBadTcpOffset;
      p->sport = LoadBe16(h);
      p->dport = LoadBe16(h + 2);
      p->seq = LoadBe32(h + 4);
      p->ack = LoadBe32(h + 8);
      p->tcp_data_offset = static_cast<uint8_t>(doff);
      p->tcp_flags = h[13];
      p->window = LoadBe16(h + 14);
      if (doff > 5) ParseTcpOptions(h + 20, static_cast<int>(doff * 4 - 20), &p->tcp_options);
      p->payload_offset = pos + doff * 4;
      p->payload_len = len - doff * 4;
      p->l4_parsed = true;
      return ParseResult::Ok();
    }
    case kProtoUdp:
    case kProtoUdplite: {
      if (quoted) {
        if (len < 4) return ParseError::kTruncatedL4;
        p->sport = LoadBe16(h);
        p->dport = LoadBe16(h + 2);
        p->payload_offset = std::min(pos + 8, end);
        p->payload_len = end - p->payload_offset;
        p->l4_parsed = true;
        return ParseResult::Ok();
      }
      if (len < 8) return ParseError::kTruncatedL4;
      const uint32_t field = LoadBe16(h + 4);
      if (p->proto == kProtoUdp) {
        // udp_error(): the UDP length may be shorter than the IP payload, never longer.
        if (field < 8 || field > len) return ParseError::kBadUdpLength;
        p->payload_len = field - 8;
      } else {
        // udplite_error(): coverage 0 means the whole datagram; otherwise >= 8 and <= len.
        uint32_t cov = field == 0 ? len : field;
        if (cov < 8 || cov > len) return ParseError::kBadUdpliteCoverage;
        p->udplite_coverage = static_cast<uint16_t>(cov);
        p->payload_len = len - 8;
      }
      p->sport = LoadBe16(h);
      p->dport = LoadBe16(h + 2);
      p->payload_offset = pos + 8;
      p->l4_parsed = true;
      return ParseResult::Ok();
    }
    case kProtoIcmp:
    case kProtoIcmpv6: {
      if (len < 8) return ParseError::kTruncatedL4;
      p->icmp_type = h[0];
      p->icmp_code = h[1];
      // icmpv6_error(): every type below 128 is an error carrying the offending packet.
      p->icmp_is_error = p->proto == kProtoIcmp ? IsIcmpV4Error(h[0]) : (h[0] < 128);
      if (p->icmp_is_error) {
        // A quoted packet inside a quoted packet is not followed (the kernel does not).
        if (!quoted) p->inner_offset = pos + 8;
      } else {
        p->icmp_id = LoadBe16(h + 4);
        p->icmp_seq = LoadBe16(h + 6);
      }
      p->payload_offset = pos + 8;
      p->payload_len = len - 8;
      p->l4_parsed = true;
      return ParseResult::Ok();
    }
    case kProtoSctp:
    case kProtoDccp: {
      // Both start with the two ports; SCTP's common header and DCCP's generic header are
      // 12 bytes at least.
      if (len < (quoted ? 4u : 12u)) return ParseError::kTruncatedL4;
      p->sport = LoadBe16(h);
      p->dport = LoadBe16(h + 2);
      p->payload_offset = std::min(pos + 12, end);
      p->payload_len = end - p->payload_offset;
      p->l4_parsed = true;
      return ParseResult::Ok();
    }
    default:
      // Generic: the engine reads nothing beyond L3.
      p->payload_offset = pos;
      p->payload_len = len;
      return ParseResult::Ok();
  }
}

// Fragments: only a first fragment carries the L4 header, and then possibly only part of
// it; such a header is parsed if complete and otherwise left unparsed, never an error.
ParseResult FinishWithL4(const uint8_t* d, uint32_t end, ParseMode mode, ParsedPacket* p) {
  p->l4_len = end - p->l4_offset;
  if (p->is_fragment) {
    p->payload_offset = p->l4_offset;
    p->payload_len = p->l4_len;
    if (p->frag_offset != 0) return ParseResult::Ok();
    ParsedPacket copy = *p;
    if (ParseL4(d, end, mode, &copy).ok()) *p = copy;
    return ParseResult::Ok();
  }
  return ParseL4(d, end, mode, p);
}

ParseResult ParseIpv4(const uint8_t* d, uint32_t size, uint32_t off, ParseMode mode,
                      ParsedPacket* p) {
  const uint32_t avail = size - off;
  if (avail < kIpv4MinHeader) return ParseError::kTruncatedIp;
  const uint8_t* h = d + off;
  if ((h[0] >> 4) != 4) return ParseError::kBadIpVersion;
  const uint32_t ihl = (h[0] & 0x0f) * 4u;
  if (ihl < kIpv4MinHeader) return ParseError::kBadIpHeaderLen;
  if (ihl > avail) {
    return mode == ParseMode::kQuoted ? ParseError::kTruncatedIp : ParseError::kBadIpHeaderLen;
  }
  const uint32_t total = LoadBe16(h + 2);
  if (total < ihl) return ParseError::kBadTotalLen;
  uint32_t datagram_len = total;
  if (total > avail) {
    if (mode != ParseMode::kQuoted) return ParseError::kBadTotalLen;
    datagram_len = avail;
  }
  if (mode == ParseMode::kFull && !Ipv4HeaderSumsToOnes(h, ihl)) {
    return ParseError::kBadIpChecksum;
  }
  p->family = Family::kIpv4;
  p->tos = h[1];
  p->ip_total_len = total;
  p->ip_id = LoadBe16(h + 4);
  const uint16_t frag = LoadBe16(h + 6);
  p->df = (frag & 0x4000) != 0;
  p->more_fragments = (frag & 0x2000) != 0;
  p->frag_offset = static_cast<uint16_t>((frag & 0x1fff) * 8);
  p->is_fragment = p->more_fragments || p->frag_offset != 0;
  p->frag_id = p->ip_id;
  if (p->is_fragment && p->frag_offset + (total - ihl) > kMaxIpDatagram) {
    return ParseError::kBadFragment;
  }
  p->ttl = h[8];
  p->proto = h[9];
  p->src = IpAddress::FromV4Bytes(h + 12);
  p->dst = IpAddress::FromV4Bytes(h + 16);
  p->l3_header_len = static_cast<uint16_t>(ihl);
  p->l4_offset = off + ihl;
  return FinishWithL4(d, off + datagram_len, mode, p);
}

ParseResult ParseIpv6(const uint8_t* d, uint32_t size, uint32_t off, ParseMode mode,
                      ParsedPacket* p) {
  const uint32_t avail = size - off;
  if (avail < kIpv6Header) return ParseError::kTruncatedIp;
  const uint8_t* h = d + off;
  if ((h[0] >> 4) != 6) return ParseError::kBadIpVersion;
  const uint32_t total = kIpv6Header + LoadBe16(h + 4);
  uint32_t datagram_len = total;
  if (total > avail) {
    if (mode != ParseMode::kQuoted) return ParseError::kBadTotalLen;
    datagram_len = avail;
  }
  const uint32_t end = off + datagram_len;
  p->family = Family::kIpv6;
  p->tos = static_cast<uint8_t>(((h[0] & 0x0f) << 4) | (h[1] >> 4));
  p->flow_label = ((h[1] & 0x0fu) << 16) | LoadBe16(h + 2);
  p->ttl = h[7];
  p->ip_total_len = total;
  p->src = IpAddress::FromV6Bytes(h + 8);
  p->dst = IpAddress::FromV6Bytes(h + 24);

  uint8_t next = h[6];
  uint32_t next_field = off + 6;  // where the current "next header" value was read
  uint32_t pos = off + kIpv6Header;
  // Each header is at least 8 bytes, so the walk is bounded by the datagram length.
  while (next == kNextHopByHop || next == kNextRouting || next == kNextFragment ||
         next == kNextAuth || next == kNextDestOpts) {
    if (end - pos < 8) return ParseError::kBadExtHeader;
    const uint8_t* e = d + pos;
    if (next == kNextFragment) {
      if (p->frag_header_offset != 0) return ParseError::kBadExtHeader;  // two of them
      const uint16_t fo = LoadBe16(e + 2);
      p->frag_header_offset = pos;
      p->frag_nexthdr_field_offset = next_field;
      p->frag_offset = fo & 0xfff8;
      p->more_fragments = (fo & 1) != 0;
      p->frag_id = LoadBe32(e + 4);
      p->is_fragment = p->more_fragments || p->frag_offset != 0;
      next_field = pos;
      next = e[0];
      pos += 8;
      if (p->is_fragment && p->frag_offset + (end - pos) > kMaxIpDatagram) {
        return ParseError::kBadFragment;
      }
      if (p->frag_offset != 0) break;  // the rest of the chain is in the first fragment
      continue;
    }
    const uint32_t len = next == kNextAuth ? (e[1] + 2u) * 4u : (e[1] + 1u) * 8u;
    if (len > end - pos) return ParseError::kBadExtHeader;
    next_field = pos;
    next = e[0];
    pos += len;
  }
  p->proto = next;
  p->l3_header_len = static_cast<uint16_t>(pos - off);
  p->l4_offset = pos;
  return FinishWithL4(d, end, mode, p);
}

ParseResult ParseL3(const uint8_t* d, uint32_t size, uint32_t off, ParseMode mode,
                    ParsedPacket* p) {
  if (off >= size) return ParseError::kTruncatedIp;
  switch (d[off] >> 4) {
    case 4:
      return ParseIpv4(d, size, off, mode, p);
    case 6:
      return ParseIpv6(d, size, off, mode, p);
    default:
      return ParseError::kBadIpVersion;
  }
}

// Spans longer than any IP datagram plus headers are clamped; offsets stay 32-bit.
uint32_t ClampSize(size_t n) { return static_cast<uint32_t>(std::min<size_t>(n, 1u << 20)); }

}  // namespace

ParseResult ParseEthernet(absl::Span<const uint8_t> frame, ParsedPacket* out, ParseMode mode) {
  *out = ParsedPacket{};
  const uint8_t* d = frame.data();
  const uint32_t size = ClampSize(frame.size());
  if (size < kEthHeaderLen) return ParseError::kTruncatedL2;
  std::memcpy(out->dst_mac.data(), d, 6);
  std::memcpy(out->src_mac.data(), d + 6, 6);
  uint32_t off = 12;
  uint16_t type = LoadBe16(d + off);
  while (type == kEtherTypeVlan || type == kEtherTypeQinQ) {
    if (out->vlan_count == kMaxVlanTags) return ParseError::kTooManyVlanTags;
    if (size - off < 2 + kVlanTagLen) return ParseError::kTruncatedL2;
    out->vlan_ids[out->vlan_count++] = LoadBe16(d + off + 2) & 0x0fff;
    off += kVlanTagLen;
    type = LoadBe16(d + off);
  }
  off += 2;
  out->ethertype = type;
  out->l3_offset = static_cast<uint16_t>(off);
  uint8_t expected_version;
  if (type == kEtherTypeIpv4) {
    expected_version = 4;
  } else if (type == kEtherTypeIpv6) {
    expected_version = 6;
  } else {
    return ParseError::kUnsupportedEthertype;
  }
  if (off >= size) return ParseError::kTruncatedIp;
  if ((d[off] >> 4) != expected_version) return ParseError::kBadIpVersion;
  return ParseL3(d, size, off, mode, out);
}

ParseResult ParseIp(absl::Span<const uint8_t> ip_datagram, ParsedPacket* out, ParseMode mode) {
  *out = ParsedPacket{};
  return ParseL3(ip_datagram.data(), ClampSize(ip_datagram.size()), 0, mode, out);
}

}  // namespace ctsync

#include "core/nat/nat_rewrite.h"

#include "core/conntrack/l4_trackers.h"
#include "core/packet/checksum.h"
#include "core/packet/packet_parser.h"

namespace ctsync::nat {
namespace {

constexpr size_t kIpv4MinHeader = 20;
constexpr size_t kIpv6Header = 40;

// The address field the manip changes, in the IP header at `ip`.
size_t AddrOffset(Family family, ManipType manip) {
  if (family == Family::kIpv4) return manip == ManipType::kSrc ? 12 : 16;
  return manip == ManipType::kSrc ? 8 : 24;
}

IpAddress ReadAddr(const uint8_t* p, Family family) {
  return family == Family::kIpv4 ? IpAddress::FromV4Bytes(p) : IpAddress::FromV6Bytes(p);
}
const IpAddress& NewAddr(const Tuple& t, ManipType manip) {
  return manip == ManipType::kSrc ? t.src : t.dst;
}

// nf_csum_update: the pseudo-header part of an L4 checksum follows the address change.
uint16_t PseudoAdjust(uint16_t csum, absl::Span<const uint8_t> d, size_t ip_offset, const Tuple& t,
                      ManipType manip) {
  const IpAddress old = ReadAddr(d.data() + ip_offset + AddrOffset(t.family, manip), t.family);
  return ChecksumAdjustAddress(csum, t.family, old, NewAddr(t, manip));
}

bool Fits(absl::Span<const uint8_t> d, size_t end) { return end <= d.size(); }

// __udp_manip_pkt: port, and the checksum unless it is 0 ("none"); a result of 0 is sent as
// 0xffff (CSUM_MANGLED_0).
void UdpManip(absl::Span<uint8_t> d, size_t ip_offset, size_t l4, const Tuple& t, ManipType manip,
              bool do_csum) {
  uint8_t* port = d.data() + l4 + (manip == ManipType::kSrc ? 0 : 2);
  const uint16_t new_port = manip == ManipType::kSrc ? t.sport : t.dport;
  if (do_csum) {
    uint16_t c = LoadBe16(d.data() + l4 + 6);
    c = PseudoAdjust(c, d, ip_offset, t, manip);
    c = ChecksumAdjust16(c, LoadBe16(port), new_port);
    if (c == 0) c = 0xffff;
    StoreBe16(d.data() + l4 + 6, c);
  }
  StoreBe16(port, new_port);
}

bool L4Manip(absl::Span<uint8_t> d, size_t ip_offset, size_t l4, const Tuple& t, ManipType manip) {
  uint8_t* h = d.data() + l4;
  switch (t.proto) {
    case kProtoTcp: {
      if (!Fits(d, l4 + 8)) return false;
      uint8_t* port = h + (manip == ManipType::kSrc ? 0 : 2);
      const uint16_t new_port = manip == ManipType::kSrc ? t.sport : t.dport;
      const uint16_t old_port = LoadBe16(port);
      StoreBe16(port, new_port);
      // Only 8 bytes of a segment quoted in an ICMP error are guaranteed: its checksum is
      // left alone unless the full 20-byte header is there.
      if (!Fits(d, l4 + 20)) return true;
      uint16_t c = LoadBe16(h + 16);
      c = PseudoAdjust(c, d, ip_offset, t, manip);
      c = ChecksumAdjust16(c, old_port, new_port);
      StoreBe16(h + 16, c);
      return true;
    }
    case kProtoUdp:
      if (!Fits(d, l4 + 8)) return false;
      UdpManip(d, ip_offset, l4, t, manip, LoadBe16(h + 6) != 0);
      return true;
    case kProtoUdplite:
      // UDP-Lite has no "no checksum" value: always updated.
      if (!Fits(d, l4 + 8)) return false;
      UdpManip(d, ip_offset, l4, t, manip, true);
      return true;
    case kProtoSctp: {
      if (!Fits(d, l4 + 8)) return false;
      StoreBe16(h + (manip == ManipType::kSrc ? 0 : 2),
                manip == ManipType::kSrc ? t.sport : t.dport);
      if (!Fits(d, l4 + 12)) return true;
      // CRC32c cannot be updated incrementally: recomputed over what the packet holds.
      const uint32_t crc = SctpChecksum(d.subspan(l4));
      h[8] = static_cast<uint8_t>(crc);
      h[9] = static_cast<uint8_t>(crc >> 8);
      h[10] = static_cast<uint8_t>(crc >> 16);
      h[11] = static_cast<uint8_t>(crc >> 24);
      return true;
    }
    case kProtoIcmp: {
      if (!Fits(d, l4 + 8)) return false;
      switch (h[0]) {
        case 0:
        case 8:
        case 13:
        case 14:
        case 15:
        case 16:
        case 17:
        case 18:
          break;
        default:
          return true;  // errors and other types carry no id
      }
      const uint16_t old_id = LoadBe16(h + 4);
      StoreBe16(h + 2, ChecksumAdjust16(LoadBe16(h + 2), old_id, t.sport));
      StoreBe16(h + 4, t.sport);
      return true;
    }
    case kProtoIcmpv6: {
      if (!Fits(d, l4 + 8)) return false;
      uint16_t c = PseudoAdjust(LoadBe16(h + 2), d, ip_offset, t, manip);
      if (h[0] == 128 || h[0] == 129) {
        c = ChecksumAdjust16(c, LoadBe16(h + 4), t.sport);
        StoreBe16(h + 4, t.sport);
      }
      StoreBe16(h + 2, c);
      return true;
    }
    default:
      // GRE (v0 has no key we track), DCCP and unknown protocols: addresses only.
      return true;
  }
}

uint32_t IcmpSum(absl::Span<const uint8_t> d, size_t l4, Family family) {
  uint64_t sum = OnesComplementSum(d.subspan(l4));
  if (family == Family::kIpv6) {
    sum += PseudoHeaderSum(family, IpAddress::FromV6Bytes(d.data() + 8),
                           IpAddress::FromV6Bytes(d.data() + 24), kProtoIcmpv6,
                           static_cast<uint32_t>(d.size() - l4));
  }
  return FoldChecksum(sum);
}

}  // namespace

long SkipIpv6ExtHeaders(absl::Span<const uint8_t> d, size_t offset, uint8_t* nexthdr,
                        uint16_t* frag_off) {
  *frag_off = 0;
  for (;;) {
    const uint8_t nh = *nexthdr;
    if (nh != 0 && nh != 43 && nh != 44 && nh != 51 && nh != 59 && nh != 60) break;
    if (nh == 59) return -1;  // no next header
    if (!Fits(d, offset + 2)) return -1;
    size_t len;
    if (nh == 44) {
      if (!Fits(d, offset + 4)) return -1;
      *frag_off = LoadBe16(d.data() + offset + 2);
      // A non-first fragment: the upper-layer header is not here.
      if (*frag_off & ~0x7) break;
      len = 8;
    } else if (nh == 51) {
      len = (size_t{d[offset + 1]} + 2) << 2;
    } else {
      len = (size_t{d[offset + 1]} + 1) << 3;
    }
    *nexthdr = d[offset];
    offset += len;
  }
  return static_cast<long>(offset);
}

namespace {

// The common case, a whole IPv4 TCP or UDP header: the address and port changes go into
// the L4 checksum as one sum, folded once. Ones' complement addition is associative, so
// this gives the same bits as adjusting for the address, then the port.
bool Ipv4TcpUdpManip(absl::Span<uint8_t> d, size_t l4, const Tuple& t, ManipType manip,
                     uint32_t old_addr, uint32_t new_addr) {
  const bool tcp = t.proto == kProtoTcp;
  if (!tcp && t.proto != kProtoUdp) return false;
  if (!Fits(d, l4 + (tcp ? 20 : 8))) return false;
  uint8_t* h = d.data() + l4;
  uint8_t* port = h + (manip == ManipType::kSrc ? 0 : 2);
  const uint16_t old_port = LoadBe16(port);
  const uint16_t new_port = manip == ManipType::kSrc ? t.sport : t.dport;
  uint8_t* csum = h + (tcp ? 16 : 6);
  const uint16_t c = LoadBe16(csum);
  if (tcp || c != 0) {  // UDP checksum 0: none
    uint64_t sum = static_cast<uint16_t>(~c);
    sum += static_cast<uint16_t>(~(old_addr >> 16));
    sum += static_cast<uint16_t>(~old_addr);
    sum += new_addr >> 16;
    sum += new_addr & 0xffff;
    sum += static_cast<uint16_t>(~old_port);
    sum += new_port;
    uint16_t n = static_cast<uint16_t>(~FoldChecksum(sum));
    if (!tcp && n == 0) n = 0xffff;  // CSUM_MANGLED_0
    StoreBe16(csum, n);
  }
  StoreBe16(port, new_port);
  return true;
}

}  // namespace

bool ManipPacket(absl::Span<uint8_t> d, size_t ip_offset, const Tuple& target, ManipType manip) {
  const Family family = target.family;
  uint8_t* ip = d.data() + ip_offset;
  if (family == Family::kIpv4) {
    if (!Fits(d, ip_offset + kIpv4MinHeader)) return false;
    const size_t ihl = size_t{ip[0] & 0x0fu} * 4;
    if (ihl < kIpv4MinHeader) return false;
    uint8_t* field = ip + AddrOffset(family, manip);
    const uint32_t old_addr = LoadBe32(field);
    const uint32_t new_addr = NewAddr(target, manip).v4();
    if (!Ipv4TcpUdpManip(d, ip_offset + ihl, target, manip, old_addr, new_addr) &&
        !L4Manip(d, ip_offset, ip_offset + ihl, target, manip))
      return false;
    StoreBe16(ip + 10, ChecksumAdjust32(LoadBe16(ip + 10), old_addr, new_addr));
    StoreBe32(field, new_addr);
    return true;
  }
  if (family != Family::kIpv6 || !Fits(d, ip_offset + kIpv6Header)) return false;
  uint8_t nexthdr = ip[6];
  uint16_t frag_off = 0;
  const long l4 = SkipIpv6ExtHeaders(d, ip_offset + kIpv6Header, &nexthdr, &frag_off);
  if (l4 >= 0 && (frag_off & ~0x7) == 0 &&
      !L4Manip(d, ip_offset, static_cast<size_t>(l4), target, manip))
    return false;
  const IpAddress& a = NewAddr(target, manip);
  std::copy(a.bytes.begin(), a.bytes.end(), ip + AddrOffset(family, manip));
  return true;
}

IcmpTranslateResult IcmpReplyTranslation(absl::Span<uint8_t> d, size_t l4, const Flow& flow,
                                         Direction dir, ManipType manip) {
  const Family family = flow.family();
  const size_t inner_ip_len = family == Family::kIpv4 ? kIpv4MinHeader : kIpv6Header;
  if (!Fits(d, l4 + 8 + inner_ip_len)) return IcmpTranslateResult::kTruncated;
  if (IcmpSum(d, l4, family) != 0xffff) return IcmpTranslateResult::kBadChecksum;

  const uint8_t type = d[l4];
  const bool redirect = family == Family::kIpv4 ? type == 5 : type == 137;
  if (redirect) {
    // A redirect only makes sense for a flow NAT has fully bound and left untranslated.
    if ((flow.status & kIpsNatDoneMask) != kIpsNatDoneMask) return IcmpTranslateResult::kRedirect;
    if (flow.status & kIpsNatMask) return IcmpTranslateResult::kRedirect;
  }

  uint32_t statusbit = manip == ManipType::kSrc ? kIpsSrcNat : kIpsDstNat;
  if (dir == Direction::kReply) statusbit ^= kIpsNatMask;
  if (!(flow.status & statusbit)) return IcmpTranslateResult::kUnchanged;

  // The quoted packet travelled the other way: make it look as it did on the far side.
  const Tuple& other = flow.tuple_of(Opposite(dir));
  if (!ManipPacket(d, l4 + 8, other, OtherManip(manip))) return IcmpTranslateResult::kTruncated;

  StoreBe16(d.data() + l4 + 2, 0);
  StoreBe16(d.data() + l4 + 2, static_cast<uint16_t>(~IcmpSum(d, l4, family)));

  // Outer header: as a reply to the connection's other end. The ICMP "protocol" makes the
  // L4 step touch nothing but the ICMPv6 pseudo-header sum (error types carry no id).
  Tuple outer;
  outer.family = family;
  outer.proto = family == Family::kIpv4 ? kProtoIcmp : kProtoIcmpv6;
  outer.src = other.dst;
  outer.dst = other.src;
  if (!ManipPacket(d, 0, outer, manip)) return IcmpTranslateResult::kTruncated;
  return IcmpTranslateResult::kTranslated;
}

}  // namespace ctsync::nat

#include "core/packet/checksum.h"

#include <array>
#include <bit>
#include <cstring>

#include "core/conntrack/tuple.h"
#include "core/packet/packet_parser.h"

namespace ctsync {

uint32_t OnesComplementSum(absl::Span<const uint8_t> data, uint32_t initial) {
  // The one's-complement sum does not depend on byte order (RFC 1071 2.B): add native
  // 32-bit words into a 64-bit accumulator (no carry is lost below 2^32 words), fold,
  // and swap once at the end.
  const uint8_t* p = data.data();
  size_t n = data.size();
  uint64_t sum = 0;
  while (n >= 16) {
    uint32_t w[4];
    std::memcpy(w, p, 16);
    sum += uint64_t{w[0]} + w[1] + w[2] + w[3];
    p += 16;
    n -= 16;
  }
  while (n >= 4) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    sum += w;
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    sum += w;
    p += 2;
    n -= 2;
  }
  if (n == 1) {
    // The odd byte is the high half of a big-endian word: in memory order [b, 0].
    const uint8_t tail[2] = {*p, 0};
    uint16_t w;
    std::memcpy(&w, tail, 2);
    sum += w;
  }
  uint16_t folded = FoldChecksum(sum);
  if constexpr (std::endian::native == std::endian::little) {
    folded = static_cast<uint16_t>((folded >> 8) | (folded << 8));
  }
  return FoldChecksum(uint64_t{folded} + initial);
}

uint32_t PseudoHeaderSum(Family family, const IpAddress& src, const IpAddress& dst, uint8_t proto,
                         uint32_t l4_len) {
  const size_t addr_len = family == Family::kIpv6 ? 16 : 4;
  uint64_t sum = OnesComplementSum(absl::MakeConstSpan(src.bytes.data(), addr_len));
  sum += OnesComplementSum(absl::MakeConstSpan(dst.bytes.data(), addr_len));
  sum += proto;
  sum += (l4_len >> 16) + (l4_len & 0xffff);
  return FoldChecksum(sum);
}

bool VerifyIpv4HeaderChecksum(absl::Span<const uint8_t> header) {
  return FoldChecksum(OnesComplementSum(header)) == 0xffff;
}

uint16_t ComputeIpv4HeaderChecksum(absl::Span<const uint8_t> header) {
  if (header.size() < 12) return 0;
  uint64_t sum = OnesComplementSum(header.subspan(0, 10));
  sum += OnesComplementSum(header.subspan(12));
  return static_cast<uint16_t>(~FoldChecksum(sum));
}

void SetIpv4HeaderChecksum(absl::Span<uint8_t> header) {
  if (header.size() < 20) return;
  StoreBe16(header.data() + 10, ComputeIpv4HeaderChecksum(header));
}

namespace {

constexpr std::array<uint32_t, 256> MakeCrc32cTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = MakeCrc32cTable();

uint32_t Crc32cUpdate(uint32_t crc, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) crc = kCrc32cTable[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc;
}

// Offset of the checksum field inside the L4 header, or -1 for protocols we do not own.
int ChecksumFieldOffset(uint8_t proto) {
  switch (proto) {
    case kProtoTcp:
      return 16;
    case kProtoUdp:
    case kProtoUdplite:
      return 6;
    case kProtoIcmp:
    case kProtoIcmpv6:
      return 2;
    default:
      return -1;
  }
}

bool L4Fits(const ParsedPacket& pkt, size_t frame_size) {
  return pkt.l4_offset <= frame_size && pkt.l4_len <= frame_size - pkt.l4_offset;
}

// Partial sum over the bytes the protocol's checksum covers, including the pseudo-header
// where there is one, with the stored checksum field included.
uint32_t CoveredSum(const ParsedPacket& pkt, absl::Span<const uint8_t> l4) {
  switch (pkt.proto) {
    case kProtoIcmp:
      return OnesComplementSum(l4);
    case kProtoUdplite: {
      const uint32_t cov = pkt.udplite_coverage != 0 ? pkt.udplite_coverage : l4.size();
      return OnesComplementSum(l4.subspan(0, cov),
                               PseudoHeaderSum(pkt.family, pkt.src, pkt.dst, pkt.proto, l4.size()));
    }
    default:
      return OnesComplementSum(l4,
                               PseudoHeaderSum(pkt.family, pkt.src, pkt.dst, pkt.proto, l4.size()));
  }
}

}  // namespace

uint32_t SctpChecksum(absl::Span<const uint8_t> sctp_packet) {
  if (sctp_packet.size() < 12) return 0;
  static constexpr uint8_t kZero[4] = {0, 0, 0, 0};
  uint32_t crc = ~0u;
  crc = Crc32cUpdate(crc, sctp_packet.data(), 8);
  crc = Crc32cUpdate(crc, kZero, 4);
  crc = Crc32cUpdate(crc, sctp_packet.data() + 12, sctp_packet.size() - 12);
  return ~crc;
}

bool VerifyL4Checksum(const ParsedPacket& pkt, absl::Span<const uint8_t> frame) {
  if (pkt.is_fragment || !pkt.l4_parsed) return true;
  if (!L4Fits(pkt, frame.size())) return false;
  const absl::Span<const uint8_t> l4 = frame.subspan(pkt.l4_offset, pkt.l4_len);
  switch (pkt.proto) {
    case kProtoUdp:
      // udp_error() treats 0 as "no checksum" for IPv4 and IPv6 alike (the IPv6 stack
      // rejects it later, at local delivery, not conntrack).
      if (LoadBe16(l4.data() + 6) == 0) return true;
      break;
    case kProtoUdplite:
      if (LoadBe16(l4.data() + 6) == 0) return false;  // "UDPLITE mandates checksums"
      break;
    case kProtoIcmp:
      if (pkt.family != Family::kIpv4) return true;
      break;
    case kProtoIcmpv6:
      if (pkt.family != Family::kIpv6) return true;
      break;
    case kProtoTcp:
      break;
    case kProtoSctp: {
      if (l4.size() < 12) return false;
      const uint32_t crc = SctpChecksum(l4);
      const uint8_t* f = l4.data() + 8;
      const uint32_t stored =
          uint32_t{f[0]} | (uint32_t{f[1]} << 8) | (uint32_t{f[2]} << 16) | (uint32_t{f[3]} << 24);
      return crc == stored;
    }
    default:
      return true;
  }
  return FoldChecksum(CoveredSum(pkt, l4)) == 0xffff;
}

bool RecomputeL4Checksum(const ParsedPacket& pkt, absl::Span<uint8_t> frame) {
  if (pkt.is_fragment || !pkt.l4_parsed) return false;
  if (!L4Fits(pkt, frame.size())) return false;
  const absl::Span<uint8_t> l4 = frame.subspan(pkt.l4_offset, pkt.l4_len);
  if (pkt.proto == kProtoSctp) {
    if (l4.size() < 12) return false;
    const uint32_t crc = SctpChecksum(l4);
    for (int i = 0; i < 4; ++i) l4[8 + i] = static_cast<uint8_t>(crc >> (8 * i));
    return true;
  }
  const int field = ChecksumFieldOffset(pkt.proto);
  if (field < 0 || l4.size() < static_cast<size_t>(field) + 2) return false;
  if (pkt.proto == kProtoIcmp && pkt.family != Family::kIpv4) return false;
  if (pkt.proto == kProtoIcmpv6 && pkt.family != Family::kIpv6) return false;
  uint8_t* f = l4.data() + field;
  // A UDP datagram sent without checksum keeps none, as the kernel's NAT leaves it
  // (udp_manip_pkt only updates a non-zero checksum), whatever the family.
  if (pkt.proto == kProtoUdp && LoadBe16(f) == 0) return true;
  StoreBe16(f, 0);
  uint16_t csum = static_cast<uint16_t>(~FoldChecksum(CoveredSum(pkt, l4)));
  if (csum == 0 && (pkt.proto == kProtoUdp || pkt.proto == kProtoUdplite)) csum = 0xffff;
  StoreBe16(f, csum);
  return true;
}

uint16_t ChecksumAdjust16(uint16_t csum, uint16_t old_value, uint16_t new_value) {
  uint64_t sum = static_cast<uint16_t>(~csum);
  sum += static_cast<uint16_t>(~old_value);
  sum += new_value;
  return static_cast<uint16_t>(~FoldChecksum(sum));
}

uint16_t ChecksumAdjustAddress(uint16_t csum, Family family, const IpAddress& old_addr,
                               const IpAddress& new_addr) {
  const size_t n = family == Family::kIpv6 ? 16 : 4;
  uint64_t sum = static_cast<uint16_t>(~csum);
  for (size_t i = 0; i < n; i += 2) {
    sum += static_cast<uint16_t>(~LoadBe16(old_addr.bytes.data() + i));
    sum += LoadBe16(new_addr.bytes.data() + i);
  }
  return static_cast<uint16_t>(~FoldChecksum(sum));
}

}  // namespace ctsync

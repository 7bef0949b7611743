#include "core/io/gso_segmenter.h"

#include <algorithm>
#include <cstring>

#include "core/conntrack/tuple.h"
#include "core/net/tcp_flags.h"
#include "core/packet/checksum.h"
#include "core/packet/packet_parser.h"

namespace ctsync {

size_t SegmentGsoFrame(absl::Span<const uint8_t> frame, GsoKind kind, uint16_t gso_size,
                       std::vector<uint8_t>* scratch,
                       absl::FunctionRef<void(absl::Span<const uint8_t>)> fn) {
  if (gso_size == 0) return 0;
  ParsedPacket p;
  if (!ParseEthernet(frame, &p).ok() || p.is_fragment || !p.l4_parsed) return 0;
  const uint8_t want = kind == GsoKind::kTcp ? kProtoTcp : kProtoUdp;
  if (p.proto != want) return 0;
  const bool v4 = p.family == Family::kIpv4;
  // Everything up to the end of the L4 header is repeated in front of every segment.
  const size_t headers = p.payload_offset;
  const size_t end = p.l3_offset + p.ip_total_len;
  if (headers > end || end > frame.size()) return 0;
  const size_t payload = end - headers;
  if (payload == 0) return 0;
  const size_t segments = (payload + gso_size - 1) / gso_size;

  size_t n = 0;
  for (size_t off = 0; off < payload; off += gso_size, ++n) {
    const size_t chunk = std::min<size_t>(gso_size, payload - off);
    scratch->resize(headers + chunk);
    uint8_t* s = scratch->data();
    std::memcpy(s, frame.data(), headers);
    std::memcpy(s + headers, frame.data() + headers + off, chunk);
    uint8_t* l3 = s + p.l3_offset;
    const size_t ip_len = headers - p.l3_offset + chunk;
    if (v4) {
      StoreBe16(l3 + 2, static_cast<uint16_t>(ip_len));
      StoreBe16(l3 + 4, static_cast<uint16_t>(p.ip_id + n));
    } else {
      StoreBe16(l3 + 4, static_cast<uint16_t>(ip_len - 40));
    }
    uint8_t* l4 = s + p.l4_offset;
    if (kind == GsoKind::kTcp) {
      StoreBe32(l4 + 4, p.seq + static_cast<uint32_t>(off));
      uint8_t flags = p.tcp_flags;
      if (n + 1 < segments) flags &= static_cast<uint8_t>(~(kTcpFin | kTcpPsh));
      if (n > 0) flags &= static_cast<uint8_t>(~kTcpCwr);
      l4[13] = flags;
    } else {
      StoreBe16(l4 + 4, static_cast<uint16_t>(headers - p.l4_offset + chunk));
    }
    ParsedPacket sp;
    const absl::Span<uint8_t> seg(s, headers + chunk);
    if (!ParseEthernet(seg, &sp, ParseMode::kQuoted).ok()) return n;
    if (v4) SetIpv4HeaderChecksum(seg.subspan(p.l3_offset, p.l3_header_len));
    // A UDP checksum of 0 ("none") stays 0; the GSO sender always filled it in.
    if (kind == GsoKind::kUdp && LoadBe16(l4 + 6) == 0) StoreBe16(l4 + 6, 0xffff);
    RecomputeL4Checksum(sp, seg);
    fn(seg);
  }
  return n;
}

}  // namespace ctsync

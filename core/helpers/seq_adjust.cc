#include "core/helpers/seq_adjust.h"

#include "core/packet/checksum.h"

namespace ctsync {
namespace {

// Serial-number comparison (RFC 1982), as the kernel's after().
bool After(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) > 0; }

void Replace32(uint8_t* field, uint8_t* csum, uint32_t value) {
  const uint32_t old = LoadBe32(field);
  StoreBe32(field, value);
  StoreBe16(csum, ChecksumAdjust32(LoadBe16(csum), old, value));
}

uint32_t AdjustSackEdge(uint32_t edge, const SeqAdjustDir& other) {
  return After(edge - other.offset_before, other.correction_pos) ? edge - other.offset_after
                                                                   : edge - other.offset_before;
}

}  // namespace

bool SeqAdjustSet(SeqAdjust& sa, Direction dir, uint32_t seq, int32_t offset) {
  if (offset == 0) return false;
  SeqAdjustDir& w = sa.dir[static_cast<int>(dir)];
  if (w.offset_before == w.offset_after || After(seq, w.correction_pos)) {
    w.correction_pos = seq;
    w.offset_before = w.offset_after;
    w.offset_after += offset;
  }
  return true;
}

bool SeqAdjustPacket(PacketBuffer& b, const SeqAdjust& sa, Direction dir) {
  const ParsedPacket& p = b.pkt;
  if (p.proto != kProtoTcp || !p.l4_parsed) return false;
  uint8_t* tcp = b.frame.data() + p.l4_offset;
  uint8_t* csum = tcp + 16;
  const SeqAdjustDir& me = sa.dir[static_cast<int>(dir)];
  const SeqAdjustDir& other = sa.dir[static_cast<int>(Opposite(dir))];

  const uint32_t seq = LoadBe32(tcp + 4);
  const int32_t seqoff = After(seq, me.correction_pos) ? me.offset_after : me.offset_before;
  Replace32(tcp + 4, csum, seq + seqoff);
  b.pkt.seq = seq + seqoff;
  if (!(p.tcp_flags & kTcpAck)) return true;

  const uint32_t ack = LoadBe32(tcp + 8);
  const int32_t ackoff =
      After(ack - other.offset_before, other.correction_pos) ? other.offset_after : other.offset_before;
  Replace32(tcp + 8, csum, ack - ackoff);
  b.pkt.ack = ack - ackoff;

  // SACK blocks name sequence numbers of the other direction too (nf_ct_sack_adjust).
  const size_t opt_end = p.l4_offset + p.tcp_data_offset * 4u;
  size_t i = p.l4_offset + 20;
  while (i < opt_end && i < b.frame.size()) {
    const uint8_t kind = b.frame[i];
    if (kind == 0) break;
    if (kind == 1) {
      ++i;
      continue;
    }
    if (i + 1 >= opt_end) break;
    const uint8_t len = b.frame[i + 1];
    if (len < 2 || i + len > opt_end) break;
    if (kind == 5 && len >= 10 && (len - 2) % 8 == 0) {
      for (size_t blk = i + 2; blk + 8 <= i + len; blk += 8) {
        Replace32(&b.frame[blk], csum, AdjustSackEdge(LoadBe32(&b.frame[blk]), other));
        Replace32(&b.frame[blk + 4], csum, AdjustSackEdge(LoadBe32(&b.frame[blk + 4]), other));
      }
    }
    i += len;
  }
  return true;
}

}  // namespace ctsync

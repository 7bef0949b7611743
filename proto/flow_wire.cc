#include "proto/flow_wire.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace ctsync::codec {
namespace {

// Protobuf wire format: a tag is (field number << 3) | wire type; proto3 leaves out scalar
// fields that are zero and writes a sub-message whenever it is present (even empty).
constexpr uint32_t kVarint = 0;
constexpr uint32_t kLengthDelimited = 2;

// The largest record this writes: two IPv6 tuples and a master (~50 bytes each), TCP state
// (~95), counters, sequence adjustment (~64) and the scalars stay under 512 bytes.
constexpr size_t kMaxWireBytes = 1024;

class Writer {
 public:
  explicit Writer(uint8_t* at) : p_(at) {}
  uint8_t* end() const { return p_; }

  void Varint(uint64_t v) {
    while (v >= 0x80) {
      *p_++ = static_cast<uint8_t>(v | 0x80);
      v >>= 7;
    }
    *p_++ = static_cast<uint8_t>(v);
  }
  void Tag(uint32_t field, uint32_t type) { Varint((field << 3) | type); }
  void U64(uint32_t field, uint64_t v) {
    if (v == 0) return;
    Tag(field, kVarint);
    Varint(v);
  }
  // int64 and int32 are varints of the value sign-extended to 64 bits (negative: 10 bytes).
  void I64(uint32_t field, int64_t v) { U64(field, static_cast<uint64_t>(v)); }
  void Bytes(uint32_t field, const void* data, size_t n) {
    if (n == 0) return;
    Tag(field, kLengthDelimited);
    Varint(n);
    std::memcpy(p_, data, n);
    p_ += n;
  }
  // A sub-message: its length is known only at End. One byte is reserved for it, which
  // covers every message written here (all are under 128 bytes); End moves the body if not.
  uint8_t* Begin(uint32_t field) {
    Tag(field, kLengthDelimited);
    return p_++;
  }
  void End(uint8_t* length_at) {
    const size_t n = static_cast<size_t>(p_ - length_at - 1);
    if (n < 0x80) {
      *length_at = static_cast<uint8_t>(n);
      return;
    }
    uint8_t len[10];
    Writer w(len);
    w.Varint(n);
    const size_t k = static_cast<size_t>(w.end() - len);
    std::memmove(length_at + k, length_at + 1, n);
    std::memcpy(length_at, len, k);
    p_ += k - 1;
  }

 private:
  uint8_t* p_;
};

// Field numbers from proto/ctsync/flow.proto, in the order protobuf serializes them.
void PutTuple(Writer& w, uint32_t field, const Tuple& t) {
  uint8_t* len = w.Begin(field);
  const size_t n = t.family == Family::kIpv6 ? 16 : 4;
  w.Bytes(1, t.src.bytes.data(), n);
  w.Bytes(2, t.dst.bytes.data(), n);
  w.U64(3, t.sport);
  w.U64(4, t.dport);
  w.U64(5, static_cast<uint32_t>(t.family));
  w.U64(6, t.proto);
  w.End(len);
}

void PutDir(Writer& w, uint32_t field, const TcpDirState& d) {
  uint8_t* len = w.Begin(field);
  w.U64(1, d.td_end);
  w.U64(2, d.td_maxend);
  w.U64(3, d.td_maxwin);
  w.U64(4, d.td_maxack);
  w.U64(5, d.td_scale);
  w.U64(6, d.flags);
  w.End(len);
}

void PutCounters(Writer& w, uint32_t field, const FlowCounters& c) {
  uint8_t* len = w.Begin(field);
  w.U64(1, c.packets);
  w.U64(2, c.bytes);
  w.End(len);
}

}  // namespace

bool AppendFlowWire(const Flow& f, Nanos now, Nanos wall_now, const FlowExtras& extras,
                    std::string* out, bool with_original) {
  if (extras.ftp_state != nullptr || extras.expectation != nullptr) return false;
  uint8_t buf[kMaxWireBytes];
  Writer w(buf);
  if (with_original) PutTuple(w, 1, f.tuple[0]);
  PutTuple(w, 2, f.tuple[1]);
  w.U64(3, f.status);
  w.U64(4, f.zone);
  w.U64(5, f.mark);
  w.I64(6, std::max<Nanos>(0, f.expires - now) / kNanosPerMilli);
  w.I64(7, wall_now / kNanosPerMilli);
  if (f.proto() == kProtoTcp) {
    uint8_t* len = w.Begin(8);
    w.U64(1, static_cast<uint32_t>(f.tcp.state));
    PutDir(w, 2, f.tcp.seen[0]);
    PutDir(w, 3, f.tcp.seen[1]);
    w.U64(4, f.tcp.last_dir);
    w.U64(5, f.tcp.retrans);
    w.U64(6, f.tcp.last_index);
    w.U64(7, f.tcp.last_seq);
    w.U64(8, f.tcp.last_ack);
    w.U64(9, f.tcp.last_end);
    w.U64(10, f.tcp.last_win);
    w.U64(11, f.tcp.last_wscale);
    w.U64(12, f.tcp.last_flags);
    w.End(len);
  }
  if (f.helper == FlowHelper::kFtp) w.Bytes(9, "ftp", 3);
  if (extras.master != nullptr) PutTuple(w, 10, *extras.master);
  PutCounters(w, 11, extras.CountersOrZero().dir[0]);
  PutCounters(w, 12, extras.CountersOrZero().dir[1]);
  w.U64(13, f.id);
  if (extras.seq_adjust != nullptr) {
    for (const SeqAdjustDir& d : extras.seq_adjust->dir) {
      uint8_t* len = w.Begin(14);
      w.U64(1, d.correction_pos);
      w.I64(2, d.offset_before);
      w.I64(3, d.offset_after);
      w.End(len);
    }
  }
  w.I64(17, (wall_now - (now - f.created)) / kNanosPerMilli);
  out->append(reinterpret_cast<const char*>(buf), static_cast<size_t>(w.end() - buf));
  return true;
}

}  // namespace ctsync::codec

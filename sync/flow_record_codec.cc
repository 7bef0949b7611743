#include "sync/flow_record_codec.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace ctsync::sync {
namespace {

// Record layout (all integers varints unless said otherwise, "zz" = zigzag):
//
//   len     bytes of the record after this field (a later format may append fields: a
//           reader skips what it does not know)
//   kind    bits 0-1 type (1 NEW, 2 UPDATE, 3 DESTROY), bit 2 IPv6, bit 3 original dst =
//           previous record's, bit 4 extension mask follows, bits 5-6 reply form, bit 7 NAT
//           address = previous record's
//   proto   1 byte
//   original src, dst (unless bit 3): 4 or 16 bytes; sport, dport: 2 bytes big-endian
//   reply   form 0: mirrors the original (no NAT)
//           form 1 (SNAT): reply dst (unless bit 7) and dport; the rest mirrors
//           form 2 (DNAT): reply src (unless bit 7) and sport; the rest mirrors
//           form 3: src, dst, sport, dport
//   ext     (bit 4) mask: kExt* below
//   DESTROY ends here (zone from ext).
//   status  XOR previous record's status
//   timeout zz(timeout_ms - previous), age zz(age_ms - previous) where age = wall time -
//           creation wall time, id zz(id - previous)
//   ext fields in bit order: zone, mark, helper (1 = ftp), master tuple (1 byte IPv6 flag,
//           proto, src, dst, sport, dport), counters (4 varints), seq_adjust (per direction
//           correction_pos, zz(offset_before), zz(offset_after)), helper data (length +
//           a serialized ctsync.proto.Flow holding only `ftp` and `expectations`: rare,
//           so kept in protobuf form)
//   TCP     byte: state (bits 0-3), last_dir (bit 4), maxend predictor per direction
//           (bits 5, 6); retrans, last_index, last_win, last_wscale, last_flags;
//           byte: td_scale original | reply << 4; td_end original, reply: 4 bytes BE;
//           per direction: td_maxwin, zz(td_maxack - other td_end), flags byte;
//           per direction: zz(td_maxend - predictor), predictor 0: td_end + td_maxwin,
//           1: other td_maxack + other td_maxwin (the kernel sets td_maxend from the peer's
//           ack + window); zz(last_seq - td_end[last_dir]), zz(last_ack -
//           td_end[!last_dir]), zz(last_end - last_seq)
constexpr uint8_t kKindIpv6 = 1 << 2;
constexpr uint8_t kKindSameDst = 1 << 3;
constexpr uint8_t kKindExt = 1 << 4;
constexpr int kKindFormShift = 5;
constexpr uint8_t kKindSameNat = 1 << 7;

constexpr uint32_t kExtZone = 1 << 0;
constexpr uint32_t kExtMark = 1 << 1;
constexpr uint32_t kExtHelper = 1 << 2;
constexpr uint32_t kExtMaster = 1 << 3;
constexpr uint32_t kExtCounters = 1 << 4;
constexpr uint32_t kExtSeqAdjust = 1 << 5;
constexpr uint32_t kExtHelperData = 1 << 6;
constexpr uint32_t kExtKnown = (1 << 7) - 1;

enum ReplyForm : uint8_t { kMirror = 0, kSnat = 1, kDnat = 2, kFull = 3 };

uint64_t Zz(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
int64_t Unzz(uint64_t z) { return static_cast<int64_t>((z >> 1) ^ (0 - (z & 1))); }
// 32-bit sequence arithmetic: differences mod 2^32, sent as signed.
uint64_t Zz32(uint32_t delta) { return Zz(static_cast<int32_t>(delta)); }

// Writes `v` as a varint at `out` (up to 10 bytes); returns its length.
size_t PutVarint(uint64_t v, char* out) {
  size_t n = 0;
  while (v >= 0x80) {
    out[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  out[n++] = static_cast<char>(v);
  return n;
}

// Builds one record in a stack buffer and appends it to the batch with its length prefix
// in one go: byte-by-byte appends to the batch string cost more than the encoding itself.
// A record's fixed fields need at most ~460 bytes (IPv6, every extension but helper data,
// TCP, 10-byte varints); only helper data is unbounded, and Raw spills to the heap for it.
class Writer {
 public:
  void Byte(uint8_t b) { buf_[n_++] = static_cast<char>(b); }
  void Varint(uint64_t v) { n_ += PutVarint(v, buf_ + n_); }
  void Be16(uint32_t v) {
    Byte(static_cast<uint8_t>(v >> 8));
    Byte(static_cast<uint8_t>(v));
  }
  void Be32(uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) Byte(static_cast<uint8_t>(v >> s));
  }
  void Raw(std::string_view s) {
    if (s.size() <= kInlineRaw) {
      std::memcpy(buf_ + n_, s.data(), s.size());
      n_ += s.size();
      return;
    }
    spill_.append(buf_, n_);
    spill_.append(s);
    n_ = 0;
  }
  // Appends the length-prefixed record to *out.
  void AppendTo(std::string* out) {
    std::string_view body(buf_, n_);
    if (!spill_.empty()) {
      spill_.append(buf_, n_);
      body = spill_;
    }
    char prefix[10];
    out->append(prefix, PutVarint(body.size(), prefix));
    out->append(body);
  }

 private:
  static constexpr size_t kInlineRaw = 16;  // addresses
  static constexpr size_t kCapacity = 640;
  char buf_[kCapacity];
  size_t n_ = 0;
  std::string spill_;
};

class Reader {
 public:
  Reader(const char* p, const char* end) : p_(p), end_(end) {}
  bool Byte(uint8_t* v) {
    if (p_ == end_) return false;
    *v = static_cast<uint8_t>(*p_++);
    return true;
  }
  bool Varint(uint64_t* v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return false;
      const uint8_t b = static_cast<uint8_t>(*p_++);
      r |= uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80)) {
        *v = r;
        return true;
      }
    }
    return false;
  }
  // A varint that must fit 32 bits (larger values are malformed, not truncated).
  bool Varint32(uint32_t* v) {
    uint64_t r;
    if (!Varint(&r) || r > UINT32_MAX) return false;
    *v = static_cast<uint32_t>(r);
    return true;
  }
  bool Be16(uint32_t* v) {
    if (end_ - p_ < 2) return false;
    *v = (uint32_t{static_cast<uint8_t>(p_[0])} << 8) | static_cast<uint8_t>(p_[1]);
    p_ += 2;
    return true;
  }
  bool Be32(uint32_t* v) {
    if (end_ - p_ < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) *v = (*v << 8) | static_cast<uint8_t>(*p_++);
    return true;
  }
  bool Raw(size_t n, std::string* out) {
    if (static_cast<size_t>(end_ - p_) < n) return false;
    out->assign(p_, n);
    p_ += n;
    return true;
  }
  bool Addr(size_t n, IpAddress* out) {
    if (static_cast<size_t>(end_ - p_) < n) return false;
    std::memcpy(out->bytes.data(), p_, n);
    p_ += n;
    return true;
  }
  const char* pos() const { return p_; }

 private:
  const char* p_;
  const char* end_;
};

// A tuple address as the record carries it: 4 bytes for IPv4, 16 for IPv6 (as TupleToProto).
std::string_view AddrBytes(const IpAddress& a, const Tuple& t) {
  return {reinterpret_cast<const char*>(a.bytes.data()), t.family == Family::kIpv6 ? 16u : 4u};
}

void WriteTuple(Writer& w, const Tuple& t) {
  w.Byte(t.family == Family::kIpv6 ? 1 : 0);
  w.Byte(t.proto);
  w.Raw(AddrBytes(t.src, t));
  w.Raw(AddrBytes(t.dst, t));
  w.Be16(t.sport);
  w.Be16(t.dport);
}

bool ReadTuple(Reader& r, Tuple* t) {
  uint8_t v6, proto;
  uint32_t sport, dport;
  if (!r.Byte(&v6) || v6 > 1 || !r.Byte(&proto)) return false;
  const size_t n = v6 ? 16 : 4;
  if (!r.Addr(n, &t->src) || !r.Addr(n, &t->dst) || !r.Be16(&sport) || !r.Be16(&dport))
    return false;
  t->family = v6 ? Family::kIpv6 : Family::kIpv4;
  t->proto = proto;
  t->sport = static_cast<uint16_t>(sport);
  t->dport = static_cast<uint16_t>(dport);
  return true;
}

bool SameAddr(const char* saved, uint8_t len, std::string_view a) {
  return len == a.size() && std::memcmp(saved, a.data(), len) == 0;
}

void Save(char* saved, uint8_t* len, std::string_view a) {
  std::memcpy(saved, a.data(), a.size());
  *len = static_cast<uint8_t>(a.size());
}

// Encodes the tuples and returns the kind byte's address/reply bits.
uint8_t PlanTuples(const Tuple& o, const Tuple& r, const RecordContext& ctx, ReplyForm* form) {
  const bool src_mirrors = AddrBytes(r.src, r) == AddrBytes(o.dst, o) && r.sport == o.dport;
  const bool dst_mirrors = AddrBytes(r.dst, r) == AddrBytes(o.src, o) && r.dport == o.sport;
  *form = src_mirrors && dst_mirrors ? kMirror
          : src_mirrors              ? kSnat
          : dst_mirrors              ? kDnat
                                     : kFull;
  uint8_t kind = static_cast<uint8_t>(*form << kKindFormShift);
  if (o.family == Family::kIpv6) kind |= kKindIpv6;
  if (SameAddr(ctx.dst, ctx.dst_len, AddrBytes(o.dst, o))) kind |= kKindSameDst;
  if ((*form == kSnat && SameAddr(ctx.nat, ctx.nat_len, AddrBytes(r.dst, r))) ||
      (*form == kDnat && SameAddr(ctx.nat, ctx.nat_len, AddrBytes(r.src, r)))) {
    kind |= kKindSameNat;
  }
  return kind;
}

void WriteTcp(Writer& w, const TcpConnState& t) {
  const TcpDirState* d[2] = {&t.seen[0], &t.seen[1]};
  uint32_t pred[2][2];  // [direction][predictor]
  bool sel[2];
  for (int i = 0; i < 2; ++i) {
    pred[i][0] = d[i]->td_end + d[i]->td_maxwin;
    pred[i][1] = d[1 - i]->td_maxack + d[1 - i]->td_maxwin;
    const uint64_t z0 = Zz32(d[i]->td_maxend - pred[i][0]);
    const uint64_t z1 = Zz32(d[i]->td_maxend - pred[i][1]);
    sel[i] = z1 < z0;
  }
  w.Byte(static_cast<uint8_t>((static_cast<uint32_t>(t.state) & 0xf) | (t.last_dir & 1) << 4 |
                              sel[0] << 5 | sel[1] << 6));
  w.Varint(t.retrans);
  w.Varint(t.last_index);
  w.Varint(t.last_win);
  w.Varint(t.last_wscale);
  w.Varint(t.last_flags);
  w.Byte(static_cast<uint8_t>((d[0]->td_scale & 0xf) | (d[1]->td_scale & 0xf) << 4));
  w.Be32(d[0]->td_end);
  w.Be32(d[1]->td_end);
  for (int i = 0; i < 2; ++i) {
    w.Varint(d[i]->td_maxwin);
    w.Varint(Zz32(d[i]->td_maxack - d[1 - i]->td_end));
    w.Byte(d[i]->flags);
  }
  for (int i = 0; i < 2; ++i) w.Varint(Zz32(d[i]->td_maxend - pred[i][sel[i]]));
  const int ld = t.last_dir & 1;
  w.Varint(Zz32(t.last_seq - d[ld]->td_end));
  w.Varint(Zz32(t.last_ack - d[1 - ld]->td_end));
  w.Varint(Zz32(t.last_end - t.last_seq));
}

}  // namespace

void AppendFlowRecord(const FlowEvent& e, Nanos now, Nanos wall_now, RecordContext* ctx,
                      std::string* out) {
  // Written straight from the engine's Flow: the same values FlowToProto would put in the
  // message (the decoder reads them back through it), without building one per event.
  const Flow& f = e.flow;
  const bool destroy = e.type == FlowEventType::kDestroy;
  const Tuple& o = f.tuple[0];
  // A DESTROY names its key only: the reply is sent as a mirror.
  Tuple mirror;
  if (destroy) {
    mirror = o;
    std::swap(mirror.src, mirror.dst);
    std::swap(mirror.sport, mirror.dport);
  }
  const Tuple& r = destroy ? mirror : f.tuple[1];
  uint32_t ext = 0;
  if (f.zone != 0) ext |= kExtZone;
  if (!destroy) {
    if (f.mark != 0) ext |= kExtMark;
    if (f.helper == FlowHelper::kFtp) ext |= kExtHelper;
    if (e.has_master) ext |= kExtMaster;
    if (e.has_counters && e.counters != FlowAccounting{}) ext |= kExtCounters;
    if (e.has_seq_adjust) ext |= kExtSeqAdjust;
    if (e.has_ftp_state || e.has_expectation) ext |= kExtHelperData;
  }
  ReplyForm form;
  uint8_t kind = PlanTuples(o, r, *ctx, &form);
  kind |= destroy ? 3 : e.type == FlowEventType::kUpdate ? 2 : 1;
  if (ext) kind |= kKindExt;

  Writer w;
  w.Byte(kind);
  w.Byte(o.proto);
  w.Raw(AddrBytes(o.src, o));
  if (!(kind & kKindSameDst)) w.Raw(AddrBytes(o.dst, o));
  Save(ctx->dst, &ctx->dst_len, AddrBytes(o.dst, o));
  w.Be16(o.sport);
  w.Be16(o.dport);
  switch (form) {
    case kMirror:
      break;
    case kSnat:
      if (!(kind & kKindSameNat)) w.Raw(AddrBytes(r.dst, r));
      Save(ctx->nat, &ctx->nat_len, AddrBytes(r.dst, r));
      w.Be16(r.dport);
      break;
    case kDnat:
      if (!(kind & kKindSameNat)) w.Raw(AddrBytes(r.src, r));
      Save(ctx->nat, &ctx->nat_len, AddrBytes(r.src, r));
      w.Be16(r.sport);
      break;
    case kFull:
      w.Raw(AddrBytes(r.src, r));
      w.Raw(AddrBytes(r.dst, r));
      w.Be16(r.sport);
      w.Be16(r.dport);
      break;
  }
  if (ext) w.Varint(ext);
  if (destroy) {
    if (ext & kExtZone) w.Varint(f.zone);
  } else {
    w.Varint(f.status ^ ctx->status);
    ctx->status = f.status;
    const int64_t timeout_ms = std::max<Nanos>(0, f.expires - now) / kNanosPerMilli;
    w.Varint(Zz(timeout_ms - ctx->timeout_ms));
    ctx->timeout_ms = timeout_ms;
    // As the message's wall_time_ms - created_wall_ms, each rounded on its own.
    const int64_t age = wall_now / kNanosPerMilli - (wall_now - (now - f.created)) / kNanosPerMilli;
    w.Varint(Zz(age - ctx->age_ms));
    ctx->age_ms = age;
    w.Varint(Zz(static_cast<int64_t>(f.id - ctx->id)));
    ctx->id = f.id;
    if (ext & kExtZone) w.Varint(f.zone);
    if (ext & kExtMark) w.Varint(f.mark);
    if (ext & kExtHelper) w.Varint(1);  // ftp, the only helper there is
    if (ext & kExtMaster) WriteTuple(w, e.master);
    if (ext & kExtCounters) {
      for (const FlowCounters& c : e.counters.dir) {
        w.Varint(c.packets);
        w.Varint(c.bytes);
      }
    }
    if (ext & kExtSeqAdjust) {
      for (const SeqAdjustDir& d : e.seq_adjust.dir) {
        w.Varint(d.correction_pos);
        w.Varint(Zz(d.offset_before));
        w.Varint(Zz(d.offset_after));
      }
    }
    if (ext & kExtHelperData) {
      // Rare (FTP control connections): the helper state keeps its protobuf form.
      proto::Flow helper_data;
      codec::HelperStateToProto(codec::ExtrasOf(e), now, o.family, &helper_data);
      const std::string bytes = helper_data.SerializeAsString();
      w.Varint(bytes.size());
      w.Raw(bytes);
    }
    if (o.proto == kProtoTcp) WriteTcp(w, f.tcp);
  }
  w.AppendTo(out);
}

absl::Status ReadFlowRecord(std::string_view records, size_t* pos, int64_t batch_wall_ms,
                            Nanos now, Nanos age, RecordContext* ctx, proto::Flow* scratch,
                            PeerFlowUpdate* out) {
  const auto malformed = [&](const char* what) {
    // The context of the following records is unknown now: give up on the batch.
    *pos = records.size();
    return absl::InvalidArgumentError(absl::StrCat("flow record: ", what));
  };
  Reader head(records.data() + *pos, records.data() + records.size());
  uint64_t len;
  if (!head.Varint(&len) ||
      len > static_cast<uint64_t>(records.data() + records.size() - head.pos())) {
    return malformed("truncated");
  }
  const char* rec = head.pos();
  *pos = static_cast<size_t>(rec - records.data()) + len;
  Reader r(rec, rec + len);

  // The record is read whole into plain values first (a framing error ends the batch),
  // then checked and converted by the codec's shared pieces (a bad value skips the record).
  uint8_t kind, proto;
  if (!r.Byte(&kind) || !r.Byte(&proto)) return malformed("truncated header");
  const uint8_t type = kind & 3;
  if (type == 0) return malformed("type 0");
  const bool v6 = kind & kKindIpv6;
  const size_t n = v6 ? 16 : 4;
  const auto form = static_cast<ReplyForm>((kind >> kKindFormShift) & 3);
  Tuple o;
  o.family = v6 ? Family::kIpv6 : Family::kIpv4;
  o.proto = proto;
  if (!r.Addr(n, &o.src)) return malformed("truncated address");
  if (kind & kKindSameDst) {
    if (ctx->dst_len != n) return malformed("no previous destination");
    std::memcpy(o.dst.bytes.data(), ctx->dst, n);
  } else if (!r.Addr(n, &o.dst)) {
    return malformed("truncated address");
  }
  Save(ctx->dst, &ctx->dst_len, AddrBytes(o.dst, o));
  uint32_t sport, dport;
  if (!r.Be16(&sport) || !r.Be16(&dport)) return malformed("truncated ports");
  o.sport = static_cast<uint16_t>(sport);
  o.dport = static_cast<uint16_t>(dport);
  Tuple rt = o;
  std::swap(rt.src, rt.dst);
  std::swap(rt.sport, rt.dport);
  const auto read_nat = [&](IpAddress* addr) {
    if (kind & kKindSameNat) {
      if (ctx->nat_len != n) return false;
      std::memcpy(addr->bytes.data(), ctx->nat, n);
    } else if (!r.Addr(n, addr)) {
      return false;
    }
    Save(ctx->nat, &ctx->nat_len, AddrBytes(*addr, o));
    return true;
  };
  uint32_t p;
  switch (form) {
    case kMirror:
      break;
    case kSnat:
      if (!read_nat(&rt.dst) || !r.Be16(&p)) return malformed("bad NAT binding");
      rt.dport = static_cast<uint16_t>(p);
      break;
    case kDnat:
      if (!read_nat(&rt.src) || !r.Be16(&p)) return malformed("bad NAT binding");
      rt.sport = static_cast<uint16_t>(p);
      break;
    case kFull:
      if (!r.Addr(n, &rt.src) || !r.Addr(n, &rt.dst) || !r.Be16(&sport) || !r.Be16(&dport)) {
        return malformed("truncated reply tuple");
      }
      rt.sport = static_cast<uint16_t>(sport);
      rt.dport = static_cast<uint16_t>(dport);
      break;
  }
  uint32_t ext = 0;
  if ((kind & kKindExt) && !r.Varint32(&ext)) return malformed("truncated extension mask");
  // Extensions this format does not know change how the rest is laid out: refuse the batch.
  if (ext & ~kExtKnown) return malformed("unknown extension");
  uint32_t zone = 0;
  if (type == 3) {
    if ((ext & kExtZone) && !r.Varint32(&zone)) return malformed("truncated zone");
    if (ext & ~kExtZone) return malformed("extension on a destroy");
    out->type = FlowEventType::kDestroy;
    out->original = o;
    if (zone > 0xffff) return absl::InvalidArgumentError("zone out of range");
    out->zone = static_cast<uint16_t>(zone);
    out->decoded.Clear();
    return absl::OkStatus();
  }
  out->type = type == 1 ? FlowEventType::kNew : FlowEventType::kUpdate;
  uint64_t status, timeout, age_z, id;
  if (!r.Varint(&status) || status > UINT32_MAX || !r.Varint(&timeout) || !r.Varint(&age_z) ||
      !r.Varint(&id)) {
    return malformed("truncated flow fields");
  }
  ctx->status ^= static_cast<uint32_t>(status);
  // Wrapping arithmetic: a hostile delta may be anything; the codec range-checks the result.
  ctx->timeout_ms = static_cast<int64_t>(static_cast<uint64_t>(ctx->timeout_ms) +
                                         static_cast<uint64_t>(Unzz(timeout)));
  ctx->age_ms = static_cast<int64_t>(static_cast<uint64_t>(ctx->age_ms) +
                                     static_cast<uint64_t>(Unzz(age_z)));
  ctx->id += static_cast<uint64_t>(Unzz(id));
  codec::FlowScalars scalars;
  scalars.status = ctx->status;
  scalars.timeout_ms = ctx->timeout_ms;
  scalars.wall_time_ms = batch_wall_ms;
  if (__builtin_sub_overflow(batch_wall_ms, ctx->age_ms, &scalars.created_wall_ms))
    return absl::InvalidArgumentError("creation time out of range");
  scalars.id = ctx->id;
  if (ext & kExtZone) {
    if (!r.Varint32(&zone)) return malformed("truncated zone");
    scalars.zone = zone;
  }
  uint32_t v;
  if (ext & kExtMark) {
    if (!r.Varint32(&v)) return malformed("truncated mark");
    scalars.mark = v;
  }
  if (ext & kExtHelper) {
    if (!r.Varint32(&v)) return malformed("truncated helper");
    if (v != 1) return absl::InvalidArgumentError(absl::StrCat("unknown helper ", v));
  }
  std::optional<Tuple> master;
  if (ext & kExtMaster) {
    master.emplace();
    if (!ReadTuple(r, &*master)) return malformed("bad master");
  }
  FlowAccounting counters;
  if (ext & kExtCounters) {
    for (FlowCounters& c : counters.dir)
      if (!r.Varint(&c.packets) || !r.Varint(&c.bytes)) return malformed("truncated counters");
  }
  std::optional<SeqAdjust> seq_adjust;
  if (ext & kExtSeqAdjust) {
    seq_adjust.emplace();
    for (SeqAdjustDir& d : seq_adjust->dir) {
      uint64_t before, after;
      if (!r.Varint32(&d.correction_pos) || !r.Varint(&before) || !r.Varint(&after))
        return malformed("truncated seq_adjust");
      const int64_t b = Unzz(before), a = Unzz(after);
      if (b < INT32_MIN || b > INT32_MAX || a < INT32_MIN || a > INT32_MAX)
        return absl::InvalidArgumentError("seq_adjust offset out of range");
      d.offset_before = static_cast<int32_t>(b);
      d.offset_after = static_cast<int32_t>(a);
    }
  }
  const bool helper_data = ext & kExtHelperData;
  if (helper_data) {
    // Rare (FTP control connections): kept as a message, checked by the codec below.
    uint32_t len;
    std::string bytes;
    if (!r.Varint32(&len) || !r.Raw(len, &bytes)) return malformed("truncated helper data");
    if (!scratch->ParseFromString(bytes))
      return absl::InvalidArgumentError("helper data does not parse");
  }
  codec::TcpScalars tcp;
  if (proto == kProtoTcp) {
    uint8_t b0, scales;
    uint32_t retrans, last_index, last_win, last_wscale, last_flags, end[2];
    if (!r.Byte(&b0) || !r.Varint32(&retrans) || !r.Varint32(&last_index) ||
        !r.Varint32(&last_win) || !r.Varint32(&last_wscale) || !r.Varint32(&last_flags) ||
        !r.Byte(&scales) || !r.Be32(&end[0]) || !r.Be32(&end[1])) {
      return malformed("truncated tcp state");
    }
    tcp.retrans = retrans;
    tcp.last_index = last_index;
    tcp.last_win = last_win;
    tcp.last_wscale = last_wscale;
    tcp.last_flags = last_flags;
    codec::TcpScalars::Dir* d = tcp.dir;
    tcp.state = b0 & 0xf;
    const int ld = (b0 >> 4) & 1;
    tcp.last_dir = ld;
    for (int i = 0; i < 2; ++i) {
      d[i].td_end = end[i];
      d[i].td_scale = i == 0 ? scales & 0xf : scales >> 4;
    }
    for (int i = 0; i < 2; ++i) {
      uint64_t maxack;
      uint8_t flags;
      if (!r.Varint32(&d[i].td_maxwin) || !r.Varint(&maxack) || !r.Byte(&flags))
        return malformed("truncated tcp direction");
      d[i].td_maxack = end[1 - i] + static_cast<uint32_t>(Unzz(maxack));
      d[i].flags = flags;
    }
    for (int i = 0; i < 2; ++i) {
      uint64_t z;
      if (!r.Varint(&z)) return malformed("truncated tcp direction");
      const bool sel = (b0 >> (5 + i)) & 1;
      const uint32_t pred = sel ? d[1 - i].td_maxack + d[1 - i].td_maxwin
                                : d[i].td_end + d[i].td_maxwin;
      d[i].td_maxend = pred + static_cast<uint32_t>(Unzz(z));
    }
    uint64_t seq, ack, last_end;
    if (!r.Varint(&seq) || !r.Varint(&ack) || !r.Varint(&last_end))
      return malformed("truncated tcp state");
    tcp.last_seq = end[ld] + static_cast<uint32_t>(Unzz(seq));
    tcp.last_ack = end[1 - ld] + static_cast<uint32_t>(Unzz(ack));
    tcp.last_end = tcp.last_seq + static_cast<uint32_t>(Unzz(last_end));
  }
  // Bytes left in the record are fields of a later format: skipped.

  codec::DecodedFlow& decoded = out->decoded;
  decoded.Clear();
  Flow& f = decoded.flow;
  f.tuple[0] = o;
  f.tuple[1] = rt;
  if (absl::Status s = codec::ScalarsToFlow(scalars, now, age, &decoded); !s.ok()) return s;
  if (proto == kProtoTcp) {
    if (absl::Status s = codec::TcpScalarsToState(tcp, &f.tcp); !s.ok()) return s;
  }
  if (ext & kExtHelper) f.helper = FlowHelper::kFtp;
  decoded.master_tuple = master;
  decoded.counters = counters;
  decoded.seq_adjust = seq_adjust;
  if (helper_data) {
    if (absl::Status s = codec::HelperStateFromProto(*scratch, now, age, &decoded); !s.ok())
      return s;
  }
  out->original = o;
  out->zone = f.zone;
  return absl::OkStatus();
}

}  // namespace ctsync::sync

#include "sync/flow_update_codec.h"

#include "absl/strings/str_cat.h"

namespace ctsync::sync {
namespace {

uint32_t FamilyOfLength(size_t n) {
  if (n == 4) return static_cast<uint32_t>(Family::kIpv4);
  if (n == 16) return static_cast<uint32_t>(Family::kIpv6);
  return 0;
}

// Clears what the receiver can rebuild and returns the bits that say so.
uint32_t Elide(int64_t batch_wall_ms, proto::Flow* f) {
  uint32_t implied = 0;
  proto::Tuple* o = f->mutable_original();
  proto::Tuple* r = f->mutable_reply();
  if (r->family() == o->family() && r->proto() == o->proto()) {
    implied |= kImpliedReplyFamilyProto;
    r->clear_family();
    r->clear_proto();
  }
  if (r->src() == o->dst()) {
    implied |= kImpliedReplySrc;
    r->clear_src();
  }
  if (r->dst() == o->src()) {
    implied |= kImpliedReplyDst;
    r->clear_dst();
  }
  if (r->sport() == o->dport()) {
    implied |= kImpliedReplySport;
    r->clear_sport();
  }
  if (r->dport() == o->sport()) {
    implied |= kImpliedReplyDport;
    r->clear_dport();
  }
  if (o->family() == FamilyOfLength(o->src().size())) {
    implied |= kImpliedFamily;
    o->clear_family();
  }
  if (f->wall_time_ms() == batch_wall_ms) implied |= kImpliedWallTime;
  // Empty counters cost two bytes each as present-but-empty submessages.
  if (f->counters_original().packets() == 0 && f->counters_original().bytes() == 0)
    f->clear_counters_original();
  if (f->counters_reply().packets() == 0 && f->counters_reply().bytes() == 0)
    f->clear_counters_reply();
  return implied;
}

void Restore(uint32_t implied, int64_t batch_wall_ms, uint32_t created_age_ms,
             proto::Flow* f) {
  proto::Tuple* o = f->mutable_original();
  proto::Tuple* r = f->mutable_reply();
  if (implied & kImpliedFamily) o->set_family(FamilyOfLength(o->src().size()));
  if (implied & kImpliedReplyFamilyProto) {
    r->set_family(o->family());
    r->set_proto(o->proto());
  }
  if (implied & kImpliedReplySrc) r->set_src(o->dst());
  if (implied & kImpliedReplyDst) r->set_dst(o->src());
  if (implied & kImpliedReplySport) r->set_sport(o->dport());
  if (implied & kImpliedReplyDport) r->set_dport(o->sport());
  if (implied & kImpliedWallTime) {
    f->set_wall_time_ms(batch_wall_ms);
    // Saturating: the batch's wall time comes from a peer and may be anything.
    const int64_t created = batch_wall_ms < INT64_MIN + int64_t{created_age_ms}
                                ? INT64_MIN
                                : batch_wall_ms - int64_t{created_age_ms};
    f->set_created_wall_ms(created);
  }
}

// Packed TCP state. Sequence numbers are random 32-bit values (five varint bytes each), but
// within one flow they sit close to each other, so all but the two td_end values are sent as
// zigzag deltas (mod 2^32) against a related one:
//   varints: state, last_dir, retrans, last_index, last_win, last_wscale, last_flags
//   fixed32 (big-endian) x2: td_end of original, reply
//   per direction d: zz(td_maxend - td_end[d]), td_maxwin, zz(td_maxack - td_end[!d]),
//                    td_scale, flags
//   zz(last_seq - td_end[last_dir]), zz(last_ack - td_end[!last_dir]),
//   zz(last_end - last_seq)
// Every value is range-checked again by the flow codec after unpacking.
void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

uint32_t Zigzag(uint32_t delta) {
  const int32_t d = static_cast<int32_t>(delta);
  return (static_cast<uint32_t>(d) << 1) ^ static_cast<uint32_t>(d >> 31);
}

uint32_t Unzigzag(uint32_t z) { return (z >> 1) ^ (0u - (z & 1)); }

void PackTcp(const proto::TcpState& t, std::string* out) {
  const proto::TcpDirState* dir[2] = {&t.original(), &t.reply()};
  for (uint32_t v : {t.state(), t.last_dir(), t.retrans(), t.last_index(), t.last_win(),
                     t.last_wscale(), t.last_flags()}) {
    PutVarint(out, v);
  }
  for (const proto::TcpDirState* d : dir) {
    for (int shift = 24; shift >= 0; shift -= 8)
      out->push_back(static_cast<char>(d->td_end() >> shift));
  }
  for (int d = 0; d < 2; ++d) {
    PutVarint(out, Zigzag(dir[d]->td_maxend() - dir[d]->td_end()));
    PutVarint(out, dir[d]->td_maxwin());
    PutVarint(out, Zigzag(dir[d]->td_maxack() - dir[1 - d]->td_end()));
    PutVarint(out, dir[d]->td_scale());
    PutVarint(out, dir[d]->flags());
  }
  const int ld = t.last_dir() & 1;
  PutVarint(out, Zigzag(t.last_seq() - dir[ld]->td_end()));
  PutVarint(out, Zigzag(t.last_ack() - dir[1 - ld]->td_end()));
  PutVarint(out, Zigzag(t.last_end() - t.last_seq()));
}

class Reader {
 public:
  explicit Reader(const std::string& s) : p_(s.data()), end_(s.data() + s.size()) {}
  bool Varint(uint32_t* v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 35; shift += 7) {
      if (p_ == end_) return false;
      const uint8_t b = static_cast<uint8_t>(*p_++);
      r |= uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80)) {
        if (r > UINT32_MAX) return false;
        *v = static_cast<uint32_t>(r);
        return true;
      }
    }
    return false;
  }
  bool Fixed32(uint32_t* v) {
    if (end_ - p_ < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) *v = (*v << 8) | static_cast<uint8_t>(*p_++);
    return true;
  }
  bool done() const { return p_ == end_; }

 private:
  const char* p_;
  const char* end_;
};

bool UnpackTcp(const std::string& in, proto::TcpState* t) {
  Reader r(in);
  uint32_t v[7];
  for (uint32_t& x : v)
    if (!r.Varint(&x)) return false;
  t->set_state(v[0]);
  t->set_last_dir(v[1]);
  t->set_retrans(v[2]);
  t->set_last_index(v[3]);
  t->set_last_win(v[4]);
  t->set_last_wscale(v[5]);
  t->set_last_flags(v[6]);
  proto::TcpDirState* dir[2] = {t->mutable_original(), t->mutable_reply()};
  uint32_t end[2];
  for (int d = 0; d < 2; ++d) {
    if (!r.Fixed32(&end[d])) return false;
    dir[d]->set_td_end(end[d]);
  }
  for (int d = 0; d < 2; ++d) {
    uint32_t maxend, maxwin, maxack, scale, flags;
    if (!r.Varint(&maxend) || !r.Varint(&maxwin) || !r.Varint(&maxack) || !r.Varint(&scale) ||
        !r.Varint(&flags)) {
      return false;
    }
    dir[d]->set_td_maxend(end[d] + Unzigzag(maxend));
    dir[d]->set_td_maxwin(maxwin);
    dir[d]->set_td_maxack(end[1 - d] + Unzigzag(maxack));
    dir[d]->set_td_scale(scale);
    dir[d]->set_flags(flags);
  }
  uint32_t seq, ack, last_end;
  if (!r.Varint(&seq) || !r.Varint(&ack) || !r.Varint(&last_end) || !r.done()) return false;
  const int ld = t->last_dir() & 1;
  t->set_last_seq(end[ld] + Unzigzag(seq));
  t->set_last_ack(end[1 - ld] + Unzigzag(ack));
  t->set_last_end(t->last_seq() + Unzigzag(last_end));
  return true;
}

}  // namespace

void EncodeFlowUpdate(const FlowEvent& e, Nanos now, Nanos wall_now, int64_t batch_wall_ms,
                      proto::FlowUpdate* out) {
  out->Clear();
  switch (e.type) {
    case FlowEventType::kNew:
      out->set_type(proto::FlowUpdate::NEW);
      break;
    case FlowEventType::kUpdate:
      out->set_type(proto::FlowUpdate::UPDATE);
      break;
    case FlowEventType::kDestroy:
      out->set_type(proto::FlowUpdate::DESTROY);
      codec::TupleToProto(e.flow.tuple[0], out->mutable_original());
      out->set_zone(e.flow.zone);
      if (out->original().family() == FamilyOfLength(out->original().src().size())) {
        out->mutable_original()->clear_family();
        out->set_implied(kImpliedFamily);
      }
      return;
  }
  proto::Flow* f = out->mutable_flow();
  codec::FlowToProto(e.flow, now, wall_now, codec::ExtrasOf(e), f);
  const int64_t created_age = f->wall_time_ms() - f->created_wall_ms();
  uint32_t implied = Elide(batch_wall_ms, f);
  if (f->has_tcp()) {
    PackTcp(f->tcp(), out->mutable_tcp_packed());
    f->clear_tcp();
    implied |= kImpliedTcpPacked;
  }
  if ((implied & kImpliedWallTime) && created_age >= 0 && created_age <= UINT32_MAX) {
    f->clear_wall_time_ms();
    f->clear_created_wall_ms();
    out->set_created_age_ms(static_cast<uint32_t>(created_age));
  } else {
    implied &= ~kImpliedWallTime;
  }
  out->set_implied(implied);
}

absl::Status DecodeFlowUpdate(const proto::FlowUpdate& in, int64_t batch_wall_ms, Nanos now,
                              Nanos age, PeerFlowUpdate* out) {
  switch (in.type()) {
    case proto::FlowUpdate::NEW:
      out->type = FlowEventType::kNew;
      break;
    case proto::FlowUpdate::UPDATE:
      out->type = FlowEventType::kUpdate;
      break;
    case proto::FlowUpdate::DESTROY: {
      out->type = FlowEventType::kDestroy;
      proto::Tuple t = in.original();
      if (in.implied() & kImpliedFamily) t.set_family(FamilyOfLength(t.src().size()));
      if (absl::Status s = codec::TupleFromProto(t, &out->original); !s.ok()) return s;
      if (in.zone() > 0xffff) return absl::InvalidArgumentError("zone out of range");
      out->zone = static_cast<uint16_t>(in.zone());
      out->decoded.Clear();
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat("flow update type ", in.type()));
  }
  if (!in.has_flow()) return absl::InvalidArgumentError("flow update without a flow");
  proto::Flow f = in.flow();
  Restore(in.implied(), batch_wall_ms, in.created_age_ms(), &f);
  if ((in.implied() & kImpliedTcpPacked) && !UnpackTcp(in.tcp_packed(), f.mutable_tcp()))
    return absl::InvalidArgumentError("packed tcp state is malformed");
  if (absl::Status s = codec::FlowFromProto(f, now, age, &out->decoded); !s.ok()) return s;
  out->original = out->decoded.flow.tuple[0];
  out->zone = out->decoded.flow.zone;
  return absl::OkStatus();
}

}  // namespace ctsync::sync

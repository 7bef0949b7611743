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
    f->set_created_wall_ms(batch_wall_ms - created_age_ms);
  }
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
  codec::FlowToProto(e.flow, now, wall_now, codec::FlowExtras{}, f);
  const int64_t created_age = f->wall_time_ms() - f->created_wall_ms();
  uint32_t implied = Elide(batch_wall_ms, f);
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
      out->decoded = codec::DecodedFlow{};
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat("flow update type ", in.type()));
  }
  if (!in.has_flow()) return absl::InvalidArgumentError("flow update without a flow");
  proto::Flow f = in.flow();
  Restore(in.implied(), batch_wall_ms, in.created_age_ms(), &f);
  if (absl::Status s = codec::FlowFromProto(f, now, age, &out->decoded); !s.ok()) return s;
  out->original = out->decoded.flow.tuple[0];
  out->zone = out->decoded.flow.zone;
  return absl::OkStatus();
}

}  // namespace ctsync::sync

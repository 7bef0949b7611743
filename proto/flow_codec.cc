#include "proto/flow_codec.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace ctsync::codec {
namespace {

void DirToProto(const TcpDirState& d, proto::TcpDirState* out) {
  out->set_td_end(d.td_end);
  out->set_td_maxend(d.td_maxend);
  out->set_td_maxwin(d.td_maxwin);
  out->set_td_maxack(d.td_maxack);
  out->set_td_scale(d.td_scale);
  out->set_flags(d.flags);
}

}  // namespace

void TupleToProto(const Tuple& t, proto::Tuple* out) {
  const size_t n = t.family == Family::kIpv6 ? 16 : 4;
  out->set_src(std::string(reinterpret_cast<const char*>(t.src.bytes.data()), n));
  out->set_dst(std::string(reinterpret_cast<const char*>(t.dst.bytes.data()), n));
  out->set_sport(t.sport);
  out->set_dport(t.dport);
  out->set_family(static_cast<uint32_t>(t.family));
  out->set_proto(t.proto);
}

absl::Status TupleFromProto(const proto::Tuple& in, Tuple* out) {
  size_t n;
  if (in.family() == static_cast<uint32_t>(Family::kIpv4)) {
    out->family = Family::kIpv4;
    n = 4;
  } else if (in.family() == static_cast<uint32_t>(Family::kIpv6)) {
    out->family = Family::kIpv6;
    n = 16;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("tuple family ", in.family(), " unknown"));
  }
  if (in.src().size() != n || in.dst().size() != n)
    return absl::InvalidArgumentError("tuple address length does not match its family");
  if (in.proto() > 255 || in.sport() > 0xffff || in.dport() > 0xffff)
    return absl::InvalidArgumentError("tuple protocol or port out of range");
  out->src = IpAddress{};
  out->dst = IpAddress{};
  std::copy(in.src().begin(), in.src().end(), out->src.bytes.begin());
  std::copy(in.dst().begin(), in.dst().end(), out->dst.bytes.begin());
  out->sport = static_cast<uint16_t>(in.sport());
  out->dport = static_cast<uint16_t>(in.dport());
  out->proto = static_cast<uint8_t>(in.proto());
  return absl::OkStatus();
}

namespace {

void ExpectationToProto(const Expectation& e, Nanos now, Family family, proto::Expectation* out) {
  TupleToProto(e.tuple, out->mutable_tuple());
  TupleToProto(e.mask, out->mutable_mask());
  out->set_timeout_ms(std::max<Nanos>(0, e.expires - now) / kNanosPerMilli);
  out->set_klass(e.klass);
  if (e.helper == FlowHelper::kFtp) out->set_helper("ftp");
  if (e.nat) {
    out->set_nat(true);
    out->set_saved_addr(e.saved_addr.bytes.data(), family == Family::kIpv4 ? 4 : 16);
    out->set_saved_port(e.saved_port);
    out->set_dir(static_cast<uint32_t>(e.dir));
  }
}

absl::Status ExpectationFromProto(const proto::Expectation& in, const Flow& master, Nanos now,
                                  Nanos age, Expectation* out) {
  if (absl::Status s = TupleFromProto(in.tuple(), &out->tuple); !s.ok())
    return absl::InvalidArgumentError(absl::StrCat("expectation tuple: ", s.message()));
  // A mask is a tuple of all-ones or zero fields; its family says how long addresses are.
  if (absl::Status s = TupleFromProto(in.mask(), &out->mask); !s.ok())
    return absl::InvalidArgumentError(absl::StrCat("expectation mask: ", s.message()));
  if (out->tuple.family != master.family())
    return absl::InvalidArgumentError("expectation family differs from its master's");
  constexpr int64_t kMaxExpectTimeoutMs = int64_t{24} * 3600 * 1000;
  if (in.timeout_ms() < 0 || in.timeout_ms() > kMaxExpectTimeoutMs)
    return absl::InvalidArgumentError("expectation timeout out of range");
  if (in.klass() > 0xff || in.dir() > 1 || in.saved_port() > 0xffff)
    return absl::InvalidArgumentError("expectation fields out of range");
  if (in.helper() != "ftp")
    return absl::InvalidArgumentError(absl::StrCat("expectation of unknown helper '", in.helper(), "'"));
  out->helper = FlowHelper::kFtp;
  out->zone = master.zone;
  out->master = kNoFlow;
  out->master_tuple = master.tuple[0];
  out->klass = static_cast<uint8_t>(in.klass());
  out->expires = now + in.timeout_ms() * kNanosPerMilli - std::max<Nanos>(age, 0);
  if (in.nat()) {
    const size_t len = master.family() == Family::kIpv4 ? 4 : 16;
    if (in.saved_addr().size() != len)
      return absl::InvalidArgumentError("expectation saved address has the wrong length");
    out->nat = true;
    out->saved_addr = IpAddress{};
    std::copy(in.saved_addr().begin(), in.saved_addr().end(), out->saved_addr.bytes.begin());
    out->saved_port = static_cast<uint16_t>(in.saved_port());
    out->dir = static_cast<Direction>(in.dir());
  }
  return absl::OkStatus();
}

}  // namespace

void FlowToProto(const Flow& f, Nanos now, Nanos wall_now, const FlowExtras& extras,
                 proto::Flow* out) {
  out->Clear();
  TupleToProto(f.tuple[0], out->mutable_original());
  TupleToProto(f.tuple[1], out->mutable_reply());
  out->set_status(f.status);
  out->set_zone(f.zone);
  out->set_mark(f.mark);
  out->set_timeout_ms(std::max<Nanos>(0, f.expires - now) / kNanosPerMilli);
  out->set_wall_time_ms(wall_now / kNanosPerMilli);
  out->set_created_wall_ms((wall_now - (now - f.created)) / kNanosPerMilli);
  out->set_id(f.id);
  if (f.proto() == kProtoTcp) {
    proto::TcpState* t = out->mutable_tcp();
    t->set_state(static_cast<uint32_t>(f.tcp.state));
    DirToProto(f.tcp.seen[0], t->mutable_original());
    DirToProto(f.tcp.seen[1], t->mutable_reply());
    t->set_last_dir(f.tcp.last_dir);
    t->set_retrans(f.tcp.retrans);
    t->set_last_index(f.tcp.last_index);
    t->set_last_seq(f.tcp.last_seq);
    t->set_last_ack(f.tcp.last_ack);
    t->set_last_end(f.tcp.last_end);
    t->set_last_win(f.tcp.last_win);
    t->set_last_wscale(f.tcp.last_wscale);
    t->set_last_flags(f.tcp.last_flags);
  }
  if (f.helper == FlowHelper::kFtp) out->set_helper("ftp");
  if (extras.master) TupleToProto(*extras.master, out->mutable_master());
  const FlowAccounting& acct = extras.CountersOrZero();
  out->mutable_counters_original()->set_packets(acct.dir[0].packets);
  out->mutable_counters_original()->set_bytes(acct.dir[0].bytes);
  out->mutable_counters_reply()->set_packets(acct.dir[1].packets);
  out->mutable_counters_reply()->set_bytes(acct.dir[1].bytes);
  if (extras.seq_adjust) {
    for (const SeqAdjustDir& d : extras.seq_adjust->dir) {
      proto::SeqAdjust* s = out->add_seq_adjust();
      s->set_correction_pos(d.correction_pos);
      s->set_offset_before(d.offset_before);
      s->set_offset_after(d.offset_after);
    }
  }
  HelperStateToProto(extras, now, f.family(), out);
}

void HelperStateToProto(const FlowExtras& extras, Nanos now, Family family, proto::Flow* out) {
  if (extras.ftp_state) {
    proto::FtpState* fs = out->mutable_ftp();
    for (int i = 0; i < extras.ftp_state->seq_aft_nl_num[0]; ++i)
      fs->add_seq_aft_nl_original(extras.ftp_state->seq_aft_nl[0][i]);
    for (int i = 0; i < extras.ftp_state->seq_aft_nl_num[1]; ++i)
      fs->add_seq_aft_nl_reply(extras.ftp_state->seq_aft_nl[1][i]);
  }
  if (extras.expectation) ExpectationToProto(*extras.expectation, now, family, out->add_expectations());
}

absl::Status ScalarsToFlow(const FlowScalars& in, Nanos now, Nanos age, DecodedFlow* out) {
  Flow& f = out->flow;
  if (in.zone > 0xffff) return absl::InvalidArgumentError("zone out of range");
  // The kernel defines status bits 0-15 only; a wider value is garbage, not a newer bit.
  if (in.status > 0xffff) return absl::InvalidArgumentError("status out of range");
  // Bits the receiver must decide for itself (table membership, dying, templates) are not
  // taken from the record.
  f.status = static_cast<uint16_t>(in.status) & ~(kIpsConfirmed | kIpsDying | kIpsTemplate);
  f.zone = static_cast<uint16_t>(in.zone);
  f.mark = in.mark;
  // Ids are 32 bits, as the kernel's CTA_ID: a wider one did not come from a node.
  if (in.id > UINT32_MAX) return absl::InvalidArgumentError("id out of range");
  f.id = static_cast<uint32_t>(in.id);
  // Lifetimes beyond any sysctl's range (and ages beyond a century) are garbage, and would
  // overflow the nanosecond arithmetic below.
  constexpr int64_t kMaxTimeoutMs = int64_t{1} << 40;  // ~35 years
  if (in.timeout_ms < 0 || in.timeout_ms > kMaxTimeoutMs)
    return absl::InvalidArgumentError("timeout out of range");
  int64_t age_ms;
  if (__builtin_sub_overflow(in.wall_time_ms, in.created_wall_ms, &age_ms) ||
      age_ms < -kMaxTimeoutMs || age_ms > kMaxTimeoutMs)
    return absl::InvalidArgumentError("creation time out of range");
  out->remaining = in.timeout_ms * kNanosPerMilli - std::clamp<Nanos>(age, 0, kMaxTimeoutMs * kNanosPerMilli);
  f.expires = now + out->remaining;
  f.created = now - std::max<int64_t>(0, age_ms) * kNanosPerMilli;
  return absl::OkStatus();
}

absl::Status TcpScalarsToState(const TcpScalars& t, TcpConnState* out) {
  if (t.state >= static_cast<uint32_t>(TcpState::kMax))
    return absl::InvalidArgumentError(absl::StrCat("tcp state ", t.state, " out of range"));
  for (int i = 0; i < 2; ++i) {
    const TcpScalars::Dir& in = t.dir[i];
    // RFC 7323 caps the shift at 14; the tracker would compute garbage windows beyond it.
    if (in.td_scale > 14) return absl::InvalidArgumentError("tcp window scale above 14");
    if (in.flags > 0xff) return absl::InvalidArgumentError("tcp direction flags out of range");
  }
  if (t.last_dir > 1 || t.retrans > 255 || t.last_index > 255 || t.last_win > 0xffff ||
      t.last_wscale > 14 || t.last_flags > 0xff)
    return absl::InvalidArgumentError("tcp tracking fields out of range");
  out->state = static_cast<TcpState>(t.state);
  for (int i = 0; i < 2; ++i) {
    const TcpScalars::Dir& in = t.dir[i];
    out->seen[i] = {in.td_end, in.td_maxend, in.td_maxwin, in.td_maxack,
                    static_cast<uint8_t>(in.td_scale), static_cast<uint8_t>(in.flags)};
  }
  out->last_dir = static_cast<uint8_t>(t.last_dir);
  out->retrans = static_cast<uint8_t>(t.retrans);
  out->last_index = static_cast<uint8_t>(t.last_index);
  out->last_seq = t.last_seq;
  out->last_ack = t.last_ack;
  out->last_end = t.last_end;
  out->last_win = static_cast<uint16_t>(t.last_win);
  out->last_wscale = static_cast<uint8_t>(t.last_wscale);
  out->last_flags = static_cast<uint8_t>(t.last_flags);
  return absl::OkStatus();
}

absl::Status HelperStateFromProto(const proto::Flow& in, Nanos now, Nanos age, DecodedFlow* out) {
  if (in.has_ftp()) {
    const proto::FtpState& fs = in.ftp();
    if (fs.seq_aft_nl_original_size() > 2 || fs.seq_aft_nl_reply_size() > 2)
      return absl::InvalidArgumentError("ftp state holds more than two line ends per direction");
    FtpLineState st;
    for (int i = 0; i < fs.seq_aft_nl_original_size(); ++i)
      st.seq_aft_nl[0][st.seq_aft_nl_num[0]++] = fs.seq_aft_nl_original(i);
    for (int i = 0; i < fs.seq_aft_nl_reply_size(); ++i)
      st.seq_aft_nl[1][st.seq_aft_nl_num[1]++] = fs.seq_aft_nl_reply(i);
    out->ftp_state = st;
  }
  if (in.expectations_size() > 1)
    return absl::InvalidArgumentError("more than one expectation per master");
  if (in.expectations_size() == 1) {
    Expectation e;
    if (absl::Status s = ExpectationFromProto(in.expectations(0), out->flow, now, age, &e); !s.ok())
      return s;
    out->expectation = e;
  }
  return absl::OkStatus();
}

absl::Status FlowFromProto(const proto::Flow& in, Nanos now, Nanos age, DecodedFlow* out) {
  out->Clear();
  Flow& f = out->flow;
  if (!in.has_original() || !in.has_reply())
    return absl::InvalidArgumentError("flow without both tuples");
  if (absl::Status s = TupleFromProto(in.original(), &f.tuple[0]); !s.ok())
    return absl::InvalidArgumentError(absl::StrCat("original tuple: ", s.message()));
  if (absl::Status s = TupleFromProto(in.reply(), &f.tuple[1]); !s.ok())
    return absl::InvalidArgumentError(absl::StrCat("reply tuple: ", s.message()));
  if (f.tuple[0].family != f.tuple[1].family || f.tuple[0].proto != f.tuple[1].proto)
    return absl::InvalidArgumentError("tuples disagree on family or protocol");
  const FlowScalars scalars{in.status(),       in.zone(),         in.mark(),
                            in.id(),           in.timeout_ms(),   in.wall_time_ms(),
                            in.created_wall_ms()};
  if (absl::Status s = ScalarsToFlow(scalars, now, age, out); !s.ok()) return s;
  if (f.tuple[0].proto == kProtoTcp) {
    const proto::TcpState& t = in.tcp();
    TcpScalars ts;
    ts.state = t.state();
    const proto::TcpDirState* dirs[2] = {&t.original(), &t.reply()};
    for (int i = 0; i < 2; ++i) {
      const proto::TcpDirState& d = *dirs[i];
      ts.dir[i] = {d.td_end(), d.td_maxend(), d.td_maxwin(), d.td_maxack(), d.td_scale(),
                   d.flags()};
    }
    ts.last_dir = t.last_dir();
    ts.retrans = t.retrans();
    ts.last_index = t.last_index();
    ts.last_win = t.last_win();
    ts.last_wscale = t.last_wscale();
    ts.last_flags = t.last_flags();
    ts.last_seq = t.last_seq();
    ts.last_ack = t.last_ack();
    ts.last_end = t.last_end();
    if (absl::Status s = TcpScalarsToState(ts, &f.tcp); !s.ok()) return s;
  }
  if (in.helper() == "ftp") {
    f.helper = FlowHelper::kFtp;
  } else if (!in.helper().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown helper '", in.helper(), "'"));
  }
  if (in.has_master()) {
    Tuple m;
    if (absl::Status s = TupleFromProto(in.master(), &m); !s.ok())
      return absl::InvalidArgumentError(absl::StrCat("master tuple: ", s.message()));
    out->master_tuple = m;
  }
  out->counters.dir[0] = {in.counters_original().packets(), in.counters_original().bytes()};
  out->counters.dir[1] = {in.counters_reply().packets(), in.counters_reply().bytes()};
  if (in.seq_adjust_size() == 2) {
    SeqAdjust sa;
    for (int d = 0; d < 2; ++d) {
      sa.dir[d].correction_pos = in.seq_adjust(d).correction_pos();
      sa.dir[d].offset_before = in.seq_adjust(d).offset_before();
      sa.dir[d].offset_after = in.seq_adjust(d).offset_after();
    }
    out->seq_adjust = sa;
  } else if (in.seq_adjust_size() != 0) {
    return absl::InvalidArgumentError("seq_adjust needs exactly two directions");
  }
  return HelperStateFromProto(in, now, age, out);
}

}  // namespace ctsync::codec

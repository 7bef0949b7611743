#include "core/conntrack/conntrack_engine.h"

#include "core/conntrack/l4_trackers.h"
#include "core/packet/checksum.h"
#include "core/packet/packet_parser.h"

namespace ctsync {
namespace {

bool HasPorts(uint8_t proto) {
  return proto == kProtoTcp || proto == kProtoUdp || proto == kProtoUdplite;
}

TcpSegment SegmentOf(const ParsedPacket& pkt, absl::Span<const uint8_t> data) {
  TcpSegment seg;
  seg.seq = pkt.seq;
  seg.ack = pkt.ack;
  seg.window = pkt.window;
  seg.flags = pkt.tcp_flags;
  seg.payload_len = pkt.payload_len;
  seg.data_offset_words = pkt.tcp_data_offset;
  const size_t opt_len = pkt.tcp_data_offset * 4u - 20u;
  if (pkt.tcp_data_offset > 5 && pkt.l4_offset + 20 + opt_len <= data.size())
    TcpParseOptions(data.data() + pkt.l4_offset + 20, opt_len, seg);
  return seg;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ConntrackEngine>> ConntrackEngine::Create(
    const ConntrackOptions& options, Nanos now) {
  FlowTableOptions t;
  if (options.settings.nf_conntrack_max <= 0)
    return absl::InvalidArgumentError("nf_conntrack_max must be positive");
  t.max_flows = static_cast<size_t>(options.settings.nf_conntrack_max);
  t.buckets = static_cast<size_t>(std::max(1, options.settings.nf_conntrack_buckets));
  t.seed = options.hash_seed;
  t.accounting = options.settings.nf_conntrack_acct;
  auto table = FlowTable::Create(t, now);
  if (!table.ok()) return table.status();
  return std::unique_ptr<ConntrackEngine>(new ConntrackEngine(options, std::move(*table)));
}

ConntrackEngine::ConntrackEngine(const ConntrackOptions& options, std::unique_ptr<FlowTable> table)
    : options_(options),
      tcp_settings_(TcpSettingsFrom(options.settings)),
      table_(std::move(table)),
      events_(options.event_ring_capacity) {}

void ConntrackEngine::SetSettings(const ConntrackSettings& s) {
  options_.settings = s;
  tcp_settings_ = TcpSettingsFrom(s);
  if (s.nf_conntrack_acct) table_->EnableAccounting();
}

int ConntrackEngine::UseCount(FlowIndex idx) const {
  return 1 + table_->flow(idx).child_count;
}

void ConntrackEngine::Emit(FlowEventType type, FlowIndex idx, uint32_t changes, Nanos now) {
  if (!events_.enabled()) return;
  if (type != FlowEventType::kDestroy) table_->flow(idx).last_event = EventStamp(now);
  FlowEvent e = Describe(type, idx, now);
  e.changes = changes;
  events_.Push(e);
}

FlowEvent ConntrackEngine::Describe(FlowEventType type, FlowIndex idx, Nanos now) const {
  FlowEvent e;
  e.type = type;
  e.index = idx;
  e.time = now;
  e.flow = table_->flow(idx);
  if (const FlowAccounting* a = table_->accounting(idx)) {
    e.has_counters = true;
    e.counters = *a;
  }
  if (const SeqAdjust* sa = table_->seq_adjust(idx)) {
    e.has_seq_adjust = true;
    e.seq_adjust = *sa;
  }
  if (e.flow.master != kNoFlow && table_->IsConfirmed(e.flow.master)) {
    e.has_master = true;
    e.master = table_->flow(e.flow.master).tuple[0];
  }
  if (e.flow.helper != FlowHelper::kNone) {
    if (const FtpLineState* fs = table_->ftp_state(idx)) {
      e.has_ftp_state = true;
      e.ftp_state = *fs;
    }
    for (const Expectation& x : expectations_.all()) {
      if (x.master != idx) continue;
      e.has_expectation = true;
      e.expectation = x;
    }
  }
  return e;
}

void ConntrackEngine::NotifyUpdate(FlowIndex idx, uint32_t changes, Nanos now) {
  if (table_->IsConfirmed(idx)) Emit(FlowEventType::kUpdate, idx, changes, now);
}

bool ConntrackEngine::TupleOf(const ParsedPacket& pkt, Tuple* t) const {
  t->family = pkt.family;
  t->proto = pkt.proto;
  t->src = pkt.src;
  t->dst = pkt.dst;
  t->sport = 0;
  t->dport = 0;
  if (HasPorts(pkt.proto)) {
    if (!pkt.l4_parsed) return false;
    t->sport = pkt.sport;
    t->dport = pkt.dport;
  } else if (pkt.proto == kProtoIcmp || pkt.proto == kProtoIcmpv6) {
    if (!pkt.l4_parsed) return false;
    t->sport = pkt.icmp_id;
    t->dport = static_cast<uint16_t>((pkt.icmp_type << 8) | pkt.icmp_code);
  }
  // Everything else (SCTP, DCCP, GRE v0, ...) is tracked by addresses alone, as the
  // generic tracker does.
  return true;
}

bool ConntrackEngine::ChecksumOk(const ParsedPacket& pkt, absl::Span<const uint8_t> data,
                                 CtHookPoint hook) const {
  // nf_conntrack_checksum applies only to packets coming in from the wire (PREROUTING).
  if (hook != CtHookPoint::kPrerouting || !options_.settings.nf_conntrack_checksum) return true;
  return VerifyL4Checksum(pkt, data);
}

FlowLookup ConntrackEngine::FindLive(const Tuple& t, uint16_t zone, Nanos now) {
  FlowLookup l = table_->Find(t, zone);
  if (l.found() && (table_->flow(l.idx).status & kIpsDying)) {
    FlushKills(now);
    return FlowLookup{};
  }
  if (l.found() && table_->flow(l.idx).expires <= now) {
    Kill(l.idx, now);
    return FlowLookup{};
  }
  return l;
}

void ConntrackEngine::Kill(FlowIndex idx, Nanos now) {
  if (!table_->IsConfirmed(idx)) return;
  Flow& f = table_->flow(idx);
  f.status |= kIpsDying;
  Emit(FlowEventType::kDestroy, idx, 0, now);
  Forget(idx, f);
  table_->Remove(idx);
}

void ConntrackEngine::FlushKills(Nanos now) {
  for (FlowIndex idx : pending_kills_) Kill(idx, now);
  pending_kills_.clear();
}

void ConntrackEngine::Forget(FlowIndex idx, const Flow& f) {
  if (f.master != kNoFlow && table_->IsConfirmed(f.master)) {
    Flow& m = table_->flow(f.master);
    if (m.child_count > 0) --m.child_count;
  }
  if (expectations_.size()) expectations_.RemoveMaster(idx);
  for (const DestroyHook& h : destroy_hooks_) h(idx);
}

bool ConntrackEngine::AddExpectation(const Expectation& e, int max_per_master) {
  if (!expectations_.Add(e, max_per_master)) return false;
  ++stats().expect_create;
  return true;
}

size_t ConntrackEngine::Expire(Nanos now, size_t budget) {
  if (expectations_.size()) expectations_.Expire(now);
  return table_->Expire(now, budget, [&](FlowIndex idx, const Flow& f) {
    Emit(FlowEventType::kDestroy, idx, 0, now);
    Forget(idx, f);
  });
}

bool ConntrackEngine::HandleIcmp(const ParsedPacket& pkt, absl::Span<const uint8_t> data,
                                 CtHookPoint hook, const CtTemplate& tmpl, Nanos now,
                                 CtAttachment* ct) {
  ConntrackStats& st = stats();
  // nf_conntrack_icmp{,v6}_error: every failure here counts `error`, not `invalid`.
  if (!pkt.l4_parsed || !ChecksumOk(pkt, data, hook)) {
    ++st.error;
    return true;
  }
  if (pkt.family == Family::kIpv4 && pkt.icmp_type > 18) {
    ++st.error;
    return true;
  }
  if (pkt.family == Family::kIpv6 && Icmpv6IsUntrackedType(pkt.icmp_type)) {
    ct->info = CtInfo::kUntracked;
    return true;
  }
  if (!IcmpIsError(pkt.family, pkt.icmp_type)) return false;

  // Which of our connections is the quoted packet part of? (nf_conntrack_inet_error)
  ParsedPacket inner;
  if (pkt.inner_offset == 0 || pkt.inner_offset >= data.size() ||
      !ParseIp(data.subspan(pkt.inner_offset, pkt.l3_offset + pkt.ip_total_len - pkt.inner_offset),
               &inner, ParseMode::kQuoted)
           .ok() ||
      inner.family != pkt.family) {
    ++st.error;
    return true;
  }
  Tuple quoted;
  if (!TupleOf(inner, &quoted)) {
    ++st.error;
    return true;
  }
  auto wanted = InvertTuple(quoted);
  if (!wanted) {
    ++st.error;
    return true;
  }
  FlowLookup l = FindLive(*wanted, tmpl.zone, now);
  if (!l.found()) {
    ++st.error;
    return true;
  }
  // The error must be addressed to the end of the connection that sent the quoted packet.
  if (table_->flow(l.idx).tuple_of(l.dir).dst != pkt.dst) {
    ++st.error;
    return true;
  }
  ct->flow = l.idx;
  ct->info = l.dir == Direction::kReply ? CtInfo::kRelatedReply : CtInfo::kRelated;
  return true;
}

ConntrackEngine::TrackResult ConntrackEngine::Track(const ParsedPacket& pkt,
                                                    absl::Span<const uint8_t> data,
                                                    CtHookPoint hook, bool is_new,
                                                    CtAttachment* ct, Nanos now) {
  Flow& f = table_->flow(ct->flow);
  const Direction dir = ct->dir();
  Nanos timeout = 0;
  bool set_assured = false;
  bool kill = false;
  uint32_t changes = 0;

  switch (pkt.proto) {
    case kProtoTcp: {
      const TcpSegment seg = SegmentOf(pkt, data);
      if (TcpCheckHeader(seg) || !ChecksumOk(pkt, data, hook)) return TrackResult::kInvalid;
      if (is_new && !TcpNew(f.tcp, seg, tcp_settings_)) return TrackResult::kInvalid;
      TcpPacketContext c;
      c.dir = dir;
      c.seen_reply = f.status & kIpsSeenReply;
      c.assured = f.status & kIpsAssured;
      c.confirmed = !is_new;
      c.now = now;
      c.expires_at = f.expires;
      if (const SeqAdjust* sa = table_->seq_adjust(ct->flow)) {
        const SeqAdjustDir& other = sa->dir[static_cast<int>(Opposite(dir))];
        // nf_ct_seq_offset(ct, !dir, ack - 1)
        const uint32_t ack1 = seg.ack - 1;
        c.ack_offset = static_cast<int32_t>(ack1 - other.correction_pos) > 0
                           ? other.offset_after
                           : other.offset_before;
      }
      const TcpConnState before = f.tcp;
      const TcpResult r = TcpPacket(f.tcp, seg, c, tcp_settings_);
      // Window tracking moves with nearly every segment. Peers get it (coalesced by the
      // replicator) so a promoted backup keeps strict window checks without be_liberal.
      if (options_.replicate_tcp_windows && !(f.tcp == before)) changes |= kChangeWindow;
      if (r.verdict == TcpResult::Verdict::kRepeat) return TrackResult::kRepeat;
      if (r.verdict == TcpResult::Verdict::kInvalid) {
        if (r.refresh_timeout) table_->SetTimeout(ct->flow, now + r.timeout);
        return TrackResult::kInvalid;
      }
      if (r.old_state != r.new_state) changes |= kChangeProtoState;
      if (r.refresh_timeout) timeout = r.timeout;
      set_assured = r.set_assured;
      kill = r.kill;
      break;
    }
    case kProtoUdp:
    case kProtoUdplite: {
      if (!ChecksumOk(pkt, data, hook)) return TrackResult::kInvalid;
      const L4Result r = UdpPacket(f, now, options_.settings);
      timeout = r.timeout;
      set_assured = r.set_assured;
      break;
    }
    case kProtoIcmp:
    case kProtoIcmpv6: {
      const L4Result r = IcmpPacket(f, options_.settings);
      if (!r.valid) return TrackResult::kInvalid;
      timeout = r.timeout;
      break;
    }
    case kProtoGre: {
      const L4Result r = GrePacket(f, options_.settings);
      timeout = r.timeout;
      set_assured = r.set_assured;
      break;
    }
    default:
      timeout = GenericPacket(options_.settings).timeout;
      break;
  }

  if (timeout > 0 && !(f.status & kIpsFixedTimeout)) {
    table_->SetTimeout(ct->flow, now + timeout);
    // Peers hold copies with the lifetime last announced; re-announce before half of it
    // has gone so a copy never dies while the flow lives (at most once a minute).
    const uint32_t since_ms = EventStamp(now) - f.last_event;
    if (since_ms > std::min<Nanos>(timeout / 2, 60 * kNanosPerSecond) / kNanosPerMilli)
      changes |= kChangeTimeout;
  }
  if (set_assured && !(f.status & kIpsAssured)) {
    f.status |= kIpsAssured;
    changes |= kChangeStatus;
  }
  // nf_conntrack_in sets SEEN_REPLY after the protocol handler has run.
  if (ct->info == CtInfo::kEstablishedReply && !(f.status & kIpsSeenReply)) {
    f.status |= kIpsSeenReply;
    changes |= kChangeStatus;
  }
  // Counting stops when the sysctl is switched off; the kernel keeps counting the flows
  // that already have the extension.
  if (options_.settings.nf_conntrack_acct) {
    if (FlowAccounting* a = table_->accounting(ct->flow)) {
      FlowCounters& c = a->dir[static_cast<int>(dir)];
      ++c.packets;
      c.bytes += pkt.ip_total_len;
    }
  }
  if (!is_new && changes) Emit(FlowEventType::kUpdate, ct->flow, changes, now);
  if (kill && !is_new) {
    f.status |= kIpsDying;
    pending_kills_.push_back(ct->flow);
  }
  return TrackResult::kAccept;
}

CtVerdict ConntrackEngine::In(const ParsedPacket& pkt, absl::Span<const uint8_t> data,
                              bool l4_malformed, CtHookPoint hook, const CtTemplate& tmpl,
                              Nanos now, CtAttachment* ct) {
  *ct = CtAttachment{};
  ConntrackStats& st = stats();
  if (tmpl.notrack) {
    ct->info = CtInfo::kUntracked;
    return CtVerdict::kAccept;
  }
  if (pkt.proto == kProtoIcmp || pkt.proto == kProtoIcmpv6) {
    if (l4_malformed) {
      ++st.error;
      return CtVerdict::kAccept;
    }
    if (HandleIcmp(pkt, data, hook, tmpl, now, ct)) return CtVerdict::kAccept;
  }
  Tuple tuple;
  if (l4_malformed || !TupleOf(pkt, &tuple)) {
    ++st.invalid;
    return CtVerdict::kAccept;
  }

  for (int attempt = 0; attempt < 2; ++attempt) {
    bool is_new = false;
    FlowLookup l = FindLive(tuple, tmpl.zone, now);
    if (l.found()) {
      const Flow& f = table_->flow(l.idx);
      ct->flow = l.idx;
      if (l.dir == Direction::kReply) {
        ct->info = CtInfo::kEstablishedReply;
      } else if (f.status & kIpsSeenReply) {
        ct->info = CtInfo::kEstablished;
      } else if (f.status & kIpsExpected) {
        ct->info = CtInfo::kRelated;
      } else {
        ct->info = CtInfo::kNew;
      }
    } else {
      auto reply = InvertTuple(tuple);
      if (!reply) {
        ++st.invalid;
        return CtVerdict::kAccept;
      }
      const FlowIndex idx =
          table_->Allocate(tuple, tmpl.zone, now, [&](FlowIndex victim, const Flow& v) {
            Emit(FlowEventType::kDestroy, victim, 0, now);
            Forget(victim, v);
          });
      if (idx == kNoFlow) {
        ++st.drop;
        if (options_.log && table_full_log_.Allow(now))
          options_.log->Log(LogSeverity::kWarning, "nf_conntrack: table full, dropping packet");
        return CtVerdict::kDrop;
      }
      Flow& f = table_->flow(idx);
      f.tuple[1] = *reply;
      ct->flow = idx;
      ct->info = CtInfo::kNew;
      is_new = true;
      // Welcome, expected connection: RELATED to its master (init_conntrack).
      std::optional<Expectation> exp;
      if (expectations_.size()) exp = expectations_.Take(tuple, tmpl.zone, now);
      if (exp && table_->IsConfirmed(exp->master)) {
        Flow& m = table_->flow(exp->master);
        f.status |= kIpsExpected;
        f.master = exp->master;
        f.mark = m.mark;
        ++m.child_count;
        ++st.expect_new;
        ct->info = CtInfo::kRelated;
        if (expected_fn_) expected_fn_(idx, *exp, now);
      } else {
        f.helper = tmpl.helper;
      }
    }

    switch (Track(pkt, data, hook, is_new, ct, now)) {
      case TrackResult::kAccept:
        return CtVerdict::kAccept;
      case TrackResult::kInvalid:
        if (is_new) ReleaseNew(ct->flow);
        *ct = CtAttachment{};
        ++st.invalid;
        return CtVerdict::kAccept;
      case TrackResult::kRepeat:
        // The TCP tracker saw a new connection reuse the tuple of a closing one: the old
        // entry goes and the packet is looked at again as the start of a new one.
        if (is_new) {
          ReleaseNew(ct->flow);
        } else {
          Kill(ct->flow, now);
        }
        *ct = CtAttachment{};
        break;
    }
  }
  ++st.invalid;
  return CtVerdict::kAccept;
}

CtVerdict ConntrackEngine::Confirm(const CtAttachment& ct, Nanos now) {
  if (!ct.tracked() || table_->IsConfirmed(ct.flow)) return CtVerdict::kAccept;
  // Packets REJECT generates are attached to the rejected (unconfirmed) entry in the reply
  // direction; like the kernel, they never confirm it.
  if (CtInfoIsReply(ct.info)) return CtVerdict::kAccept;
  Flow& f = table_->flow(ct.flow);
  const absl::Status s = table_->Confirm(ct.flow);
  if (!s.ok()) {
    ++stats().insert_failed;
    ++stats().drop;
    ReleaseNew(ct.flow);
    return CtVerdict::kDrop;
  }
  f.status |= kIpsConfirmed;
  Emit(FlowEventType::kNew, ct.flow, 0, now);
  return CtVerdict::kAccept;
}

absl::StatusOr<FlowIndex> ConntrackEngine::Insert(const Flow& f, const FlowAccounting* counters,
                                                   Nanos now) {
  const FlowIndex idx = table_->Allocate(f.tuple[0], f.zone, now, [&](FlowIndex victim, const Flow& v) {
    Emit(FlowEventType::kDestroy, victim, 0, now);
    Forget(victim, v);
  });
  if (idx == kNoFlow) return absl::ResourceExhaustedError("conntrack table full");
  Flow& e = table_->flow(idx);
  e.tuple[1] = f.tuple[1];
  e.status = (f.status & ~kIpsDying) | kIpsConfirmed;
  e.mark = f.mark;
  e.tcp = f.tcp;
  e.helper = f.helper;
  e.learnt_generation = f.learnt_generation;
  e.learnt_peer = f.learnt_peer;
  if (FlowAccounting* a = table_->accounting(idx); a && counters) *a = *counters;
  e.expires = f.expires;
  const absl::Status s = table_->Confirm(idx);
  if (!s.ok()) {
    table_->Release(idx);
    return s;
  }
  Emit(FlowEventType::kNew, idx, 0, now);
  return idx;
}

void ConntrackEngine::DropUnconfirmed(const CtAttachment& ct) {
  if (ct.tracked() && !table_->IsConfirmed(ct.flow) && !CtInfoIsReply(ct.info))
    ReleaseNew(ct.flow);
}

void ConntrackEngine::ReleaseNew(FlowIndex idx) {
  Forget(idx, table_->flow(idx));
  table_->Release(idx);
}

}  // namespace ctsync

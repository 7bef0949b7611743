#include "core/pipeline/pipeline.h"

#include <algorithm>

#include "core/conntrack/l4_trackers.h"
#include "core/helpers/seq_adjust.h"
#include "core/nat/nat_engine.h"
#include "core/packet/checksum.h"
#include "core/packet/packet_builder.h"

namespace ctsync {
namespace {

using rules::Hook;
using rules::Table;
using rules::Verdict;

bool IsTransport(uint8_t proto) {
  return proto == kProtoTcp || proto == kProtoUdp || proto == kProtoUdplite ||
         proto == kProtoSctp || proto == kProtoDccp;
}

bool IsL4ParseError(ParseError e) {
  return e == ParseError::kTruncatedL4 || e == ParseError::kBadTcpOffset ||
         e == ParseError::kBadUdpLength || e == ParseError::kBadUdpliteCoverage;
}

bool IsMulticastOrBroadcast(const PacketBuffer& b) {
  if (b.pkt.dst_mac[0] & 1) return true;
  if (b.pkt.family == Family::kIpv4) {
    const uint32_t d = b.pkt.dst.v4();
    return d == 0xffffffffu || (d >> 28) == 0xe;
  }
  return b.pkt.dst.bytes[0] == 0xff;
}

// How much of an offending packet an ICMP error quotes: the kernel fills the error up to
// 576 bytes (IPv4, RFC 1812) or 1280 bytes (IPv6, RFC 4443).
size_t QuoteLength(const PacketBuffer& b) {
  const size_t ip_len = b.pkt.ip_total_len;
  const size_t room = b.pkt.family == Family::kIpv4 ? 576 - 20 - 8 : 1280 - 40 - 8;
  return std::min(ip_len, room);
}

}  // namespace

Pipeline::Pipeline(const PipelineOptions& options, Topology topology, ConntrackEngine* conntrack,
                   NatEngine* nat)
    : options_(options),
      topology_(std::move(topology)),
      conntrack_(conntrack),
      nat_(nat),
      ftp_(conntrack),
      defrag_(options.defrag),
      rng_state_(options.seed * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull) {
  if (nat_ != nullptr) {
    // nf_nat_follow_master: an expected connection is NATed like its master, towards
    // where the helper saw it announced.
    conntrack_->set_expected_fn([this](FlowIndex idx, const Expectation& exp, Nanos now) {
      if (!exp.nat || !conntrack_->table().IsConfirmed(exp.master)) return;
      const Flow& m = conntrack_->table().flow(exp.master);
      const Tuple& t = m.tuple_of(Opposite(exp.dir));
      PacketBuffer b;
      b.ct.flow = idx;
      rules::NatSpec snat;
      snat.kind = rules::NatKind::kSnat;
      snat.family = t.family;
      snat.has_addr = true;
      snat.min_addr = snat.max_addr = t.dst;
      nat_->SetupFromSpec(snat, Hook::kPostrouting, b, topology_, now);
      rules::NatSpec dnat = snat;
      dnat.kind = rules::NatKind::kDnat;
      dnat.min_addr = dnat.max_addr = t.src;
      dnat.has_ports = true;
      dnat.min_port = dnat.max_port = exp.saved_port;
      nat_->SetupFromSpec(dnat, Hook::kPrerouting, b, topology_, now);
    });
  }
}

Pipeline::~Pipeline() = default;

void Pipeline::SetRules(Family family, std::unique_ptr<rules::RuleSet> r) {
  (family == Family::kIpv6 ? rules_v6_ : rules_v4_) = std::move(r);
}

rules::RuleSet* Pipeline::rules(Family family) {
  return (family == Family::kIpv6 ? rules_v6_ : rules_v4_).get();
}

uint16_t Pipeline::NextIcmpId() {
  // xorshift64*: IP ids of generated ICMP errors are random in the kernel too.
  rng_state_ ^= rng_state_ >> 12;
  rng_state_ ^= rng_state_ << 25;
  rng_state_ ^= rng_state_ >> 27;
  return static_cast<uint16_t>((rng_state_ * 0x2545f4914f6cdd1dull) >> 48);
}

rules::MatchContext Pipeline::Context(const PacketBuffer& b, Hook hook) const {
  rules::MatchContext c;
  const ParsedPacket& p = b.pkt;
  c.family = p.family;
  c.src = p.src;
  c.dst = p.dst;
  c.proto = p.proto;
  c.non_first_fragment = p.is_fragment && p.frag_offset != 0;
  if (p.l4_parsed && IsTransport(p.proto)) {
    c.has_ports = true;
    c.sport = p.sport;
    c.dport = p.dport;
    c.tcp_flags = p.tcp_flags;
  }
  if (p.l4_parsed && (p.proto == kProtoIcmp || p.proto == kProtoIcmpv6)) {
    c.has_icmp = true;
    c.icmp_type = p.icmp_type;
    c.icmp_code = p.icmp_code;
  }
  const bool has_in = hook == Hook::kPrerouting || hook == Hook::kInput || hook == Hook::kForward;
  const bool has_out = hook == Hook::kForward || hook == Hook::kOutput || hook == Hook::kPostrouting;
  if (has_in && b.in_iface >= 0) c.in_iface = topology_.interface(b.in_iface).name;
  if (has_out && b.out_iface >= 0) c.out_iface = topology_.interface(b.out_iface).name;
  c.packet_len = p.ip_total_len;
  c.mark = b.mark;
  if (b.ct.info == CtInfo::kUntracked) {
    c.ctstate = rules::kCtUntracked;
  } else if (!b.ct.tracked()) {
    c.ctstate = rules::kCtInvalid;
  } else {
    const Flow& f = conntrack_->table().flow(b.ct.flow);
    switch (b.ct.info) {
      case CtInfo::kNew: c.ctstate = rules::kCtNew; break;
      case CtInfo::kRelated:
      case CtInfo::kRelatedReply: c.ctstate = rules::kCtRelated; break;
      default: c.ctstate = rules::kCtEstablished; break;
    }
    if (f.status & kIpsSrcNat) c.ctstate |= rules::kCtSnat;
    if (f.status & kIpsDstNat) c.ctstate |= rules::kCtDnat;
    c.ct_status = f.status;
    c.ct_dir_reply = CtInfoIsReply(b.ct.info);
    c.ct_orig = &f.tuple[0];
    c.ct_reply = &f.tuple[1];
    c.ct_mark = f.mark;
  }
  return c;
}

void Pipeline::ApplyEffects(const rules::PacketEffects& e, PacketBuffer& b, Nanos now) {
  if (e.mark) b.mark = *e.mark;
  if (e.notrack) b.tmpl.notrack = true;
  if (e.ct_zone) b.tmpl.zone = *e.ct_zone;
  if (e.ct_helper == "ftp") b.tmpl.helper = FlowHelper::kFtp;
  if (e.ct_mark && b.ct.tracked()) {
    Flow& f = conntrack_->table().flow(b.ct.flow);
    if (f.mark != *e.ct_mark) {
      f.mark = *e.ct_mark;
      conntrack_->NotifyUpdate(b.ct.flow, kChangeMark, now);
    }
  }
}

Verdict Pipeline::RunTable(Table table, Hook hook, PacketBuffer& b, Nanos now) {
  rules::RuleSet* rs = rules(b.pkt.family);
  if (observer_ == nullptr && (rs == nullptr || !rs->HasTable(table))) return Verdict{};
  const rules::MatchContext ctx = Context(b, hook);
  if (observer_) observer_->BeforeTable(table, hook, ctx);
  if (rs == nullptr) return Verdict{};
  rules::PacketEffects effects;
  const Verdict v = rs->Evaluate(table, hook, ctx, &effects, nullptr);
  ApplyEffects(effects, b, now);
  return v;
}

bool Pipeline::RunNat(Hook hook, PacketBuffer& b, Nanos now) {
  if (nat_ == nullptr || !b.ct.tracked()) return true;
  return nat_->Apply(hook, b, [&]() { return RunTable(Table::kNat, hook, b, now); }, topology_,
                     now);
}

void Pipeline::Drop(PacketBuffer& b) { conntrack_->DropUnconfirmed(b.ct); }

void Pipeline::Tick(Nanos now) {
  conntrack_->Expire(now, 4096);
  defrag_.Expire(now);
}

void Pipeline::Receive(int in, absl::Span<const uint8_t> frame, Nanos now,
                       std::vector<struct Transmit>* tx) {
  ReceiveFrame(in, frame, now, tx);
  conntrack_->FlushKills(now);
}

void Pipeline::ReceiveFrame(int in, absl::Span<const uint8_t> frame, Nanos now,
                            std::vector<struct Transmit>* tx) {
  ++counters_.rx_frames;
  PacketBuffer b;
  b.in_iface = in;
  const ParseResult r = ParseEthernet(frame, &b.pkt);
  if (!r.ok()) {
    parse_counters_.Count(r.error());
    if (r.error() == ParseError::kUnsupportedEthertype) {
      ++counters_.not_ip;
      return;
    }
    if (!IsL4ParseError(r.error())) {
      ++counters_.rx_parse_errors;
      return;
    }
    // The IP layer accepts the datagram; conntrack will call it INVALID.
    b.l4_malformed = true;
  }
  const MacAddress& mine = topology_.interface(in).mac;
  if (!(b.pkt.dst_mac[0] & 1) && b.pkt.dst_mac != mine) {
    ++counters_.not_for_us;
    return;
  }
  b.frame.assign(frame.begin(), frame.begin() + b.pkt.l3_offset + b.pkt.ip_total_len);

  // Defragmentation runs before every iptables hook (priority -400): a lone fragment is
  // invisible to rules and conntrack.
  if (b.pkt.is_fragment) {
    DefragResult d = defrag_.Add(b.pkt, b.frame, 0, now);
    if (d.kind == DefragResult::Kind::kQueued) {
      ++counters_.defrag_held;
      return;
    }
    if (d.kind == DefragResult::Kind::kDropped) {
      ++counters_.defrag_dropped;
      return;
    }
    b.frame = std::move(d.frame);
    b.frag_layout = std::move(d.layout);
    const ParseResult rr = ParseEthernet(b.frame, &b.pkt);
    b.l4_malformed = !rr.ok();
    if (!rr.ok() && !IsL4ParseError(rr.error())) {
      ++counters_.rx_parse_errors;
      return;
    }
  }
  Prerouting(std::move(b), now, tx);
}

void Pipeline::Prerouting(PacketBuffer b, Nanos now, std::vector<struct Transmit>* tx) {
  if (RunTable(Table::kRaw, Hook::kPrerouting, b, now).kind != Verdict::kAccept) {
    ++counters_.rule_drops;
    return;
  }
  if (conntrack_->In(b.pkt, b.frame, b.l4_malformed, CtHookPoint::kPrerouting, b.tmpl, now,
                     &b.ct) == CtVerdict::kDrop) {
    ++counters_.ct_drops;
    return;
  }
  if (RunTable(Table::kMangle, Hook::kPrerouting, b, now).kind != Verdict::kAccept) {
    ++counters_.rule_drops;
    return Drop(b);
  }
  if (!RunNat(Hook::kPrerouting, b, now)) {
    ++counters_.nat_drops;
    return Drop(b);
  }

  // The routing decision, on the (possibly DNATed) destination.
  const RouteDecision route = topology_.Lookup(b.pkt.family, b.pkt.dst);
  if (route.kind == RouteDecision::Kind::kLocal) return Input(b, now, tx);
  if (IsMulticastOrBroadcast(b)) return Drop(b);
  const bool forwarding = b.pkt.family == Family::kIpv4 ? options_.ipv4_forwarding
                                                        : options_.ipv6_forwarding;
  if (!forwarding) {
    ++counters_.forwarding_off;
    return Drop(b);
  }
  if (route.kind != RouteDecision::Kind::kForward) {
    ++counters_.no_route;
    SendIcmpError(b, b.pkt.family == Family::kIpv4 ? 3 : 1, 0, 0, false, now, tx);
    return Drop(b);
  }
  b.out_iface = route.out_interface;
  b.next_hop = route.next_hop;
  // ip_forward: a packet whose TTL would reach 0 is answered with Time Exceeded.
  if (b.pkt.ttl <= 1) {
    ++counters_.ttl_exceeded;
    SendIcmpError(b, b.pkt.family == Family::kIpv4 ? 11 : 3, 0, 0, false, now, tx);
    return Drop(b);
  }
  Forward(b, now, tx);
}

bool Pipeline::MangleAndFilter(Hook hook, PacketBuffer& b, Nanos now,
                               std::vector<struct Transmit>* tx) {
  if (RunTable(Table::kMangle, hook, b, now).kind != Verdict::kAccept) {
    ++counters_.rule_drops;
    Drop(b);
    return false;
  }
  const Verdict v = RunTable(Table::kFilter, hook, b, now);
  if (v.kind == Verdict::kAccept) return true;
  if (v.kind == Verdict::kReject) {
    ++counters_.rule_rejects;
    SendReject(v.reject, b, now, tx);
  } else {
    ++counters_.rule_drops;
  }
  Drop(b);
  return false;
}

void Pipeline::Forward(PacketBuffer& b, Nanos now, std::vector<struct Transmit>* tx) {
  if (!MangleAndFilter(Hook::kForward, b, now, tx)) return;
  // ip_forward decrements the TTL (incremental checksum update, as ip_decrease_ttl).
  uint8_t* l3 = b.frame.data() + b.pkt.l3_offset;
  if (b.pkt.family == Family::kIpv4) {
    const uint16_t old_word = LoadBe16(l3 + 8);
    l3[8] = static_cast<uint8_t>(l3[8] - 1);
    StoreBe16(l3 + 10, ChecksumAdjust16(LoadBe16(l3 + 10), old_word, LoadBe16(l3 + 8)));
  } else {
    l3[7] = static_cast<uint8_t>(l3[7] - 1);
  }
  --b.pkt.ttl;
  Postrouting(b, now, tx);
}

void Pipeline::Input(PacketBuffer& b, Nanos now, std::vector<struct Transmit>* tx) {
  if (!MangleAndFilter(Hook::kInput, b, now, tx)) return;
  if (!RunNat(Hook::kInput, b, now)) {
    ++counters_.nat_drops;
    return Drop(b);
  }
  if (!ConfirmStep(b, now)) return;
  ++counters_.local_delivered;
  LocalDeliver(b, now, tx);
}

void Pipeline::LocalOut(PacketBuffer b, Nanos now, std::vector<struct Transmit>* tx) {
  b.locally_generated = true;
  b.in_iface = -1;
  if (!b.ct.tracked()) {
    if (RunTable(Table::kRaw, Hook::kOutput, b, now).kind != Verdict::kAccept) {
      ++counters_.rule_drops;
      return;
    }
    if (conntrack_->In(b.pkt, b.frame, b.l4_malformed, CtHookPoint::kLocalOut, b.tmpl, now,
                       &b.ct) == CtVerdict::kDrop) {
      ++counters_.ct_drops;
      return;
    }
  }
  if (RunTable(Table::kMangle, Hook::kOutput, b, now).kind != Verdict::kAccept ||
      !RunNat(Hook::kOutput, b, now)) {
    ++counters_.rule_drops;
    return Drop(b);
  }
  const RouteDecision route = topology_.Lookup(b.pkt.family, b.pkt.dst);
  if (route.kind != RouteDecision::Kind::kForward) {
    ++counters_.no_route;
    return Drop(b);
  }
  b.out_iface = route.out_interface;
  b.next_hop = route.next_hop;
  const Verdict v = RunTable(Table::kFilter, Hook::kOutput, b, now);
  if (v.kind != Verdict::kAccept) {
    ++counters_.rule_drops;
    return Drop(b);
  }
  Postrouting(b, now, tx);
}

void Pipeline::Postrouting(PacketBuffer& b, Nanos now, std::vector<struct Transmit>* tx) {
  if (RunTable(Table::kMangle, Hook::kPostrouting, b, now).kind != Verdict::kAccept) {
    ++counters_.rule_drops;
    return Drop(b);
  }
  if (!RunNat(Hook::kPostrouting, b, now)) {
    ++counters_.nat_drops;
    return Drop(b);
  }
  if (!ConfirmStep(b, now)) return;
  Transmit(b, tx);
}

bool Pipeline::ConfirmStep(PacketBuffer& b, Nanos now) {
  if (b.ct.tracked() && b.ct.info != CtInfo::kRelatedReply) {
    Flow& f = conntrack_->table().flow(b.ct.flow);
    if (f.helper == FlowHelper::kFtp && !ftp_.Help(b, now)) {
      ++counters_.helper_drops;
      Drop(b);
      return false;
    }
    if (f.status & kIpsSeqAdjust) {
      const SeqAdjust* sa = conntrack_->table().seq_adjust(b.ct.flow);
      if (sa && !SeqAdjustPacket(b, *sa, b.ct.dir())) {
        ++conntrack_->stats().drop;
        ++counters_.helper_drops;
        Drop(b);
        return false;
      }
    }
  }
  if (conntrack_->Confirm(b.ct, now) == CtVerdict::kDrop) {
    ++counters_.confirm_drops;
    return false;
  }
  return true;
}

void Pipeline::Transmit(PacketBuffer& b, std::vector<struct Transmit>* tx) {
  const Interface& out = topology_.interface(b.out_iface);
  auto mac = topology_.ResolveNeighbour(b.pkt.family, b.next_hop, b.out_iface);
  if (!mac) {
    ++counters_.no_neighbour;
    if (!options_.emit_unresolved) return;
    mac = MacAddress{};
  }
  std::copy(mac->begin(), mac->end(), b.frame.begin());
  std::copy(out.mac.begin(), out.mac.end(), b.frame.begin() + 6);
  if (b.frag_layout) {
    auto pieces = Refragment(b.frame, *b.frag_layout);
    if (!pieces.ok()) {
      ++counters_.too_big;
      return;
    }
    for (auto& p : *pieces) {
      ++counters_.tx_frames;
      tx->push_back({b.out_iface, std::move(p)});
    }
    return;
  }
  if (b.pkt.ip_total_len > static_cast<uint32_t>(out.mtu)) {
    ++counters_.too_big;
    return;
  }
  ++counters_.tx_frames;
  tx->push_back({b.out_iface, std::move(b.frame)});
}

void Pipeline::LocalDeliver(PacketBuffer& b, Nanos now, std::vector<struct Transmit>* tx) {
  // ctsync's node runs no services: the kernel's answers to a closed port are what a
  // sender sees (tcp_v4_send_reset, icmp port unreachable, echo replies).
  if (IsMulticastOrBroadcast(b) || b.l4_malformed) return;
  const ParsedPacket& p = b.pkt;
  const bool v4 = p.family == Family::kIpv4;
  switch (p.proto) {
    case kProtoTcp:
      if (!VerifyL4Checksum(p, b.frame) || (p.tcp_flags & kTcpRst)) return;
      SendTcpReset(b, false, now, tx);
      return;
    case kProtoUdp:
    case kProtoUdplite:
      if (!VerifyL4Checksum(p, b.frame)) return;
      SendIcmpError(b, v4 ? 3 : 1, v4 ? 3 : 4, 0, false, now, tx);
      return;
    case kProtoIcmp:
    case kProtoIcmpv6: {
      if (!p.l4_parsed || !VerifyL4Checksum(p, b.frame)) return;
      if (p.icmp_type != (v4 ? 8 : 128)) return;
      PacketBuffer r;
      const size_t icmp_payload_off = p.l4_offset + 8;
      const size_t end = p.l3_offset + p.ip_total_len;
      r.frame = PacketBuilder()
                    .Addresses(p.family, p.dst, p.src)
                    .Ttl(64)
                    .IpId(NextIcmpId())
                    .IcmpEcho(false, p.icmp_id, p.icmp_seq)
                    .Payload(absl::Span<const uint8_t>(b.frame.data() + icmp_payload_off,
                                                       end - icmp_payload_off))
                    .Build();
      if (!r.Reparse()) return;
      ++counters_.local_replies;
      LocalOut(std::move(r), now, tx);
      return;
    }
    default:
      SendIcmpError(b, v4 ? 3 : 4, v4 ? 2 : 1, 0, false, now, tx);
      return;
  }
}

void Pipeline::SendReject(const rules::RejectSpec& spec, PacketBuffer& b, Nanos now,
                          std::vector<struct Transmit>* tx) {
  using rules::RejectWith;
  switch (spec.with) {
    case RejectWith::kTcpReset:
      if (b.pkt.proto == kProtoTcp && b.pkt.l4_parsed && !(b.pkt.tcp_flags & kTcpRst))
        SendTcpReset(b, true, now, tx);
      return;
    case RejectWith::kIcmpNetUnreachable: return SendIcmpError(b, 3, 0, 0, true, now, tx);
    case RejectWith::kIcmpHostUnreachable: return SendIcmpError(b, 3, 1, 0, true, now, tx);
    case RejectWith::kIcmpPortUnreachable: return SendIcmpError(b, 3, 3, 0, true, now, tx);
    case RejectWith::kIcmpProtoUnreachable: return SendIcmpError(b, 3, 2, 0, true, now, tx);
    case RejectWith::kIcmpNetProhibited: return SendIcmpError(b, 3, 9, 0, true, now, tx);
    case RejectWith::kIcmpHostProhibited: return SendIcmpError(b, 3, 10, 0, true, now, tx);
    case RejectWith::kIcmpAdminProhibited: return SendIcmpError(b, 3, 13, 0, true, now, tx);
    case RejectWith::kIcmp6NoRoute: return SendIcmpError(b, 1, 0, 0, true, now, tx);
    case RejectWith::kIcmp6AdmProhibited: return SendIcmpError(b, 1, 1, 0, true, now, tx);
    case RejectWith::kIcmp6AddrUnreachable: return SendIcmpError(b, 1, 3, 0, true, now, tx);
    case RejectWith::kIcmp6PortUnreachable: return SendIcmpError(b, 1, 4, 0, true, now, tx);
    case RejectWith::kIcmp6PolicyFail: return SendIcmpError(b, 1, 5, 0, true, now, tx);
    case RejectWith::kIcmp6RejectRoute: return SendIcmpError(b, 1, 6, 0, true, now, tx);
  }
}

void Pipeline::SendTcpReset(PacketBuffer& b, bool attach, Nanos now,
                            std::vector<struct Transmit>* tx) {
  const ParsedPacket& p = b.pkt;
  // tcp_v4_send_reset / nf_send_reset: answer an ACK with its ack number as our sequence,
  // anything else with seq 0 and an ACK of everything the segment occupied.
  PacketBuilder rst;
  rst.Addresses(p.family, p.dst, p.src).Ttl(64).IpId(0).Df(true).Tcp(p.dport, p.sport).Window(0);
  if (p.tcp_flags & kTcpAck) {
    rst.TcpFlags(kTcpRst).Seq(p.ack).Ack(0);
  } else {
    const uint32_t len = p.payload_len + ((p.tcp_flags & kTcpSyn) ? 1 : 0) +
                         ((p.tcp_flags & kTcpFin) ? 1 : 0);
    rst.TcpFlags(kTcpRst | kTcpAck).Seq(0).Ack(p.seq + len);
  }
  PacketBuffer r;
  r.frame = rst.Build();
  if (!r.Reparse()) return;
  if (attach && b.ct.tracked()) {
    r.ct.flow = b.ct.flow;
    r.ct.info = CtInfoIsReply(b.ct.info) ? CtInfo::kRelated : CtInfo::kRelatedReply;
  }
  ++counters_.local_replies;
  LocalOut(std::move(r), now, tx);
}

void Pipeline::SendIcmpError(PacketBuffer& b, uint8_t type, uint8_t code, uint32_t rest,
                             bool attach, Nanos now, std::vector<struct Transmit>* tx) {
  const ParsedPacket& p = b.pkt;
  // Never answer an ICMP error with an error (RFC 1122), nor a non-first fragment.
  if ((p.proto == kProtoIcmp || p.proto == kProtoIcmpv6) &&
      (!p.l4_parsed || IcmpIsError(p.family, p.icmp_type)))
    return;
  if (p.is_fragment && p.frag_offset != 0) return;
  if (IsMulticastOrBroadcast(b)) return;
  // The source is the address the offending packet was sent to when that is ours, else the
  // address of the interface the error leaves by (the route back to the sender).
  IpAddress src = p.dst;
  if (!topology_.IsLocalAddress(p.family, p.dst)) {
    const RouteDecision back = topology_.Lookup(p.family, p.src);
    if (back.kind != RouteDecision::Kind::kForward) return;
    auto a = topology_.interface(back.out_interface).PrimaryAddress(p.family);
    if (!a) return;
    src = *a;
  }
  const absl::Span<const uint8_t> quoted(b.frame.data() + p.l3_offset, QuoteLength(b));
  PacketBuffer r;
  r.frame = PacketBuilder()
                .Addresses(p.family, src, p.src)
                .Ttl(64)
                .Tos(p.family == Family::kIpv4 ? 0xc0 : 0)
                .IpId(NextIcmpId())
                .IcmpError(type, code, quoted, rest)
                .Build();
  if (!r.Reparse()) return;
  if (attach && b.ct.tracked()) {
    r.ct.flow = b.ct.flow;
    r.ct.info = CtInfoIsReply(b.ct.info) ? CtInfo::kRelated : CtInfo::kRelatedReply;
  }
  ++counters_.local_replies;
  LocalOut(std::move(r), now, tx);
}

}  // namespace ctsync

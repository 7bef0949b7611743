// RuleSet::Evaluate: one table at one hook, following the kernel's ipt_do_table /
// ip6t_do_table walk and each extension's match/target function (xt_tcpudp, xt_conntrack,
// xt_multiport, xt_mark, xt_connmark, xt_CT, xt_MARK, xt_CONNMARK). No allocation unless
// the caller asks for hits.
#include <string_view>

#include "core/rules/rule.h"
#include "core/rules/rule_set.h"

namespace ctsync::rules {
namespace {

using internal::Chain;
using internal::ConntrackMatch;
using internal::IcmpMatch;
using internal::IfaceMatch;
using internal::MarkMatch;
using internal::Match;
using internal::MultiportMatch;
using internal::PortRange;
using internal::Rule;
using internal::TargetKind;
using internal::TcpMatch;
using internal::UdpMatch;

bool InRange(const PortRange& r, uint16_t p) { return p >= r.min && p <= r.max; }

bool IfaceMatches(const IfaceMatch& m, std::string_view name) {
  if (!m.set) return true;
  bool hit = m.wildcard ? name.substr(0, m.name.size()) == m.name && name.size() >= m.name.size()
                        : name == m.name;
  return hit != m.invert;
}

// The per-packet values targets may change while the walk goes on.
struct Live {
  uint32_t mark;
  uint32_t ct_mark;
};

bool HasConntrack(const MatchContext& ctx) {
  return (ctx.ctstate & (kCtInvalid | kCtUntracked)) == 0;
}

bool ConntrackMatches(const ConntrackMatch& m, const MatchContext& ctx) {
  using F = ConntrackMatch;
  auto inv = [&](uint16_t f) { return (m.invert & f) != 0; };
  const bool has_ct = HasConntrack(ctx);
  if (m.flags & F::kState) {
    uint16_t bits =
        ctx.ctstate & (kCtInvalid | kCtNew | kCtEstablished | kCtRelated | kCtUntracked);
    // -m state never sees the NAT bits; -m conntrack does when a connection exists.
    if (!m.state_alias && has_ct) bits |= ctx.ctstate & (kCtSnat | kCtDnat);
    if (((m.state_mask & bits) != 0) == inv(F::kState)) return false;
  }
  // Without a connection only a pure state match can match (xt_conntrack).
  if (!has_ct) return m.flags == F::kState;
  if (m.flags & F::kDir) {
    if (ctx.ct_dir_reply != m.dir_reply) return false;
  }
  const Tuple* orig = ctx.ct_orig;
  const Tuple* reply = ctx.ct_reply;
  const bool needs_tuples = (m.flags & ~(F::kState | F::kDir | F::kStatus)) != 0;
  if (needs_tuples && (orig == nullptr || reply == nullptr)) return false;
  if (m.flags & F::kProto) {
    if ((orig->proto == m.proto) == inv(F::kProto)) return false;
  }
  const IpAddress* addrs[4] = {orig ? &orig->src : nullptr, orig ? &orig->dst : nullptr,
                               reply ? &reply->src : nullptr, reply ? &reply->dst : nullptr};
  const uint16_t ports[4] = {orig ? orig->sport : uint16_t{0}, orig ? orig->dport : uint16_t{0},
                             reply ? reply->sport : uint16_t{0},
                             reply ? reply->dport : uint16_t{0}};
  for (int k = 0; k < 4; ++k) {
    uint16_t f = F::kOrigSrc << k;
    if ((m.flags & f) && m.addr[k].Contains(orig->family, *addrs[k]) == inv(f)) return false;
  }
  for (int k = 0; k < 4; ++k) {
    uint16_t f = F::kOrigSrcPort << k;
    if ((m.flags & f) && InRange(m.port[k], ports[k]) == inv(f)) return false;
  }
  if (m.flags & F::kStatus) {
    if (((m.status_mask & ctx.ct_status) != 0) == inv(F::kStatus)) return false;
  }
  return true;
}

bool MatchMatches(const Match& match, const MatchContext& ctx, const Live& live) {
  if (const auto* t = std::get_if<TcpMatch>(&match)) {
    if (ctx.non_first_fragment || !ctx.has_ports) return false;
    if (t->has_sport && InRange(t->sport, ctx.sport) == t->sport_inv) return false;
    if (t->has_dport && InRange(t->dport, ctx.dport) == t->dport_inv) return false;
    if (t->has_flags && ((ctx.tcp_flags & t->flags_mask) == t->flags_cmp) == t->flags_inv)
      return false;
    return true;
  }
  if (const auto* u = std::get_if<UdpMatch>(&match)) {
    if (ctx.non_first_fragment || !ctx.has_ports) return false;
    if (u->has_sport && InRange(u->sport, ctx.sport) == u->sport_inv) return false;
    if (u->has_dport && InRange(u->dport, ctx.dport) == u->dport_inv) return false;
    return true;
  }
  if (const auto* i = std::get_if<IcmpMatch>(&match)) {
    if (ctx.non_first_fragment || !ctx.has_icmp) return false;
    bool hit =
        (!i->v6 && i->type == 0xff) ||
        (ctx.icmp_type == i->type && ctx.icmp_code >= i->code_min && ctx.icmp_code <= i->code_max);
    return hit != i->invert;
  }
  if (const auto* c = std::get_if<ConntrackMatch>(&match)) return ConntrackMatches(*c, ctx);
  if (const auto* mp = std::get_if<MultiportMatch>(&match)) {
    if (ctx.non_first_fragment || !ctx.has_ports) return false;
    bool hit = false;
    for (const PortRange& r : mp->ranges) {
      switch (mp->which) {
        case MultiportMatch::kSource:
          hit = InRange(r, ctx.sport);
          break;
        case MultiportMatch::kDest:
          hit = InRange(r, ctx.dport);
          break;
        case MultiportMatch::kEither:
          hit = InRange(r, ctx.sport) || InRange(r, ctx.dport);
          break;
      }
      if (hit) break;
    }
    return hit != mp->invert;
  }
  if (const auto* mk = std::get_if<MarkMatch>(&match)) {
    // xt_connmark fails outright when the packet has no connection, whatever the `!`.
    if (mk->conn && !HasConntrack(ctx)) return false;
    uint32_t v = mk->conn ? live.ct_mark : live.mark;
    return ((v & mk->mask) == mk->value) != mk->invert;
  }
  return false;
}

bool RuleMatches(const Rule& r, const MatchContext& ctx, const Live& live) {
  if (r.src.set && r.src.prefix.Contains(ctx.family, ctx.src) == r.src.invert) return false;
  if (r.dst.set && r.dst.prefix.Contains(ctx.family, ctx.dst) == r.dst.invert) return false;
  if (!IfaceMatches(r.in, ctx.in_iface) || !IfaceMatches(r.out, ctx.out_iface)) return false;
  if (r.proto_set && r.proto != 0 && (ctx.proto == r.proto) == r.proto_inv) return false;
  if (r.frag == Rule::kFragOnly && !ctx.non_first_fragment) return false;
  if (r.frag == Rule::kNoFrag && ctx.non_first_fragment) return false;
  for (const Match& m : r.matches)
    if (!MatchMatches(m, ctx, live)) return false;
  return true;
}

}  // namespace

Verdict RuleSet::Evaluate(Table table, Hook hook, const MatchContext& ctx, PacketEffects* effects,
                          std::vector<RuleHit>* hits) {
  Verdict verdict;
  internal::TableData* t = tables_[static_cast<int>(table)].get();
  if (t == nullptr) return verdict;
  const int builtin = t->hook_chain[static_cast<int>(hook)];
  if (builtin < 0) return verdict;

  PacketEffects ignored;  // an empty std::string does not allocate
  if (effects == nullptr) effects = &ignored;
  Live live{effects->mark.value_or(ctx.mark), effects->ct_mark.value_or(ctx.ct_mark)};
  // xt_CT and NOTRACK leave a packet alone once something is attached to it.
  bool ct_attached = effects->notrack;
  stack_.clear();
  int chain = builtin;
  size_t index = 0;
  for (;;) {
    Chain& c = t->chains[chain];
    if (index >= c.rules.size()) {
      // End of chain: a built-in chain's policy, or an implicit RETURN.
      if (c.builtin) {
        c.packets++;
        c.bytes += ctx.packet_len;
        verdict.kind = c.policy_drop ? Verdict::kDrop : Verdict::kAccept;
        return verdict;
      }
      if (stack_.empty()) {
        chain = builtin;
        index = t->chains[builtin].rules.size();
        continue;
      }
      chain = stack_.back().first;
      index = static_cast<size_t>(stack_.back().second);
      stack_.pop_back();
      continue;
    }
    Rule& r = c.rules[index];
    if (!RuleMatches(r, ctx, live)) {
      ++index;
      continue;
    }
    r.packets++;
    r.bytes += ctx.packet_len;
    if (hits != nullptr) hits->push_back(RuleHit{table, c.name, static_cast<int>(index)});
    const internal::Target& tg = r.target;
    switch (tg.kind) {
      case TargetKind::kNone:
        ++index;
        continue;
      case TargetKind::kAccept:
        verdict.kind = Verdict::kAccept;
        return verdict;
      case TargetKind::kDrop:
        verdict.kind = Verdict::kDrop;
        return verdict;
      case TargetKind::kReject:
        verdict.kind = Verdict::kReject;
        verdict.reject = tg.reject;
        return verdict;
      case TargetKind::kNat:
        verdict.kind = Verdict::kNat;
        verdict.nat = tg.nat;
        return verdict;
      case TargetKind::kReturn:
        if (stack_.empty()) {
          // RETURN with nothing to return to ends at the built-in chain's policy.
          chain = builtin;
          index = t->chains[builtin].rules.size();
        } else {
          chain = stack_.back().first;
          index = static_cast<size_t>(stack_.back().second);
          stack_.pop_back();
        }
        continue;
      case TargetKind::kJump:
        stack_.push_back({chain, static_cast<int>(index + 1)});
        chain = tg.chain;
        index = 0;
        continue;
      case TargetKind::kGoto:
        chain = tg.chain;
        index = 0;
        continue;
      case TargetKind::kNotrack:
        if (!ct_attached) effects->notrack = true;
        ct_attached = true;
        ++index;
        continue;
      case TargetKind::kCt:
        if (!ct_attached) {
          if (tg.ct_notrack) {
            effects->notrack = true;
          } else {
            if (tg.has_zone) effects->ct_zone = tg.zone;
            if (!tg.helper.empty()) effects->ct_helper = tg.helper;
          }
        }
        ct_attached = true;
        ++index;
        continue;
      case TargetKind::kMark:
        live.mark = (live.mark & ~tg.mask) ^ tg.value;
        effects->mark = live.mark;
        ++index;
        continue;
      case TargetKind::kConnmark:
        if (HasConntrack(ctx)) {
          switch (tg.connmark_mode) {
            case internal::Target::kSetXmark:
              live.ct_mark = (live.ct_mark & ~tg.mask) ^ tg.value;
              effects->ct_mark = live.ct_mark;
              break;
            case internal::Target::kSave:
              live.ct_mark = (live.ct_mark & ~tg.ctmask) ^ (live.mark & tg.nfmask);
              effects->ct_mark = live.ct_mark;
              break;
            case internal::Target::kRestore:
              live.mark = (live.mark & ~tg.nfmask) ^ (live.ct_mark & tg.ctmask);
              effects->mark = live.mark;
              break;
          }
        }
        ++index;
        continue;
      case TargetKind::kLog:
        effects->log_count++;
        ++index;
        continue;
    }
    ++index;
  }
}

}  // namespace ctsync::rules

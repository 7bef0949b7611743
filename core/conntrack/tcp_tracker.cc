// Implementation of the TCP tracker; see tcp_tracker.h and tcp_rules.md. Function and
// branch comments name the kernel rule (nf_conntrack_proto_tcp.c, Linux 6.18) followed.
#include "core/conntrack/tcp_tracker.h"

#include "core/conntrack/conntrack_settings.h"

namespace ctsync {
namespace {

// Packet classes, in the kernel's order (enum tcp_bit_set); also stored in last_index.
enum TcpIndex : uint8_t {
  kSynSet = 0,
  kSynAckSet = 1,
  kFinSet = 2,
  kAckSet = 3,
  kRstSet = 4,
  kNoneSet = 5,
};

constexpr uint8_t kOrigDir = 0;
constexpr uint8_t kReplyDir = 1;

constexpr uint8_t kMaxWindowScale = 14;         // RFC 7323 (kernel TCP_MAX_WSCALE)
constexpr uint32_t kMaxAckWindowFloor = 66000;  // kernel MAXACKWINCONST

// Shorthands for the table (kernel sNO.. sIG).
constexpr TcpState sNO = TcpState::kNone;
constexpr TcpState sSS = TcpState::kSynSent;
constexpr TcpState sSR = TcpState::kSynRecv;
constexpr TcpState sES = TcpState::kEstablished;
constexpr TcpState sFW = TcpState::kFinWait;
constexpr TcpState sCW = TcpState::kCloseWait;
constexpr TcpState sLA = TcpState::kLastAck;
constexpr TcpState sTW = TcpState::kTimeWait;
constexpr TcpState sCL = TcpState::kClose;
constexpr TcpState sS2 = TcpState::kSynSent2;
constexpr TcpState sIV = TcpState::kMax;
constexpr TcpState sIG = TcpState::kIgnore;

// tcp_conntracks[dir][index][old_state]; rows and every cell are explained in tcp_rules.md.
// clang-format off
constexpr TcpState kTransitions[2][6][10] = {
    {
        // ORIGINAL   sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2
        /* syn    */ {sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2},
        /* synack */ {sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR},
        /* fin    */ {sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV},
        /* ack    */ {sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV},
        /* rst    */ {sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
        /* none   */ {sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV},
    },
    {
        // REPLY      sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2
        /* syn    */ {sIV, sS2, sIV, sIV, sIV, sIV, sIV, sSS, sIV, sS2},
        /* synack */ {sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR},
        /* fin    */ {sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV},
        /* ack    */ {sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG},
        /* rst    */ {sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL},
        /* none   */ {sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV},
    },
};
// clang-format on

// Sequence-space comparisons (kernel before()/after()).
inline bool SeqBefore(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }
inline bool SeqAfter(uint32_t a, uint32_t b) { return SeqBefore(b, a); }

// get_conntrack_index: RST wins over SYN, SYN over FIN, FIN over ACK.
uint8_t IndexOf(uint8_t flags) {
  if (flags & kTcpRst) return kRstSet;
  if (flags & kTcpSyn) return (flags & kTcpAck) ? kSynAckSet : kSynSet;
  if (flags & kTcpFin) return kFinSet;
  if (flags & kTcpAck) return kAckSet;
  return kNoneSet;
}

// segment_seq_plus_len: SYN and FIN each occupy one sequence number.
uint32_t SegmentEnd(const TcpSegment& seg) {
  return seg.seq + seg.payload_len + ((seg.flags & kTcpSyn) ? 1 : 0) +
         ((seg.flags & kTcpFin) ? 1 : 0);
}

TcpState Lookup(uint8_t dir, uint8_t index, TcpState old_state) {
  const int s = static_cast<int>(old_state);
  if (s < 0 || s >= 10) return sIV;  // corrupted/foreign state: treat the packet as invalid
  return kTransitions[dir][index][s];
}

// tcp_options applied to one direction: with no options at all the kernel leaves the
// direction untouched; otherwise scale and flags restart (keeping only BE_LIBERAL).
void ApplyOptions(const TcpSegment& seg, TcpDirState& d) {
  if (seg.data_offset_words <= 5) return;
  d.td_scale = 0;
  d.flags &= kTcpFlagBeLiberal;
  if (seg.sack_perm) d.flags |= kTcpFlagSackPerm;
  if (seg.wscale.has_value()) {
    d.td_scale = *seg.wscale > kMaxWindowScale ? kMaxWindowScale : *seg.wscale;
    d.flags |= kTcpFlagWindowScale;
  }
}

// tcp_init_sender: (re)initialise a direction from its SYN or SYN/ACK.
void InitSender(TcpDirState& sender, TcpDirState& receiver, const TcpSegment& seg, uint32_t end,
                uint32_t win, uint8_t dir) {
  sender.td_end = end;
  sender.td_maxend = end;
  sender.td_maxwin = win == 0 ? 1 : win;
  ApplyOptions(seg, sender);
  // RFC 7323: scaling is on only if both SYNs carried the option.
  if (dir == kReplyDir &&
      !((sender.flags & kTcpFlagWindowScale) && (receiver.flags & kTcpFlagWindowScale))) {
    sender.td_scale = 0;
    receiver.td_scale = 0;
  }
}

// nf_ct_tcp_state_reset.
void ResetDir(TcpDirState& d) {
  const uint8_t keep = d.flags & kTcpFlagBeLiberal;
  d = TcpDirState{};
  d.flags = keep;
}

inline uint32_t MaxAckWindow(const TcpDirState& sender) {
  return sender.td_maxwin > kMaxAckWindowFloor ? sender.td_maxwin : kMaxAckWindowFloor;
}

enum class WindowVerdict { kAccept, kIgnore, kInvalid };

struct WindowResult {
  WindowVerdict verdict;
  const char* reason;
};

// nf_tcp_log_invalid: a liberal sender (sysctl or loose pick-up) turns every failed check
// into an accept — without the window updates the check skipped.
WindowResult Fail(const TcpDirState& sender, const TcpSettings& settings, WindowVerdict v,
                  const char* reason) {
  if ((sender.flags & kTcpFlagBeLiberal) || settings.be_liberal) {
    return {WindowVerdict::kAccept, nullptr};
  }
  return {v, reason};
}

// tcp_in_window: the sequence/ack bounds I-IV of the kernel comment, plus the updates of
// both directions' window data and the retransmission counter.
WindowResult InWindow(TcpConnState& st, uint8_t dir, uint8_t index, const TcpSegment& seg,
                      const TcpPacketContext& ctx, const TcpSettings& settings) {
  TcpDirState& sender = st.seen[dir];
  TcpDirState& receiver = st.seen[dir ^ 1];
  const bool syn = seg.flags & kTcpSyn;
  const bool has_ack = seg.flags & kTcpAck;

  uint32_t seq = seg.seq;
  uint32_t ack = seg.ack;
  uint32_t sack = seg.ack;
  uint32_t win = seg.window;
  uint32_t end = SegmentEnd(seg);

  // tcp_sack is consulted only when the receiver negotiated SACK.
  if (receiver.flags & kTcpFlagSackPerm) {
    const int n = seg.sack_count > 4 ? 4 : seg.sack_count;
    for (int i = 0; i < n; ++i) {
      if (SeqAfter(seg.sack_right_edge[i], sack)) sack = seg.sack_right_edge[i];
    }
  }

  // NAT helpers (seqadj) shift the other direction's sequence space.
  ack -= static_cast<uint32_t>(ctx.ack_offset);
  sack -= static_cast<uint32_t>(ctx.ack_offset);

  if (sender.td_maxwin == 0) {
    if (syn) {
      // First SYN/ACK, or the reply direction's SYN in a simultaneous open.
      InitSender(sender, receiver, seg, end, win, dir);
      if (!has_ack) return {WindowVerdict::kAccept, nullptr};
    } else {
      // First packet of this direction of a picked-up connection: trust the packet.
      sender.td_end = end;
      const uint32_t swin = win << sender.td_scale;
      sender.td_maxwin = swin == 0 ? 1 : swin;
      sender.td_maxend = end + sender.td_maxwin;
      if (receiver.td_maxwin == 0) {
        // Other direction unseen too: make bounds III and IV pass until it shows up.
        receiver.td_end = sack;
        receiver.td_maxend = sack;
      } else if (sack == receiver.td_end + 1) {
        // Probably the answer to a keepalive (needed for bound III).
        receiver.td_end++;
      }
    }
  } else if (syn && SeqAfter(end, sender.td_end) &&
             (st.state == TcpState::kSynSent || st.state == TcpState::kSynRecv)) {
    // RFC 793 reinitialisation: a SYN(/ACK) with a newer ISN restarts this direction.
    InitSender(sender, receiver, seg, end, win, dir);
    if (dir == kReplyDir && !has_ack) return {WindowVerdict::kAccept, nullptr};
  }

  if (!has_ack) {
    // No ACK: act as if it acknowledged exactly what the receiver sent.
    ack = sack = receiver.td_end;
  } else if ((seg.flags & (kTcpAck | kTcpRst)) == (kTcpAck | kTcpRst) && seg.ack == 0) {
    // Broken stacks send RST+ACK with a zero ack.
    ack = sack = receiver.td_end;
  }

  if ((seg.flags & kTcpRst) && seq == 0 && st.state == TcpState::kSynSent) {
    // RST answering our SYN may carry seq 0.
    seq = end = sender.td_end;
  }

  // I. Upper bound for data.
  const bool seq_ok = SeqBefore(seq, sender.td_maxend + 1);
  if (!seq_ok) {
    const uint32_t overshot = end - sender.td_maxend + 1;
    const bool ack_ok = SeqAfter(sack, receiver.td_end - MaxAckWindow(sender) - 1);
    const bool in_recv_win =
        receiver.td_maxwin != 0 && SeqAfter(end, sender.td_end - receiver.td_maxwin - 1);
    if (in_recv_win && ack_ok && overshot <= receiver.td_maxwin &&
        SeqBefore(sack, receiver.td_end + 1)) {
      // Sender overran the advertised window a little: remember the data so the peer's
      // ACK of it is not "over upper bound" later, but do not accept the packet.
      sender.td_end = end;
      sender.flags |= kTcpFlagDataUnacknowledged;
      return Fail(sender, settings, WindowVerdict::kIgnore, "bytes more than expected");
    }
    return Fail(sender, settings, WindowVerdict::kInvalid,
                "SEQ is over upper bound (over the window of the receiver)");
  }
  // III. Upper bound for (s)ack: never ACK data not sent yet.
  if (!SeqBefore(sack, receiver.td_end + 1)) {
    return Fail(sender, settings, WindowVerdict::kInvalid,
                "ACK is over upper bound (ACKed data not seen yet)");
  }
  // II. Lower bound for data.
  const bool in_recv_win =
      receiver.td_maxwin == 0 || SeqAfter(end, sender.td_end - receiver.td_maxwin - 1);
  if (!in_recv_win) {
    return Fail(sender, settings, WindowVerdict::kIgnore,
                "SEQ is under lower bound (already ACKed data retransmitted)");
  }
  // IV. Lower bound for (s)ack.
  if (!SeqAfter(sack, receiver.td_end - MaxAckWindow(sender) - 1)) {
    return Fail(sender, settings, WindowVerdict::kIgnore,
                "ignored ACK under lower bound (possible overly delayed)");
  }

  // Windows in SYNs are never scaled (RFC 7323).
  if (!syn) win <<= sender.td_scale;

  // Update the sender.
  const uint32_t swin = win + (sack - ack);
  if (sender.td_maxwin < swin) sender.td_maxwin = swin;
  if (SeqAfter(end, sender.td_end)) {
    sender.td_end = end;
    sender.flags |= kTcpFlagDataUnacknowledged;
  }
  if (has_ack) {
    if (!(sender.flags & kTcpFlagMaxackSet)) {
      sender.td_maxack = ack;
      sender.flags |= kTcpFlagMaxackSet;
    } else if (SeqAfter(ack, sender.td_maxack)) {
      sender.td_maxack = ack;
    }
  }

  // Update the receiver.
  if (receiver.td_maxwin != 0 && SeqAfter(end, sender.td_maxend)) {
    receiver.td_maxwin += end - sender.td_maxend;
  }
  if (SeqAfter(sack + win, receiver.td_maxend - 1)) {
    receiver.td_maxend = sack + win;
    if (win == 0) receiver.td_maxend++;
  }
  if (ack == receiver.td_end) receiver.flags &= ~kTcpFlagDataUnacknowledged;

  // Retransmission counting: an identical pure-ACK-class segment from the same side.
  if (index == kAckSet) {
    if (st.last_dir == dir && st.last_seq == seq && st.last_ack == ack && st.last_end == end &&
        st.last_win == seg.window) {
      st.retrans++;
    } else {
      st.last_dir = dir;
      st.last_seq = seq;
      st.last_ack = ack;
      st.last_end = end;
      st.last_win = seg.window;
      st.retrans = 0;
    }
  }
  return {WindowVerdict::kAccept, nullptr};
}

// nf_tcp_handle_invalid: an out-of-window FIN/RST answered by an out-of-window FIN/RST
// from the other side on an ASSURED entry means the endpoints and we disagree; shorten the
// timeout to the unacknowledged one so the dead entry goes away.
void HandleInvalid(TcpConnState& st, uint8_t dir, uint8_t index, const TcpPacketContext& ctx,
                   const TcpSettings& settings, TcpResult& r) {
  if (!ctx.assured) return;
  if (index != kRstSet && index != kFinSet) return;
  if (st.last_dir != dir && (st.last_index == kFinSet || st.last_index == kRstSet)) {
    if (ctx.expires_at == 0) return;  // expiry unknown: leave the timer alone
    const Nanos remaining = ctx.expires_at - ctx.now;
    if (remaining < 120 * kNanosPerSecond) return;
    const Nanos unack = settings.timeout(TcpState::kUnack);
    if (remaining > unack) {
      r.timeout = unack;
      r.refresh_timeout = true;
    }
  } else {
    st.last_index = index;
    st.last_dir = dir;
  }
}

TcpResult Invalid(TcpState old_state, const char* reason) {
  TcpResult r;
  r.verdict = TcpResult::Verdict::kInvalid;
  r.old_state = old_state;
  r.new_state = old_state;
  r.invalid_reason = reason;
  return r;
}

TcpResult Ignored(TcpState old_state, const char* reason) {
  TcpResult r;
  r.verdict = TcpResult::Verdict::kAccept;
  r.old_state = old_state;
  r.new_state = old_state;
  r.invalid_reason = reason;
  return r;
}

// The flag combinations tcp_valid_flags admits once PSH, ECE and CWR are masked off.
bool ValidFlagCombination(uint8_t flags) {
  switch (flags & (kTcpFin | kTcpSyn | kTcpRst | kTcpAck | kTcpUrg)) {
    case kTcpSyn:
    case kTcpSyn | kTcpUrg:
    case kTcpSyn | kTcpAck:
    case kTcpRst:
    case kTcpRst | kTcpAck:
    case kTcpFin | kTcpAck:
    case kTcpFin | kTcpAck | kTcpUrg:
    case kTcpAck:
    case kTcpAck | kTcpUrg:
      return true;
    default:
      return false;
  }
}

constexpr uint8_t kOptEol = 0;
constexpr uint8_t kOptNop = 1;
constexpr uint8_t kOptWindow = 3;
constexpr uint8_t kOptSackPerm = 4;
constexpr uint8_t kOptSack = 5;
constexpr uint8_t kOptTimestamp = 8;

inline uint32_t ReadBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

}  // namespace

void TcpParseOptions(const uint8_t* opts, size_t len, TcpSegment& seg) {
  seg.wscale.reset();
  seg.sack_perm = false;
  seg.sack_count = 0;
  if (opts == nullptr || len == 0) return;

  // tcp_options: window scale and SACK-permitted, over the whole option list.
  for (size_t i = 0; i < len;) {
    const uint8_t kind = opts[i];
    if (kind == kOptEol) break;
    if (kind == kOptNop) {
      ++i;
      continue;
    }
    if (len - i < 2) break;
    const uint8_t size = opts[i + 1];
    if (size < 2 || size > len - i) break;  // silly or partial option: stop
    if (kind == kOptSackPerm && size == 2) {
      seg.sack_perm = true;
    } else if (kind == kOptWindow && size == 3) {
      seg.wscale = opts[i + 2];
    }
    i += size;
  }

  // tcp_sack: the aligned timestamp-only layout carries nothing; else the first SACK.
  if (len == 12 && opts[0] == kOptNop && opts[1] == kOptNop && opts[2] == kOptTimestamp &&
      opts[3] == 10) {
    return;
  }
  for (size_t i = 0; i < len;) {
    const uint8_t kind = opts[i];
    if (kind == kOptEol) return;
    if (kind == kOptNop) {
      ++i;
      continue;
    }
    if (len - i < 2) return;
    const uint8_t size = opts[i + 1];
    if (size < 2 || size > len - i) return;
    if (kind == kOptSack && size >= 10 && (size - 2) % 8 == 0) {
      int n = 0;
      for (size_t b = 2; b < size && n < 4; b += 8, ++n) {
        seg.sack_right_edge[n] = ReadBe32(opts + i + b + 4);
      }
      seg.sack_count = static_cast<uint8_t>(n);
      return;
    }
    i += size;
  }
}

std::optional<const char*> TcpSegmentFromBytes(const uint8_t* tcp, size_t tcp_len,
                                               TcpSegment& out) {
  constexpr size_t kFixedHeader = 20;
  if (tcp == nullptr || tcp_len < kFixedHeader) return "truncated packet";
  const uint8_t doff = tcp[12] >> 4;
  const size_t header_len = size_t{doff} * 4;
  if (header_len < kFixedHeader || tcp_len < header_len) return "truncated packet";
  out = TcpSegment{};
  out.seq = ReadBe32(tcp + 4);
  out.ack = ReadBe32(tcp + 8);
  out.data_offset_words = doff;
  out.flags = tcp[13];
  out.window = static_cast<uint16_t>((tcp[14] << 8) | tcp[15]);
  out.payload_len = static_cast<uint32_t>(tcp_len - header_len);
  TcpParseOptions(tcp + kFixedHeader, header_len - kFixedHeader, out);
  return std::nullopt;
}

TcpSettings TcpSettingsFrom(const ConntrackSettings& s) {
  TcpSettings t;
  t.loose = s.tcp_loose;
  t.be_liberal = s.tcp_be_liberal;
  t.ignore_invalid_rst = s.tcp_ignore_invalid_rst;
  t.max_retrans = static_cast<uint8_t>(s.tcp_max_retrans < 0     ? 0
                                       : s.tcp_max_retrans > 255 ? 255
                                                                 : s.tcp_max_retrans);
  auto secs = [](int v) { return static_cast<Nanos>(v) * kNanosPerSecond; };
  t.timeouts[static_cast<int>(TcpState::kNone)] = secs(s.tcp_timeout_syn_sent);
  t.timeouts[static_cast<int>(TcpState::kSynSent)] = secs(s.tcp_timeout_syn_sent);
  t.timeouts[static_cast<int>(TcpState::kSynRecv)] = secs(s.tcp_timeout_syn_recv);
  t.timeouts[static_cast<int>(TcpState::kEstablished)] = secs(s.tcp_timeout_established);
  t.timeouts[static_cast<int>(TcpState::kFinWait)] = secs(s.tcp_timeout_fin_wait);
  t.timeouts[static_cast<int>(TcpState::kCloseWait)] = secs(s.tcp_timeout_close_wait);
  t.timeouts[static_cast<int>(TcpState::kLastAck)] = secs(s.tcp_timeout_last_ack);
  t.timeouts[static_cast<int>(TcpState::kTimeWait)] = secs(s.tcp_timeout_time_wait);
  t.timeouts[static_cast<int>(TcpState::kClose)] = secs(s.tcp_timeout_close);
  t.timeouts[static_cast<int>(TcpState::kRetrans)] = secs(s.tcp_timeout_max_retrans);
  t.timeouts[static_cast<int>(TcpState::kUnack)] = secs(s.tcp_timeout_unacknowledged);
  return t;
}

std::optional<const char*> TcpCheckHeader(const TcpSegment& seg) {
  if (seg.data_offset_words < 5) return "truncated packet";
  if (!ValidFlagCombination(seg.flags)) return "invalid tcp flag combination";
  return std::nullopt;
}

bool TcpNew(TcpConnState& state, const TcpSegment& seg, const TcpSettings& settings) {
  const TcpState first = kTransitions[kOrigDir][IndexOf(seg.flags)][0];
  if (first == sIV || first == sIG) return false;  // "invalid new"

  if (first != sSS && !settings.loose) return false;  // no mid-stream pick-up

  state = TcpConnState{};
  TcpDirState& orig = state.seen[kOrigDir];
  orig.td_end = SegmentEnd(seg);
  orig.td_maxwin = seg.window == 0 ? 1 : seg.window;
  if (first == sSS) {
    orig.td_maxend = orig.td_end;
    ApplyOptions(seg, orig);
  } else {
    // Mid-connection: history is lost, so assume SACK and check windows liberally (we
    // cannot know the window scale).
    orig.td_maxend = orig.td_end + orig.td_maxwin;
    state.seen[kOrigDir].flags = kTcpFlagSackPerm | kTcpFlagBeLiberal;
    state.seen[kReplyDir].flags = kTcpFlagSackPerm | kTcpFlagBeLiberal;
  }
  state.last_index = kNoneSet;
  return true;
}

TcpResult TcpPacket(TcpConnState& st, const TcpSegment& seg, const TcpPacketContext& ctx,
                    const TcpSettings& settings) {
  const uint8_t dir = ctx.dir == Direction::kReply ? kReplyDir : kOrigDir;
  const uint8_t index = IndexOf(seg.flags);
  TcpState old_state = st.state;
  TcpState new_state = Lookup(dir, index, old_state);
  // Whether the kernel's nf_conntrack_tcp_established() holds (state before this packet).
  const bool established = old_state == TcpState::kEstablished && ctx.assured;
  bool skip_window = false;

  switch (new_state) {
    case TcpState::kSynSent:
      if (static_cast<int>(old_state) < static_cast<int>(TcpState::kTimeWait)) break;
      // SYN in TIME_WAIT/CLOSE (RFC 1122 reopen): if the old connection was closed or
      // aborted, drop the entry and treat the SYN as a new connection.
      if (((st.seen[dir].flags | st.seen[dir ^ 1].flags) & kTcpFlagCloseInit) ||
          (st.last_dir == dir && st.last_index == kRstSet)) {
        TcpResult r;
        r.verdict = TcpResult::Verdict::kRepeat;
        r.kill = true;
        r.old_state = old_state;
        r.new_state = old_state;
        return r;
      }
      [[fallthrough]];
    case TcpState::kIgnore: {
      // The endpoints may be in sync while we are not: let the packet through without
      // touching the state, but remember it so the answer can resynchronise us.
      if (index == kSynAckSet && st.last_index == kSynSet && st.last_dir != dir &&
          seg.ack == st.last_end) {
        // This SYN/ACK answers the SYN we ignored: adopt that SYN as the opening.
        old_state = TcpState::kSynSent;
        new_state = TcpState::kSynRecv;
        TcpDirState& opener = st.seen[st.last_dir];
        opener.td_end = st.last_end;
        opener.td_maxend = st.last_end;
        opener.td_maxwin = st.last_win == 0 ? 1 : st.last_win;
        opener.td_scale = st.last_wscale;
        st.last_flags &= ~kTcpFlagChallengeAck;
        opener.flags = st.last_flags;
        ResetDir(st.seen[dir]);
        break;
      }
      st.last_index = index;
      st.last_dir = dir;
      st.last_seq = seg.seq;
      st.last_end = SegmentEnd(seg);
      st.last_win = seg.window;
      if (index == kSynSet && dir == kOrigDir) {
        // Keep the SYN's options for the resync above.
        st.last_flags = 0;
        st.last_wscale = 0;
        if (seg.data_offset_words > 5 && seg.wscale.has_value()) {
          st.last_flags |= kTcpFlagWindowScale;
          st.last_wscale = *seg.wscale > kMaxWindowScale ? kMaxWindowScale : *seg.wscale;
        }
        if (seg.data_offset_words > 5 && seg.sack_perm) st.last_flags |= kTcpFlagSackPerm;
        // In LAST_ACK the peer may answer this SYN with an RFC 5961 challenge ACK that
        // must not be taken as the last ACK.
        if (old_state == TcpState::kLastAck) st.last_flags |= kTcpFlagChallengeAck;
      }
      // A reply ACK in SYN_SENT may be a challenge ACK; a RST may follow with its ack.
      if (old_state == TcpState::kSynSent && index == kAckSet && dir == kReplyDir) {
        st.last_ack = seg.ack;
      }
      return Ignored(old_state, "packet ignored (out of sync)");
    }
    case TcpState::kMax:
      return Invalid(old_state, "invalid packet for state");
    case TcpState::kTimeWait:
      // RFC 5961 challenge ACK to a SYN we let through in LAST_ACK: not the last ACK.
      if (old_state == TcpState::kLastAck && index == kAckSet && st.last_dir != dir &&
          st.last_index == kSynSet && (st.last_flags & kTcpFlagChallengeAck)) {
        st.last_flags &= ~kTcpFlagChallengeAck;
        return Ignored(old_state, "challenge-ack ignored");
      }
      break;
    case TcpState::kSynSent2:
      // The table cannot tell a simultaneous open's SYN_RECV apart; remember it.
      st.last_flags |= kTcpLastFlagSimultaneousOpen;
      break;
    case TcpState::kSynRecv:
      if (dir == kReplyDir && index == kAckSet && (st.last_flags & kTcpLastFlagSimultaneousOpen)) {
        new_state = TcpState::kEstablished;
      }
      break;
    case TcpState::kClose: {
      if (index != kRstSet) break;
      // While closing the tuple may already be reused: skip validation entirely.
      if (TcpCanEarlyDrop(old_state)) {
        skip_window = true;
        break;
      }
      const TcpDirState& peer = st.seen[dir ^ 1];
      if ((peer.flags & kTcpFlagMaxackSet) && st.last_index != kSynSet) {
        // Probably the answer to a SYN we let through.
        if (seg.seq == 0 && !established) break;
        if (SeqBefore(seg.seq, peer.td_maxack) && !settings.ignore_invalid_rst) {
          return Invalid(old_state, "invalid rst");
        }
        if (!established || seg.seq == peer.td_maxack) break;
        // RST right after our last data segment in the same direction (a "train").
        if (st.last_index == kAckSet && st.last_dir == dir && seg.seq == st.last_end) break;
        // Sequence not exact: stay put so a challenge ACK can follow (timeout still
        // becomes the CLOSE one below, as in the kernel).
        new_state = old_state;
      }
      if (((ctx.seen_reply && st.last_index == kSynSet) ||
           (!ctx.assured && st.last_index == kAckSet)) &&
          seg.ack == st.last_end) {
        // RST answering a SYN (a) or ACK (c) we let through while out of sync: accept
        // without window checks, it may ACK what we ignored.
        skip_window = true;
        break;
      }
      // RST answering a challenge ACK we let through in SYN_SENT.
      if (old_state == TcpState::kSynSent && st.last_index == kAckSet && st.last_dir == kReplyDir &&
          seg.seq == st.last_ack) {
        skip_window = true;
      }
      break;
    }
    default:
      break;
  }

  TcpResult r;
  r.old_state = old_state;
  if (!skip_window) {
    const WindowResult w = InWindow(st, dir, index, seg, ctx, settings);
    if (w.verdict == WindowVerdict::kIgnore) return Ignored(old_state, w.reason);
    if (w.verdict == WindowVerdict::kInvalid) {
      r = Invalid(old_state, w.reason);
      HandleInvalid(st, dir, index, ctx, settings, r);
      return r;
    }
  }

  // In-window from here on.
  st.last_index = index;
  st.last_dir = dir;
  st.state = new_state;
  if (old_state != new_state && new_state == TcpState::kFinWait) {
    st.seen[dir].flags |= kTcpFlagCloseInit;
  }

  const Nanos state_timeout = settings.timeout(new_state);
  const Nanos retrans_timeout = settings.timeout(TcpState::kRetrans);
  const Nanos unack_timeout = settings.timeout(TcpState::kUnack);
  Nanos timeout;
  if (st.retrans >= settings.max_retrans && state_timeout > retrans_timeout) {
    timeout = retrans_timeout;
  } else if (index == kRstSet) {
    timeout = settings.timeout(TcpState::kClose);
  } else if (((st.seen[0].flags | st.seen[1].flags) & kTcpFlagDataUnacknowledged) &&
             state_timeout > unack_timeout) {
    timeout = unack_timeout;
  } else if (st.last_win == 0 && state_timeout > retrans_timeout) {
    timeout = retrans_timeout;
  } else {
    timeout = state_timeout;
  }

  r.verdict = TcpResult::Verdict::kAccept;
  r.new_state = new_state;
  r.timeout = timeout;
  r.refresh_timeout = true;

  if (!ctx.seen_reply) {
    if (seg.flags & kTcpRst) {
      // The only answer is a RST: there never was a connection. Drop the entry now.
      r.kill = true;
      r.refresh_timeout = false;
      return r;
    }
    if (index == kSynSet && old_state == TcpState::kSynSent) {
      // A retransmitted SYN does not extend the entry, or port reuse could keep it alive.
      r.refresh_timeout = false;
      return r;
    }
    // Picked up mid-stream and never answered: no long ESTABLISHED timeout yet.
    if (new_state == TcpState::kEstablished && r.timeout > unack_timeout) {
      r.timeout = unack_timeout;
    }
  } else if (!ctx.assured &&
             (old_state == TcpState::kSynRecv || old_state == TcpState::kEstablished) &&
             new_state == TcpState::kEstablished) {
    // A valid ACK after SYN_RECV, or an answer seen for a picked-up connection.
    r.set_assured = true;
  }
  return r;
}

const char* TcpStateName(TcpState s) {
  switch (s) {
    case TcpState::kNone:
      return "NONE";
    case TcpState::kSynSent:
      return "SYN_SENT";
    case TcpState::kSynRecv:
      return "SYN_RECV";
    case TcpState::kEstablished:
      return "ESTABLISHED";
    case TcpState::kFinWait:
      return "FIN_WAIT";
    case TcpState::kCloseWait:
      return "CLOSE_WAIT";
    case TcpState::kLastAck:
      return "LAST_ACK";
    case TcpState::kTimeWait:
      return "TIME_WAIT";
    case TcpState::kClose:
      return "CLOSE";
    case TcpState::kSynSent2:
      return "SYN_SENT2";
    default:
      return "UNKNOWN";
  }
}

bool TcpCanEarlyDrop(TcpState s) {
  switch (s) {
    case TcpState::kFinWait:
    case TcpState::kLastAck:
    case TcpState::kTimeWait:
    case TcpState::kClose:
    case TcpState::kCloseWait:
      return true;
    default:
      return false;
  }
}

}  // namespace ctsync

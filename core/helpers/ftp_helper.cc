#include "core/helpers/ftp_helper.h"

#include <cctype>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/helpers/seq_adjust.h"
#include "core/packet/checksum.h"

namespace ctsync {
namespace {

bool Before(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }
bool After(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) > 0; }

// try_number: `count` numbers separated by `sep`, ended by `term` (or anything when term
// is 0). Returns the length consumed, 0 on failure.
size_t TryNumber(const uint8_t* d, size_t dlen, uint32_t* out, int count, char sep, char term) {
  std::memset(out, 0, sizeof(uint32_t) * count);
  int i = 0;
  size_t len = 0;
  for (; len < dlen && i < count; ++len, ++d) {
    if (*d >= '0' && *d <= '9') {
      out[i] = out[i] * 10 + (*d - '0');
    } else if (*d == sep) {
      ++i;
    } else {
      if ((*d == term || !term) && i == count - 1) return len;
      return 0;
    }
  }
  return 0;
}

size_t TryRfc959(const uint8_t* d, size_t dlen, FtpMatch* m, char term) {
  uint32_t a[6];
  const size_t len = TryNumber(d, dlen, a, 6, ',', term);
  if (len == 0) return 0;
  m->address = IpAddress::FromV4((a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]);
  m->port = static_cast<uint16_t>((a[4] << 8) | a[5]);
  return len;
}

// get_port: digits up to `delim`; returns the index after the delimiter, 0 on failure.
size_t GetPort(const uint8_t* d, size_t start, size_t dlen, char delim, uint16_t* port) {
  uint16_t p = 0;
  for (size_t i = start; i < dlen; ++i) {
    if (d[i] == delim) {
      if (p == 0) break;
      *port = p;
      return i + 1;
    }
    if (d[i] < '0' || d[i] > '9') break;
    p = static_cast<uint16_t>(p * 10 + (d[i] - '0'));
  }
  return 0;
}

bool BadDelimiter(uint8_t c) { return std::isdigit(c) || c < 33 || c > 126; }

size_t TryEprt(const uint8_t* d, size_t dlen, FtpMatch* m) {
  if (dlen <= 3) return 0;
  const char delim = static_cast<char>(d[0]);
  if (BadDelimiter(d[0]) || d[2] != d[0]) return 0;
  if ((m->family == Family::kIpv4 && d[1] != '1') || (m->family == Family::kIpv6 && d[1] != '2'))
    return 0;
  size_t length = 0;
  if (d[1] == '1') {
    uint32_t a[4];
    length = TryNumber(d + 3, dlen - 3, a, 4, '.', delim);
    if (length) m->address = IpAddress::FromV4((a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]);
  } else {
    // get_ipv6_addr: the text up to the delimiter must be an IPv6 address.
    size_t end = 3;
    while (end < dlen && d[end] != delim) ++end;
    if (end == dlen) return 0;
    Family f;
    auto a = IpAddress::Parse(std::string(reinterpret_cast<const char*>(d + 3), end - 3), &f);
    if (!a || f != Family::kIpv6) return 0;
    m->address = *a;
    length = end - 3;
  }
  if (length == 0) return 0;
  return GetPort(d, 3 + length + 1, dlen, delim, &m->port);
}

size_t TryEpsv(const uint8_t* d, size_t dlen, FtpMatch* m) {
  if (dlen <= 3) return 0;
  if (BadDelimiter(d[0]) || d[1] != d[0] || d[2] != d[0]) return 0;
  return GetPort(d, 3, dlen, static_cast<char>(d[0]), &m->port);
}

struct Pattern {
  const char* text;
  char skip;
  char term;
  FtpCommand type;
};
constexpr Pattern kOriginal[] = {{"PORT", ' ', '\r', FtpCommand::kPort},
                                 {"EPRT", ' ', '\r', FtpCommand::kEprt}};
constexpr Pattern kReply[] = {{"227 ", 0, 0, FtpCommand::kPasv},
                              {"229 ", '(', ')', FtpCommand::kEpsv}};

int FindPattern(const uint8_t* d, size_t dlen, const Pattern& p, FtpMatch* m) {
  const size_t plen = std::strlen(p.text);
  if (dlen <= plen) {
    return strncasecmp(reinterpret_cast<const char*>(d), p.text, dlen) == 0 ? -1 : 0;
  }
  if (strncasecmp(reinterpret_cast<const char*>(d), p.text, plen) != 0) return 0;
  size_t i = plen;
  if (p.skip) {
    for (; d[i] != p.skip; ++i)
      if (i == dlen - 1) return -1;
    ++i;
  }
  m->type = p.type;
  m->offset = static_cast<uint32_t>(i);
  size_t len = 0;
  switch (p.type) {
    case FtpCommand::kPort:
      len = TryRfc959(d + i, dlen - i, m, p.term);
      break;
    case FtpCommand::kEprt:
      len = TryEprt(d + i, dlen - i, m);
      break;
    case FtpCommand::kPasv: {
      // try_rfc1123: the numbers start at the first digit.
      size_t j = 0;
      while (j < dlen - i && !std::isdigit(d[i + j])) ++j;
      if (j == dlen - i) return -1;
      m->offset += static_cast<uint32_t>(j);
      len = TryRfc959(d + i + j, dlen - i - j, m, 0);
      break;
    }
    case FtpCommand::kEpsv:
      len = TryEpsv(d + i, dlen - i, m);
      break;
  }
  if (len == 0) return -1;
  m->length = static_cast<uint32_t>(len);
  return 1;
}

}  // namespace

int FtpParse(absl::Span<const uint8_t> payload, Direction dir, Family family,
             const IpAddress& sender, FtpMatch* m) {
  m->family = family;
  m->address = sender;  // what EPSV leaves unsaid
  const auto& patterns = dir == Direction::kOriginal ? kOriginal : kReply;
  for (const Pattern& p : patterns) {
    const int r = FindPattern(payload.data(), payload.size(), p, m);
    if (r != 0) return r;
  }
  return 0;
}

FtpHelper::FtpHelper(ConntrackEngine* conntrack) : conntrack_(conntrack) {}

bool FtpHelper::Help(PacketBuffer& b, Nanos now) {
  // Until there has been traffic both ways, the kernel does not look into packets.
  if (b.ct.info != CtInfo::kEstablished && b.ct.info != CtInfo::kEstablishedReply) return true;
  const ParsedPacket& p = b.pkt;
  if (p.proto != kProtoTcp || !p.l4_parsed || p.payload_len == 0) return true;
  Flow& f = conntrack_->table().flow(b.ct.flow);
  const Direction dir = b.ct.dir();
  const int d = static_cast<int>(dir);
  // In the table, not here: a peer's copy of the flow must carry it (kChangeHelper).
  FtpLineState& st = conntrack_->table().MutableFtpState(b.ct.flow);
  const FtpLineState before = st;
  uint32_t changes = 0;
  const absl::Span<const uint8_t> payload(b.frame.data() + p.payload_offset, p.payload_len);
  const bool ends_in_nl = payload.back() == '\n';
  const uint32_t seq_after = p.seq + p.payload_len;

  // Only a segment that starts right after a line end in this direction is parsed.
  bool after_nl = false;
  for (int i = 0; i < st.seq_aft_nl_num[d]; ++i) after_nl |= st.seq_aft_nl[d][i] == p.seq;
  bool ok = true;
  if (after_nl) {
    FtpMatch m;
    const int found = FtpParse(payload, dir, f.family(), f.tuple_of(dir).src, &m);
    if (found < 0) {
      // A command cut across segments: the kernel drops it for accurate tracking.
      ++parse_drops_;
      return false;
    }
    // The announced address must be the sender's own (no "loose" mode).
    if (found > 0 && m.family == f.family() && m.address == f.tuple_of(dir).src) {
      const Direction other = Opposite(dir);
      Expectation e;
      e.tuple.family = f.family();
      e.tuple.proto = kProtoTcp;
      e.tuple.src = f.tuple_of(other).src;
      e.tuple.dst = f.tuple_of(other).dst;
      e.tuple.sport = 0;
      e.tuple.dport = m.port;
      e.mask.family = f.family();
      e.mask.proto = 0xff;
      for (int i = 0; i < (f.family() == Family::kIpv4 ? 4 : 16); ++i)
        e.mask.src.bytes[i] = e.mask.dst.bytes[i] = 0xff;
      e.mask.sport = 0;
      e.mask.dport = 0xffff;
      e.zone = f.zone;
      e.master = b.ct.flow;
      e.master_tuple = f.tuple[0];
      e.expires = now + kExpectTimeoutS * kNanosPerSecond;
      e.helper = FlowHelper::kFtp;
      if (f.status & kIpsNatMask) {
        ok = NatMangle(b, f, dir, m, e, &changes);
      } else if (conntrack_->AddExpectation(e, kMaxExpected)) {
        changes |= kChangeHelper;
      }
    }
  }
  if (ends_in_nl) UpdateNlSeq(st, d, seq_after);
  if (!(st == before)) changes |= kChangeHelper;
  // One UPDATE per packet, carrying line state, expectation and seq adjustment together.
  if (changes) conntrack_->NotifyUpdate(b.ct.flow, changes, now);
  return ok;
}

// update_nl_seq: remember where the next line starts; keep the two newest.
void FtpHelper::UpdateNlSeq(FtpLineState& st, int d, uint32_t seq_after) {
  for (int i = 0; i < st.seq_aft_nl_num[d]; ++i)
    if (st.seq_aft_nl[d][i] == seq_after) return;
  if (st.seq_aft_nl_num[d] < 2) {
    st.seq_aft_nl[d][st.seq_aft_nl_num[d]++] = seq_after;
  } else {
    const int oldest = Before(st.seq_aft_nl[d][0], st.seq_aft_nl[d][1]) ? 0 : 1;
    if (After(seq_after, st.seq_aft_nl[d][oldest])) st.seq_aft_nl[d][oldest] = seq_after;
  }
}

bool FtpHelper::NatMangle(PacketBuffer& b, Flow& master, Direction dir, const FtpMatch& m,
                          Expectation& exp, uint32_t* changes) {
  // The data connection comes from wherever this packet goes, so it is announced with the
  // address the other side sees for the sender, and NATed like the master when it comes.
  const Direction other = Opposite(dir);
  const IpAddress newaddr = master.tuple_of(other).dst;
  exp.nat = true;
  exp.dir = other;
  exp.saved_port = m.port;
  // nf_nat_exp_find_port: keep the port unless another expectation holds it.
  uint16_t port = m.port;
  for (int tries = 0; tries < 128; ++tries, ++port) {
    exp.tuple.dport = port;
    bool taken = false;
    for (const Expectation& x : conntrack_->expectations().all())
      taken |= x.Matches(exp.tuple, exp.zone) && x.master != exp.master;
    if (!taken && conntrack_->AddExpectation(exp, kMaxExpected)) {
      *changes |= kChangeHelper;
      break;
    }
    if (tries == 127) return false;
  }
  std::string text;
  const Family fam = master.family();
  switch (m.type) {
    case FtpCommand::kPort:
    case FtpCommand::kPasv: {
      const uint32_t a = newaddr.v4();
      text = absl::StrFormat("%u,%u,%u,%u,%u,%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff,
                             a & 0xff, port >> 8, port & 0xff);
      break;
    }
    case FtpCommand::kEprt:
      text = absl::StrCat(fam == Family::kIpv4 ? "|1|" : "|2|", newaddr.ToString(fam), "|", port, "|");
      break;
    case FtpCommand::kEpsv:
      text = absl::StrCat("|||", port, "|");
      break;
  }
  SeqAdjust& sa = conntrack_->table().MutableSeqAdjust(b.ct.flow);
  bool changed = false;
  // EPRT's match covers "|1|addr|port|" from its first delimiter; 229's covers "|||port|".
  if (!MangleTcpPayload(b, m.offset, m.length, text, sa, dir, &changed)) return false;
  if (changed) {
    master.status |= kIpsSeqAdjust;
    *changes |= kChangeSeqAdjust | kChangeStatus;
  } else if (sa == SeqAdjust{}) {
    conntrack_->table().ClearSeqAdjust(b.ct.flow);
  }
  return true;
}

bool MangleTcpPayload(PacketBuffer& b, uint32_t offset, uint32_t len, std::string_view text,
                      SeqAdjust& sa, Direction dir, bool* changed_length) {
  ParsedPacket& p = b.pkt;
  *changed_length = false;
  if (offset + len > p.payload_len) return false;
  const int32_t delta = static_cast<int32_t>(text.size()) - static_cast<int32_t>(len);
  if (p.ip_total_len + delta > 65535) return false;
  const size_t at = p.payload_offset + offset;
  if (delta == 0 && std::memcmp(b.frame.data() + at, text.data(), len) == 0) return true;
  b.frame.erase(b.frame.begin() + at, b.frame.begin() + at + len);
  b.frame.insert(b.frame.begin() + at, text.begin(), text.end());
  uint8_t* l3 = b.frame.data() + p.l3_offset;
  if (p.family == Family::kIpv4) {
    StoreBe16(l3 + 2, static_cast<uint16_t>(p.ip_total_len + delta));
    SetIpv4HeaderChecksum(absl::Span<uint8_t>(l3, p.l3_header_len));
  } else {
    StoreBe16(l3 + 4, static_cast<uint16_t>(p.ip_total_len + delta - 40));
  }
  const uint32_t seq = p.seq;
  if (!b.Reparse()) return false;
  RecomputeL4Checksum(b.pkt, absl::Span<uint8_t>(b.frame));
  if (delta != 0) {
    SeqAdjustSet(sa, dir, seq, delta);
    *changed_length = true;
  }
  return true;
}

}  // namespace ctsync

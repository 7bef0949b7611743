#include "core/packet/packet_builder.h"

#include <algorithm>

#include "core/conntrack/tuple.h"
#include "core/packet/checksum.h"
#include "core/packet/packet_parser.h"

namespace ctsync {

namespace {

constexpr PacketBuilder::Mac kDefaultSrcMac = {0x02, 0x00, 0x00, 0x00, 0x01, 0x02};
constexpr PacketBuilder::Mac kDefaultDstMac = {0x02, 0x00, 0x00, 0x00, 0x01, 0x01};

void Append(std::vector<uint8_t>* v, absl::Span<const uint8_t> bytes) {
  v->insert(v->end(), bytes.begin(), bytes.end());
}
void Append16(std::vector<uint8_t>* v, uint16_t x) {
  v->push_back(static_cast<uint8_t>(x >> 8));
  v->push_back(static_cast<uint8_t>(x));
}
void Append32(std::vector<uint8_t>* v, uint32_t x) {
  Append16(v, static_cast<uint16_t>(x >> 16));
  Append16(v, static_cast<uint16_t>(x));
}

IpAddress ParseOrZero(std::string_view text) {
  return IpAddress::Parse(text).value_or(IpAddress{});
}

}  // namespace

PacketBuilder::PacketBuilder() : src_mac_(kDefaultSrcMac), dst_mac_(kDefaultDstMac) {
  src_ = IpAddress::FromV4(0xc000020a);  // 192.0.2.10
  dst_ = IpAddress::FromV4(0xc6336414);  // 198.51.100.20
}

PacketBuilder& PacketBuilder::SrcMac(const Mac& mac) {
  src_mac_ = mac;
  return *this;
}
PacketBuilder& PacketBuilder::DstMac(const Mac& mac) {
  dst_mac_ = mac;
  return *this;
}
PacketBuilder& PacketBuilder::Vlan(uint16_t vid) {
  vlans_.push_back(vid);
  return *this;
}

PacketBuilder& PacketBuilder::Ipv4(std::string_view src, std::string_view dst) {
  return Addresses(Family::kIpv4, ParseOrZero(src), ParseOrZero(dst));
}
PacketBuilder& PacketBuilder::Ipv6(std::string_view src, std::string_view dst) {
  return Addresses(Family::kIpv6, ParseOrZero(src), ParseOrZero(dst));
}
PacketBuilder& PacketBuilder::Addresses(Family family, const IpAddress& src, const IpAddress& dst) {
  family_ = family;
  src_ = src;
  dst_ = dst;
  return *this;
}
PacketBuilder& PacketBuilder::Ttl(uint8_t ttl) {
  ttl_ = ttl;
  return *this;
}
PacketBuilder& PacketBuilder::Tos(uint8_t tos) {
  tos_ = tos;
  return *this;
}
PacketBuilder& PacketBuilder::IpId(uint16_t id) {
  ip_id_ = id;
  return *this;
}
PacketBuilder& PacketBuilder::Df(bool df) {
  df_ = df;
  return *this;
}
PacketBuilder& PacketBuilder::FlowLabel(uint32_t label) {
  flow_label_ = label & 0xfffff;
  return *this;
}
PacketBuilder& PacketBuilder::Ipv4Options(absl::Span<const uint8_t> options) {
  ipv4_options_.assign(options.begin(), options.begin() + std::min<size_t>(options.size(), 40));
  while (ipv4_options_.size() % 4 != 0) ipv4_options_.push_back(0);
  return *this;
}
PacketBuilder& PacketBuilder::Ipv6ExtHeader(uint8_t type, absl::Span<const uint8_t> body) {
  ext_headers_.push_back({type, std::vector<uint8_t>(body.begin(), body.end())});
  return *this;
}

PacketBuilder& PacketBuilder::Tcp(uint16_t sport, uint16_t dport) {
  l4_ = L4Kind::kTcp;
  sport_ = sport;
  dport_ = dport;
  return *this;
}
PacketBuilder& PacketBuilder::TcpFlags(uint8_t flags) {
  tcp_flags_ = flags;
  return *this;
}
PacketBuilder& PacketBuilder::Seq(uint32_t seq) {
  seq_ = seq;
  return *this;
}
PacketBuilder& PacketBuilder::Ack(uint32_t ack) {
  ack_ = ack;
  return *this;
}
PacketBuilder& PacketBuilder::Window(uint16_t window) {
  window_ = window;
  return *this;
}
PacketBuilder& PacketBuilder::Mss(uint16_t mss) {
  tcp_options_.mss = mss;
  return *this;
}
PacketBuilder& PacketBuilder::WindowScale(uint8_t shift) {
  tcp_options_.wscale = shift;
  return *this;
}
PacketBuilder& PacketBuilder::SackPermitted() {
  tcp_options_.sack_perm = true;
  return *this;
}
PacketBuilder& PacketBuilder::SackBlock(uint32_t left, uint32_t right) {
  if (tcp_options_.sack_count < kMaxSackBlocks) {
    tcp_options_.sack[tcp_options_.sack_count++] = {left, right};
  }
  return *this;
}
PacketBuilder& PacketBuilder::Timestamps(uint32_t ts_val, uint32_t ts_ecr) {
  tcp_options_.has_timestamps = true;
  tcp_options_.ts_val = ts_val;
  tcp_options_.ts_ecr = ts_ecr;
  return *this;
}
PacketBuilder& PacketBuilder::Udp(uint16_t sport, uint16_t dport) {
  l4_ = L4Kind::kUdp;
  sport_ = sport;
  dport_ = dport;
  return *this;
}
PacketBuilder& PacketBuilder::Udplite(uint16_t sport, uint16_t dport, uint16_t coverage) {
  l4_ = L4Kind::kUdplite;
  sport_ = sport;
  dport_ = dport;
  udplite_coverage_ = coverage;
  return *this;
}
PacketBuilder& PacketBuilder::IcmpEcho(bool request, uint16_t id, uint16_t seq) {
  l4_ = L4Kind::kIcmpEcho;
  echo_request_ = request;
  icmp_rest_ = (uint32_t{id} << 16) | seq;
  return *this;
}
PacketBuilder& PacketBuilder::Icmp(uint8_t type, uint8_t code, uint32_t rest) {
  l4_ = L4Kind::kIcmp;
  icmp_type_ = type;
  icmp_code_ = code;
  icmp_rest_ = rest;
  return *this;
}
PacketBuilder& PacketBuilder::IcmpError(uint8_t type, uint8_t code,
                                        absl::Span<const uint8_t> quoted_ip, uint32_t rest) {
  Icmp(type, code, rest);
  payload_.assign(quoted_ip.begin(), quoted_ip.end());
  return *this;
}
PacketBuilder& PacketBuilder::Sctp(uint16_t sport, uint16_t dport, uint32_t vtag) {
  l4_ = L4Kind::kSctp;
  sport_ = sport;
  dport_ = dport;
  sctp_vtag_ = vtag;
  return *this;
}
PacketBuilder& PacketBuilder::RawProto(uint8_t proto) {
  l4_ = L4Kind::kRaw;
  raw_proto_ = proto;
  return *this;
}
PacketBuilder& PacketBuilder::Payload(absl::Span<const uint8_t> payload) {
  payload_.assign(payload.begin(), payload.end());
  return *this;
}
PacketBuilder& PacketBuilder::Payload(std::string_view payload) {
  payload_.assign(payload.begin(), payload.end());
  return *this;
}
PacketBuilder& PacketBuilder::CorruptL4Checksum(bool corrupt) {
  corrupt_l4_ = corrupt;
  return *this;
}
PacketBuilder& PacketBuilder::CorruptIpChecksum(bool corrupt) {
  corrupt_ip_ = corrupt;
  return *this;
}

std::vector<uint8_t> PacketBuilder::BuildL4() const {
  std::vector<uint8_t> l4;
  const bool v6 = family_ == Family::kIpv6;
  switch (l4_) {
    case L4Kind::kTcp: {
      std::vector<uint8_t> opts;
      if (tcp_options_.mss) {
        opts.insert(opts.end(), {2, 4});
        Append16(&opts, *tcp_options_.mss);
      }
      if (tcp_options_.sack_perm) opts.insert(opts.end(), {4, 2});
      if (tcp_options_.has_timestamps) {
        opts.insert(opts.end(), {8, 10});
        Append32(&opts, tcp_options_.ts_val);
        Append32(&opts, tcp_options_.ts_ecr);
      }
      if (tcp_options_.wscale) opts.insert(opts.end(), {1, 3, 3, *tcp_options_.wscale});
      if (tcp_options_.sack_count > 0) {
        opts.insert(opts.end(), {1, 1, 5, static_cast<uint8_t>(2 + 8 * tcp_options_.sack_count)});
        for (int i = 0; i < tcp_options_.sack_count; ++i) {
          Append32(&opts, tcp_options_.sack[i].left);
          Append32(&opts, tcp_options_.sack[i].right);
        }
      }
      while (opts.size() % 4 != 0) opts.push_back(0);
      if (opts.size() > 40) opts.resize(40);  // more options than fit: cut, as a sender must
      Append16(&l4, sport_);
      Append16(&l4, dport_);
      Append32(&l4, seq_);
      Append32(&l4, ack_);
      l4.push_back(static_cast<uint8_t>(((20 + opts.size()) / 4) << 4));
      l4.push_back(tcp_flags_);
      Append16(&l4, window_);
      Append16(&l4, 0);  // checksum
      Append16(&l4, 0);  // urgent pointer
      Append(&l4, opts);
      break;
    }
    case L4Kind::kUdp:
    case L4Kind::kUdplite:
      Append16(&l4, sport_);
      Append16(&l4, dport_);
      Append16(&l4, l4_ == L4Kind::kUdp ? static_cast<uint16_t>(8 + payload_.size())
                                        : udplite_coverage_);
      Append16(&l4, 0);
      break;
    case L4Kind::kIcmpEcho:
      l4.push_back(v6 ? (echo_request_ ? 128 : 129) : (echo_request_ ? 8 : 0));
      l4.push_back(0);
      Append16(&l4, 0);
      Append32(&l4, icmp_rest_);
      break;
    case L4Kind::kIcmp:
      l4.push_back(icmp_type_);
      l4.push_back(icmp_code_);
      Append16(&l4, 0);
      Append32(&l4, icmp_rest_);
      break;
    case L4Kind::kSctp:
      Append16(&l4, sport_);
      Append16(&l4, dport_);
      Append32(&l4, sctp_vtag_);
      Append32(&l4, 0);
      break;
    case L4Kind::kRaw:
      break;
  }
  Append(&l4, payload_);
  return l4;
}

std::vector<uint8_t> PacketBuilder::BuildIp() const {
  std::vector<uint8_t> l4 = BuildL4();
  uint8_t proto = raw_proto_;
  switch (l4_) {
    case L4Kind::kTcp:
      proto = kProtoTcp;
      break;
    case L4Kind::kUdp:
      proto = kProtoUdp;
      break;
    case L4Kind::kUdplite:
      proto = kProtoUdplite;
      break;
    case L4Kind::kIcmp:
    case L4Kind::kIcmpEcho:
      proto = family_ == Family::kIpv6 ? kProtoIcmpv6 : kProtoIcmp;
      break;
    case L4Kind::kSctp:
      proto = kProtoSctp;
      break;
    case L4Kind::kRaw:
      break;
  }

  // L4 checksum.
  const int field = l4_ == L4Kind::kTcp                                  ? 16
                    : (l4_ == L4Kind::kUdp || l4_ == L4Kind::kUdplite)   ? 6
                    : (l4_ == L4Kind::kIcmp || l4_ == L4Kind::kIcmpEcho) ? 2
                                                                         : -1;
  if (field >= 0) {
    uint32_t sum;
    if (proto == kProtoIcmp) {
      sum = OnesComplementSum(l4);
    } else {
      const uint32_t pseudo = PseudoHeaderSum(family_, src_, dst_, proto, l4.size());
      size_t covered = l4.size();
      if (l4_ == L4Kind::kUdplite && udplite_coverage_ != 0) {
        covered = std::min<size_t>(udplite_coverage_, l4.size());
      }
      sum = OnesComplementSum(absl::MakeConstSpan(l4.data(), covered), pseudo);
    }
    uint16_t csum = static_cast<uint16_t>(~FoldChecksum(sum));
    if (csum == 0 && (proto == kProtoUdp || proto == kProtoUdplite)) csum = 0xffff;
    if (corrupt_l4_) csum ^= 0x5a5a;
    StoreBe16(l4.data() + field, csum);
  } else if (l4_ == L4Kind::kSctp) {
    uint32_t crc = SctpChecksum(l4);
    if (corrupt_l4_) crc ^= 0x5a5a5a5a;
    for (int i = 0; i < 4; ++i) l4[8 + i] = static_cast<uint8_t>(crc >> (8 * i));
  }

  std::vector<uint8_t> ip;
  if (family_ == Family::kIpv6) {
    std::vector<uint8_t> ext;
    uint8_t first_next = proto;
    for (size_t i = 0; i < ext_headers_.size(); ++i) {
      const ExtHeader& e = ext_headers_[i];
      const uint8_t next = i + 1 < ext_headers_.size() ? ext_headers_[i + 1].type : proto;
      if (i == 0) first_next = e.type;
      size_t len = 2 + e.body.size();
      const size_t padded = (len + 7) / 8 * 8;
      ext.push_back(next);
      ext.push_back(static_cast<uint8_t>(padded / 8 - 1));
      Append(&ext, e.body);
      // PadN/Pad1 are all-zero-compatible for Pad1 runs: zero bytes are Pad1 options.
      ext.resize(ext.size() + (padded - len), 0);
    }
    ip.push_back(static_cast<uint8_t>(0x60 | (tos_ >> 4)));
    ip.push_back(static_cast<uint8_t>((tos_ << 4) | (flow_label_ >> 16)));
    Append16(&ip, static_cast<uint16_t>(flow_label_));
    Append16(&ip, static_cast<uint16_t>(ext.size() + l4.size()));
    ip.push_back(first_next);
    ip.push_back(ttl_);
    Append(&ip, absl::MakeConstSpan(src_.bytes.data(), 16));
    Append(&ip, absl::MakeConstSpan(dst_.bytes.data(), 16));
    Append(&ip, ext);
  } else {
    const size_t ihl = 20 + ipv4_options_.size();
    ip.push_back(static_cast<uint8_t>(0x40 | (ihl / 4)));
    ip.push_back(tos_);
    Append16(&ip, static_cast<uint16_t>(ihl + l4.size()));
    Append16(&ip, ip_id_);
    Append16(&ip, df_ ? 0x4000 : 0);
    ip.push_back(ttl_);
    ip.push_back(proto);
    Append16(&ip, 0);
    Append(&ip, absl::MakeConstSpan(src_.bytes.data(), 4));
    Append(&ip, absl::MakeConstSpan(dst_.bytes.data(), 4));
    Append(&ip, ipv4_options_);
    SetIpv4HeaderChecksum(absl::MakeSpan(ip));
    if (corrupt_ip_) ip[10] ^= 0x5a;
  }
  Append(&ip, l4);
  return ip;
}

std::vector<uint8_t> PacketBuilder::Build() const {
  std::vector<uint8_t> frame;
  std::vector<uint8_t> ip = BuildIp();
  frame.reserve(14 + 4 * vlans_.size() + ip.size());
  Append(&frame, dst_mac_);
  Append(&frame, src_mac_);
  for (uint16_t vid : vlans_) {
    Append16(&frame, kEtherTypeVlan);
    Append16(&frame, vid & 0x0fff);
  }
  Append16(&frame, family_ == Family::kIpv6 ? kEtherTypeIpv6 : kEtherTypeIpv4);
  Append(&frame, ip);
  return frame;
}

absl::Span<const uint8_t> QuoteForIcmpError(Family family, absl::Span<const uint8_t> ip_datagram) {
  // Room left after the outer IP header and the 8-byte ICMP header.
  const size_t room = family == Family::kIpv6 ? 1280 - 40 - 8 : 576 - 20 - 8;
  return ip_datagram.subspan(0, std::min(room, ip_datagram.size()));
}

}  // namespace ctsync

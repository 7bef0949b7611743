// Test helpers for tests/core/nat: a conntrack + NAT pair over the oracle firewall topology
// and a forwarder that runs a frame through PREROUTING -> FORWARD -> POSTROUTING the way
// the pipeline does (conntrack, NAT, TTL decrement, NAT, confirm), with the nat table
// replaced by a verdict chosen per hook by the test.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/conntrack/conntrack_engine.h"
#include "core/nat/nat_engine.h"
#include "core/packet/checksum.h"
#include "core/packet/packet_builder.h"
#include "core/packet/packet_parser.h"
#include "core/pipeline/packet_buffer.h"
#include "core/pipeline/topology.h"
#include "gtest/gtest.h"

namespace ctsync::nat_test {

inline IpAddress Ip(const std::string& text) { return *IpAddress::Parse(text); }

inline rules::Verdict NatVerdict(rules::NatKind kind, const std::string& lo = "",
                                 const std::string& hi = "", uint16_t port_lo = 0,
                                 uint16_t port_hi = 0) {
  rules::Verdict v;
  v.kind = rules::Verdict::kNat;
  v.nat.kind = kind;
  if (!lo.empty()) {
    Family f = Family::kNone;
    v.nat.has_addr = true;
    v.nat.min_addr = *IpAddress::Parse(lo, &f);
    v.nat.max_addr = *IpAddress::Parse(hi.empty() ? lo : hi);
    v.nat.family = f;
  }
  if (port_lo != 0) {
    v.nat.has_ports = true;
    v.nat.min_port = port_lo;
    v.nat.max_port = port_hi == 0 ? port_lo : port_hi;
  }
  return v;
}
inline rules::Verdict Snat(const std::string& lo, const std::string& hi = "", uint16_t plo = 0,
                           uint16_t phi = 0) {
  return NatVerdict(rules::NatKind::kSnat, lo, hi, plo, phi);
}
inline rules::Verdict Dnat(const std::string& lo, uint16_t port = 0) {
  return NatVerdict(rules::NatKind::kDnat, lo, "", port, port);
}
inline rules::Verdict Accept() { return rules::Verdict{}; }

// Checks every checksum a forwarded packet carries: IPv4 header, L4 (with pseudo-header).
inline void ExpectChecksumsValid(const PacketBuffer& b) {
  ParsedPacket p;
  ASSERT_TRUE(ParseEthernet(b.frame, &p).ok());
  if (p.family == Family::kIpv4) {
    EXPECT_TRUE(VerifyIpv4HeaderChecksum(
        absl::MakeConstSpan(b.frame.data() + p.l3_offset, p.l3_header_len)));
  }
  EXPECT_TRUE(VerifyL4Checksum(p, b.frame));
}

class NatHarness {
 public:
  explicit NatHarness(uint64_t seed = 1) : topology_(Topology::OracleFirewall()) {
    ConntrackOptions o;
    o.settings.nf_conntrack_max = 4096;
    o.settings.nf_conntrack_buckets = 1024;
    conntrack_ = std::move(*ConntrackEngine::Create(o, 0));
    NatOptions n;
    n.seed = seed;
    nat_ = std::make_unique<NatEngine>(n, conntrack_.get());
  }

  ConntrackEngine& conntrack() { return *conntrack_; }
  NatEngine& nat() { return *nat_; }
  const Topology& topology() const { return topology_; }
  int lan() const { return topology_.FindInterface("lan0"); }
  int wan() const { return topology_.FindInterface("wan0"); }

  using TableFn = std::function<rules::Verdict()>;

  // Parses `frame` into a buffer arriving on `in_iface` (defragmentation is the caller's).
  static PacketBuffer Buffer(std::vector<uint8_t> frame, int in_iface) {
    PacketBuffer b;
    b.frame = std::move(frame);
    b.in_iface = in_iface;
    EXPECT_TRUE(b.Reparse());
    b.frame.resize(b.pkt.l3_offset + b.pkt.ip_total_len);
    return b;
  }

  // Runs `b` through the forward path. Returns false when NAT or confirmation dropped it.
  // pre_calls/post_calls count how often each hook's nat table was consulted.
  bool Forward(PacketBuffer& b, int out_iface, const TableFn& pre, const TableFn& post, Nanos now,
               uint16_t zone = 0) {
    b.tmpl.zone = zone;
    if (conntrack_->In(b.pkt, b.frame, false, CtHookPoint::kPrerouting, b.tmpl, now, &b.ct) ==
        CtVerdict::kDrop)
      return false;
    auto pre_fn = [&]() {
      ++pre_calls;
      return pre();
    };
    if (!nat_->Apply(rules::Hook::kPrerouting, b, pre_fn, topology_, now)) {
      conntrack_->DropUnconfirmed(b.ct);
      return false;
    }
    b.out_iface = out_iface;
    const RouteDecision r = topology_.Lookup(b.pkt.family, b.pkt.dst);
    b.next_hop = r.next_hop;
    DecrementTtl(b);
    auto post_fn = [&]() {
      ++post_calls;
      return post();
    };
    if (!nat_->Apply(rules::Hook::kPostrouting, b, post_fn, topology_, now)) {
      conntrack_->DropUnconfirmed(b.ct);
      return false;
    }
    return conntrack_->Confirm(b.ct, now) == CtVerdict::kAccept;
  }

  // Convenience: a frame from the LAN to the WAN with `post` as the POSTROUTING verdict.
  std::optional<PacketBuffer> LanToWan(std::vector<uint8_t> frame, const TableFn& post,
                                       Nanos now = 0, uint16_t zone = 0) {
    PacketBuffer b = Buffer(std::move(frame), lan());
    if (!Forward(b, wan(), Accept, post, now, zone)) return std::nullopt;
    return b;
  }
  std::optional<PacketBuffer> WanToLan(std::vector<uint8_t> frame, const TableFn& pre,
                                       Nanos now = 0, uint16_t zone = 0) {
    PacketBuffer b = Buffer(std::move(frame), wan());
    if (!Forward(b, lan(), pre, Accept, now, zone)) return std::nullopt;
    return b;
  }

  const Flow& FlowOf(const PacketBuffer& b) { return conntrack_->table().flow(b.ct.flow); }

  static void DecrementTtl(PacketBuffer& b) {
    uint8_t* l3 = b.frame.data() + b.pkt.l3_offset;
    if (b.pkt.family == Family::kIpv4) {
      const uint16_t old_word = LoadBe16(l3 + 8);
      l3[8] = static_cast<uint8_t>(l3[8] - 1);
      StoreBe16(l3 + 10, ChecksumAdjust16(LoadBe16(l3 + 10), old_word, LoadBe16(l3 + 8)));
    } else {
      l3[7] = static_cast<uint8_t>(l3[7] - 1);
    }
    --b.pkt.ttl;
  }

  int pre_calls = 0;
  int post_calls = 0;

 private:
  Topology topology_;
  std::unique_ptr<ConntrackEngine> conntrack_;
  std::unique_ptr<NatEngine> nat_;
};

}  // namespace ctsync::nat_test

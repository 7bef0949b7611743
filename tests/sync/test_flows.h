// Flows for sync tests and benchmarks: a typical NATed TCP connection (the shape the
// conntrackd reference measured: 192.0.2.x:p -> 198.51.100.10:port, SNAT to 203.0.113.1),
// numbered so that every `i` gives distinct tuples. Header-only test helper.
#pragma once

#include <cstdint>

#include "core/conntrack/flow.h"
#include "core/conntrack/flow_events.h"

namespace ctsync::sync::testing {

inline Flow MakeTcpNatFlow(uint32_t i, Nanos now) {
  Flow f;
  Tuple& o = f.tuple[0];
  o.family = Family::kIpv4;
  o.proto = kProtoTcp;
  o.src = IpAddress::FromV4(0xC0000200u | (i % 250 + 2));  // 192.0.2.2 - 192.0.2.251
  o.dst = IpAddress::FromV4(0xC633640Au);                   // 198.51.100.10
  o.sport = static_cast<uint16_t>(1024 + (i / 250) % 60000);
  o.dport = static_cast<uint16_t>(443 + i / (250 * 60000));
  Tuple& r = f.tuple[1];
  r.family = Family::kIpv4;
  r.proto = kProtoTcp;
  r.src = o.dst;
  // SNAT to 203.0.113.1 (more pool addresses beyond 64000 flows, so bindings stay unique).
  r.dst = IpAddress::FromV4(0xCB007101u + (i / 64000) % 250);
  r.sport = o.dport;
  r.dport = static_cast<uint16_t>(1024 + i % 64000);
  f.status = kIpsSeenReply | kIpsAssured | kIpsConfirmed | kIpsSrcNat | kIpsSrcNatDone |
             kIpsDstNatDone;
  f.expires = now + 432000 * kNanosPerSecond;
  f.created = now - kNanosPerSecond;
  f.id = i + 1;
  f.tcp.state = TcpState::kEstablished;
  const uint32_t isn = 0x9e3779b9u * (i + 1);
  const uint32_t rsn = 0x7f4a7c15u * (i + 7);
  f.tcp.seen[0] = {isn + 1000, isn + 1000 + 64240, 64240, rsn + 500, 7,
                   kTcpFlagWindowScale | kTcpFlagSackPerm | kTcpFlagMaxackSet};
  f.tcp.seen[1] = {rsn + 500, rsn + 500 + 65160, 65160, isn + 1000, 7,
                   kTcpFlagWindowScale | kTcpFlagSackPerm | kTcpFlagMaxackSet};
  f.tcp.last_dir = 1;
  f.tcp.last_index = 3;
  f.tcp.last_seq = rsn + 500;
  f.tcp.last_ack = isn + 1000;
  f.tcp.last_end = rsn + 500;
  f.tcp.last_win = 509;
  return f;
}

inline FlowEvent MakeEvent(FlowEventType type, const Flow& f, Nanos now) {
  FlowEvent e;
  e.type = type;
  e.time = now;
  e.flow = f;
  return e;
}

}  // namespace ctsync::sync::testing

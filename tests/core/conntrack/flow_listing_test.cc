#include "core/conntrack/flow_listing.h"

#include <string>
#include <vector>

#include "core/conntrack/conntrack_stats.h"
#include "gtest/gtest.h"

namespace ctsync {
namespace {

constexpr Nanos kNow = 1000 * kNanosPerSecond;

struct GoldenTuple {
  const char* src;
  const char* dst;
  uint16_t sport;  // ICMP: id
  uint16_t dport;  // ICMP: (type << 8) | code
};

// Every distinct flow line of the kernel corpus (/work/shared/oracle, `conntrack -L -o
// extended` on 6.18.44 with conntrack 1.4.7), with the fields the harness parsed from it.
struct Golden {
  int family;
  int proto;
  int timeout_s;
  TcpState state;
  GoldenTuple orig;
  GoldenTuple reply;
  bool unreplied;
  bool assured;
  uint32_t mark;
  uint16_t zone;
  bool ftp;
  uint32_t use;
  const char* raw;
};

const Golden kCorpus[] = {
    {2,
     1,
     29,
     TcpState::kNone,
     {"192.0.2.10", "198.51.100.20", 4660, 2048},
     {"198.51.100.20", "192.0.2.10", 4660, 0},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 icmp     1 29 src=192.0.2.10 dst=198.51.100.20 type=8 code=0 id=4660 [UNREPLIED] "
     "src=198.51.100.20 dst=192.0.2.10 type=0 code=0 id=4660 mark=0 use=1"},
    {2,
     1,
     29,
     TcpState::kNone,
     {"192.0.2.10", "198.51.100.20", 4660, 2048},
     {"198.51.100.20", "192.0.2.10", 4660, 0},
     false,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 icmp     1 29 src=192.0.2.10 dst=198.51.100.20 type=8 code=0 id=4660 "
     "src=198.51.100.20 dst=192.0.2.10 type=0 code=0 id=4660 mark=0 use=1"},
    {2,
     1,
     29,
     TcpState::kNone,
     {"192.0.2.10", "198.51.100.20", 4661, 2048},
     {"198.51.100.20", "192.0.2.10", 4661, 0},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 icmp     1 29 src=192.0.2.10 dst=198.51.100.20 type=8 code=0 id=4661 [UNREPLIED] "
     "src=198.51.100.20 dst=192.0.2.10 type=0 code=0 id=4661 mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kFinWait,
     {"192.0.2.10", "198.51.100.20", 40000, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40000},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 FIN_WAIT src=192.0.2.10 dst=198.51.100.20 sport=40000 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40000 [ASSURED] mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kFinWait,
     {"192.0.2.10", "198.51.100.20", 40002, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40002},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 FIN_WAIT src=192.0.2.10 dst=198.51.100.20 sport=40002 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40002 [ASSURED] mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kFinWait,
     {"192.0.2.10", "198.51.100.20", 40012, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40012},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 FIN_WAIT src=192.0.2.10 dst=198.51.100.20 sport=40012 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40012 [ASSURED] mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kFinWait,
     {"198.51.100.20", "203.0.113.10", 51000, 80},
     {"192.0.2.10", "198.51.100.20", 8080, 51000},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 FIN_WAIT src=198.51.100.20 dst=203.0.113.10 sport=51000 dport=80 "
     "src=192.0.2.10 dst=198.51.100.20 sport=8080 dport=51000 [ASSURED] mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kSynSent,
     {"192.0.2.10", "198.51.100.20", 40000, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40000},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 SYN_SENT src=192.0.2.10 dst=198.51.100.20 sport=40000 dport=80 "
     "[UNREPLIED] src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40000 mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kSynSent,
     {"192.0.2.10", "198.51.100.20", 40002, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40002},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 SYN_SENT src=192.0.2.10 dst=198.51.100.20 sport=40002 dport=80 "
     "[UNREPLIED] src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40002 mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kSynSent,
     {"192.0.2.10", "198.51.100.20", 40003, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40003},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 SYN_SENT src=192.0.2.10 dst=198.51.100.20 sport=40003 dport=80 "
     "[UNREPLIED] src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40003 mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kSynSent,
     {"192.0.2.10", "198.51.100.20", 40005, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40005},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 SYN_SENT src=192.0.2.10 dst=198.51.100.20 sport=40005 dport=80 "
     "[UNREPLIED] src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40005 mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kSynSent,
     {"192.0.2.10", "198.51.100.20", 40007, 5001},
     {"198.51.100.20", "192.0.2.10", 5001, 40007},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 SYN_SENT src=192.0.2.10 dst=198.51.100.20 sport=40007 dport=5001 "
     "[UNREPLIED] src=198.51.100.20 dst=192.0.2.10 sport=5001 dport=40007 mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kSynSent,
     {"192.0.2.10", "198.51.100.20", 40011, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40011},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 SYN_SENT src=192.0.2.10 dst=198.51.100.20 sport=40011 dport=80 "
     "[UNREPLIED] src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40011 mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kSynSent,
     {"192.0.2.10", "198.51.100.20", 40012, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40012},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 SYN_SENT src=192.0.2.10 dst=198.51.100.20 sport=40012 dport=80 "
     "[UNREPLIED] src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40012 mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kSynSent,
     {"192.0.2.10", "198.51.100.20", 40017, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40017},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 SYN_SENT src=192.0.2.10 dst=198.51.100.20 sport=40017 dport=80 "
     "[UNREPLIED] src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40017 mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kSynSent,
     {"192.0.2.10", "198.51.100.20", 40021, 21},
     {"198.51.100.20", "203.0.113.5", 21, 40021},
     true,
     false,
     0u,
     0,
     true,
     1,
     "ipv4     2 tcp      6 119 SYN_SENT src=192.0.2.10 dst=198.51.100.20 sport=40021 dport=21 "
     "[UNREPLIED] src=198.51.100.20 dst=203.0.113.5 sport=21 dport=40021 mark=0 helper=ftp use=1"},
    {2,
     6,
     119,
     TcpState::kSynSent,
     {"192.0.2.10", "198.51.100.20", 40022, 21},
     {"198.51.100.20", "203.0.113.5", 21, 40022},
     true,
     false,
     0u,
     0,
     true,
     1,
     "ipv4     2 tcp      6 119 SYN_SENT src=192.0.2.10 dst=198.51.100.20 sport=40022 dport=21 "
     "[UNREPLIED] src=198.51.100.20 dst=203.0.113.5 sport=21 dport=40022 mark=0 helper=ftp use=1"},
    {2,
     6,
     119,
     TcpState::kSynSent,
     {"192.0.2.10", "198.51.100.20", 40030, 80},
     {"198.51.100.20", "203.0.113.5", 80, 40030},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 SYN_SENT src=192.0.2.10 dst=198.51.100.20 sport=40030 dport=80 "
     "[UNREPLIED] src=198.51.100.20 dst=203.0.113.5 sport=80 dport=40030 mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kSynSent,
     {"192.0.2.10", "198.51.100.20", 40040, 80},
     {"198.51.100.20", "203.0.113.5", 80, 40040},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 SYN_SENT src=192.0.2.10 dst=198.51.100.20 sport=40040 dport=80 "
     "[UNREPLIED] src=198.51.100.20 dst=203.0.113.5 sport=80 dport=40040 mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kSynSent,
     {"192.0.2.10", "198.51.100.20", 40070, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40070},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 SYN_SENT src=192.0.2.10 dst=198.51.100.20 sport=40070 dport=80 "
     "[UNREPLIED] src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40070 mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kSynSent,
     {"192.0.2.10", "198.51.100.20", 40100, 30000},
     {"198.51.100.20", "203.0.113.5", 30000, 40100},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 SYN_SENT src=192.0.2.10 dst=198.51.100.20 sport=40100 dport=30000 "
     "[UNREPLIED] src=198.51.100.20 dst=203.0.113.5 sport=30000 dport=40100 mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kSynSent,
     {"192.0.2.11", "198.51.100.20", 40040, 80},
     {"198.51.100.20", "203.0.113.5", 80, 54889},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 SYN_SENT src=192.0.2.11 dst=198.51.100.20 sport=40040 dport=80 "
     "[UNREPLIED] src=198.51.100.20 dst=203.0.113.5 sport=80 dport=54889 mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kSynSent,
     {"198.51.100.20", "203.0.113.10", 51000, 80},
     {"192.0.2.10", "198.51.100.20", 8080, 51000},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 SYN_SENT src=198.51.100.20 dst=203.0.113.10 sport=51000 dport=80 "
     "[UNREPLIED] src=192.0.2.10 dst=198.51.100.20 sport=8080 dport=51000 mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kSynSent,
     {"198.51.100.20", "203.0.113.5", 20, 50000},
     {"192.0.2.10", "198.51.100.20", 50000, 20},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 SYN_SENT src=198.51.100.20 dst=203.0.113.5 sport=20 dport=50000 "
     "[UNREPLIED] src=192.0.2.10 dst=198.51.100.20 sport=50000 dport=20 mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kSynSent2,
     {"192.0.2.10", "198.51.100.20", 40007, 5001},
     {"198.51.100.20", "192.0.2.10", 5001, 40007},
     false,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 SYN_SENT2 src=192.0.2.10 dst=198.51.100.20 sport=40007 dport=5001 "
     "src=198.51.100.20 dst=192.0.2.10 sport=5001 dport=40007 mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kTimeWait,
     {"192.0.2.10", "198.51.100.20", 40000, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40000},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 TIME_WAIT src=192.0.2.10 dst=198.51.100.20 sport=40000 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40000 [ASSURED] mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kTimeWait,
     {"192.0.2.10", "198.51.100.20", 40002, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40002},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 TIME_WAIT src=192.0.2.10 dst=198.51.100.20 sport=40002 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40002 [ASSURED] mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kTimeWait,
     {"192.0.2.10", "198.51.100.20", 40012, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40012},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 TIME_WAIT src=192.0.2.10 dst=198.51.100.20 sport=40012 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40012 [ASSURED] mark=0 use=1"},
    {2,
     6,
     119,
     TcpState::kTimeWait,
     {"198.51.100.20", "203.0.113.10", 51000, 80},
     {"192.0.2.10", "198.51.100.20", 8080, 51000},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 119 TIME_WAIT src=198.51.100.20 dst=203.0.113.10 sport=51000 dport=80 "
     "src=192.0.2.10 dst=198.51.100.20 sport=8080 dport=51000 [ASSURED] mark=0 use=1"},
    {2,
     6,
     29,
     TcpState::kLastAck,
     {"192.0.2.10", "198.51.100.20", 40000, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40000},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 29 LAST_ACK src=192.0.2.10 dst=198.51.100.20 sport=40000 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40000 [ASSURED] mark=0 use=1"},
    {2,
     6,
     29,
     TcpState::kLastAck,
     {"192.0.2.10", "198.51.100.20", 40002, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40002},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 29 LAST_ACK src=192.0.2.10 dst=198.51.100.20 sport=40002 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40002 [ASSURED] mark=0 use=1"},
    {2,
     6,
     29,
     TcpState::kLastAck,
     {"192.0.2.10", "198.51.100.20", 40012, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40012},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 29 LAST_ACK src=192.0.2.10 dst=198.51.100.20 sport=40012 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40012 [ASSURED] mark=0 use=1"},
    {2,
     6,
     29,
     TcpState::kLastAck,
     {"198.51.100.20", "203.0.113.10", 51000, 80},
     {"192.0.2.10", "198.51.100.20", 8080, 51000},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 29 LAST_ACK src=198.51.100.20 dst=203.0.113.10 sport=51000 dport=80 "
     "src=192.0.2.10 dst=198.51.100.20 sport=8080 dport=51000 [ASSURED] mark=0 use=1"},
    {2,
     6,
     299,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40000, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40000},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 299 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40000 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40000 [ASSURED] mark=0 use=1"},
    {2,
     6,
     299,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40003, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40003},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 299 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40003 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40003 [ASSURED] mark=0 use=1"},
    {2,
     6,
     299,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40008, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40008},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 299 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40008 dport=80 "
     "[UNREPLIED] src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40008 mark=0 use=1"},
    {2,
     6,
     299,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40008, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40008},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 299 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40008 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40008 [ASSURED] mark=0 use=1"},
    {2,
     6,
     299,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40008, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40008},
     false,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 299 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40008 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40008 mark=0 use=1"},
    {2,
     6,
     299,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40011, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40011},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 299 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40011 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40011 [ASSURED] mark=0 use=1"},
    {2,
     6,
     299,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40012, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40012},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 299 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40012 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40012 [ASSURED] mark=0 use=1"},
    {2,
     6,
     299,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40021, 21},
     {"198.51.100.20", "203.0.113.5", 21, 40021},
     false,
     true,
     0u,
     0,
     true,
     1,
     "ipv4     2 tcp      6 299 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40021 dport=21 "
     "src=198.51.100.20 dst=203.0.113.5 sport=21 dport=40021 [ASSURED] mark=0 helper=ftp use=1"},
    {2,
     6,
     299,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40021, 21},
     {"198.51.100.20", "203.0.113.5", 21, 40021},
     false,
     true,
     0u,
     0,
     true,
     2,
     "ipv4     2 tcp      6 299 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40021 dport=21 "
     "src=198.51.100.20 dst=203.0.113.5 sport=21 dport=40021 [ASSURED] mark=0 helper=ftp use=2"},
    {2,
     6,
     299,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40022, 21},
     {"198.51.100.20", "203.0.113.5", 21, 40022},
     false,
     true,
     0u,
     0,
     true,
     1,
     "ipv4     2 tcp      6 299 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40022 dport=21 "
     "src=198.51.100.20 dst=203.0.113.5 sport=21 dport=40022 [ASSURED] mark=0 helper=ftp use=1"},
    {2,
     6,
     299,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40022, 21},
     {"198.51.100.20", "203.0.113.5", 21, 40022},
     false,
     true,
     0u,
     0,
     true,
     2,
     "ipv4     2 tcp      6 299 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40022 dport=21 "
     "src=198.51.100.20 dst=203.0.113.5 sport=21 dport=40022 [ASSURED] mark=0 helper=ftp use=2"},
    {2,
     6,
     299,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40030, 80},
     {"198.51.100.20", "203.0.113.5", 80, 40030},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 299 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40030 dport=80 "
     "src=198.51.100.20 dst=203.0.113.5 sport=80 dport=40030 [ASSURED] mark=0 use=1"},
    {2,
     6,
     299,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40070, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40070},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 299 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40070 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40070 [ASSURED] mark=0 use=1"},
    {2,
     6,
     299,
     TcpState::kEstablished,
     {"198.51.100.20", "203.0.113.10", 51000, 80},
     {"192.0.2.10", "198.51.100.20", 8080, 51000},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 299 ESTABLISHED src=198.51.100.20 dst=203.0.113.10 sport=51000 "
     "dport=80 src=192.0.2.10 dst=198.51.100.20 sport=8080 dport=51000 [ASSURED] mark=0 use=1"},
    {2,
     6,
     431999,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40000, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40000},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 431999 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40000 "
     "dport=80 src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40000 [ASSURED] mark=0 use=1"},
    {2,
     6,
     431999,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40002, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40002},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 431999 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40002 "
     "dport=80 src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40002 [ASSURED] mark=0 use=1"},
    {2,
     6,
     431999,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40003, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40003},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 431999 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40003 "
     "dport=80 src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40003 [ASSURED] mark=0 use=1"},
    {2,
     6,
     431999,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40005, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40005},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 431999 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40005 "
     "dport=80 src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40005 [ASSURED] mark=0 use=1"},
    {2,
     6,
     431999,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40007, 5001},
     {"198.51.100.20", "192.0.2.10", 5001, 40007},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 431999 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40007 "
     "dport=5001 src=198.51.100.20 dst=192.0.2.10 sport=5001 dport=40007 [ASSURED] mark=0 use=1"},
    {2,
     6,
     431999,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40011, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40011},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 431999 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40011 "
     "dport=80 src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40011 [ASSURED] mark=0 use=1"},
    {2,
     6,
     431999,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40012, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40012},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 431999 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40012 "
     "dport=80 src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40012 [ASSURED] mark=0 use=1"},
    {2,
     6,
     431999,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40021, 21},
     {"198.51.100.20", "203.0.113.5", 21, 40021},
     false,
     true,
     0u,
     0,
     true,
     1,
     "ipv4     2 tcp      6 431999 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40021 "
     "dport=21 src=198.51.100.20 dst=203.0.113.5 sport=21 dport=40021 [ASSURED] mark=0 helper=ftp "
     "use=1"},
    {2,
     6,
     431999,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40021, 21},
     {"198.51.100.20", "203.0.113.5", 21, 40021},
     false,
     true,
     0u,
     0,
     true,
     2,
     "ipv4     2 tcp      6 431999 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40021 "
     "dport=21 src=198.51.100.20 dst=203.0.113.5 sport=21 dport=40021 [ASSURED] mark=0 helper=ftp "
     "use=2"},
    {2,
     6,
     431999,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40022, 21},
     {"198.51.100.20", "203.0.113.5", 21, 40022},
     false,
     true,
     0u,
     0,
     true,
     1,
     "ipv4     2 tcp      6 431999 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40022 "
     "dport=21 src=198.51.100.20 dst=203.0.113.5 sport=21 dport=40022 [ASSURED] mark=0 helper=ftp "
     "use=1"},
    {2,
     6,
     431999,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40022, 21},
     {"198.51.100.20", "203.0.113.5", 21, 40022},
     false,
     true,
     0u,
     0,
     true,
     2,
     "ipv4     2 tcp      6 431999 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40022 "
     "dport=21 src=198.51.100.20 dst=203.0.113.5 sport=21 dport=40022 [ASSURED] mark=0 helper=ftp "
     "use=2"},
    {2,
     6,
     431999,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40030, 80},
     {"198.51.100.20", "203.0.113.5", 80, 40030},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 431999 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40030 "
     "dport=80 src=198.51.100.20 dst=203.0.113.5 sport=80 dport=40030 [ASSURED] mark=0 use=1"},
    {2,
     6,
     431999,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40070, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40070},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 431999 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40070 "
     "dport=80 src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40070 [ASSURED] mark=0 use=1"},
    {2,
     6,
     431999,
     TcpState::kEstablished,
     {"192.0.2.10", "198.51.100.20", 40100, 30000},
     {"198.51.100.20", "203.0.113.5", 30000, 40100},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 431999 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40100 "
     "dport=30000 src=198.51.100.20 dst=203.0.113.5 sport=30000 dport=40100 [ASSURED] mark=0 "
     "use=1"},
    {2,
     6,
     431999,
     TcpState::kEstablished,
     {"198.51.100.20", "203.0.113.10", 51000, 80},
     {"192.0.2.10", "198.51.100.20", 8080, 51000},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 431999 ESTABLISHED src=198.51.100.20 dst=203.0.113.10 sport=51000 "
     "dport=80 src=192.0.2.10 dst=198.51.100.20 sport=8080 dport=51000 [ASSURED] mark=0 use=1"},
    {2,
     6,
     431999,
     TcpState::kEstablished,
     {"198.51.100.20", "203.0.113.5", 20, 50000},
     {"192.0.2.10", "198.51.100.20", 50000, 20},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 431999 ESTABLISHED src=198.51.100.20 dst=203.0.113.5 sport=20 "
     "dport=50000 src=192.0.2.10 dst=198.51.100.20 sport=50000 dport=20 [ASSURED] mark=0 use=1"},
    {2,
     6,
     59,
     TcpState::kCloseWait,
     {"192.0.2.10", "198.51.100.20", 40000, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40000},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 59 CLOSE_WAIT src=192.0.2.10 dst=198.51.100.20 sport=40000 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40000 [ASSURED] mark=0 use=1"},
    {2,
     6,
     59,
     TcpState::kSynRecv,
     {"192.0.2.10", "198.51.100.20", 40000, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40000},
     false,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 59 SYN_RECV src=192.0.2.10 dst=198.51.100.20 sport=40000 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40000 mark=0 use=1"},
    {2,
     6,
     59,
     TcpState::kSynRecv,
     {"192.0.2.10", "198.51.100.20", 40002, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40002},
     false,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 59 SYN_RECV src=192.0.2.10 dst=198.51.100.20 sport=40002 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40002 mark=0 use=1"},
    {2,
     6,
     59,
     TcpState::kSynRecv,
     {"192.0.2.10", "198.51.100.20", 40003, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40003},
     false,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 59 SYN_RECV src=192.0.2.10 dst=198.51.100.20 sport=40003 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40003 mark=0 use=1"},
    {2,
     6,
     59,
     TcpState::kSynRecv,
     {"192.0.2.10", "198.51.100.20", 40005, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40005},
     false,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 59 SYN_RECV src=192.0.2.10 dst=198.51.100.20 sport=40005 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40005 mark=0 use=1"},
    {2,
     6,
     59,
     TcpState::kSynRecv,
     {"192.0.2.10", "198.51.100.20", 40007, 5001},
     {"198.51.100.20", "192.0.2.10", 5001, 40007},
     false,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 59 SYN_RECV src=192.0.2.10 dst=198.51.100.20 sport=40007 dport=5001 "
     "src=198.51.100.20 dst=192.0.2.10 sport=5001 dport=40007 mark=0 use=1"},
    {2,
     6,
     59,
     TcpState::kSynRecv,
     {"192.0.2.10", "198.51.100.20", 40011, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40011},
     false,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 59 SYN_RECV src=192.0.2.10 dst=198.51.100.20 sport=40011 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40011 mark=0 use=1"},
    {2,
     6,
     59,
     TcpState::kSynRecv,
     {"192.0.2.10", "198.51.100.20", 40012, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40012},
     false,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 59 SYN_RECV src=192.0.2.10 dst=198.51.100.20 sport=40012 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40012 mark=0 use=1"},
    {2,
     6,
     59,
     TcpState::kSynRecv,
     {"192.0.2.10", "198.51.100.20", 40021, 21},
     {"198.51.100.20", "203.0.113.5", 21, 40021},
     false,
     false,
     0u,
     0,
     true,
     1,
     "ipv4     2 tcp      6 59 SYN_RECV src=192.0.2.10 dst=198.51.100.20 sport=40021 dport=21 "
     "src=198.51.100.20 dst=203.0.113.5 sport=21 dport=40021 mark=0 helper=ftp use=1"},
    {2,
     6,
     59,
     TcpState::kSynRecv,
     {"192.0.2.10", "198.51.100.20", 40022, 21},
     {"198.51.100.20", "203.0.113.5", 21, 40022},
     false,
     false,
     0u,
     0,
     true,
     1,
     "ipv4     2 tcp      6 59 SYN_RECV src=192.0.2.10 dst=198.51.100.20 sport=40022 dport=21 "
     "src=198.51.100.20 dst=203.0.113.5 sport=21 dport=40022 mark=0 helper=ftp use=1"},
    {2,
     6,
     59,
     TcpState::kSynRecv,
     {"192.0.2.10", "198.51.100.20", 40030, 80},
     {"198.51.100.20", "203.0.113.5", 80, 40030},
     false,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 59 SYN_RECV src=192.0.2.10 dst=198.51.100.20 sport=40030 dport=80 "
     "src=198.51.100.20 dst=203.0.113.5 sport=80 dport=40030 mark=0 use=1"},
    {2,
     6,
     59,
     TcpState::kSynRecv,
     {"192.0.2.10", "198.51.100.20", 40070, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40070},
     false,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 59 SYN_RECV src=192.0.2.10 dst=198.51.100.20 sport=40070 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40070 mark=0 use=1"},
    {2,
     6,
     59,
     TcpState::kSynRecv,
     {"192.0.2.10", "198.51.100.20", 40100, 30000},
     {"198.51.100.20", "203.0.113.5", 30000, 40100},
     false,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 59 SYN_RECV src=192.0.2.10 dst=198.51.100.20 sport=40100 dport=30000 "
     "src=198.51.100.20 dst=203.0.113.5 sport=30000 dport=40100 mark=0 use=1"},
    {2,
     6,
     59,
     TcpState::kSynRecv,
     {"198.51.100.20", "203.0.113.10", 51000, 80},
     {"192.0.2.10", "198.51.100.20", 8080, 51000},
     false,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 59 SYN_RECV src=198.51.100.20 dst=203.0.113.10 sport=51000 dport=80 "
     "src=192.0.2.10 dst=198.51.100.20 sport=8080 dport=51000 mark=0 use=1"},
    {2,
     6,
     59,
     TcpState::kSynRecv,
     {"198.51.100.20", "203.0.113.5", 20, 50000},
     {"192.0.2.10", "198.51.100.20", 50000, 20},
     false,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 59 SYN_RECV src=198.51.100.20 dst=203.0.113.5 sport=20 dport=50000 "
     "src=192.0.2.10 dst=198.51.100.20 sport=50000 dport=20 mark=0 use=1"},
    {2,
     6,
     9,
     TcpState::kClose,
     {"192.0.2.10", "198.51.100.20", 40003, 80},
     {"198.51.100.20", "192.0.2.10", 80, 40003},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 9 CLOSE src=192.0.2.10 dst=198.51.100.20 sport=40003 dport=80 "
     "src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40003 [ASSURED] mark=0 use=1"},
    {2,
     6,
     9,
     TcpState::kClose,
     {"192.0.2.10", "198.51.100.20", 40030, 80},
     {"198.51.100.20", "203.0.113.5", 80, 40030},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 tcp      6 9 CLOSE src=192.0.2.10 dst=198.51.100.20 sport=40030 dport=80 "
     "src=198.51.100.20 dst=203.0.113.5 sport=80 dport=40030 [ASSURED] mark=0 use=1"},
    {2,
     17,
     119,
     TcpState::kNone,
     {"192.0.2.10", "198.51.100.20", 6000, 7000},
     {"198.51.100.20", "192.0.2.10", 7000, 6000},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv4     2 udp      17 119 src=192.0.2.10 dst=198.51.100.20 sport=6000 dport=7000 "
     "src=198.51.100.20 dst=192.0.2.10 sport=7000 dport=6000 [ASSURED] mark=0 use=1"},
    {2,
     17,
     29,
     TcpState::kNone,
     {"192.0.2.10", "198.51.100.20", 40041, 53},
     {"198.51.100.20", "203.0.113.5", 53, 40041},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 udp      17 29 src=192.0.2.10 dst=198.51.100.20 sport=40041 dport=53 [UNREPLIED] "
     "src=198.51.100.20 dst=203.0.113.5 sport=53 dport=40041 mark=0 use=1"},
    {2,
     17,
     29,
     TcpState::kNone,
     {"192.0.2.10", "198.51.100.20", 40051, 53},
     {"192.0.2.1", "192.0.2.10", 5353, 40051},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 udp      17 29 src=192.0.2.10 dst=198.51.100.20 sport=40051 dport=53 [UNREPLIED] "
     "src=192.0.2.1 dst=192.0.2.10 sport=5353 dport=40051 mark=0 use=1"},
    {2,
     17,
     29,
     TcpState::kNone,
     {"192.0.2.10", "198.51.100.20", 5000, 53},
     {"198.51.100.20", "203.0.113.5", 53, 5000},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 udp      17 29 src=192.0.2.10 dst=198.51.100.20 sport=5000 dport=53 [UNREPLIED] "
     "src=198.51.100.20 dst=203.0.113.5 sport=53 dport=5000 mark=0 use=1"},
    {2,
     17,
     29,
     TcpState::kNone,
     {"192.0.2.10", "198.51.100.20", 5301, 123},
     {"198.51.100.20", "203.0.113.5", 123, 5301},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 udp      17 29 src=192.0.2.10 dst=198.51.100.20 sport=5301 dport=123 [UNREPLIED] "
     "src=198.51.100.20 dst=203.0.113.5 sport=123 dport=5301 mark=0 use=1"},
    {2,
     17,
     29,
     TcpState::kNone,
     {"192.0.2.10", "198.51.100.20", 5353, 53},
     {"198.51.100.20", "192.0.2.10", 53, 5353},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 udp      17 29 src=192.0.2.10 dst=198.51.100.20 sport=5353 dport=53 [UNREPLIED] "
     "src=198.51.100.20 dst=192.0.2.10 sport=53 dport=5353 mark=0 use=1"},
    {2,
     17,
     29,
     TcpState::kNone,
     {"192.0.2.10", "198.51.100.20", 5400, 53},
     {"198.51.100.20", "192.0.2.10", 53, 5400},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 udp      17 29 src=192.0.2.10 dst=198.51.100.20 sport=5400 dport=53 [UNREPLIED] "
     "src=198.51.100.20 dst=192.0.2.10 sport=53 dport=5400 mark=0 use=1"},
    {2,
     17,
     29,
     TcpState::kNone,
     {"192.0.2.10", "198.51.100.20", 5400, 53},
     {"198.51.100.20", "192.0.2.10", 53, 5400},
     false,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 udp      17 29 src=192.0.2.10 dst=198.51.100.20 sport=5400 dport=53 "
     "src=198.51.100.20 dst=192.0.2.10 sport=53 dport=5400 mark=0 use=1"},
    {2,
     17,
     29,
     TcpState::kNone,
     {"192.0.2.10", "198.51.100.20", 5555, 53},
     {"198.51.100.20", "192.0.2.10", 53, 5555},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 udp      17 29 src=192.0.2.10 dst=198.51.100.20 sport=5555 dport=53 [UNREPLIED] "
     "src=198.51.100.20 dst=192.0.2.10 sport=53 dport=5555 mark=0 use=1"},
    {2,
     17,
     29,
     TcpState::kNone,
     {"192.0.2.10", "198.51.100.20", 6000, 7000},
     {"198.51.100.20", "192.0.2.10", 7000, 6000},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 udp      17 29 src=192.0.2.10 dst=198.51.100.20 sport=6000 dport=7000 [UNREPLIED] "
     "src=198.51.100.20 dst=192.0.2.10 sport=7000 dport=6000 mark=0 use=1"},
    {2,
     17,
     29,
     TcpState::kNone,
     {"192.0.2.10", "198.51.100.20", 6000, 7000},
     {"198.51.100.20", "192.0.2.10", 7000, 6000},
     false,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 udp      17 29 src=192.0.2.10 dst=198.51.100.20 sport=6000 dport=7000 "
     "src=198.51.100.20 dst=192.0.2.10 sport=7000 dport=6000 mark=0 use=1"},
    {2,
     17,
     29,
     TcpState::kNone,
     {"192.0.2.10", "198.51.100.20", 6100, 7100},
     {"198.51.100.20", "192.0.2.10", 7100, 6100},
     true,
     false,
     42u,
     7,
     false,
     1,
     "ipv4     2 udp      17 29 src=192.0.2.10 dst=198.51.100.20 sport=6100 dport=7100 [UNREPLIED] "
     "src=198.51.100.20 dst=192.0.2.10 sport=7100 dport=6100 mark=42 zone=7 use=1"},
    {2,
     17,
     29,
     TcpState::kNone,
     {"192.0.2.10", "198.51.100.20", 6100, 7100},
     {"198.51.100.20", "192.0.2.10", 7100, 6100},
     false,
     false,
     42u,
     7,
     false,
     1,
     "ipv4     2 udp      17 29 src=192.0.2.10 dst=198.51.100.20 sport=6100 dport=7100 "
     "src=198.51.100.20 dst=192.0.2.10 sport=7100 dport=6100 mark=42 zone=7 use=1"},
    {2,
     17,
     29,
     TcpState::kNone,
     {"192.0.2.10", "198.51.100.20", 6300, 7300},
     {"198.51.100.20", "203.0.113.5", 7300, 6300},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 udp      17 29 src=192.0.2.10 dst=198.51.100.20 sport=6300 dport=7300 [UNREPLIED] "
     "src=198.51.100.20 dst=203.0.113.5 sport=7300 dport=6300 mark=0 use=1"},
    {2,
     17,
     29,
     TcpState::kNone,
     {"192.0.2.11", "198.51.100.20", 40041, 53},
     {"198.51.100.20", "203.0.113.5", 53, 45658},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv4     2 udp      17 29 src=192.0.2.11 dst=198.51.100.20 sport=40041 dport=53 [UNREPLIED] "
     "src=198.51.100.20 dst=203.0.113.5 sport=53 dport=45658 mark=0 use=1"},
    {10,
     6,
     119,
     TcpState::kFinWait,
     {"2001:db8:1::10", "2001:db8:2::20", 40090, 80},
     {"2001:db8:2::20", "2001:db8:1::10", 80, 40090},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv6     10 tcp      6 119 FIN_WAIT src=2001:db8:1::10 dst=2001:db8:2::20 sport=40090 "
     "dport=80 src=2001:db8:2::20 dst=2001:db8:1::10 sport=80 dport=40090 [ASSURED] mark=0 use=1"},
    {10,
     6,
     119,
     TcpState::kSynSent,
     {"2001:db8:1::10", "2001:db8:2::20", 40090, 80},
     {"2001:db8:2::20", "2001:db8:1::10", 80, 40090},
     true,
     false,
     0u,
     0,
     false,
     1,
     "ipv6     10 tcp      6 119 SYN_SENT src=2001:db8:1::10 dst=2001:db8:2::20 sport=40090 "
     "dport=80 [UNREPLIED] src=2001:db8:2::20 dst=2001:db8:1::10 sport=80 dport=40090 mark=0 "
     "use=1"},
    {10,
     6,
     119,
     TcpState::kTimeWait,
     {"2001:db8:1::10", "2001:db8:2::20", 40090, 80},
     {"2001:db8:2::20", "2001:db8:1::10", 80, 40090},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv6     10 tcp      6 119 TIME_WAIT src=2001:db8:1::10 dst=2001:db8:2::20 sport=40090 "
     "dport=80 src=2001:db8:2::20 dst=2001:db8:1::10 sport=80 dport=40090 [ASSURED] mark=0 use=1"},
    {10,
     6,
     29,
     TcpState::kLastAck,
     {"2001:db8:1::10", "2001:db8:2::20", 40090, 80},
     {"2001:db8:2::20", "2001:db8:1::10", 80, 40090},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv6     10 tcp      6 29 LAST_ACK src=2001:db8:1::10 dst=2001:db8:2::20 sport=40090 "
     "dport=80 src=2001:db8:2::20 dst=2001:db8:1::10 sport=80 dport=40090 [ASSURED] mark=0 use=1"},
    {10,
     6,
     299,
     TcpState::kEstablished,
     {"2001:db8:1::10", "2001:db8:2::20", 40090, 80},
     {"2001:db8:2::20", "2001:db8:1::10", 80, 40090},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv6     10 tcp      6 299 ESTABLISHED src=2001:db8:1::10 dst=2001:db8:2::20 sport=40090 "
     "dport=80 src=2001:db8:2::20 dst=2001:db8:1::10 sport=80 dport=40090 [ASSURED] mark=0 use=1"},
    {10,
     6,
     431999,
     TcpState::kEstablished,
     {"2001:db8:1::10", "2001:db8:2::20", 40090, 80},
     {"2001:db8:2::20", "2001:db8:1::10", 80, 40090},
     false,
     true,
     0u,
     0,
     false,
     1,
     "ipv6     10 tcp      6 431999 ESTABLISHED src=2001:db8:1::10 dst=2001:db8:2::20 sport=40090 "
     "dport=80 src=2001:db8:2::20 dst=2001:db8:1::10 sport=80 dport=40090 [ASSURED] mark=0 use=1"},
    {10,
     6,
     59,
     TcpState::kSynRecv,
     {"2001:db8:1::10", "2001:db8:2::20", 40090, 80},
     {"2001:db8:2::20", "2001:db8:1::10", 80, 40090},
     false,
     false,
     0u,
     0,
     false,
     1,
     "ipv6     10 tcp      6 59 SYN_RECV src=2001:db8:1::10 dst=2001:db8:2::20 sport=40090 "
     "dport=80 src=2001:db8:2::20 dst=2001:db8:1::10 sport=80 dport=40090 mark=0 use=1"},
};

Tuple MakeTuple(int family, int proto, const GoldenTuple& g) {
  Tuple t;
  t.family = static_cast<Family>(family);
  t.proto = static_cast<uint8_t>(proto);
  t.src = *IpAddress::Parse(g.src);
  t.dst = *IpAddress::Parse(g.dst);
  t.sport = g.sport;
  t.dport = g.dport;
  return t;
}

Flow MakeFlow(const Golden& g) {
  Flow f;
  f.tuple[0] = MakeTuple(g.family, g.proto, g.orig);
  f.tuple[1] = MakeTuple(g.family, g.proto, g.reply);
  // Just under one more second left: the listing must round down.
  f.expires = kNow + g.timeout_s * kNanosPerSecond + 999 * kNanosPerMilli;
  f.tcp.state = g.state;
  f.status = kIpsConfirmed | (g.unreplied ? 0 : kIpsSeenReply) | (g.assured ? kIpsAssured : 0);
  f.mark = g.mark;
  f.zone = g.zone;
  f.helper = g.ftp ? FlowHelper::kFtp : FlowHelper::kNone;
  return f;
}

TEST(FlowListingTest, ExtendedMatchesKernelCorpus) {
  for (const Golden& g : kCorpus) {
    ListingOptions o;
    o.use = g.use;
    EXPECT_EQ(FormatConntrackLine(MakeFlow(g), kNow, ListingFormat::kExtended, o), g.raw);
  }
}

TEST(FlowListingTest, PlainListingDropsTheL3Columns) {
  for (const Golden& g : kCorpus) {
    ListingOptions o;
    o.use = g.use;
    const std::string raw = g.raw;
    const std::string plain = raw.substr(raw.find_first_not_of(' ', raw.find(' ') + 1));
    EXPECT_EQ(FormatConntrackLine(MakeFlow(g), kNow, ListingFormat::kConntrackL, o),
              plain.substr(plain.find(' ') + 1));
  }
}

// Lines below were captured on this machine's kernel (6.18.44) with `conntrack -I` in a
// scratch namespace, then `cat /proc/net/nf_conntrack` and `conntrack -L [-o extended]`.
struct Captured {
  const char* what;
  Flow flow;
  ListingFormat format;
  ListingOptions options;
  const char* line;
};

Flow Udp(uint32_t mark, uint16_t zone) {
  Flow f;
  f.tuple[0] = MakeTuple(2, 17, {"192.0.2.10", "198.51.100.20", 5000, 53});
  f.tuple[1] = MakeTuple(2, 17, {"198.51.100.20", "192.0.2.10", 53, 5000});
  f.expires = kNow + 29 * kNanosPerSecond + 1;
  f.mark = mark;
  f.zone = zone;
  return f;
}

Flow V6Tcp() {
  Flow f;
  f.tuple[0] = MakeTuple(10, 6, {"2001:db8:1::10", "2001:db8:2::20", 40090, 80});
  f.tuple[1] = MakeTuple(10, 6, {"2001:db8:2::20", "2001:db8:1::10", 80, 40090});
  f.expires = kNow + 120 * kNanosPerSecond - 1;
  f.tcp.state = TcpState::kSynSent;
  return f;
}

Flow V6Icmp() {
  Flow f;
  f.tuple[0] = MakeTuple(10, 58, {"2001:db8:1::10", "2001:db8:2::20", 77, 128 << 8});
  f.tuple[1] = MakeTuple(10, 58, {"2001:db8:2::20", "2001:db8:1::10", 77, 129 << 8});
  f.expires = kNow + 29 * kNanosPerSecond;
  return f;
}

Flow Gre() {
  Flow f;
  f.tuple[0] = MakeTuple(2, 47, {"192.0.2.10", "198.51.100.20", 5, 6});
  f.tuple[1] = MakeTuple(2, 47, {"198.51.100.20", "192.0.2.10", 6, 5});
  f.expires = kNow + 29 * kNanosPerSecond;
  return f;
}

Flow Generic(int proto) {
  Flow f;
  f.tuple[0] = MakeTuple(2, proto, {"192.0.2.10", "198.51.100.20", 0, 0});
  f.tuple[1] = MakeTuple(2, proto, {"198.51.100.20", "192.0.2.10", 0, 0});
  f.expires = kNow + 29 * kNanosPerSecond;
  return f;
}

Flow Udplite() {
  Flow f;
  f.tuple[0] = MakeTuple(2, 136, {"192.0.2.10", "198.51.100.20", 1, 2});
  f.tuple[1] = MakeTuple(2, 136, {"198.51.100.20", "192.0.2.10", 2, 1});
  f.expires = kNow + 29 * kNanosPerSecond;
  return f;
}

Flow Established() {
  Flow f;
  f.tuple[0] = MakeTuple(2, 6, {"192.0.2.10", "198.51.100.20", 40000, 80});
  f.tuple[1] = MakeTuple(2, 6, {"198.51.100.20", "192.0.2.10", 80, 40000});
  f.expires = kNow + 299 * kNanosPerSecond + 5;
  f.tcp.state = TcpState::kEstablished;
  f.status = kIpsSeenReply | kIpsAssured | kIpsConfirmed;
  return f;
}

// The counters of a flow the capture's packets had not touched (zero), or `c`.
ListingOptions Acct(const FlowAccounting* c = nullptr) {
  static constexpr FlowAccounting kZero;
  ListingOptions o;
  o.counters = c ? c : &kZero;
  return o;
}

const auto kProc = ListingFormat::kProcNfConntrack;
const auto kExt = ListingFormat::kExtended;
const auto kPlain = ListingFormat::kConntrackL;

TEST(FlowListingTest, MatchesCapturedLines) {
  const Captured cases[] = {
      {"proc tcp",
       Established(),
       kProc,
       {},
       "ipv4     2 tcp      6 299 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40000 "
       "dport=80 src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40000 [ASSURED] mark=0 zone=0 "
       "use=2"},
      {"proc udp zone",
       Udp(42, 7),
       kProc,
       {},
       "ipv4     2 udp      17 29 src=192.0.2.10 dst=198.51.100.20 sport=5000 dport=53 "
       "[UNREPLIED] src=198.51.100.20 dst=192.0.2.10 sport=53 dport=5000 mark=42 zone=7 use=2"},
      {"ext udp zone",
       Udp(42, 7),
       kExt,
       {},
       "ipv4     2 udp      17 29 src=192.0.2.10 dst=198.51.100.20 sport=5000 dport=53 "
       "[UNREPLIED] src=198.51.100.20 dst=192.0.2.10 sport=53 dport=5000 mark=42 zone=7 use=1"},
      {"plain udp zone",
       Udp(42, 7),
       kPlain,
       {},
       "udp      17 29 src=192.0.2.10 dst=198.51.100.20 sport=5000 dport=53 [UNREPLIED] "
       "src=198.51.100.20 dst=192.0.2.10 sport=53 dport=5000 mark=42 zone=7 use=1"},
      {"proc gre",
       Gre(),
       kProc,
       {1, nullptr, 0, 0},
       "ipv4     2 gre      47 29 timeout=0, stream_timeout=0 src=192.0.2.10 dst=198.51.100.20 "
       "srckey=0x5 dstkey=0x6 [UNREPLIED] src=198.51.100.20 dst=192.0.2.10 srckey=0x6 "
       "dstkey=0x5 mark=0 zone=0 use=2"},
      {"plain gre",
       Gre(),
       kPlain,
       {},
       "gre      47 29 src=192.0.2.10 dst=198.51.100.20 srckey=0x5 dstkey=0x6 [UNREPLIED] "
       "src=198.51.100.20 dst=192.0.2.10 srckey=0x6 dstkey=0x5 mark=0 use=1"},
      {"proc generic",
       Generic(99),
       kProc,
       {},
       "ipv4     2 unknown  99 29 src=192.0.2.10 dst=198.51.100.20 [UNREPLIED] "
       "src=198.51.100.20 dst=192.0.2.10 mark=0 zone=0 use=2"},
      {"ext generic",
       Generic(99),
       kExt,
       {},
       "ipv4     2 unknown  99 29 src=192.0.2.10 dst=198.51.100.20 [UNREPLIED] "
       "src=198.51.100.20 dst=192.0.2.10 mark=0 use=1"},
      {"proc v6 tcp acct", V6Tcp(), kProc, Acct(),
       "ipv6     10 tcp      6 119 SYN_SENT src=2001:0db8:0001:0000:0000:0000:0000:0010 "
       "dst=2001:0db8:0002:0000:0000:0000:0000:0020 sport=40090 dport=80 packets=0 bytes=0 "
       "[UNREPLIED] src=2001:0db8:0002:0000:0000:0000:0000:0020 "
       "dst=2001:0db8:0001:0000:0000:0000:0000:0010 sport=80 dport=40090 packets=0 bytes=0 "
       "mark=0 zone=0 use=2"},
      {"ext v6 tcp acct", V6Tcp(), kExt, Acct(),
       "ipv6     10 tcp      6 119 SYN_SENT src=2001:db8:1::10 dst=2001:db8:2::20 sport=40090 "
       "dport=80 packets=0 bytes=0 [UNREPLIED] src=2001:db8:2::20 dst=2001:db8:1::10 sport=80 "
       "dport=40090 packets=0 bytes=0 mark=0 use=1"},
      {"proc udplite acct", Udplite(), kProc, Acct(),
       "ipv4     2 udplite  136 29 src=192.0.2.10 dst=198.51.100.20 sport=1 dport=2 packets=0 "
       "bytes=0 [UNREPLIED] src=198.51.100.20 dst=192.0.2.10 sport=2 dport=1 packets=0 bytes=0 "
       "mark=0 zone=0 use=2"},
      {"proc icmpv6 acct", V6Icmp(), kProc, Acct(),
       "ipv6     10 icmpv6   58 29 src=2001:0db8:0001:0000:0000:0000:0000:0010 "
       "dst=2001:0db8:0002:0000:0000:0000:0000:0020 type=128 code=0 id=77 packets=0 bytes=0 "
       "[UNREPLIED] src=2001:0db8:0002:0000:0000:0000:0000:0020 "
       "dst=2001:0db8:0001:0000:0000:0000:0000:0010 type=129 code=0 id=77 packets=0 bytes=0 "
       "mark=0 zone=0 use=2"},
      {"ext icmpv6 acct", V6Icmp(), kExt, Acct(),
       "ipv6     10 icmpv6   58 29 src=2001:db8:1::10 dst=2001:db8:2::20 type=128 code=0 id=77 "
       "packets=0 bytes=0 [UNREPLIED] src=2001:db8:2::20 dst=2001:db8:1::10 type=129 code=0 "
       "id=77 packets=0 bytes=0 mark=0 use=1"},
  };
  for (const Captured& c : cases) {
    EXPECT_EQ(FormatConntrackLine(c.flow, kNow, c.format, c.options), c.line) << c.what;
  }
}

TEST(FlowListingTest, TimeoutRoundsDownAndNeverGoesNegative) {
  struct Case {
    Nanos left;
    const char* want_prefix;
  };
  const Case cases[] = {{0, "udp      17 0 "},
                        {-5 * kNanosPerSecond, "udp      17 0 "},
                        {kNanosPerSecond - 1, "udp      17 0 "},
                        {kNanosPerSecond, "udp      17 1 "},
                        {120 * kNanosPerSecond - 1, "udp      17 119 "}};
  for (const Case& c : cases) {
    Flow f = Udp(0, 0);
    f.expires = kNow + c.left;
    EXPECT_EQ(FormatConntrackLine(f, kNow, kPlain).rfind(c.want_prefix, 0), 0u) << c.left;
  }
}

TEST(FlowListingTest, CountersAndOffloadTags) {
  Flow f = Established();
  const FlowAccounting counters{{{3, 180}, {2, 1500}}};
  f.status |= kIpsOffload;
  EXPECT_EQ(FormatConntrackLine(f, kNow, kPlain, Acct(&counters)),
            "tcp      6 299 ESTABLISHED src=192.0.2.10 dst=198.51.100.20 sport=40000 dport=80 "
            "packets=3 bytes=180 src=198.51.100.20 dst=192.0.2.10 sport=80 dport=40000 "
            "packets=2 bytes=1500 [OFFLOAD] mark=0 use=1");
  // The kernel prints no timeout for offloaded flows in /proc.
  EXPECT_EQ(FormatConntrackLine(f, kNow, kProc).substr(0, 41),
            "ipv4     2 tcp      6 ESTABLISHED src=192");
  f.status |= kIpsHwOffload;
  EXPECT_NE(FormatConntrackLine(f, kNow, kPlain).find("[HW_OFFLOAD] mark=0"), std::string::npos);
}

TEST(FlowListingTest, ProtocolNames) {
  EXPECT_STREQ(L4ProtoName(kProtoDccp, kExt), "dccp");
  EXPECT_STREQ(L4ProtoName(kProtoDccp, kProc), "unknown");
  EXPECT_STREQ(L4ProtoName(kProtoSctp, kExt), "sctp");
  EXPECT_STREQ(L4ProtoName(200, kExt), "unknown");
  EXPECT_STREQ(L3ProtoName(Family::kIpv6), "ipv6");
  EXPECT_STREQ(L3ProtoName(Family::kNone), "unknown");
}

// Stats text as printed on this machine (6.18.44, conntrack 1.4.7, 2 cpus); values are
// distinct so a swapped column shows.
TEST(ConntrackStatsTest, ConntrackSMatchesTool) {
  const std::vector<ConntrackStats> zero(2);
  EXPECT_EQ(FormatConntrackS(zero),
            "cpu=0   \tfound=0 invalid=0 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 "
            "search_restart=0 clash_resolve=0 chaintoolong=0 \n"
            "cpu=1   \tfound=0 invalid=0 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 "
            "search_restart=0 clash_resolve=0 chaintoolong=0 \n");
  ConntrackStats s;
  s.found = 1;
  s.invalid = 2;
  s.insert = 3;
  s.insert_failed = 4;
  s.drop = 5;
  s.early_drop = 6;
  s.error = 7;
  s.search_restart = 8;
  s.clash_resolve = 9;
  s.chaintoolong = 10;
  s.expect_new = 11;
  s.expect_create = 12;
  s.expect_delete = 13;
  const std::vector<ConntrackStats> one = {s};
  EXPECT_EQ(FormatConntrackS(one),
            "cpu=0   \tfound=1 invalid=2 insert=3 insert_failed=4 drop=5 early_drop=6 error=7 "
            "search_restart=8 clash_resolve=9 chaintoolong=10 \n");
  EXPECT_EQ(FormatConntrackSExpect(zero),
            "cpu=0   \texpect_new=0 expect_create=0 expect_delete=0 \n"
            "cpu=1   \texpect_new=0 expect_create=0 expect_delete=0 \n");
  EXPECT_EQ(FormatConntrackSExpect(one),
            "cpu=0   \texpect_new=11 expect_create=12 expect_delete=13 \n");
  EXPECT_EQ(FormatProcNetStatConntrack(0, {zero.data(), 1}),
            "entries  clashres found new invalid ignore delete chainlength insert insert_failed "
            "drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n"
            "00000000  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 "
            "00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000000\n");
  const std::string proc = FormatProcNetStatConntrack(300, one);
  EXPECT_EQ(proc.substr(proc.find('\n') + 1),
            "0000012c  00000009 00000001 00000000 00000002 00000000 00000000 0000000a 00000003 "
            "00000004 00000005 00000006 00000007  0000000b 0000000c 0000000d 00000008\n");
  ConntrackStats sum = s;
  sum += s;
  EXPECT_EQ(sum.chaintoolong, 20u);
  EXPECT_EQ(sum.expect_delete, 26u);
}

}  // namespace
}  // namespace ctsync

// The engine's twin of the kernel's net.netfilter.nf_conntrack_* sysctls (Linux 6.18,
// net/netfilter/nf_conntrack_standalone.c and nf_conntrack_reasm.c), one typed field per
// sysctl, each initialised to the kernel's default.
//
// Owner: whoever builds the engine (daemon config, ctreplay's scenario sysctls). It is a
// plain value: copy it freely; a given instance is not synchronised, so mutate it from one
// thread and hand the engine a copy.
//
// Names follow the sysctl: the global knobs keep their full `nf_conntrack_` name; the
// per-protocol ones drop that prefix (`tcp_loose` is net.netfilter.nf_conntrack_tcp_loose).
// Timeouts are whole seconds, as the sysctls are written.
//
// Deliberate differences from the kernel:
// - DCCP sysctls (nf_conntrack_dccp_*) are gone since Linux 6.16 and nf_conntrack_helper
//   since 6.0; Set/Get reject them with an error that says so.
// - The kernel stores a negative timeout written through proc_dointvec_jiffies; we reject
//   it. Timeouts are capped at INT_MAX / 1000 s, the kernel's limit with HZ=1000.
// - nf_conntrack_count is state, not a setting; it is not here.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ctsync {

struct ConntrackSettings {
  // --- Global table knobs (net.netfilter.nf_conntrack_*; nf_conntrack_max also at net.).
  // The kernel sizes these from RAM; 262144 is its value on hosts with more than 4 GiB,
  // and the value the oracle corpus was recorded with.
  int nf_conntrack_max = 262144;
  int nf_conntrack_buckets = 262144;
  bool nf_conntrack_checksum = true;
  // 0 = off, else the L4 protocol number whose invalid packets are logged (255 = any).
  int nf_conntrack_log_invalid = 0;
  // Four expectations per expectation-hash bucket; the bucket count is buckets / 256.
  int nf_conntrack_expect_max = 4096;
  bool nf_conntrack_acct = false;
  bool nf_conntrack_timestamp = false;
  // 0 = off, 1 = on, 2 = on only while someone listens for events.
  int nf_conntrack_events = 2;

  // --- Generic (unknown L4 protocols).
  int generic_timeout = 600;

  // --- TCP.
  int tcp_timeout_syn_sent = 120;
  int tcp_timeout_syn_recv = 60;
  int tcp_timeout_established = 432000;
  int tcp_timeout_fin_wait = 120;
  int tcp_timeout_close_wait = 60;
  int tcp_timeout_last_ack = 30;
  int tcp_timeout_time_wait = 120;
  int tcp_timeout_close = 10;
  int tcp_timeout_max_retrans = 300;
  int tcp_timeout_unacknowledged = 300;
  bool tcp_loose = true;
  bool tcp_be_liberal = false;
  bool tcp_ignore_invalid_rst = false;
  int tcp_max_retrans = 3;

  // --- UDP, ICMP.
  int udp_timeout = 30;
  int udp_timeout_stream = 120;
  int icmp_timeout = 30;
  int icmpv6_timeout = 30;

  // --- SCTP.
  int sctp_timeout_closed = 10;
  int sctp_timeout_cookie_wait = 3;
  int sctp_timeout_cookie_echoed = 3;
  int sctp_timeout_established = 210;
  int sctp_timeout_shutdown_sent = 3;
  int sctp_timeout_shutdown_recd = 3;
  int sctp_timeout_shutdown_ack_sent = 3;
  int sctp_timeout_heartbeat_sent = 30;

  // --- GRE.
  int gre_timeout = 30;
  int gre_timeout_stream = 180;

  // --- IPv6 defragmentation inside conntrack (nf_conntrack_reasm.c).
  int frag6_timeout = 60;
  int64_t frag6_high_thresh = 4 * 1024 * 1024;
  int64_t frag6_low_thresh = 3 * 1024 * 1024;

  // --- Flow-table offload timeouts (present when CONFIG_NF_FLOW_TABLE is on).
  int flowtable_tcp_timeout = 30;
  int flowtable_udp_timeout = 30;

  // Sets one sysctl by name: "net.netfilter.nf_conntrack_tcp_loose",
  // "nf_conntrack_tcp_loose" and (for the global maximum) "net.nf_conntrack_max" are all
  // accepted. Unknown names and out-of-range values are errors and change nothing.
  absl::Status Set(std::string_view name, int64_t value);
  absl::StatusOr<int64_t> Get(std::string_view name) const;

  // Applies every sysctl of a scenario or config file; stops at the first error, which
  // names the sysctl. Earlier ones stay applied.
  absl::Status SetAll(const std::map<std::string, int64_t>& sysctls);

  // Every accepted sysctl, in its canonical form "net.netfilter.nf_conntrack_...", in the
  // kernel's table order.
  static std::vector<std::string> Names();
};

}  // namespace ctsync

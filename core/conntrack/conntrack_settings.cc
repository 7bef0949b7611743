#include "core/conntrack/conntrack_settings.h"

#include <climits>
#include <iterator>
#include <type_traits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace ctsync {
namespace {

// Largest timeout proc_dointvec_jiffies accepts at HZ=1000 (INT_MAX jiffies).
constexpr int64_t kMaxTimeoutSeconds = INT_MAX / 1000;

using Getter = int64_t (*)(const ConntrackSettings&);
using Setter = void (*)(ConntrackSettings&, int64_t);

template <auto kMember>
int64_t GetMember(const ConntrackSettings& s) {
  return static_cast<int64_t>(s.*kMember);
}

template <auto kMember>
void SetMember(ConntrackSettings& s, int64_t v) {
  using Field = std::remove_reference_t<decltype(s.*kMember)>;
  s.*kMember = static_cast<Field>(v);
}

// One sysctl: its leaf name under net/netfilter, the range the kernel's proc handler
// accepts, and how to reach the field.
struct SysctlField {
  const char* leaf;
  int64_t min;
  int64_t max;
  Getter get;
  Setter set;
};

#define CTSYNC_SYSCTL(leaf, member, lo, hi)                                                      \
  SysctlField {                                                                                  \
    leaf, lo, hi, &GetMember<&ConntrackSettings::member>, &SetMember<&ConntrackSettings::member> \
  }
#define CTSYNC_BOOL(leaf, member) CTSYNC_SYSCTL(leaf, member, 0, 1)
#define CTSYNC_TIMEOUT(leaf, member) CTSYNC_SYSCTL(leaf, member, 0, kMaxTimeoutSeconds)

// Kernel table order (nf_ct_sysctl_table), then the IPv6 reassembly sysctls.
// frag6_low_thresh <= frag6_high_thresh is checked separately in Set().
const SysctlField kFields[] = {
    CTSYNC_SYSCTL("nf_conntrack_max", nf_conntrack_max, 0, INT_MAX),
    // Resizing needs at least one bucket; the kernel caps at UINT_MAX / sizeof(pointer).
    CTSYNC_SYSCTL("nf_conntrack_buckets", nf_conntrack_buckets, 1, INT_MAX / 8),
    CTSYNC_BOOL("nf_conntrack_checksum", nf_conntrack_checksum),
    CTSYNC_SYSCTL("nf_conntrack_log_invalid", nf_conntrack_log_invalid, 0, 255),
    CTSYNC_SYSCTL("nf_conntrack_expect_max", nf_conntrack_expect_max, 1, INT_MAX),
    CTSYNC_BOOL("nf_conntrack_acct", nf_conntrack_acct),
    CTSYNC_SYSCTL("nf_conntrack_events", nf_conntrack_events, 0, 2),
    CTSYNC_BOOL("nf_conntrack_timestamp", nf_conntrack_timestamp),
    CTSYNC_TIMEOUT("nf_conntrack_generic_timeout", generic_timeout),
    CTSYNC_TIMEOUT("nf_conntrack_tcp_timeout_syn_sent", tcp_timeout_syn_sent),
    CTSYNC_TIMEOUT("nf_conntrack_tcp_timeout_syn_recv", tcp_timeout_syn_recv),
    CTSYNC_TIMEOUT("nf_conntrack_tcp_timeout_established", tcp_timeout_established),
    CTSYNC_TIMEOUT("nf_conntrack_tcp_timeout_fin_wait", tcp_timeout_fin_wait),
    CTSYNC_TIMEOUT("nf_conntrack_tcp_timeout_close_wait", tcp_timeout_close_wait),
    CTSYNC_TIMEOUT("nf_conntrack_tcp_timeout_last_ack", tcp_timeout_last_ack),
    CTSYNC_TIMEOUT("nf_conntrack_tcp_timeout_time_wait", tcp_timeout_time_wait),
    CTSYNC_TIMEOUT("nf_conntrack_tcp_timeout_close", tcp_timeout_close),
    CTSYNC_TIMEOUT("nf_conntrack_tcp_timeout_max_retrans", tcp_timeout_max_retrans),
    CTSYNC_TIMEOUT("nf_conntrack_tcp_timeout_unacknowledged", tcp_timeout_unacknowledged),
    CTSYNC_TIMEOUT("nf_flowtable_tcp_timeout", flowtable_tcp_timeout),
    CTSYNC_BOOL("nf_conntrack_tcp_loose", tcp_loose),
    CTSYNC_BOOL("nf_conntrack_tcp_be_liberal", tcp_be_liberal),
    CTSYNC_BOOL("nf_conntrack_tcp_ignore_invalid_rst", tcp_ignore_invalid_rst),
    // A u8 with no explicit bounds in the kernel: 0..255.
    CTSYNC_SYSCTL("nf_conntrack_tcp_max_retrans", tcp_max_retrans, 0, 255),
    CTSYNC_TIMEOUT("nf_conntrack_udp_timeout", udp_timeout),
    CTSYNC_TIMEOUT("nf_conntrack_udp_timeout_stream", udp_timeout_stream),
    CTSYNC_TIMEOUT("nf_flowtable_udp_timeout", flowtable_udp_timeout),
    CTSYNC_TIMEOUT("nf_conntrack_icmp_timeout", icmp_timeout),
    CTSYNC_TIMEOUT("nf_conntrack_icmpv6_timeout", icmpv6_timeout),
    CTSYNC_TIMEOUT("nf_conntrack_sctp_timeout_closed", sctp_timeout_closed),
    CTSYNC_TIMEOUT("nf_conntrack_sctp_timeout_cookie_wait", sctp_timeout_cookie_wait),
    CTSYNC_TIMEOUT("nf_conntrack_sctp_timeout_cookie_echoed", sctp_timeout_cookie_echoed),
    CTSYNC_TIMEOUT("nf_conntrack_sctp_timeout_established", sctp_timeout_established),
    CTSYNC_TIMEOUT("nf_conntrack_sctp_timeout_shutdown_sent", sctp_timeout_shutdown_sent),
    CTSYNC_TIMEOUT("nf_conntrack_sctp_timeout_shutdown_recd", sctp_timeout_shutdown_recd),
    CTSYNC_TIMEOUT("nf_conntrack_sctp_timeout_shutdown_ack_sent", sctp_timeout_shutdown_ack_sent),
    CTSYNC_TIMEOUT("nf_conntrack_sctp_timeout_heartbeat_sent", sctp_timeout_heartbeat_sent),
    CTSYNC_TIMEOUT("nf_conntrack_gre_timeout", gre_timeout),
    CTSYNC_TIMEOUT("nf_conntrack_gre_timeout_stream", gre_timeout_stream),
    CTSYNC_TIMEOUT("nf_conntrack_frag6_timeout", frag6_timeout),
    CTSYNC_SYSCTL("nf_conntrack_frag6_low_thresh", frag6_low_thresh, 0, LONG_MAX),
    CTSYNC_SYSCTL("nf_conntrack_frag6_high_thresh", frag6_high_thresh, 0, LONG_MAX),
};

#undef CTSYNC_TIMEOUT
#undef CTSYNC_BOOL
#undef CTSYNC_SYSCTL

constexpr absl::string_view kNetfilterPrefix = "net.netfilter.";

// Strips "net.netfilter." (or "net." for the global maximum) and returns the leaf name.
absl::string_view Leaf(absl::string_view name) {
  if (absl::StartsWith(name, kNetfilterPrefix)) return name.substr(kNetfilterPrefix.size());
  if (name == "net.nf_conntrack_max") return name.substr(4);
  return name;
}

// Sysctls people carry over from older kernels; say why they are refused.
absl::Status RemovedSysctlError(absl::string_view leaf, absl::string_view original) {
  if (absl::StartsWith(leaf, "nf_conntrack_dccp_")) {
    return absl::NotFoundError(
        absl::StrCat("sysctl '", original,
                     "' does not exist: DCCP connection tracking was removed in Linux 6.16"));
  }
  if (leaf == "nf_conntrack_helper") {
    return absl::NotFoundError(absl::StrCat(
        "sysctl '", original,
        "' does not exist since Linux 6.0: attach helpers with '-t raw ... -j CT --helper'"));
  }
  if (leaf == "nf_conntrack_count") {
    return absl::InvalidArgumentError(
        absl::StrCat("sysctl '", original, "' is read-only table state, not a setting"));
  }
  return absl::NotFoundError(absl::StrCat("unknown conntrack sysctl '", original, "'"));
}

const SysctlField* Find(absl::string_view leaf) {
  for (const SysctlField& f : kFields) {
    if (leaf == f.leaf) return &f;
  }
  return nullptr;
}

}  // namespace

absl::Status ConntrackSettings::Set(std::string_view name, int64_t value) {
  const absl::string_view original(name.data(), name.size());
  const absl::string_view leaf = Leaf(original);
  const SysctlField* field = Find(leaf);
  if (field == nullptr) return RemovedSysctlError(leaf, original);
  int64_t lo = field->min;
  int64_t hi = field->max;
  // The kernel ties the two reassembly thresholds to each other.
  if (leaf == "nf_conntrack_frag6_low_thresh") hi = frag6_high_thresh;
  if (leaf == "nf_conntrack_frag6_high_thresh") lo = frag6_low_thresh;
  if (value < lo || value > hi) {
    return absl::OutOfRangeError(
        absl::StrCat("sysctl '", original, "': value ", value, " is outside ", lo, "..", hi));
  }
  field->set(*this, value);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ConntrackSettings::Get(std::string_view name) const {
  const absl::string_view original(name.data(), name.size());
  const absl::string_view leaf = Leaf(original);
  const SysctlField* field = Find(leaf);
  if (field == nullptr) return RemovedSysctlError(leaf, original);
  return field->get(*this);
}

absl::Status ConntrackSettings::SetAll(const std::map<std::string, int64_t>& sysctls) {
  for (const auto& [name, value] : sysctls) {
    absl::Status status = Set(name, value);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

std::vector<std::string> ConntrackSettings::Names() {
  std::vector<std::string> names;
  names.reserve(std::size(kFields));
  for (const SysctlField& f : kFields) {
    names.push_back(absl::StrCat(kNetfilterPrefix, f.leaf));
  }
  return names;
}

}  // namespace ctsync

#include "core/conntrack/conntrack_settings.h"

#include <cstdint>
#include <set>
#include <string>

#include "gtest/gtest.h"

namespace ctsync {
namespace {

struct DefaultCase {
  std::string sysctl;
  int64_t kernel_default;
};

// Defaults of Linux 6.18 (Documentation/networking/nf_conntrack-sysctl.rst and the
// protocol trackers), on a host large enough for 262144 buckets like the corpus host.
const DefaultCase kKernelDefaults[] = {
    {"nf_conntrack_max", 262144},
    {"nf_conntrack_buckets", 262144},
    {"nf_conntrack_checksum", 1},
    {"nf_conntrack_log_invalid", 0},
    {"nf_conntrack_expect_max", 4096},
    {"nf_conntrack_acct", 0},
    {"nf_conntrack_events", 2},
    {"nf_conntrack_timestamp", 0},
    {"nf_conntrack_generic_timeout", 600},
    {"nf_conntrack_tcp_timeout_syn_sent", 120},
    {"nf_conntrack_tcp_timeout_syn_recv", 60},
    {"nf_conntrack_tcp_timeout_established", 432000},
    {"nf_conntrack_tcp_timeout_fin_wait", 120},
    {"nf_conntrack_tcp_timeout_close_wait", 60},
    {"nf_conntrack_tcp_timeout_last_ack", 30},
    {"nf_conntrack_tcp_timeout_time_wait", 120},
    {"nf_conntrack_tcp_timeout_close", 10},
    {"nf_conntrack_tcp_timeout_max_retrans", 300},
    {"nf_conntrack_tcp_timeout_unacknowledged", 300},
    {"nf_conntrack_tcp_loose", 1},
    {"nf_conntrack_tcp_be_liberal", 0},
    {"nf_conntrack_tcp_ignore_invalid_rst", 0},
    {"nf_conntrack_tcp_max_retrans", 3},
    {"nf_conntrack_udp_timeout", 30},
    {"nf_conntrack_udp_timeout_stream", 120},
    {"nf_conntrack_icmp_timeout", 30},
    {"nf_conntrack_icmpv6_timeout", 30},
    {"nf_conntrack_sctp_timeout_closed", 10},
    {"nf_conntrack_sctp_timeout_cookie_wait", 3},
    {"nf_conntrack_sctp_timeout_cookie_echoed", 3},
    {"nf_conntrack_sctp_timeout_established", 210},
    {"nf_conntrack_sctp_timeout_shutdown_sent", 3},
    {"nf_conntrack_sctp_timeout_shutdown_recd", 3},
    {"nf_conntrack_sctp_timeout_shutdown_ack_sent", 3},
    {"nf_conntrack_sctp_timeout_heartbeat_sent", 30},
    {"nf_conntrack_gre_timeout", 30},
    {"nf_conntrack_gre_timeout_stream", 180},
    {"nf_conntrack_frag6_timeout", 60},
    {"nf_conntrack_frag6_low_thresh", 3 * 1024 * 1024},
    {"nf_conntrack_frag6_high_thresh", 4 * 1024 * 1024},
    {"nf_flowtable_tcp_timeout", 30},
    {"nf_flowtable_udp_timeout", 30},
};

TEST(ConntrackSettingsTest, DefaultsMatchKernel) {
  const ConntrackSettings settings;
  for (const DefaultCase& c : kKernelDefaults) {
    absl::StatusOr<int64_t> value = settings.Get("net.netfilter." + c.sysctl);
    ASSERT_TRUE(value.ok()) << c.sysctl << ": " << value.status();
    EXPECT_EQ(*value, c.kernel_default) << c.sysctl;
  }
}

TEST(ConntrackSettingsTest, TypedFieldsCarryDefaults) {
  const ConntrackSettings s;
  EXPECT_EQ(s.nf_conntrack_max, 262144);
  EXPECT_TRUE(s.nf_conntrack_checksum);
  EXPECT_TRUE(s.tcp_loose);
  EXPECT_FALSE(s.tcp_be_liberal);
  EXPECT_EQ(s.tcp_timeout_established, 432000);
  EXPECT_EQ(s.tcp_timeout_unacknowledged, 300);
  EXPECT_EQ(s.udp_timeout_stream, 120);
}

TEST(ConntrackSettingsTest, NamesAreExactlyTheKernelSysctls) {
  const std::vector<std::string> names = ConntrackSettings::Names();
  std::set<std::string> expected;
  for (const DefaultCase& c : kKernelDefaults) expected.insert("net.netfilter." + c.sysctl);
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()), expected);
  EXPECT_EQ(names.size(), expected.size()) << "duplicate names";
  EXPECT_EQ(names.front(), "net.netfilter.nf_conntrack_max");
}

TEST(ConntrackSettingsTest, EveryNameRoundTripsThroughSetAndGet) {
  for (const std::string& name : ConntrackSettings::Names()) {
    ConntrackSettings s;
    ASSERT_TRUE(s.Get(name).ok()) << name;
    // 1 is in range for every sysctl except the frag6 high threshold (>= low threshold).
    const int64_t value = name.find("frag6_high") != std::string::npos ? 5'000'000 : 1;
    ASSERT_TRUE(s.Set(name, value).ok()) << name;
    EXPECT_EQ(*s.Get(name), value) << name;
  }
}

TEST(ConntrackSettingsTest, AcceptsFullShortAndGlobalNames) {
  ConntrackSettings s;
  ASSERT_TRUE(s.Set("net.netfilter.nf_conntrack_tcp_loose", 0).ok());
  EXPECT_FALSE(s.tcp_loose);
  ASSERT_TRUE(s.Set("nf_conntrack_tcp_loose", 1).ok());
  EXPECT_TRUE(s.tcp_loose);
  ASSERT_TRUE(s.Set("net.nf_conntrack_max", 1000).ok());
  EXPECT_EQ(s.nf_conntrack_max, 1000);
  EXPECT_EQ(*s.Get("nf_conntrack_max"), 1000);
  ASSERT_TRUE(s.Set("nf_conntrack_udp_timeout", 1).ok());
  EXPECT_EQ(s.udp_timeout, 1);
}

struct ErrorCase {
  std::string name;
  int64_t value;
  absl::StatusCode code;
  std::string message_part;
};

TEST(ConntrackSettingsTest, RejectsBadNamesAndValuesWithoutChangingAnything) {
  const ErrorCase cases[] = {
      {"nf_conntrack_tcp_lose", 1, absl::StatusCode::kNotFound, "unknown"},
      {"net.ipv4.tcp_loose", 1, absl::StatusCode::kNotFound, "net.ipv4.tcp_loose"},
      {"", 1, absl::StatusCode::kNotFound, "unknown"},
      {"nf_conntrack_dccp_timeout_open", 10, absl::StatusCode::kNotFound, "6.16"},
      {"nf_conntrack_helper", 1, absl::StatusCode::kNotFound, "--helper"},
      {"nf_conntrack_count", 1, absl::StatusCode::kInvalidArgument, "read-only"},
      {"nf_conntrack_tcp_loose", 2, absl::StatusCode::kOutOfRange, "0..1"},
      {"nf_conntrack_events", 3, absl::StatusCode::kOutOfRange, "0..2"},
      {"nf_conntrack_log_invalid", 256, absl::StatusCode::kOutOfRange, "0..255"},
      {"nf_conntrack_expect_max", 0, absl::StatusCode::kOutOfRange, "1.."},
      {"nf_conntrack_udp_timeout", -1, absl::StatusCode::kOutOfRange, "-1"},
      {"nf_conntrack_tcp_timeout_established", int64_t{1} << 40, absl::StatusCode::kOutOfRange,
       "outside"},
      {"nf_conntrack_max", int64_t{1} << 31, absl::StatusCode::kOutOfRange, "outside"},
      {"nf_conntrack_frag6_low_thresh", 5 * 1024 * 1024, absl::StatusCode::kOutOfRange,
       "..4194304"},
      {"nf_conntrack_frag6_high_thresh", 1024, absl::StatusCode::kOutOfRange, "3145728.."},
  };
  for (const ErrorCase& c : cases) {
    ConntrackSettings s;
    const absl::Status status = s.Set(c.name, c.value);
    EXPECT_EQ(status.code(), c.code) << c.name << ": " << status;
    EXPECT_NE(status.message().find(c.message_part), absl::string_view::npos)
        << c.name << ": " << status;
    // Nothing changed: every sysctl still reads its default.
    const ConntrackSettings fresh;
    for (const std::string& name : ConntrackSettings::Names()) {
      EXPECT_EQ(*s.Get(name), *fresh.Get(name)) << c.name << " changed " << name;
    }
  }
  EXPECT_EQ(ConntrackSettings().Get("nf_conntrack_nope").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ConntrackSettingsTest, SetAllAppliesScenarioSysctlsAndNamesTheBadOne) {
  ConntrackSettings s;
  ASSERT_TRUE(s.SetAll({{"net.netfilter.nf_conntrack_tcp_loose", 0},
                        {"net.netfilter.nf_conntrack_tcp_be_liberal", 1}})
                  .ok());
  EXPECT_FALSE(s.tcp_loose);
  EXPECT_TRUE(s.tcp_be_liberal);
  const absl::Status bad = s.SetAll({{"net.netfilter.nf_conntrack_bogus", 0}});
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("nf_conntrack_bogus"), absl::string_view::npos);
}

}  // namespace
}  // namespace ctsync

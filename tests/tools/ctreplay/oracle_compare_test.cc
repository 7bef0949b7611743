#include "tools/ctreplay/oracle_compare.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/ctreplay/scenario.h"

namespace ctsync::ctreplay {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

// The recorded kernel corpus: $CTSYNC_ORACLE_DIR, else the shared copy, else the one in
// the source tree.
std::string OracleDir() {
  if (const char* env = std::getenv("CTSYNC_ORACLE_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  const std::string shared = "/work/shared/oracle/scenarios";
  if (fs::is_directory(shared)) return shared;
  return (fs::path(__FILE__).parent_path() / "../../oracle/scenarios").lexically_normal();
}

std::string ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

json Expected(const std::string& scenario) {
  return json::parse(ReadText(fs::path(OracleDir()) / scenario / "expected.json"));
}

std::string Joined(const CompareResult& r) { return absl::StrJoin(r.diffs, "\n"); }

// Replaces every occurrence of `from` in `text`.
std::string ReplaceAll(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

void SetFrameBytes(json& frame, size_t offset, std::vector<uint8_t> values) {
  std::vector<uint8_t> bytes = *DecodeHex(frame["frame_hex"].get<std::string>());
  for (size_t i = 0; i < values.size(); ++i) bytes[offset + i] = values[i];
  frame["frame_hex"] = EncodeHex(bytes);
}

TEST(OracleCompareTest, EveryCorpusScenarioMatchesItself) {
  absl::StatusOr<std::vector<std::string>> dirs = FindScenarioDirs({OracleDir()});
  ASSERT_TRUE(dirs.ok()) << dirs.status();
  ASSERT_GE(dirs->size(), 27u);
  for (const std::string& dir : *dirs) {
    const json expected = json::parse(ReadText(fs::path(dir) / "expected.json"));
    const CompareResult r = CompareWithOracle(expected, expected);
    EXPECT_TRUE(r.ok) << dir << "\n" << Joined(r);
    EXPECT_TRUE(r.diffs.empty()) << dir;
  }
}

TEST(OracleCompareTest, FormatLikeOracleReproducesExpectedJsonByteForByte) {
  absl::StatusOr<std::vector<std::string>> dirs = FindScenarioDirs({OracleDir()});
  ASSERT_TRUE(dirs.ok());
  for (const std::string& dir : *dirs) {
    const std::string text = ReadText(fs::path(dir) / "expected.json");
    EXPECT_EQ(FormatLikeOracle(json::parse(text)), text) << dir;
  }
}

TEST(OracleCompareTest, WriteActualWritesTheOracleFormat) {
  const json expected = Expected("udp_single_request");
  const fs::path out = fs::path(::testing::TempDir()) / "ctreplay_actual.json";
  ASSERT_TRUE(WriteActual(out.string(), expected).ok());
  EXPECT_EQ(ReadText(out),
            ReadText(fs::path(OracleDir()) / "udp_single_request" / "expected.json"));
  fs::remove(out);
  EXPECT_FALSE(WriteActual("/nonexistent/dir/actual.json", expected).ok());
}

TEST(OracleCompareTest, StateChangeIsReportedByStepEntryAndField) {
  const json expected = Expected("tcp_handshake_fin_client_first");
  // Find the first step whose first entry is ESTABLISHED.
  size_t step = 0;
  while (expected["steps"][step]["conntrack"][0].value("state", "") != "ESTABLISHED") ++step;
  json actual = expected;
  actual["steps"][step]["conntrack"][0]["state"] = "SYN_RECV";
  const CompareResult r = CompareWithOracle(expected, actual);
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.diffs, ::testing::ElementsAre("step " + std::to_string(step) +
                                              " conntrack[0].state: expected ESTABLISHED, "
                                              "got SYN_RECV"));
}

TEST(OracleCompareTest, TimeoutWithinToleranceIsAcceptedOffByThreeIsNot) {
  const json expected = Expected("udp_single_request");
  const int64_t kernel = expected["steps"][0]["conntrack"][0]["timeout"].get<int64_t>();
  auto shifted = [&](int64_t delta) {
    json actual = expected;
    json& entry = actual["steps"][0]["conntrack"][0];
    entry["timeout"] = kernel + delta;
    entry["raw"] = ReplaceAll(entry["raw"].get<std::string>(), " " + std::to_string(kernel) + " ",
                              " " + std::to_string(kernel + delta) + " ");
    return CompareWithOracle(expected, actual);
  };
  EXPECT_TRUE(shifted(2).ok) << Joined(shifted(2));
  EXPECT_TRUE(shifted(-2).ok) << Joined(shifted(-2));
  const CompareResult off = shifted(3);
  EXPECT_FALSE(off.ok);
  EXPECT_THAT(Joined(off), HasSubstr("step 0 conntrack[0].timeout: expected 29 (+-2), got 32"));
  EXPECT_THAT(Joined(off), HasSubstr("conntrack[0].raw"));
}

TEST(OracleCompareTest, RawLineMustMatchApartFromTheTimeout) {
  const json expected = Expected("ct_mark_zone");
  json actual = expected;
  json& entry = actual["steps"][1]["conntrack"][0];
  entry["raw"] = ReplaceAll(entry["raw"].get<std::string>(), "zone=7", "zone=8");
  const CompareResult r = CompareWithOracle(expected, actual);
  EXPECT_FALSE(r.ok);
  ASSERT_EQ(r.diffs.size(), 1u) << Joined(r);
  EXPECT_THAT(r.diffs[0], HasSubstr("step 1 conntrack[0].raw: expected \""));
  EXPECT_THAT(r.diffs[0], HasSubstr("zone=8"));
}

TEST(OracleCompareTest, MissingOutFrameFails) {
  const json expected = Expected("udp_single_request");
  json actual = expected;
  actual["steps"][0]["out"] = json::array();
  const CompareResult r = CompareWithOracle(expected, actual);
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(Joined(r), HasSubstr("step 0 out: expected 1 frames"));
  EXPECT_THAT(Joined(r), HasSubstr("got 0 frames"));
}

TEST(OracleCompareTest, ChangedByteShowsOffsetBytesContextAndSummaries) {
  const json expected = Expected("udp_single_request");
  json actual = expected;
  json& frame = actual["steps"][0]["out"][0];
  const uint8_t old = (*DecodeHex(frame["frame_hex"].get<std::string>()))[30];
  SetFrameBytes(frame, 30, {static_cast<uint8_t>(old ^ 0xff)});
  frame["summary"] = "engine summary";
  const CompareResult r = CompareWithOracle(expected, actual);
  EXPECT_FALSE(r.ok);
  ASSERT_EQ(r.diffs.size(), 1u) << Joined(r);
  EXPECT_THAT(r.diffs[0], HasSubstr("step 0 out[0].frame_hex: first difference at byte 30"));
  EXPECT_THAT(r.diffs[0], HasSubstr("@22: "));  // context starts 8 bytes earlier
  EXPECT_THAT(r.diffs[0], HasSubstr("got: engine summary"));
}

TEST(OracleCompareTest, SummariesAreNotCompared) {
  const json expected = Expected("udp_single_request");
  json actual = expected;
  actual["steps"][0]["out"][0]["summary"] = "something else";
  EXPECT_TRUE(CompareWithOracle(expected, actual).ok);
}

TEST(OracleCompareTest, ProbeDifferencesNameHookAndTag) {
  const json expected = Expected("udp_single_request");
  json actual = expected;
  ASSERT_TRUE(actual["steps"][0]["probes"]["fwd"].contains("NEW"));
  actual["steps"][0]["probes"]["fwd"].erase("NEW");
  actual["steps"][0]["probes"]["fwd"]["INVALID"] = 1;
  const CompareResult r = CompareWithOracle(expected, actual);
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.diffs,
              ::testing::UnorderedElementsAre("step 0 probes.fwd.INVALID: expected (absent), got 1",
                                              "step 0 probes.fwd.NEW: expected 1, got (absent)"));
}

TEST(OracleCompareTest, RuleHitsIgnoreOrderButNotContent) {
  const json expected = Expected("snat_port_clash_random");
  ASSERT_GE(expected["steps"][1]["rule_hits"].size(), 2u);
  json reordered = expected;
  json& hits = reordered["steps"][1]["rule_hits"];
  std::reverse(hits.begin(), hits.end());
  EXPECT_TRUE(CompareWithOracle(expected, reordered).ok);
  json changed = expected;
  changed["steps"][1]["rule_hits"][0]["packets"] = 2;
  const CompareResult r = CompareWithOracle(expected, changed);
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(Joined(r), HasSubstr("step 1 rule_hits: expected"));
}

TEST(OracleCompareTest, MissingAndExtraEntriesAreNamed) {
  const json expected = Expected("snat_port_clash_random");
  json actual = expected;
  json& table = actual["steps"][2]["conntrack"];
  ASSERT_EQ(table.size(), 3u);
  table.erase(table.begin());  // drop host .10's TCP entry
  const CompareResult r = CompareWithOracle(expected, actual);
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(Joined(r), HasSubstr("step 2 conntrack: expected 3 entries, got 2"));
  EXPECT_THAT(Joined(r), HasSubstr("step 2 conntrack[0]: missing: ipv4"));
  // The remaining entries are still paired with theirs: no field diffs.
  EXPECT_EQ(r.diffs.size(), 2u) << Joined(r);

  json extra = expected;
  json added = extra["steps"][0]["conntrack"][0];
  added["orig"]["sport"] = 1;
  extra["steps"][0]["conntrack"].push_back(added);
  EXPECT_THAT(Joined(CompareWithOracle(expected, extra)), HasSubstr("unexpected entry"));

  json swapped = expected;
  json& t = swapped["steps"][2]["conntrack"];
  std::swap(t[0], t[1]);
  EXPECT_THAT(Joined(CompareWithOracle(expected, swapped)), HasSubstr("not in the kernel"));
}

// snat_port_clash_random: the kernel gave host .11's TCP flow 54889 (run 1, recorded) or
// 47476 (run 2). An engine port must replace 54889 in the entry, the raw line and bytes
// 34-35 of the SNATed SYN, in every step. The frame bytes (port and TCP checksum at 50-51)
// come from the nondeterminism entry of run 2, so the frame stays valid.
json WithTcpPort(const json& expected, int port, bool also_step3_entry, bool also_frame) {
  json actual = expected;
  for (int step : {1, 2, 3}) {
    if (step == 3 && !also_step3_entry) continue;
    json& entry = actual["steps"][step]["conntrack"][1];
    EXPECT_EQ(entry["reply"]["dport"], 54889);
    entry["reply"]["dport"] = port;
    entry["raw"] =
        ReplaceAll(entry["raw"].get<std::string>(), "dport=54889", "dport=" + std::to_string(port));
  }
  if (also_frame) {
    for (const json& nd : expected["nondeterminism"]) {
      if (nd["path"] != "$.steps[1].out[0].frame_hex") continue;
      for (auto it = nd["run2_bytes"].begin(); it != nd["run2_bytes"].end(); ++it) {
        SetFrameBytes(actual["steps"][1]["out"][0], std::stoul(it.key()), {it->get<uint8_t>()});
      }
    }
  }
  return actual;
}

constexpr int kRun2Port = 47476;

TEST(OracleCompareTest, RandomPortAcceptedWhenConsistentEverywhere) {
  const json expected = Expected("snat_port_clash_random");
  const CompareResult r = CompareWithOracle(expected, WithTcpPort(expected, kRun2Port, true, true));
  EXPECT_TRUE(r.ok) << Joined(r);
}

TEST(OracleCompareTest, RandomPortRejectedWhenInconsistent) {
  const json expected = Expected("snat_port_clash_random");
  const CompareResult later_step =
      CompareWithOracle(expected, WithTcpPort(expected, kRun2Port, false, true));
  EXPECT_FALSE(later_step.ok);
  EXPECT_THAT(Joined(later_step), HasSubstr("step 3 conntrack[1].reply.dport"));
  EXPECT_THAT(Joined(later_step), HasSubstr("must be the same value everywhere"));

  // Entry says 47476, the frame still carries 54889.
  const CompareResult frame =
      CompareWithOracle(expected, WithTcpPort(expected, kRun2Port, true, false));
  EXPECT_FALSE(frame.ok);
  EXPECT_THAT(Joined(frame), HasSubstr("out[0].frame_hex bytes 34-35"));
}

TEST(OracleCompareTest, RandomPortMustBeInRangeAndFree) {
  const json expected = Expected("snat_port_clash_random");
  const CompareResult low = CompareWithOracle(expected, WithTcpPort(expected, 80, true, false));
  EXPECT_FALSE(low.ok);
  EXPECT_THAT(Joined(low), HasSubstr("expected a random port in 1024-65535"));
  // 40040 is host .10's port on the same pool address: a clash.
  const CompareResult clash =
      CompareWithOracle(expected, WithTcpPort(expected, 40040, true, false));
  EXPECT_FALSE(clash.ok);
  EXPECT_THAT(Joined(clash), HasSubstr("random port 40040 is already used"));
}

TEST(OracleCompareTest, BytesThatMayDifferMustKeepChecksumsValid) {
  const json expected = Expected("snat_port_clash_random");
  json actual = WithTcpPort(expected, kRun2Port, true, true);
  SetFrameBytes(actual["steps"][1]["out"][0], 50, {0x12, 0x34});  // listed, but now wrong
  const CompareResult r = CompareWithOracle(expected, actual);
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(Joined(r), HasSubstr("step 1 out[0].frame_hex: bad L4 (protocol 6) checksum"));
}

TEST(OracleCompareTest, NonRandomPortChangeFails) {
  const json expected = Expected("snat_pool_tcp");
  json actual = expected;
  actual["steps"][0]["conntrack"][0]["reply"]["dport"] = 50000;
  EXPECT_FALSE(CompareWithOracle(expected, actual).ok);
}

TEST(OracleCompareTest, IcmpErrorIdMayDifferOnlyWhereListed) {
  // redirect_local step 1: the firewall's own ICMP error; IPv4 id + header checksum listed.
  // Run 2's bytes: another id with its matching checksum.
  const json expected = Expected("redirect_local");
  json actual = expected;
  SetFrameBytes(actual["steps"][1]["out"][0], 18, {171, 10});
  SetFrameBytes(actual["steps"][1]["out"][0], 24, {226, 165});
  const CompareResult run2 = CompareWithOracle(expected, actual);
  EXPECT_TRUE(run2.ok) << Joined(run2);

  // A new id without fixing the header checksum is caught.
  json stale = expected;
  SetFrameBytes(stale["steps"][1]["out"][0], 18, {0xbe, 0xef});
  EXPECT_THAT(Joined(CompareWithOracle(expected, stale)), HasSubstr("bad IPv4 header checksum"));

  // The same change on a forwarded ICMP error (not listed) is a difference.
  const json related = Expected("icmp_error_related_udp_snat");
  size_t step = 0;
  while (related["steps"][step]["out"].empty()) ++step;
  json changed = related;
  SetFrameBytes(changed["steps"][step]["out"][0], 18, {171, 10});
  const CompareResult r = CompareWithOracle(related, changed);
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(Joined(r), HasSubstr("first difference at byte 18"));
}

TEST(OracleCompareTest, ExpectationTimeoutUsesTheTolerance) {
  const json expected = Expected("ftp_active_port_snat");
  size_t step = 0;
  while (expected["steps"][step]["expect"].empty()) ++step;
  auto shifted = [&](int64_t delta) {
    json actual = expected;
    json& x = actual["steps"][step]["expect"][0];
    const int64_t t = x["timeout"].get<int64_t>();
    x["timeout"] = t + delta;
    const std::string raw = x["raw"].get<std::string>();
    x["raw"] = std::to_string(t + delta) + raw.substr(raw.find(' '));
    return CompareWithOracle(expected, actual);
  };
  EXPECT_TRUE(shifted(-1).ok) << Joined(shifted(-1));
  EXPECT_FALSE(shifted(-3).ok);
  EXPECT_THAT(Joined(shifted(-3)), HasSubstr("expect[0].timeout"));
}

TEST(OracleCompareTest, TableFullComparesOnlyForwardedCountAndStats) {
  const json expected = Expected("table_full_drop");
  json actual = expected;
  actual["steps"][0]["conntrack"] = json::array({{{"raw", "whatever"}}});
  actual["steps"][0]["probes"] = {{"pre", {{"seen", 1}}}};
  EXPECT_TRUE(CompareWithOracle(expected, actual).ok);

  json forwarded = expected;
  forwarded["steps"][1]["forwarded"] = true;
  EXPECT_THAT(Joined(CompareWithOracle(expected, forwarded)),
              HasSubstr("step 1 forwarded: expected false, got true"));

  json counted = expected;
  counted["steps"][0]["stats_delta"] = {{"drop", 1}, {"insert_failed", 1}};
  EXPECT_FALSE(CompareWithOracle(expected, counted).ok);
}

TEST(OracleCompareTest, TableFullEarlyDropAcceptsAnyEvictionCount) {
  // A kernel run where early drop evicted one entry to admit the new flow.
  json expected = Expected("table_full_drop");
  const int64_t prefill = expected["prefill_count"].get<int64_t>();
  expected["steps"][0]["stats_delta"] = {{"early_drop", 1}, {"insert", 1}};
  expected["steps"][0]["conntrack_count"] = prefill;  // -1 evicted +1 new
  expected["steps"][0]["forwarded"] = true;
  expected["steps"][1]["conntrack_count"] = prefill;

  json three = expected;  // the engine evicted three entries
  three["steps"][0]["stats_delta"]["early_drop"] = 3;
  three["steps"][0]["conntrack_count"] = prefill - 2;
  three["steps"][1]["conntrack_count"] = prefill - 2;
  EXPECT_TRUE(CompareWithOracle(expected, three).ok) << Joined(CompareWithOracle(expected, three));

  json wrong_count = three;
  wrong_count["steps"][1]["conntrack_count"] = prefill;
  EXPECT_THAT(Joined(CompareWithOracle(expected, wrong_count)),
              HasSubstr("step 1 conntrack_count"));

  json none = expected;
  none["steps"][0]["stats_delta"].erase("early_drop");
  EXPECT_THAT(Joined(CompareWithOracle(expected, none)),
              HasSubstr("step 0 stats_delta.early_drop: expected at least 1, got (absent)"));
}

TEST(OracleCompareTest, StepCountAndShapeErrorsAreReported) {
  const json expected = Expected("udp_stream_assured");
  json shorter = expected;
  shorter["steps"].erase(shorter["steps"].size() - 1);
  EXPECT_THAT(Joined(CompareWithOracle(expected, shorter)), HasSubstr("steps: expected 4, got 3"));
  EXPECT_FALSE(CompareWithOracle(expected, json::object()).ok);
  json garbage = expected;
  garbage["steps"][1] = "not a step";
  garbage["steps"][2]["conntrack"] = json::array({42});
  garbage["steps"][3]["out"] = json::array({{{"side", "wan"}, {"frame_hex", "zz"}}});
  const CompareResult r = CompareWithOracle(expected, garbage);  // must not throw
  EXPECT_THAT(Joined(r), HasSubstr("step 1 (whole step): expected {"));
  EXPECT_THAT(Joined(r), HasSubstr("step 2 conntrack"));
  EXPECT_THAT(Joined(r), HasSubstr("step 3 out[0].frame_hex: not hex"));
  json stats = expected;
  stats["steps"][0]["stats_delta"]["invalid"] = 1;
  EXPECT_THAT(Joined(CompareWithOracle(expected, stats)),
              HasSubstr("step 0 stats_delta.invalid: expected (absent), got 1"));
}

}  // namespace
}  // namespace ctsync::ctreplay

#include "tools/ctreplay/scenario.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace ctsync::ctreplay {
namespace {

namespace fs = std::filesystem;

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

class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(fs::path(::testing::TempDir()) / ("ctreplay_scenario_" + name)) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

  void Write(const std::string& relative, const std::string& text) const {
    fs::create_directories((path_ / relative).parent_path());
    std::ofstream(path_ / relative) << text;
  }

 private:
  fs::path path_;
};

constexpr char kMinimalScenario[] = R"({
 "name": "mini",
 "description": "one packet",
 "ruleset_v4": null,
 "sysctls": {"net.netfilter.nf_conntrack_tcp_loose": 0},
 "packets": [
  {"index": 0, "inject": "wan", "direction": "wan->lan",
   "frame_hex": "0200000001010200000001020800", "summary": "s", "delay_before_ms": 2500}
 ]
})";

TEST(LoadScenarioTest, LoadsEveryCorpusScenarioWithItsExpectedSteps) {
  absl::StatusOr<std::vector<std::string>> dirs = FindScenarioDirs({OracleDir()});
  ASSERT_TRUE(dirs.ok()) << dirs.status();
  ASSERT_GE(dirs->size(), 27u);
  for (const std::string& dir : *dirs) {
    absl::StatusOr<Scenario> s = LoadScenario(dir);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(fs::path(dir).filename().string(), s->name);
    EXPECT_FALSE(s->packets.empty()) << dir;
    ASSERT_TRUE(s->expected.has_value()) << dir;
    EXPECT_EQ((*s->expected)["steps"].size(), s->packets.size()) << dir;
  }
}

TEST(LoadScenarioTest, DecodesCorpusFieldsExactly) {
  absl::StatusOr<Scenario> loose = LoadScenario(OracleDir() + "/tcp_loose_pickup");
  ASSERT_TRUE(loose.ok()) << loose.status();
  EXPECT_EQ(loose->sysctls.at("net.netfilter.nf_conntrack_tcp_loose"), 1);
  EXPECT_TRUE(loose->ruleset_v4.has_value());
  EXPECT_FALSE(loose->ruleset_v6.has_value());
  EXPECT_FALSE(loose->prefill.has_value());

  absl::StatusOr<Scenario> clash = LoadScenario(OracleDir() + "/snat_port_clash_random");
  ASSERT_TRUE(clash.ok()) << clash.status();
  const ScenarioPacket& p0 = clash->packets[0];
  EXPECT_EQ(p0.inject, Side::kLan);
  EXPECT_EQ(p0.direction, "lan->wan");
  ASSERT_EQ(p0.frame.size(), 54u);
  EXPECT_EQ(p0.frame[12], 0x08);  // IPv4 ethertype
  EXPECT_EQ(p0.frame[23], 6);     // TCP
  EXPECT_EQ(EncodeHex(p0.frame),
            "0200000001010200000001020800450000280065000040068e19c000020ac63364149c6800500000"
            "03e8000000005002ffff22f00000");

  absl::StatusOr<Scenario> udp = LoadScenario(OracleDir() + "/udp_stream_assured");
  ASSERT_TRUE(udp.ok());
  int64_t total_delay = 0;
  for (const ScenarioPacket& p : udp->packets) total_delay += p.delay_before_ms;
  EXPECT_EQ(total_delay, 2500);

  absl::StatusOr<Scenario> v6 = LoadScenario(OracleDir() + "/ipv6_tcp_handshake");
  ASSERT_TRUE(v6.ok());
  ASSERT_TRUE(v6->ruleset_v6.has_value());
  EXPECT_NE(v6->ruleset_v6->find("COMMIT"), std::string::npos);

  absl::StatusOr<Scenario> full = LoadScenario(OracleDir() + "/table_full_drop");
  ASSERT_TRUE(full.ok());
  ASSERT_TRUE(full->prefill.has_value());
  EXPECT_FALSE(full->prefill->count.has_value());  // "max"
  EXPECT_EQ(full->prefill->status, "SEEN_REPLY,ASSURED");
  EXPECT_EQ(full->prefill->timeout_s, 600);
  EXPECT_EQ(full->prefill->dst, "198.51.100.21");
  EXPECT_EQ(full->prefill->dport, 9);
  ASSERT_TRUE(full->conntrack_list_filter.has_value());
  EXPECT_EQ(*full->conntrack_list_filter, (std::vector<std::string>{"-d", "198.51.100.20"}));
}

TEST(LoadScenarioTest, LoadsAMinimalFolderWithoutExpected) {
  TempDir dir("minimal");
  dir.Write("scenario.json", kMinimalScenario);
  absl::StatusOr<Scenario> s = LoadScenario(dir.path().string());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->name, "mini");
  EXPECT_FALSE(s->ruleset_v4.has_value());
  EXPECT_FALSE(s->expected.has_value());
  ASSERT_EQ(s->packets.size(), 1u);
  EXPECT_EQ(s->packets[0].inject, Side::kWan);
  EXPECT_EQ(s->packets[0].delay_before_ms, 2500);
  EXPECT_EQ(s->packets[0].frame.size(), 14u);
}

struct BadScenarioCase {
  std::string description;
  std::string from;  // replaced in kMinimalScenario
  std::string to;
  std::string message_part;
};

TEST(LoadScenarioTest, ErrorsNameTheFileAndField) {
  const BadScenarioCase cases[] = {
      {"odd hex", "0800\"", "080\"", "packets[0].frame_hex: odd number"},
      {"non-hex", "0800\"", "08zz\"", "packets[0].frame_hex: not a hex digit"},
      {"short frame", "\"0200000001010200000001020800\"", "\"0200\"", "Ethernet header"},
      {"bad side", "\"inject\": \"wan\"", "\"inject\": \"dmz\"", "packets[0].inject"},
      {"bad direction", "wan->lan", "up", "packets[0].direction"},
      {"index gap", "\"index\": 0", "\"index\": 1", "packets[0].index"},
      {"no name", "\"name\": \"mini\",", "", ": name: missing"},
      {"sysctl text", "\"net.netfilter.nf_conntrack_tcp_loose\": 0",
       "\"net.netfilter.nf_conntrack_tcp_loose\": \"0\"",
       "sysctls.net.netfilter.nf_conntrack_tcp_loose"},
      {"no ruleset key", "\"ruleset_v4\": null,", "", "ruleset_v4"},
      {"broken json", "\"packets\": [", "\"packets\": [[", "not valid JSON"},
  };
  for (const BadScenarioCase& c : cases) {
    std::string text = kMinimalScenario;
    const size_t at = text.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.description;
    text.replace(at, c.from.size(), c.to);
    TempDir dir("bad");
    dir.Write("scenario.json", text);
    absl::StatusOr<Scenario> s = LoadScenario(dir.path().string());
    ASSERT_FALSE(s.ok()) << c.description;
    const std::string message(s.status().message());
    EXPECT_NE(message.find("scenario.json"), std::string::npos) << c.description << ": " << message;
    EXPECT_NE(message.find(c.message_part), std::string::npos) << c.description << ": " << message;
  }
}

TEST(LoadScenarioTest, ExpectedWithWrongStepCountIsAnError) {
  TempDir dir("steps");
  dir.Write("scenario.json", kMinimalScenario);
  dir.Write("expected.json", R"({"steps": []})");
  absl::StatusOr<Scenario> s = LoadScenario(dir.path().string());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("expected.json: steps"), absl::string_view::npos)
      << s.status();
}

TEST(LoadScenarioTest, MissingFolderIsNotFound) {
  absl::StatusOr<Scenario> s = LoadScenario("/nonexistent/ctreplay/scenario");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
}

TEST(FindScenarioDirsTest, AcceptsScenarioFoldersAndFoldersOfThemSortedAndUnique) {
  TempDir root("find");
  root.Write("b/scenario.json", kMinimalScenario);
  root.Write("a/scenario.json", kMinimalScenario);
  root.Write("notes/readme.txt", "not a scenario");
  root.Write("loose.json", "{}");
  absl::StatusOr<std::vector<std::string>> dirs =
      FindScenarioDirs({root.path().string(), (root.path() / "a").string()});
  ASSERT_TRUE(dirs.ok()) << dirs.status();
  EXPECT_EQ(*dirs,
            (std::vector<std::string>{(root.path() / "a").string(), (root.path() / "b").string()}));
}

TEST(FindScenarioDirsTest, RejectsMissingPathsAndEmptyFolders) {
  TempDir root("find_empty");
  root.Write("notes/readme.txt", "x");
  EXPECT_EQ(FindScenarioDirs({root.path().string()}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(FindScenarioDirs({(root.path() / "nope").string()}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(HexTest, RoundTripsAndRejectsGarbage) {
  absl::StatusOr<std::vector<uint8_t>> bytes = DecodeHex("00ff7Fa0");
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, (std::vector<uint8_t>{0x00, 0xff, 0x7f, 0xa0}));
  EXPECT_EQ(EncodeHex(*bytes), "00ff7fa0");
  EXPECT_FALSE(DecodeHex("abc").ok());
  EXPECT_FALSE(DecodeHex("0g").ok());
  EXPECT_TRUE(DecodeHex("").ok());
}

}  // namespace
}  // namespace ctsync::ctreplay

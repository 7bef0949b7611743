// ctreplay's model of one oracle scenario folder (scenario.json + expected.json, format in
// tests/oracle/ORACLE_README.md): the firewall set-up and the frames to inject, as plain
// structs, plus discovery of scenario folders on disk.
//
// Owner: ctreplay (the runner reads a Scenario, feeds the engine, then hands the expected
// JSON to oracle_compare). Pure functions over files; safe from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ctsync::ctreplay {

// Where a frame is injected: "lan" enters the firewall on lan0, "wan" on wan0.
enum class Side { kLan, kWan };

const char* SideName(Side side);

struct ScenarioPacket {
  int index = 0;
  Side inject = Side::kLan;
  std::string direction;       // "lan->wan" or "wan->lan": the way the frame travels.
  std::vector<uint8_t> frame;  // Whole Ethernet frame, no FCS.
  std::string summary;
  int64_t delay_before_ms = 0;  // Time that passes before this packet is injected.
};

// Table-full scenarios fill the table before the first packet (README "prefill").
struct Prefill {
  std::optional<int64_t> count;  // nullopt: "max", i.e. fill up to nf_conntrack_max.
  std::string status;            // e.g. "SEEN_REPLY,ASSURED", may be empty.
  int64_t timeout_s = 0;
  std::string dst;
  int dport = 0;
};

struct Scenario {
  std::string dir;
  std::string name;
  std::string description;
  std::string iptables_backend;           // "legacy" in the whole corpus; may be empty.
  std::optional<std::string> ruleset_v4;  // null in scenario.json -> nullopt.
  std::optional<std::string> ruleset_v6;
  std::map<std::string, int64_t> sysctls;  // "net.netfilter.nf_conntrack_tcp_loose" -> 1
  std::optional<Prefill> prefill;
  std::optional<std::vector<std::string>> conntrack_list_filter;
  std::vector<ScenarioPacket> packets;
  // expected.json as recorded, when the folder has one; compare with oracle_compare.h.
  std::optional<nlohmann::json> expected;
};

// Reads <dir>/scenario.json and, if present, <dir>/expected.json. Errors name the file and
// the field ("scenario.json: packets[3].frame_hex: odd number of hex digits").
absl::StatusOr<Scenario> LoadScenario(const std::string& dir);

// Each path is either a scenario folder (it holds scenario.json) or a folder whose
// immediate subfolders are scenario folders; anything else inside is ignored. Returns the
// scenario folders sorted and without duplicates. A path that does not exist, or that holds
// no scenario at all, is an error.
absl::StatusOr<std::vector<std::string>> FindScenarioDirs(const std::vector<std::string>& paths);

// Lowercase hex <-> bytes, shared with the comparer and the runner.
absl::StatusOr<std::vector<uint8_t>> DecodeHex(const std::string& hex);
std::string EncodeHex(const std::vector<uint8_t>& bytes);

}  // namespace ctsync::ctreplay

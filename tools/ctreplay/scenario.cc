#include "tools/ctreplay/scenario.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"

namespace ctsync::ctreplay {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

absl::StatusOr<json> ReadJsonFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  // nlohmann reports syntax errors by throwing; keep the throw inside this call.
  try {
    return json::parse(buffer.str());
  } catch (const json::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON: ", e.what()));
  }
}

// Field readers: each names the file and the JSON path of what is wrong.
class FieldReader {
 public:
  explicit FieldReader(std::string file) : file_(std::move(file)) {}

  absl::Status Error(const std::string& field, const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(file_, ": ", field, ": ", what));
  }

  absl::StatusOr<std::string> String(const json& obj, const std::string& key,
                                     const std::string& where) const {
    auto it = obj.find(key);
    if (it == obj.end()) return Error(where + key, "missing");
    if (!it->is_string()) return Error(where + key, "must be a string");
    return it->get<std::string>();
  }

  // A string, null or absent (-> nullopt).
  absl::StatusOr<std::optional<std::string>> OptionalString(const json& obj, const std::string& key,
                                                            const std::string& where) const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return std::optional<std::string>();
    if (!it->is_string()) return Error(where + key, "must be a string or null");
    return std::optional<std::string>(it->get<std::string>());
  }

  absl::StatusOr<int64_t> Int(const json& obj, const std::string& key,
                              const std::string& where) const {
    auto it = obj.find(key);
    if (it == obj.end()) return Error(where + key, "missing");
    if (!it->is_number_integer()) return Error(where + key, "must be an integer");
    return it->get<int64_t>();
  }

 private:
  std::string file_;
};

absl::StatusOr<Side> ParseSide(const FieldReader& r, const std::string& text,
                               const std::string& field) {
  if (text == "lan") return Side::kLan;
  if (text == "wan") return Side::kWan;
  return r.Error(field, absl::StrCat("must be \"lan\" or \"wan\", got \"", text, "\""));
}

absl::StatusOr<Prefill> ParsePrefill(const FieldReader& r, const json& obj) {
  if (!obj.is_object()) return r.Error("prefill", "must be an object");
  Prefill prefill;
  auto count = obj.find("count");
  if (count == obj.end()) return r.Error("prefill.count", "missing");
  if (count->is_string() && count->get<std::string>() == "max") {
    prefill.count.reset();
  } else if (count->is_number_integer() && count->get<int64_t>() >= 0) {
    prefill.count = count->get<int64_t>();
  } else {
    return r.Error("prefill.count", "must be \"max\" or a non-negative integer");
  }
  ASSIGN_OR_RETURN(prefill.status, r.String(obj, "status", "prefill."));
  ASSIGN_OR_RETURN(prefill.timeout_s, r.Int(obj, "timeout", "prefill."));
  ASSIGN_OR_RETURN(prefill.dst, r.String(obj, "dst", "prefill."));
  ASSIGN_OR_RETURN(int64_t dport, r.Int(obj, "dport", "prefill."));
  if (dport < 0 || dport > 65535) return r.Error("prefill.dport", "must be 0..65535");
  prefill.dport = static_cast<int>(dport);
  return prefill;
}

absl::StatusOr<ScenarioPacket> ParsePacket(const FieldReader& r, const json& obj, size_t position) {
  const std::string where = absl::StrCat("packets[", position, "].");
  if (!obj.is_object()) return r.Error(absl::StrCat("packets[", position, "]"), "not an object");
  ScenarioPacket packet;
  ASSIGN_OR_RETURN(int64_t index, r.Int(obj, "index", where));
  if (index != static_cast<int64_t>(position)) {
    return r.Error(where + "index", absl::StrCat("is ", index, ", expected ", position));
  }
  packet.index = static_cast<int>(index);
  ASSIGN_OR_RETURN(std::string inject, r.String(obj, "inject", where));
  ASSIGN_OR_RETURN(packet.inject, ParseSide(r, inject, where + "inject"));
  ASSIGN_OR_RETURN(packet.direction, r.String(obj, "direction", where));
  if (packet.direction != "lan->wan" && packet.direction != "wan->lan") {
    return r.Error(where + "direction", absl::StrCat("must be \"lan->wan\" or \"wan->lan\", got \"",
                                                     packet.direction, "\""));
  }
  ASSIGN_OR_RETURN(std::string hex, r.String(obj, "frame_hex", where));
  absl::StatusOr<std::vector<uint8_t>> frame = DecodeHex(hex);
  if (!frame.ok()) return r.Error(where + "frame_hex", std::string(frame.status().message()));
  if (frame->size() < 14) return r.Error(where + "frame_hex", "shorter than an Ethernet header");
  packet.frame = *std::move(frame);
  auto summary = obj.find("summary");
  if (summary != obj.end() && summary->is_string()) packet.summary = summary->get<std::string>();
  auto delay = obj.find("delay_before_ms");
  if (delay != obj.end()) {
    if (!delay->is_number() || delay->get<double>() < 0) {
      return r.Error(where + "delay_before_ms", "must be a non-negative number");
    }
    packet.delay_before_ms = static_cast<int64_t>(delay->get<double>());
  }
  return packet;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsScenarioDir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "scenario.json", ec);
}

}  // namespace

const char* SideName(Side side) { return side == Side::kLan ? "lan" : "wan"; }

absl::StatusOr<std::vector<uint8_t>> DecodeHex(const std::string& hex) {
  if (hex.size() % 2 != 0) return absl::InvalidArgumentError("odd number of hex digits");
  std::vector<uint8_t> bytes;
  bytes.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = HexValue(hex[i]);
    const int lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("not a hex digit at offset ", hi < 0 ? i : i + 1));
    }
    bytes.push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return bytes;
}

std::string EncodeHex(const std::vector<uint8_t>& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    hex.push_back(kDigits[b >> 4]);
    hex.push_back(kDigits[b & 0xf]);
  }
  return hex;
}

absl::StatusOr<Scenario> LoadScenario(const std::string& dir) {
  const std::string scenario_path = (fs::path(dir) / "scenario.json").string();
  ASSIGN_OR_RETURN(json doc, ReadJsonFile(scenario_path));
  const FieldReader r(scenario_path);
  if (!doc.is_object()) return r.Error("(top level)", "must be an object");

  Scenario s;
  s.dir = dir;
  ASSIGN_OR_RETURN(s.name, r.String(doc, "name", ""));
  auto description = doc.find("description");
  if (description != doc.end() && description->is_string()) {
    s.description = description->get<std::string>();
  }
  ASSIGN_OR_RETURN(std::optional<std::string> backend,
                   r.OptionalString(doc, "iptables_backend", ""));
  s.iptables_backend = backend.value_or("");
  if (!doc.contains("ruleset_v4")) return r.Error("ruleset_v4", "missing (use null for none)");
  ASSIGN_OR_RETURN(s.ruleset_v4, r.OptionalString(doc, "ruleset_v4", ""));
  ASSIGN_OR_RETURN(s.ruleset_v6, r.OptionalString(doc, "ruleset_v6", ""));

  auto sysctls = doc.find("sysctls");
  if (sysctls != doc.end() && !sysctls->is_null()) {
    if (!sysctls->is_object()) return r.Error("sysctls", "must be an object");
    for (auto it = sysctls->begin(); it != sysctls->end(); ++it) {
      if (!it->is_number_integer()) {
        return r.Error(absl::StrCat("sysctls.", it.key()), "must be an integer");
      }
      s.sysctls[it.key()] = it->get<int64_t>();
    }
  }

  auto prefill = doc.find("prefill");
  if (prefill != doc.end() && !prefill->is_null()) {
    ASSIGN_OR_RETURN(s.prefill, ParsePrefill(r, *prefill));
  }

  auto filter = doc.find("conntrack_list_filter");
  if (filter != doc.end() && !filter->is_null()) {
    if (!filter->is_array()) return r.Error("conntrack_list_filter", "must be a list of strings");
    std::vector<std::string> args;
    for (size_t i = 0; i < filter->size(); ++i) {
      if (!(*filter)[i].is_string()) {
        return r.Error(absl::StrCat("conntrack_list_filter[", i, "]"), "must be a string");
      }
      args.push_back((*filter)[i].get<std::string>());
    }
    s.conntrack_list_filter = std::move(args);
  }

  auto packets = doc.find("packets");
  if (packets == doc.end()) return r.Error("packets", "missing");
  if (!packets->is_array()) return r.Error("packets", "must be a list");
  for (size_t i = 0; i < packets->size(); ++i) {
    ASSIGN_OR_RETURN(ScenarioPacket packet, ParsePacket(r, (*packets)[i], i));
    s.packets.push_back(std::move(packet));
  }

  const fs::path expected_path = fs::path(dir) / "expected.json";
  std::error_code ec;
  if (fs::exists(expected_path, ec)) {
    ASSIGN_OR_RETURN(json expected, ReadJsonFile(expected_path.string()));
    const FieldReader er(expected_path.string());
    if (!expected.is_object()) return er.Error("(top level)", "must be an object");
    auto steps = expected.find("steps");
    if (steps == expected.end() || !steps->is_array()) {
      return er.Error("steps", "missing or not a list");
    }
    if (steps->size() != s.packets.size()) {
      return er.Error("steps", absl::StrCat("has ", steps->size(), " steps but scenario.json has ",
                                            s.packets.size(), " packets"));
    }
    s.expected = std::move(expected);
  }
  return s;
}

absl::StatusOr<std::vector<std::string>> FindScenarioDirs(const std::vector<std::string>& paths) {
  std::vector<std::string> found;
  for (const std::string& path : paths) {
    std::error_code ec;
    const fs::path p(path);
    if (!fs::is_directory(p, ec)) {
      return absl::NotFoundError(absl::StrCat(path, ": not a directory"));
    }
    if (IsScenarioDir(p)) {
      found.push_back(p.lexically_normal().string());
      continue;
    }
    size_t before = found.size();
    for (const fs::directory_entry& entry : fs::directory_iterator(p, ec)) {
      std::error_code entry_ec;
      if (entry.is_directory(entry_ec) && IsScenarioDir(entry.path())) {
        found.push_back(entry.path().lexically_normal().string());
      }
    }
    if (ec) return absl::UnavailableError(absl::StrCat(path, ": cannot list: ", ec.message()));
    if (found.size() == before) {
      return absl::NotFoundError(
          absl::StrCat(path, ": holds no scenario.json and no scenario folders"));
    }
  }
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  return found;
}

}  // namespace ctsync::ctreplay

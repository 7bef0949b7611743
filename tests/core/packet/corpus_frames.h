// Test helpers for tests/core/packet: hex decoding and the frames of the recorded kernel
// corpus (tests/oracle/scenarios/*/{scenario,expected}.json, field frame_hex), found
// relative to this source file so the tests need no configuration.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace ctsync::testing_frames {

inline std::vector<uint8_t> FromHex(const std::string& hex) {
  std::vector<uint8_t> out;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
  }
  return out;
}

inline std::filesystem::path ScenarioDir() {
  return std::filesystem::path(__FILE__).parent_path() / ".." / ".." / "oracle" / "scenarios";
}

struct CorpusFrame {
  std::string scenario;
  std::string file;  // scenario.json or expected.json
  int ordinal;       // n-th frame_hex in that file
  std::vector<uint8_t> bytes;
};

// Every frame_hex value of one JSON file, in file order.
inline std::vector<std::vector<uint8_t>> FramesInFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  std::vector<std::vector<uint8_t>> frames;
  const std::string key = "\"frame_hex\"";
  for (size_t pos = text.find(key); pos != std::string::npos; pos = text.find(key, pos + 1)) {
    size_t open = text.find('"', pos + key.size());
    size_t close = text.find('"', open + 1);
    if (open == std::string::npos || close == std::string::npos) break;
    frames.push_back(FromHex(text.substr(open + 1, close - open - 1)));
  }
  return frames;
}

inline std::vector<CorpusFrame> AllCorpusFrames() {
  std::vector<CorpusFrame> all;
  std::error_code ec;
  for (const auto& dir : std::filesystem::directory_iterator(ScenarioDir(), ec)) {
    for (const char* file : {"scenario.json", "expected.json"}) {
      int n = 0;
      for (auto& f : FramesInFile(dir.path() / file)) {
        all.push_back({dir.path().filename().string(), file, n++, std::move(f)});
      }
    }
  }
  return all;
}

}  // namespace ctsync::testing_frames

#include "tools/ctreplay/pcap_replay.h"

#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/conntrack/flow_listing.h"
#include "tools/ctreplay/replay_engine.h"

namespace ctsync::ctreplay {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

uint32_t Load32(const uint8_t* p, bool swap) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return swap ? __builtin_bswap32(v) : v;
}

}  // namespace

absl::StatusOr<std::string> ReplayPcap(const std::string& pcap_path,
                                       const std::string& rules_v4_path,
                                       const std::string& rules_v6_path, uint64_t seed) {
  auto data = ReadFile(pcap_path);
  if (!data.ok()) return data.status();
  const auto* p = reinterpret_cast<const uint8_t*>(data->data());
  const size_t n = data->size();
  if (n < 24) return absl::InvalidArgumentError(pcap_path + ": too short for a pcap header");
  const uint32_t magic = Load32(p, false);
  bool swap, nanos;
  if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d) {
    swap = false;
    nanos = magic == 0xa1b23c4d;
  } else if (magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1) {
    swap = true;
    nanos = magic == 0x4d3cb2a1;
  } else {
    return absl::InvalidArgumentError(pcap_path + ": not a pcap file (pcapng is not supported)");
  }
  if (Load32(p + 20, swap) != 1)
    return absl::InvalidArgumentError(pcap_path + ": link type is not Ethernet");

  ReplayRules rules[2] = {{std::nullopt, rules_v4_path}, {std::nullopt, rules_v6_path}};
  for (ReplayRules& r : rules) {
    if (r.name.empty()) continue;
    auto text = ReadFile(r.name);
    if (!text.ok()) return text.status();
    r.text = std::move(*text);
  }
  auto engine = BuildReplayEngine(ConntrackSettings{}, seed, 0, 0, rules[0], rules[1]);
  if (!engine.ok()) return engine.status();
  ConntrackEngine* ct = engine->ct.get();
  Pipeline& pipeline = *engine->pipeline;

  Nanos now = 0;
  size_t off = 24, frames = 0;
  std::vector<Transmit> tx;
  while (off + 16 <= n) {
    const uint32_t sec = Load32(p + off, swap), frac = Load32(p + off + 4, swap);
    const uint32_t caplen = Load32(p + off + 8, swap);
    off += 16;
    if (caplen > n - off)
      return absl::DataLossError(absl::StrCat(pcap_path, ": record ", frames + 1, " is truncated"));
    now = static_cast<Nanos>(sec) * kNanosPerSecond + (nanos ? frac : Nanos{frac} * 1000);
    absl::Span<const uint8_t> frame(p + off, caplen);
    off += caplen;
    ++frames;
    if (frame.size() < 14) continue;
    int in = -1;
    for (int i = 0; i < pipeline.topology().interface_count(); ++i)
      if (std::memcmp(pipeline.topology().interface(i).mac.data(), frame.data(), 6) == 0) in = i;
    if (in < 0) continue;
    pipeline.Tick(now);
    tx.clear();
    pipeline.Receive(in, frame, now, &tx);
  }
  std::string out;
  ct->table().ForEach([&](FlowIndex idx, const Flow& f) {
    ListingOptions lo;
    lo.use = static_cast<uint32_t>(ct->UseCount(idx));
    lo.counters = ct->table().accounting(idx);
    absl::StrAppend(&out, FormatConntrackLine(f, now, ListingFormat::kConntrackL, lo), "\n");
  });
  absl::StrAppend(&out, "conntrack v1.4.7 (conntrack-tools): ", ct->table().confirmed_count(),
                  " flow entries have been shown.\n");
  return out;
}

}  // namespace ctsync::ctreplay

// ctreplay: replays packet scenarios through ctsync's engine.
//
//   ctreplay [--record OUT] [--expected-failures FILE] [--seed N] PATH...
//       PATH is an oracle scenario folder or a folder of them. Each scenario is replayed on
//       the corpus topology and compared with its expected.json: one PASS/FAIL line per
//       scenario with a readable diff, then "N passed, N failed". With --record, writes
//       OUT/<scenario>/actual.json in the expected.json format.
//       --failover-at K (a packet index, or `every` for each K in turn) replays on two
//       engines joined by the real sync protocol over loopback: packets before K on node A,
//       then B is promoted and gets the rest (records go to OUT/K<k>/<scenario>/).
//   ctreplay --pcap FILE --rules FILE [--rules6 FILE]
//       Replays a pcap (Ethernet) through the engine with the oracle topology, each frame
//       entering the interface its destination MAC belongs to, and prints the final table
//       as `conntrack -L` does.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tools/ctreplay/oracle_compare.h"
#include "tools/ctreplay/pcap_replay.h"
#include "tools/ctreplay/replay_runner.h"
#include "tools/ctreplay/scenario.h"

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: ctreplay [--record OUT] [--expected-failures FILE] [--seed N]\n"
               "                [--failover-at K|every] PATH...\n"
               "       ctreplay --pcap FILE --rules FILE [--rules6 FILE]\n");
  return 2;
}

// "name  reason..." or "name K=k  reason..." per line; '#' starts a comment.
std::map<std::string, std::string> ReadExpectedFailures(const std::string& path, bool* ok) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  *ok = static_cast<bool>(in);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    std::string name, reason;
    ss >> name;
    // "name K=5": one failover point of a scenario.
    if (ss.peek() == ' ') {
      std::string k;
      const auto pos = ss.tellg();
      ss >> k;
      if (k.rfind("K=", 0) == 0) {
        name += " " + k;
      } else {
        ss.seekg(pos);
      }
    }
    std::getline(ss, reason);
    if (!name.empty()) out[name] = reason;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ctsync::ctreplay;
  std::string record, xfail_path, pcap, rules4, rules6, failover;
  ReplayOptions options;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string* dst) {
      if (i + 1 >= argc) return false;
      *dst = argv[++i];
      return true;
    };
    if (a == "--record") {
      if (!value(&record)) return Usage();
    } else if (a == "--expected-failures") {
      if (!value(&xfail_path)) return Usage();
    } else if (a == "--failover-at") {
      if (!value(&failover)) return Usage();
    } else if (a == "--pcap") {
      if (!value(&pcap)) return Usage();
    } else if (a == "--rules") {
      if (!value(&rules4)) return Usage();
    } else if (a == "--rules6") {
      if (!value(&rules6)) return Usage();
    } else if (a == "--seed") {
      std::string v;
      if (!value(&v)) return Usage();
      options.seed = std::strtoull(v.c_str(), nullptr, 10);
    } else if (a == "-h" || a == "--help") {
      Usage();
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "ctreplay: unknown option %s\n", a.c_str());
      return Usage();
    } else {
      paths.push_back(a);
    }
  }

  if (!pcap.empty()) {
    auto table = ReplayPcap(pcap, rules4, rules6, options.seed);
    if (!table.ok()) {
      std::fprintf(stderr, "ctreplay: %s\n", std::string(table.status().message()).c_str());
      return 1;
    }
    std::fputs(table->c_str(), stdout);
    return 0;
  }
  if (paths.empty()) return Usage();

  std::map<std::string, std::string> xfail;
  if (!xfail_path.empty()) {
    bool ok;
    xfail = ReadExpectedFailures(xfail_path, &ok);
    if (!ok) {
      std::fprintf(stderr, "ctreplay: cannot read %s\n", xfail_path.c_str());
      return 2;
    }
  }
  auto dirs = FindScenarioDirs(paths);
  if (!dirs.ok()) {
    std::fprintf(stderr, "ctreplay: %s\n", std::string(dirs.status().message()).c_str());
    return 2;
  }
  int passed = 0, failed = 0, expected_failures = 0;
  for (const std::string& dir : *dirs) {
    auto sc = LoadScenario(dir);
    if (!sc.ok()) {
      std::printf("FAIL %s\n  %s\n", dir.c_str(), std::string(sc.status().message()).c_str());
      ++failed;
      continue;
    }
    // Which failover points to run: none (one node), one K, or every K in turn.
    std::vector<int> points;
    if (failover.empty()) {
      points.push_back(-1);
    } else if (failover == "every") {
      for (int k = 0; k <= static_cast<int>(sc->packets.size()); ++k) points.push_back(k);
    } else {
      points.push_back(std::atoi(failover.c_str()));
    }
    for (int k : points) {
      const std::string label = k < 0 ? sc->name : sc->name + " K=" + std::to_string(k);
      auto actual = k < 0 ? ReplayScenario(*sc, options) : ReplayScenarioWithFailover(*sc, options, k);
      CompareResult result;
      if (!actual.ok()) {
        result.ok = false;
        result.diffs.push_back("replay error: " + std::string(actual.status().message()));
      } else if (!sc->expected) {
        result.ok = false;
        result.diffs.push_back("no expected.json to compare with");
      } else {
        result = CompareWithOracle(*sc->expected, *actual);
      }
      if (actual.ok() && !record.empty()) {
        const std::string out = k < 0 ? record + "/" + sc->name + "/actual.json"
                                      : record + "/K" + std::to_string(k) + "/" + sc->name + "/actual.json";
        absl::Status s = WriteActual(out, *actual);
        if (!s.ok()) std::fprintf(stderr, "ctreplay: %s\n", std::string(s.message()).c_str());
      }
      auto x = xfail.find(label);
      if (x == xfail.end()) x = xfail.find(sc->name);
      if (result.ok && x == xfail.end()) {
        std::printf("PASS %s\n", label.c_str());
        ++passed;
      } else if (result.ok) {
        std::printf("FAIL %s (listed as an expected failure but passes: update the list)\n",
                    label.c_str());
        ++failed;
      } else if (x != xfail.end()) {
        std::printf("XFAIL %s (%s)\n", label.c_str(), x->second.c_str() + (x->second[0] == ' '));
        ++expected_failures;
      } else {
        std::printf("FAIL %s\n", label.c_str());
        const size_t kMaxDiffs = 40;
        for (size_t i = 0; i < result.diffs.size() && i < kMaxDiffs; ++i)
          std::printf("  %s\n", result.diffs[i].c_str());
        if (result.diffs.size() > kMaxDiffs)
          std::printf("  ... %zu more differences\n", result.diffs.size() - kMaxDiffs);
        ++failed;
      }
    }
  }
  if (expected_failures) std::printf("%d expected failures (see the list)\n", expected_failures);
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

#include "tools/ctreplay/oracle_compare.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "tools/ctreplay/scenario.h"

namespace ctsync::ctreplay {
namespace {

using nlohmann::json;

// Ports the kernel may pick when it has to move a source port (nf_nat_l4proto_unique_tuple
// without a range).
constexpr int64_t kRandomPortMin = 1024;
constexpr int64_t kRandomPortMax = 65535;
// Bytes shown on each side of the first differing byte of a frame.
constexpr size_t kFrameContextBytes = 8;

const json& Absent() {
  static const json* const kNull = new json();
  return *kNull;
}

const json& Field(const json& obj, const std::string& key) {
  if (!obj.is_object()) return Absent();
  auto it = obj.find(key);
  return it == obj.end() ? Absent() : *it;
}

std::string Show(const json& v) {
  if (v.is_null()) return "(absent)";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

// "$.steps[1].conntrack[1].reply.dport" -> "/steps/1/conntrack/1/reply/dport".
std::optional<json::json_pointer> ToPointer(const std::string& path) {
  if (path.rfind("$", 0) != 0) return std::nullopt;
  std::string pointer;
  std::string token;
  auto flush = [&] {
    if (!token.empty()) pointer += "/" + token;
    token.clear();
  };
  for (size_t i = 1; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '.' || c == '[') {
      flush();
    } else if (c == ']') {
      flush();
    } else if (c == '~' || c == '/') {
      return std::nullopt;  // Not used by the oracle; would need escaping.
    } else {
      token.push_back(c);
    }
  }
  flush();
  return json::json_pointer(pointer);
}

const json* At(const json& doc, const std::string& path) {
  std::optional<json::json_pointer> ptr = ToPointer(path);
  if (!ptr.has_value() || !doc.contains(*ptr)) return nullptr;
  return &doc.at(*ptr);
}

// Whitespace-separated tokens with their offsets, so a raw line can be patched in place.
struct Token {
  size_t begin;
  size_t end;
};

std::vector<Token> Tokenize(const std::string& line) {
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    if (i >= line.size()) break;
    size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    tokens.push_back({start, i});
  }
  return tokens;
}

// One's-complement sum of 16-bit big-endian words, as the Internet checksum uses.
uint32_t SumWords(const std::vector<uint8_t>& bytes, size_t from, size_t to, uint32_t sum) {
  for (size_t i = from; i < to; i += 2) {
    sum += static_cast<uint32_t>(bytes[i]) << 8 | (i + 1 < to ? bytes[i + 1] : 0);
  }
  return sum;
}

bool FoldsToAllOnes(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return sum == 0xffff;
}

// Bytes the oracle lets differ include checksums, so a frame with such bytes must at least
// carry valid IPv4 and TCP/UDP/ICMP/ICMPv6 checksums. Returns what is wrong, if anything.
// Frames it cannot parse (other ethertypes, IPv6 extension headers) are not judged here.
std::optional<std::string> ChecksumProblem(const std::vector<uint8_t>& f) {
  if (f.size() < 14) return std::nullopt;
  const uint16_t ethertype = f[12] << 8 | f[13];
  size_t l4 = 0;
  size_t end = 0;
  uint8_t proto = 0;
  uint32_t pseudo = 0;
  if (ethertype == 0x0800) {
    if (f.size() < 34) return std::nullopt;
    const size_t ihl = (f[14] & 0x0f) * 4;
    const size_t total = f[16] << 8 | f[17];
    if (ihl < 20 || total < ihl || 14 + total > f.size()) return std::nullopt;
    if (!FoldsToAllOnes(SumWords(f, 14, 14 + ihl, 0))) return "bad IPv4 header checksum";
    const bool fragment = ((f[20] & 0x3f) << 8 | f[21]) != 0;  // MF or an offset
    if (fragment) return std::nullopt;
    l4 = 14 + ihl;
    end = 14 + total;
    proto = f[23];
    if (proto != 1) pseudo = SumWords(f, 26, 34, proto + static_cast<uint32_t>(end - l4));
  } else if (ethertype == 0x86dd) {
    if (f.size() < 54) return std::nullopt;
    const size_t payload = f[18] << 8 | f[19];
    if (54 + payload > f.size()) return std::nullopt;
    l4 = 54;
    end = 54 + payload;
    proto = f[20];
    pseudo = SumWords(f, 22, 54, proto + static_cast<uint32_t>(payload));
  } else {
    return std::nullopt;
  }
  if (proto == 17 && end - l4 >= 8 && f[l4 + 6] == 0 && f[l4 + 7] == 0) {
    return std::nullopt;  // UDP over IPv4 without a checksum
  }
  if (proto != 1 && proto != 6 && proto != 17 && proto != 58) return std::nullopt;
  if (!FoldsToAllOnes(SumWords(f, l4, end, pseudo))) {
    return absl::StrCat("bad L4 (protocol ", proto, ") checksum");
  }
  return std::nullopt;
}

std::string HexContext(const std::vector<uint8_t>& bytes, size_t at) {
  const size_t from = at > kFrameContextBytes ? at - kFrameContextBytes : 0;
  const size_t to = std::min(bytes.size(), at + kFrameContextBytes + 1);
  std::string out;
  for (size_t i = from; i < to; ++i) {
    if (i > from) out += ' ';
    out += i == at ? absl::StrFormat("[%02x]", bytes[i]) : absl::StrFormat("%02x", bytes[i]);
  }
  return absl::StrCat("@", from, ": ", out);
}

// Every difference the README allows between two kernel runs, keyed by JSON path.
struct Nondeterminism {
  // Frame paths -> byte offsets that may differ.
  std::map<std::string, std::set<size_t>> frame_offsets;
  // Scalar paths -> random value id. Paths that held the same kernel value share an id:
  // the same random choice seen in several places.
  std::map<std::string, int> scalar_value_id;
  std::vector<int64_t> kernel_values;  // id -> value the kernel printed.
};

Nondeterminism ParseNondeterminism(const json& expected) {
  Nondeterminism nd;
  const json& list = Field(expected, "nondeterminism");
  if (!list.is_array()) return nd;
  for (const json& item : list) {
    const json& path_json = Field(item, "path");
    if (!path_json.is_string()) continue;
    const std::string path = path_json.get<std::string>();
    const json& offsets = Field(item, "differing_byte_offsets");
    if (offsets.is_array()) {
      for (const json& o : offsets) {
        if (o.is_number_unsigned()) nd.frame_offsets[path].insert(o.get<size_t>());
      }
      continue;
    }
    const json* value = At(expected, path);
    if (value == nullptr || !value->is_number_integer()) continue;  // e.g. scapy summaries
    const int64_t kernel_value = value->get<int64_t>();
    auto known = std::find(nd.kernel_values.begin(), nd.kernel_values.end(), kernel_value);
    int id = static_cast<int>(known - nd.kernel_values.begin());
    if (known == nd.kernel_values.end()) nd.kernel_values.push_back(kernel_value);
    nd.scalar_value_id[path] = id;
  }
  return nd;
}

// Sort key of rule_hits, as the brief fixes it: (family, table, chain, index).
std::tuple<std::string, std::string, std::string, int64_t> RuleKey(const json& hit) {
  auto str = [&](const char* k) {
    const json& v = Field(hit, k);
    return v.is_string() ? v.get<std::string>() : v.dump();
  };
  const json& index = Field(hit, "index");
  return {str("family"), str("table"), str("chain"),
          index.is_number_integer() ? index.get<int64_t>() : -1};
}

// Identity of a conntrack entry: what `conntrack -L` sorts and keys on, minus the reply
// tuple (which carries the random NAT port).
std::string EntryKey(const json& entry) {
  return absl::StrCat(Show(Field(entry, "l3protonum")), "|", Show(Field(entry, "l4protonum")), "|",
                      Show(Field(entry, "zone")), "|", Field(entry, "orig").dump());
}

class Comparer {
 public:
  Comparer(const json& expected, const json& actual)
      : expected_(expected), actual_(actual), nd_(ParseNondeterminism(expected)) {
    const json& tolerance = Field(expected, "timeout_tolerance_s");
    tolerance_ = tolerance.is_number_integer() ? tolerance.get<int64_t>() : 2;
    table_full_ = expected.is_object() && expected.contains("prefill_count");
  }

  CompareResult Run() {
    const json& e_steps = Field(expected_, "steps");
    const json& a_steps = Field(actual_, "steps");
    if (!e_steps.is_array()) {
      Diff("expected.json has no steps list");
      return Finish();
    }
    if (!a_steps.is_array()) {
      Diff("actual has no steps list");
      return Finish();
    }
    if (e_steps.size() != a_steps.size()) {
      Diff(absl::StrCat("steps: expected ", e_steps.size(), ", got ", a_steps.size()));
    }
    const size_t n = std::min(e_steps.size(), a_steps.size());
    for (size_t i = 0; i < n; ++i) {
      step_ = i;
      if (!e_steps[i].is_object() || !a_steps[i].is_object()) {
        CompareValues("(whole step)", e_steps[i], a_steps[i]);
        continue;
      }
      if (table_full_) {
        CompareTableFullStep(e_steps[i], a_steps[i]);
      } else {
        CompareStep(e_steps[i], a_steps[i]);
      }
    }
    return Finish();
  }

 private:
  CompareResult Finish() {
    CompareResult result;
    result.ok = diffs_.empty();
    result.diffs = std::move(diffs_);
    return result;
  }

  void Diff(std::string text) { diffs_.push_back(std::move(text)); }

  std::string Where(const std::string& field) const {
    return absl::StrCat("step ", step_, " ", field);
  }

  std::string StepPath(const std::string& rest) const {
    return absl::StrCat("$.steps[", step_, "].", rest);
  }

  // Structural comparison: objects key by key, arrays item by item, scalars by value.
  void CompareValues(const std::string& field, const json& e, const json& a) {
    if (e.is_object() && a.is_object()) {
      std::set<std::string> keys;
      for (auto it = e.begin(); it != e.end(); ++it) keys.insert(it.key());
      for (auto it = a.begin(); it != a.end(); ++it) keys.insert(it.key());
      for (const std::string& k : keys) {
        CompareValues(absl::StrCat(field, ".", k), Field(e, k), Field(a, k));
      }
      return;
    }
    if (e.is_array() && a.is_array() && e.size() == a.size()) {
      for (size_t i = 0; i < e.size(); ++i) {
        CompareValues(absl::StrCat(field, "[", i, "]"), e[i], a[i]);
      }
      return;
    }
    if (e != a) {
      Diff(absl::StrCat(Where(field), ": expected ", Show(e), ", got ", Show(a)));
    }
  }

  void CompareStep(const json& e, const json& a) {
    static const std::set<std::string> kSpecial = {"out", "rule_hits", "conntrack", "expect"};
    std::set<std::string> keys;
    for (auto it = e.begin(); it != e.end(); ++it) keys.insert(it.key());
    for (auto it = a.begin(); it != a.end(); ++it) keys.insert(it.key());
    for (const std::string& k : keys) {
      if (kSpecial.count(k) == 0) CompareValues(k, Field(e, k), Field(a, k));
    }
    CompareFrames(Field(e, "out"), Field(a, "out"));
    CompareRuleHits(Field(e, "rule_hits"), Field(a, "rule_hits"));
    CompareConntrack(Field(e, "conntrack"), Field(a, "conntrack"));
    CompareExpect(Field(e, "expect"), Field(a, "expect"));
  }

  // README "Table-full scenarios": which entries early drop evicts is random, so only
  // forwarded, conntrack_count and stats_delta are compared, and early_drop >= 1 is right
  // wherever the kernel had an early drop.
  void CompareTableFullStep(const json& e, const json& a) {
    CompareValues("forwarded", Field(e, "forwarded"), Field(a, "forwarded"));
    json e_stats = Field(e, "stats_delta");
    json a_stats = Field(a, "stats_delta");
    const json& e_early = Field(e_stats, "early_drop");
    const json& a_early = Field(a_stats, "early_drop");
    if (e_early.is_number_integer()) {
      if (!a_early.is_number_integer() || a_early.get<int64_t>() < 1) {
        Diff(absl::StrCat(Where("stats_delta.early_drop"), ": expected at least 1, got ",
                          Show(a_early)));
      } else {
        evicted_offset_ += a_early.get<int64_t>() - e_early.get<int64_t>();
      }
      e_stats.erase("early_drop");
      if (a_stats.is_object()) a_stats.erase("early_drop");
    }
    CompareValues("stats_delta", e_stats, a_stats);
    const json& e_count = Field(e, "conntrack_count");
    if (e_count.is_number_integer()) {
      CompareValues("conntrack_count", json(e_count.get<int64_t>() - evicted_offset_),
                    Field(a, "conntrack_count"));
    } else {
      CompareValues("conntrack_count", e_count, Field(a, "conntrack_count"));
    }
  }

  // --- Random values (README "Nondeterminism") ---------------------------------------

  // Binds kernel value `id` to `value` seen at `where`; false (with a diff) when it
  // contradicts an earlier binding.
  bool Bind(int id, int64_t value, const std::string& where) {
    auto [it, inserted] = bindings_.try_emplace(id, value, where);
    if (inserted || it->second.first == value) return true;
    Diff(absl::StrCat(where, ": the kernel's random value ", nd_.kernel_values[id], " is ",
                      it->second.first, " at ", it->second.second, " but ", value,
                      " here; it must be the same value everywhere"));
    return false;
  }

  void CheckRandomScalar(int id, const std::string& field, const json& a, size_t entry_index,
                         const json& actual_entries, const std::string& tuple,
                         const std::string& key) {
    const std::string where = Where(field);
    if (!a.is_number_integer() || a.get<int64_t>() < kRandomPortMin ||
        a.get<int64_t>() > kRandomPortMax) {
      Diff(absl::StrCat(where, ": expected a random port in ", kRandomPortMin, "-", kRandomPortMax,
                        " (kernel chose ", nd_.kernel_values[id], "), got ", Show(a)));
      return;
    }
    const int64_t value = a.get<int64_t>();
    // The random port must not collide with another entry translated to the same address.
    const json& mine = actual_entries[entry_index];
    for (size_t j = 0; j < actual_entries.size(); ++j) {
      if (j == entry_index) continue;
      const json& other = actual_entries[j];
      if (Field(other, "l4protonum") == Field(mine, "l4protonum") &&
          Field(Field(other, tuple), "dst") == Field(Field(mine, tuple), "dst") &&
          Field(Field(other, tuple), key) == a) {
        Diff(absl::StrCat(where, ": random port ", value, " is already used by ",
                          Show(Field(other, "raw"))));
      }
    }
    Bind(id, value, where);
  }

  // --- Frames -------------------------------------------------------------------------

  void CompareFrames(const json& e, const json& a) {
    if (!e.is_array() || !a.is_array()) {
      CompareValues("out", e, a);
      return;
    }
    if (e.size() != a.size()) {
      std::vector<std::string> e_sum, a_sum;
      for (const json& f : e) e_sum.push_back(Show(Field(f, "summary")));
      for (const json& f : a) a_sum.push_back(Show(Field(f, "summary")));
      Diff(absl::StrCat(Where("out"), ": expected ", e.size(), " frames [",
                        absl::StrJoin(e_sum, "; "), "], got ", a.size(), " frames [",
                        absl::StrJoin(a_sum, "; "), "]"));
    }
    const size_t n = std::min(e.size(), a.size());
    for (size_t j = 0; j < n; ++j) CompareFrame(j, e[j], a[j]);
  }

  void CompareFrame(size_t j, const json& e, const json& a) {
    const std::string field = absl::StrCat("out[", j, "]");
    CompareValues(field + ".side", Field(e, "side"), Field(a, "side"));
    const json& e_hex = Field(e, "frame_hex");
    const json& a_hex = Field(a, "frame_hex");
    if (!e_hex.is_string() || !a_hex.is_string()) {
      CompareValues(field + ".frame_hex", e_hex, a_hex);
      return;
    }
    absl::StatusOr<std::vector<uint8_t>> e_bytes = DecodeHex(e_hex.get<std::string>());
    absl::StatusOr<std::vector<uint8_t>> a_bytes = DecodeHex(a_hex.get<std::string>());
    if (!e_bytes.ok() || !a_bytes.ok()) {
      Diff(absl::StrCat(Where(field + ".frame_hex"), ": not hex (",
                        (e_bytes.ok() ? a_bytes : e_bytes).status().message(), ")"));
      return;
    }
    const std::string summaries = absl::StrCat("; expected frame: ", Show(Field(e, "summary")),
                                               "; got: ", Show(Field(a, "summary")));
    std::set<size_t> wildcard;
    auto listed = nd_.frame_offsets.find(StepPath(field + ".frame_hex"));
    if (listed != nd_.frame_offsets.end()) wildcard = listed->second;

    // A random port printed in the entry also sits in the frame at two listed offsets
    // (big-endian); it must be the same engine value there.
    for (size_t o : wildcard) {
      if (wildcard.count(o + 1) == 0 || o + 1 >= e_bytes->size()) continue;
      const int64_t kernel = (*e_bytes)[o] << 8 | (*e_bytes)[o + 1];
      for (size_t id = 0; id < nd_.kernel_values.size(); ++id) {
        if (nd_.kernel_values[id] != kernel || o + 1 >= a_bytes->size()) continue;
        const int64_t engine = (*a_bytes)[o] << 8 | (*a_bytes)[o + 1];
        Bind(static_cast<int>(id), engine,
             Where(absl::StrCat(field, ".frame_hex bytes ", o, "-", o + 1)));
      }
    }

    if (!wildcard.empty()) {
      if (std::optional<std::string> bad = ChecksumProblem(*a_bytes); bad.has_value()) {
        Diff(absl::StrCat(Where(field + ".frame_hex"), ": ", *bad,
                          " (bytes that may differ from the kernel's must still be consistent)",
                          summaries));
      }
    }

    const size_t n = std::min(e_bytes->size(), a_bytes->size());
    for (size_t i = 0; i < n; ++i) {
      if (wildcard.count(i) != 0 || (*e_bytes)[i] == (*a_bytes)[i]) continue;
      Diff(absl::StrFormat(
          "%s: first difference at byte %d: expected 0x%02x, got 0x%02x; expected %s; got %s%s",
          Where(field + ".frame_hex"), i, (*e_bytes)[i], (*a_bytes)[i], HexContext(*e_bytes, i),
          HexContext(*a_bytes, i), summaries));
      return;
    }
    if (e_bytes->size() != a_bytes->size()) {
      Diff(absl::StrCat(Where(field + ".frame_hex"), ": expected ", e_bytes->size(), " bytes, got ",
                        a_bytes->size(), summaries));
    }
  }

  // --- rule_hits ----------------------------------------------------------------------

  void CompareRuleHits(const json& e, const json& a) {
    if (!e.is_array() || !a.is_array()) {
      CompareValues("rule_hits", e, a);
      return;
    }
    std::vector<json> es(e.begin(), e.end());
    std::vector<json> as(a.begin(), a.end());
    auto by_key = [](const json& x, const json& y) { return RuleKey(x) < RuleKey(y); };
    std::stable_sort(es.begin(), es.end(), by_key);
    std::stable_sort(as.begin(), as.end(), by_key);
    if (es == as) return;
    auto show = [](const std::vector<json>& hits) {
      std::vector<std::string> lines;
      for (const json& h : hits) {
        lines.push_back(absl::StrCat(Show(Field(h, "family")), " ", Show(Field(h, "table")), " ",
                                     Show(Field(h, "chain")), "#", Show(Field(h, "index")), " '",
                                     Show(Field(h, "rule")), "' x", Show(Field(h, "packets"))));
      }
      return absl::StrCat("[", absl::StrJoin(lines, "; "), "]");
    };
    Diff(absl::StrCat(Where("rule_hits"), ": expected ", show(es), ", got ", show(as)));
  }

  // --- conntrack / expect -------------------------------------------------------------

  void CompareConntrack(const json& e, const json& a) {
    if (!e.is_array() || !a.is_array()) {
      CompareValues("conntrack", e, a);
      return;
    }
    if (e.size() != a.size()) {
      Diff(absl::StrCat(Where("conntrack"), ": expected ", e.size(), " entries, got ", a.size()));
    }
    // Pair entries by identity so one missing entry does not shift every later one.
    std::vector<bool> used(a.size(), false);
    std::vector<size_t> order;
    for (size_t i = 0; i < e.size(); ++i) {
      const std::string key = EntryKey(e[i]);
      std::optional<size_t> match;
      if (i < a.size() && !used[i] && EntryKey(a[i]) == key) match = i;
      for (size_t j = 0; !match.has_value() && j < a.size(); ++j) {
        if (!used[j] && EntryKey(a[j]) == key) match = j;
      }
      const std::string field = absl::StrCat("conntrack[", i, "]");
      if (!match.has_value()) {
        Diff(absl::StrCat(Where(field), ": missing: ", Show(Field(e[i], "raw"))));
        continue;
      }
      used[*match] = true;
      order.push_back(*match);
      CompareEntry(field, e[i], a, *match, /*raw_timeout_token=*/4);
    }
    for (size_t j = 0; j < a.size(); ++j) {
      if (!used[j]) {
        Diff(absl::StrCat(Where("conntrack"), ": unexpected entry: ", Show(Field(a[j], "raw"))));
      }
    }
    if (!std::is_sorted(order.begin(), order.end())) {
      Diff(absl::StrCat(Where("conntrack"),
                        ": entries are not in the kernel listing's order (sorted by l3proto, "
                        "l4protonum, orig src, orig dst, sport, dport, icmp type, id, zone)"));
    }
  }

  void CompareExpect(const json& e, const json& a) {
    if (!e.is_array() || !a.is_array() || e.size() != a.size()) {
      if (e.is_array() && a.is_array()) {
        std::vector<std::string> e_raw, a_raw;
        for (const json& x : e) e_raw.push_back(Show(Field(x, "raw")));
        for (const json& x : a) a_raw.push_back(Show(Field(x, "raw")));
        Diff(absl::StrCat(Where("expect"), ": expected ", e.size(), " expectations [",
                          absl::StrJoin(e_raw, "; "), "], got ", a.size(), " [",
                          absl::StrJoin(a_raw, "; "), "]"));
      } else {
        CompareValues("expect", e, a);
      }
      return;
    }
    for (size_t i = 0; i < e.size(); ++i) {
      CompareEntry(absl::StrCat("expect[", i, "]"), e[i], a, i, /*raw_timeout_token=*/0);
    }
  }

  // One conntrack entry or expectation. `raw_timeout_token` is the position of the timeout
  // among the raw line's words (conntrack: after "ipv4 2 tcp 6"; expect: first).
  void CompareEntry(const std::string& field, const json& e, const json& actual_list,
                    size_t a_index, size_t raw_timeout_token) {
    const json& a = actual_list[a_index];
    // Substitutions the raw line needs: (word prefix, occurrence, expected, actual).
    struct RawPatch {
      std::string key;
      int occurrence;
      std::string from;
      std::string to;
    };
    std::vector<RawPatch> patches;

    std::set<std::string> keys;
    for (auto it = e.begin(); it != e.end(); ++it) keys.insert(it.key());
    if (a.is_object()) {
      for (auto it = a.begin(); it != a.end(); ++it) keys.insert(it.key());
    }
    for (const std::string& k : keys) {
      const json& ev = Field(e, k);
      const json& av = Field(a, k);
      if (k == "raw") continue;
      if (k == "timeout") {
        if (!ev.is_number_integer() || !av.is_number_integer() ||
            std::llabs(ev.get<int64_t>() - av.get<int64_t>()) > tolerance_) {
          Diff(absl::StrCat(Where(field + ".timeout"), ": expected ", Show(ev), " (+-", tolerance_,
                            "), got ", Show(av)));
        }
        continue;
      }
      if ((k == "orig" || k == "reply") && ev.is_object() && av.is_object()) {
        std::set<std::string> tuple_keys;
        for (auto it = ev.begin(); it != ev.end(); ++it) tuple_keys.insert(it.key());
        for (auto it = av.begin(); it != av.end(); ++it) tuple_keys.insert(it.key());
        for (const std::string& tk : tuple_keys) {
          const std::string sub = absl::StrCat(field, ".", k, ".", tk);
          auto random = nd_.scalar_value_id.find(StepPath(sub));
          if (random != nd_.scalar_value_id.end()) {
            CheckRandomScalar(random->second, sub, Field(av, tk), a_index, actual_list, k, tk);
            patches.push_back({tk, k == "orig" ? 0 : 1, Show(Field(ev, tk)), Show(Field(av, tk))});
          } else {
            CompareValues(sub, Field(ev, tk), Field(av, tk));
          }
        }
        continue;
      }
      CompareValues(absl::StrCat(field, ".", k), ev, av);
    }
    CompareRaw(field, Field(e, "raw"), Field(a, "raw"), raw_timeout_token, patches);
  }

  template <typename Patch>
  void CompareRaw(const std::string& field, const json& e, const json& a, size_t timeout_token,
                  const std::vector<Patch>& patches) {
    if (!e.is_string() || !a.is_string()) {
      CompareValues(field + ".raw", e, a);
      return;
    }
    std::string want = e.get<std::string>();
    const std::string got = a.get<std::string>();
    // The timeout word may differ within the tolerance: take the engine's.
    std::vector<Token> want_tokens = Tokenize(want);
    const std::vector<Token> got_tokens = Tokenize(got);
    if (timeout_token < want_tokens.size() && timeout_token < got_tokens.size()) {
      const Token& wt = want_tokens[timeout_token];
      const Token& gt = got_tokens[timeout_token];
      int64_t want_timeout = 0;
      int64_t got_timeout = 0;
      const std::string got_word = got.substr(gt.begin, gt.end - gt.begin);
      if (absl::SimpleAtoi(want.substr(wt.begin, wt.end - wt.begin), &want_timeout) &&
          absl::SimpleAtoi(got_word, &got_timeout) &&
          std::llabs(want_timeout - got_timeout) <= tolerance_) {
        want.replace(wt.begin, wt.end - wt.begin, got_word);
      }
    }
    // Random values: the n-th "key=" word (0 = original tuple, 1 = reply tuple).
    for (const Patch& p : patches) {
      const std::string from = absl::StrCat(p.key, "=", p.from);
      int seen = 0;
      for (const Token& t : Tokenize(want)) {
        const std::string word = want.substr(t.begin, t.end - t.begin);
        if (word.rfind(p.key + "=", 0) != 0) continue;
        if (seen++ != p.occurrence) continue;
        if (word == from) want.replace(t.begin, t.end - t.begin, absl::StrCat(p.key, "=", p.to));
        break;
      }
    }
    if (want != got) {
      Diff(absl::StrCat(Where(field + ".raw"), ": expected \"", want, "\", got \"", got, "\""));
    }
  }

  const json& expected_;
  const json& actual_;
  Nondeterminism nd_;
  int64_t tolerance_ = 2;
  bool table_full_ = false;
  // Engine evictions minus kernel evictions so far (table-full scenarios).
  int64_t evicted_offset_ = 0;
  size_t step_ = 0;
  // Random value id -> (engine value, where it was first seen).
  std::map<int, std::pair<int64_t, std::string>> bindings_;
  std::vector<std::string> diffs_;
};

}  // namespace

CompareResult CompareWithOracle(const json& expected, const json& actual) {
  return Comparer(expected, actual).Run();
}

std::string FormatLikeOracle(const json& doc) {
  // nlohmann::json keeps object keys sorted, as the oracle's json.dump(sort_keys=True).
  return doc.dump(1) + "\n";
}

absl::Status WriteActual(const std::string& path, const json& doc) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::UnavailableError(absl::StrCat(path, ": cannot open for writing"));
  out << FormatLikeOracle(doc);
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

}  // namespace ctsync::ctreplay

// iptables-restore text -> TableData: tables, chain lines, commands and COMMIT, plus the
// checks the kernel makes when a table is committed (chain loops; targets only at hooks they
// support, following jumps). The words of each rule are read by rule_reader.cc.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/rules/rule.h"
#include "core/util/status_macros.h"

namespace ctsync::rules::internal {
namespace {

constexpr uint8_t kHookBit[5] = {1, 2, 4, 8, 16};  // by Hook

struct BuiltinChain {
  const char* name;
  Hook hook;
};
// Built-in chains per table, in the order iptables-save lists them.
const std::vector<BuiltinChain>& Builtins(Table t) {
  static const std::vector<BuiltinChain> kRaw = {{"PREROUTING", Hook::kPrerouting},
                                                 {"OUTPUT", Hook::kOutput}};
  static const std::vector<BuiltinChain> kMangle = {{"PREROUTING", Hook::kPrerouting},
                                                    {"INPUT", Hook::kInput},
                                                    {"FORWARD", Hook::kForward},
                                                    {"OUTPUT", Hook::kOutput},
                                                    {"POSTROUTING", Hook::kPostrouting}};
  static const std::vector<BuiltinChain> kNat = {{"PREROUTING", Hook::kPrerouting},
                                                 {"INPUT", Hook::kInput},
                                                 {"OUTPUT", Hook::kOutput},
                                                 {"POSTROUTING", Hook::kPostrouting}};
  static const std::vector<BuiltinChain> kFilter = {
      {"INPUT", Hook::kInput}, {"FORWARD", Hook::kForward}, {"OUTPUT", Hook::kOutput}};
  switch (t) {
    case Table::kRaw:
      return kRaw;
    case Table::kMangle:
      return kMangle;
    case Table::kNat:
      return kNat;
    case Table::kFilter:
      break;
  }
  return kFilter;
}

absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// Splits one line into words the way iptables-restore does: blanks separate, double or single
// quotes group, a backslash escapes the next character inside quotes.
bool Tokenize(std::string_view line, std::vector<std::string>* out) {
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quote) {
      if (c == '\\' && i + 1 < line.size()) {
        cur.push_back(line[++i]);
      } else if (c == quote) {
        quote = 0;
      } else {
        cur.push_back(c);
      }
    } else if (c == '"' || c == '\'') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\r') {
      if (in_word) out->push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur.push_back(c);
      in_word = true;
    }
  }
  if (quote) return false;
  if (in_word) out->push_back(std::move(cur));
  return true;
}

// Which hooks reach each chain; fails on a loop, as the kernel's mark_source_chains does.
absl::Status CheckChains(const TableData& t, int commit_line) {
  const int n = static_cast<int>(t.chains.size());
  std::vector<uint8_t> hooks(n, 0);
  std::vector<int> color(n, 0);  // 0 unseen, 1 on the DFS path, 2 done
  // Loop detection: DFS over jump/goto edges.
  std::vector<std::pair<int, size_t>> stack;
  for (int start = 0; start < n; ++start) {
    if (color[start]) continue;
    stack.push_back({start, 0});
    color[start] = 1;
    while (!stack.empty()) {
      auto& [c, next] = stack.back();
      const auto& rules = t.chains[c].rules;
      if (next == rules.size()) {
        color[c] = 2;
        stack.pop_back();
        continue;
      }
      const Rule& r = rules[next++];
      if (r.target.kind != TargetKind::kJump && r.target.kind != TargetKind::kGoto) continue;
      int to = r.target.chain;
      if (color[to] == 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "line ", commit_line, ": COMMIT failed: chain loop through ", t.chains[to].name));
      }
      if (color[to] == 0) {
        color[to] = 1;
        stack.push_back({to, 0});
      }
    }
  }
  // Hook reachability: iterate to a fixed point (graphs are tiny and acyclic).
  for (int h = 0; h < 5; ++h)
    if (t.hook_chain[h] >= 0) hooks[t.hook_chain[h]] |= kHookBit[h];
  for (bool changed = true; changed;) {
    changed = false;
    for (int c = 0; c < n; ++c) {
      for (const Rule& r : t.chains[c].rules) {
        if (r.target.kind != TargetKind::kJump && r.target.kind != TargetKind::kGoto) continue;
        uint8_t before = hooks[r.target.chain];
        hooks[r.target.chain] |= hooks[c];
        changed |= before != hooks[r.target.chain];
      }
    }
  }
  constexpr uint8_t kPre = 1, kIn = 2, kFwd = 4, kOut = 8, kPost = 16;
  for (int c = 0; c < n; ++c) {
    for (const Rule& r : t.chains[c].rules) {
      uint8_t allowed = 0x1f;
      const char* what = nullptr;
      if (r.target.kind == TargetKind::kReject) allowed = kIn | kFwd | kOut, what = "REJECT";
      if (r.target.kind == TargetKind::kNat) {
        switch (r.target.nat.kind) {
          case NatKind::kSnat:
            allowed = kPost | kIn, what = "SNAT";
            break;
          case NatKind::kDnat:
            allowed = kPre | kOut, what = "DNAT";
            break;
          case NatKind::kMasquerade:
            allowed = kPost, what = "MASQUERADE";
            break;
          case NatKind::kRedirect:
            allowed = kPre | kOut, what = "REDIRECT";
            break;
        }
      }
      if (hooks[c] & ~allowed) {
        return absl::InvalidArgumentError(
            absl::StrCat("line ", r.line, ": target ", what, " not valid in chain ",
                         t.chains[c].name, " (reached from a hook it does not support)"));
      }
    }
  }
  return absl::OkStatus();
}

// Orders user chains by name as libiptc does, fixing jump indices.
void SortUserChains(TableData* t) {
  size_t first_user = 0;
  while (first_user < t->chains.size() && t->chains[first_user].builtin) ++first_user;
  std::vector<int> order(t->chains.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::stable_sort(order.begin() + first_user, order.end(),
                   [&](int a, int b) { return t->chains[a].name < t->chains[b].name; });
  std::vector<int> new_index(order.size());
  for (size_t i = 0; i < order.size(); ++i) new_index[order[i]] = static_cast<int>(i);
  std::vector<Chain> sorted;
  sorted.reserve(order.size());
  for (int old : order) sorted.push_back(std::move(t->chains[old]));
  t->chains = std::move(sorted);
  for (Chain& c : t->chains)
    for (Rule& r : c.rules)
      if (r.target.kind == TargetKind::kJump || r.target.kind == TargetKind::kGoto)
        r.target.chain = new_index[r.target.chain];
}

bool ParseCounters(std::string_view text, uint64_t* p, uint64_t* b) {
  if (text.size() < 5 || text.front() != '[' || text.back() != ']') return false;
  std::string_view inner = text.substr(1, text.size() - 2);
  size_t colon = inner.find(':');
  if (colon == std::string_view::npos) return false;
  return absl::SimpleAtoi(AV(inner.substr(0, colon)), p) &&
         absl::SimpleAtoi(AV(inner.substr(colon + 1)), b);
}

}  // namespace

std::unique_ptr<TableData> NewTable(Table table) {
  auto t = std::make_unique<TableData>();
  t->table = table;
  t->hook_chain.fill(-1);
  for (const BuiltinChain& b : Builtins(table)) {
    t->hook_chain[static_cast<int>(b.hook)] = static_cast<int>(t->chains.size());
    Chain& c = t->chains.emplace_back();
    c.name = b.name;
    c.builtin = true;
  }
  return t;
}

absl::Status ParseRestore(std::string_view text, Family family,
                          std::unique_ptr<TableData> (&tables)[4], std::vector<Table>* save_order) {
  if (family != Family::kIpv4 && family != Family::kIpv6)
    return absl::InvalidArgumentError("rules: family must be IPv4 or IPv6");
  std::unique_ptr<TableData> cur;
  int line_no = 0;
  auto err = [&](std::string_view msg) {
    return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": ", AV(msg)));
  };
  for (absl::string_view raw_line : absl::StrSplit(AV(text), '\n')) {
    ++line_no;
    std::string_view line(raw_line.data(), raw_line.size());
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r'))
      line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '*') {
      if (cur) return err(absl::StrCat("COMMIT expected before ", AV(line)));
      std::string_view name = line.substr(1);
      Table t;
      if (name == "raw")
        t = Table::kRaw;
      else if (name == "mangle")
        t = Table::kMangle;
      else if (name == "nat")
        t = Table::kNat;
      else if (name == "filter")
        t = Table::kFilter;
      else
        return err(absl::StrCat("unknown table ", AV(name)));
      cur = NewTable(t);
      continue;
    }
    if (!cur) return err(absl::StrCat("no table given before ", AV(line)));
    if (line == "COMMIT") {
      SortUserChains(cur.get());
      RETURN_IF_ERROR(CheckChains(*cur, line_no));
      Table t = cur->table;
      if (std::find(save_order->begin(), save_order->end(), t) == save_order->end())
        save_order->insert(save_order->begin(), t);
      tables[static_cast<int>(t)] = std::move(cur);
      continue;
    }
    std::vector<std::string> words;
    if (!Tokenize(line, &words)) return err("unterminated quote");
    auto find_chain = [&](const std::string& name) -> Chain* {
      for (Chain& c : cur->chains)
        if (c.name == name) return &c;
      return nullptr;
    };
    auto set_policy = [&](Chain* c, const std::string& policy) -> absl::Status {
      if (policy != "ACCEPT" && policy != "DROP")
        return err(absl::StrCat("bad policy ", policy, " for chain ", c->name));
      c->policy_drop = policy == "DROP";
      return absl::OkStatus();
    };
    auto new_chain = [&](const std::string& name) -> absl::Status {
      if (find_chain(name)) return err(absl::StrCat("chain ", name, " already exists"));
      if (name.empty() || name.size() > 28 || name[0] == '-' || name == "ACCEPT" ||
          name == "DROP" || name == "RETURN" || name == "QUEUE")
        return err(absl::StrCat("invalid chain name `", name, "'"));
      cur->chains.emplace_back().name = name;
      return absl::OkStatus();
    };
    if (line[0] == ':') {
      // ":NAME POLICY [p:b]"
      if (words.size() < 2 || words.size() > 3)
        return err(absl::StrCat("bad chain line ", AV(line)));
      std::string name = words[0].substr(1);
      const std::string& policy = words[1];
      uint64_t p = 0, b = 0;
      if (words.size() == 3 && !ParseCounters(words[2], &p, &b))
        return err(absl::StrCat("bad counters ", words[2]));
      Chain* existing = find_chain(name);
      if (existing && existing->builtin) {
        RETURN_IF_ERROR(set_policy(existing, policy));
        existing->packets = p;
        existing->bytes = b;
        continue;
      }
      if (policy != "-") {
        return err(absl::StrCat("chain ", name, " is not a built-in chain of table ",
                                TableName(cur->table), " (policy ", policy, ")"));
      }
      RETURN_IF_ERROR(new_chain(name));
      continue;
    }
    size_t pos = 0;
    Rule rule;
    rule.line = line_no;
    if (words[0][0] == '[') {
      if (!ParseCounters(words[0], &rule.packets, &rule.bytes))
        return err(absl::StrCat("bad counters ", words[0]));
      pos = 1;
    }
    if (pos >= words.size()) return err("empty rule");
    const std::string command = words[pos];
    if (pos + 1 >= words.size()) return err(absl::StrCat(command, " needs a chain"));
    const std::string chain_name = words[pos + 1];
    if (command == "-N" || command == "--new-chain") {
      if (words.size() != pos + 2) return err(absl::StrCat("unknown argument ", words[pos + 2]));
      RETURN_IF_ERROR(new_chain(chain_name));
      continue;
    }
    Chain* chain = find_chain(chain_name);
    if (chain == nullptr) return err(absl::StrCat("unknown chain ", chain_name));
    if (command == "-P" || command == "--policy") {
      if (!chain->builtin || words.size() != pos + 3)
        return err(absl::StrCat("bad policy command for chain ", chain_name));
      RETURN_IF_ERROR(set_policy(chain, words[pos + 2]));
      continue;
    }
    bool insert = command == "-I" || command == "--insert";
    if (!insert && command != "-A" && command != "--append")
      return err(absl::StrCat("unknown command ", command));
    size_t rule_start = pos + 2;
    size_t at = chain->rules.size();
    if (insert) {
      // -I CHAIN [rulenum]: 1-based position, default 1.
      at = 0;
      uint32_t n;
      if (rule_start < words.size() && absl::SimpleAtoi(words[rule_start], &n)) {
        if (n == 0 || n > chain->rules.size() + 1)
          return err(absl::StrCat("index of insertion too big: ", words[rule_start]));
        at = n - 1;
        ++rule_start;
      }
    }
    RETURN_IF_ERROR(ReadRule(std::move(words), rule_start, family, cur.get(), line_no, &rule));
    chain->rules.insert(chain->rules.begin() + static_cast<std::ptrdiff_t>(at), std::move(rule));
  }
  if (cur) return err("COMMIT expected at end of input");
  return absl::OkStatus();
}

}  // namespace ctsync::rules::internal

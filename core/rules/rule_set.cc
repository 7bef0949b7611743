// RuleSet construction, listing and save text. Evaluation lives in rule_eval.cc.
#include "core/rules/rule_set.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "core/rules/rule.h"
#include "core/util/status_macros.h"

namespace ctsync::rules {

const char* TableName(Table t) {
  switch (t) {
    case Table::kRaw:
      return "raw";
    case Table::kMangle:
      return "mangle";
    case Table::kNat:
      return "nat";
    case Table::kFilter:
      return "filter";
  }
  return "?";
}

const char* HookName(Hook h) {
  switch (h) {
    case Hook::kPrerouting:
      return "PREROUTING";
    case Hook::kInput:
      return "INPUT";
    case Hook::kForward:
      return "FORWARD";
    case Hook::kOutput:
      return "OUTPUT";
    case Hook::kPostrouting:
      return "POSTROUTING";
  }
  return "?";
}

RuleSet::RuleSet() = default;
RuleSet::RuleSet(RuleSet&&) noexcept = default;
RuleSet& RuleSet::operator=(RuleSet&&) noexcept = default;
RuleSet::~RuleSet() = default;

absl::StatusOr<RuleSet> RuleSet::Parse(std::string_view restore_text, Family family) {
  RuleSet rs;
  rs.family_ = family;
  RETURN_IF_ERROR(internal::ParseRestore(restore_text, family, rs.tables_, &rs.save_order_));
  // A walk never holds more return entries than there are chains (the graph is acyclic),
  // so this bound lets Evaluate() run without allocating.
  size_t chains = 0;
  for (const auto& t : rs.tables_)
    if (t) chains += t->chains.size();
  rs.stack_.reserve(chains + 1);
  return rs;
}

bool RuleSet::HasTable(Table t) const { return tables_[static_cast<int>(t)] != nullptr; }

std::string RuleSet::Save(bool with_counters) const {
  std::string out;
  for (Table tn : save_order_) {
    const internal::TableData& t = *tables_[static_cast<int>(tn)];
    absl::StrAppend(&out, "*", TableName(tn), "\n");
    for (const internal::Chain& c : t.chains) {
      if (c.builtin) {
        absl::StrAppend(&out, ":", c.name, c.policy_drop ? " DROP" : " ACCEPT", " [", c.packets,
                        ":", c.bytes, "]\n");
      } else {
        absl::StrAppend(&out, ":", c.name, " - [0:0]\n");
      }
    }
    for (const internal::Chain& c : t.chains) {
      for (const internal::Rule& r : c.rules) {
        if (with_counters) absl::StrAppend(&out, "[", r.packets, ":", r.bytes, "] ");
        std::string text = internal::RenderRule(r, t);
        absl::StrAppend(&out, "-A ", c.name, text.empty() ? "" : " ", text, "\n");
      }
    }
    absl::StrAppend(&out, "COMMIT\n");
  }
  return out;
}

std::vector<RuleInfo> RuleSet::Rules() const {
  std::vector<RuleInfo> out;
  for (Table tn : save_order_) {
    const internal::TableData& t = *tables_[static_cast<int>(tn)];
    for (const internal::Chain& c : t.chains) {
      for (size_t i = 0; i < c.rules.size(); ++i) {
        const internal::Rule& r = c.rules[i];
        out.push_back(RuleInfo{tn, c.name, static_cast<int>(i), internal::RenderRule(r, t),
                               r.packets, r.bytes});
      }
    }
  }
  return out;
}

std::optional<std::string> RuleSet::RuleText(Table table, std::string_view chain, int index) const {
  const auto& t = tables_[static_cast<int>(table)];
  if (!t) return std::nullopt;
  for (const internal::Chain& c : t->chains) {
    if (c.name != chain) continue;
    if (index < 0 || index >= static_cast<int>(c.rules.size())) return std::nullopt;
    return internal::RenderRule(c.rules[index], *t);
  }
  return std::nullopt;
}

void RuleSet::ZeroCounters() {
  for (auto& t : tables_) {
    if (!t) continue;
    for (internal::Chain& c : t->chains) {
      c.packets = c.bytes = 0;
      for (internal::Rule& r : c.rules) r.packets = r.bytes = 0;
    }
  }
}

}  // namespace ctsync::rules

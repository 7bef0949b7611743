// Parsed rules: the in-memory form of one table (chains, rules, matches, targets) shared by
// the parser, the renderer and the evaluator. Private to core/rules.
// Plain data; the owning RuleSet decides threading (one thread at a time).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "core/net/ip_address.h"
#include "core/rules/rule_set.h"

namespace ctsync::rules::internal {

struct PortRange {
  uint16_t min = 0, max = 0xffff;
};

struct AddrMatch {
  bool set = false, invert = false;
  IpPrefix prefix;
};

struct IfaceMatch {
  bool set = false, invert = false;
  std::string name;       // without the trailing '+'
  bool wildcard = false;  // "lan+": any interface whose name starts with `name`
};

struct TcpMatch {
  bool has_sport = false, sport_inv = false;
  PortRange sport;
  bool has_dport = false, dport_inv = false;
  PortRange dport;
  bool has_flags = false, flags_inv = false;
  uint8_t flags_mask = 0, flags_cmp = 0;
};

struct UdpMatch {
  bool has_sport = false, sport_inv = false;
  PortRange sport;
  bool has_dport = false, dport_inv = false;
  PortRange dport;
};

// -m icmp / -m icmp6. type 0xff with a v4 rule is "any".
struct IcmpMatch {
  bool v6 = false;
  bool set = false, invert = false;
  uint8_t type = 0xff, code_min = 0, code_max = 0xff;
};

struct ConntrackMatch {
  enum Flag : uint16_t {
    kState = 1 << 0,
    kProto = 1 << 1,
    kOrigSrc = 1 << 2,
    kOrigDst = 1 << 3,
    kReplSrc = 1 << 4,
    kReplDst = 1 << 5,
    kOrigSrcPort = 1 << 6,
    kOrigDstPort = 1 << 7,
    kReplSrcPort = 1 << 8,
    kReplDstPort = 1 << 9,
    kStatus = 1 << 10,
    kDir = 1 << 11,
  };
  bool state_alias = false;  // written as -m state (only kState then)
  uint16_t flags = 0, invert = 0;
  uint16_t state_mask = 0;  // CtStateBits
  uint8_t proto = 0;
  IpPrefix addr[4];   // orig src, orig dst, repl src, repl dst
  PortRange port[4];  // orig src, orig dst, repl src, repl dst
  uint32_t status_mask = 0;
  bool dir_reply = false;
};

struct MultiportMatch {
  enum Which : uint8_t { kSource, kDest, kEither };
  Which which = kEither;
  bool invert = false;
  std::vector<PortRange> ranges;  // at most 15 ports, a range counting two
};

// -m mark (nfmark) and -m connmark.
struct MarkMatch {
  bool conn = false;
  bool set = false, invert = false;
  uint32_t value = 0, mask = 0xffffffff;
};

using Match =
    std::variant<TcpMatch, UdpMatch, IcmpMatch, ConntrackMatch, MultiportMatch, MarkMatch>;

enum class TargetKind : uint8_t {
  kNone,  // no -j: the rule only counts
  kAccept,
  kDrop,
  kReturn,
  kJump,
  kGoto,
  kReject,
  kNotrack,
  kCt,
  kMark,
  kConnmark,
  kLog,
  kNat,
};

struct Target {
  TargetKind kind = TargetKind::kNone;
  int chain = -1;  // kJump / kGoto: index into TableData::chains
  RejectSpec reject;
  bool reject_with_given = false;
  NatSpec nat;
  // CT
  bool ct_notrack = false;
  bool has_zone = false;
  uint16_t zone = 0;
  std::string helper;
  // MARK: mark = (mark & ~mask) ^ value. CONNMARK --set-xmark likewise on the connmark.
  uint32_t value = 0, mask = 0xffffffff;
  // CONNMARK modes.
  enum ConnmarkMode : uint8_t { kSetXmark, kSave, kRestore };
  ConnmarkMode connmark_mode = kSetXmark;
  uint32_t nfmask = 0xffffffff, ctmask = 0xffffffff;
  // LOG
  std::string log_prefix;
  uint8_t log_level = 4;
  uint8_t log_flags = 0;  // bit0 tcp-sequence, 1 tcp-options, 2 ip-options, 3 uid, 4 macdecode
};

struct Rule {
  AddrMatch src, dst;
  IfaceMatch in, out;
  bool proto_set = false, proto_inv = false;
  uint8_t proto = 0;
  enum Frag : uint8_t { kAnyFrag, kFragOnly, kNoFrag } frag = kAnyFrag;
  std::vector<Match> matches;
  Target target;
  uint64_t packets = 0, bytes = 0;
  int line = 0;  // for errors found after the rule was read
};

struct Chain {
  std::string name;
  bool builtin = false;
  bool policy_drop = false;
  uint64_t packets = 0, bytes = 0;  // policy counters (built-in chains)
  std::vector<Rule> rules;
};

struct TableData {
  Table table;
  std::vector<Chain> chains;        // built-ins in hook order, then user chains by name
  std::array<int, 5> hook_chain{};  // Hook -> chain index, -1 if the table lacks the hook
};

// Names and numbers shared by parser and renderer (rule_names.cc).
std::string ProtoName(uint8_t proto);
bool ParseProtoName(std::string_view text, uint8_t* proto);
bool ParseIcmpType(std::string_view text, bool v6, IcmpMatch* out);
std::string RenderIcmpType(const IcmpMatch& m);
std::string RenderRejectWith(RejectWith w);
bool ParseRejectWith(std::string_view text, Family family, RejectWith* out);

// Builds the built-in chains of `table` (policy ACCEPT, zero counters).
std::unique_ptr<TableData> NewTable(Table table);

// Reads one rule's words from words[pos] on (rule_reader.cc).
absl::Status ReadRule(std::vector<std::string> words, size_t pos, Family family, TableData* table,
                      int line, Rule* rule);

// Parsing (rule_parser.cc): fills tables[] (indexed by Table) and the save order.
absl::Status ParseRestore(std::string_view text, Family family,
                          std::unique_ptr<TableData> (&tables)[4], std::vector<Table>* save_order);

// Rendering (rule_render.cc): the iptables-save text of one rule without "-A CHAIN".
std::string RenderRule(const Rule& rule, const TableData& table);

}  // namespace ctsync::rules::internal

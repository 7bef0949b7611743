// The packet filter rules ctsync's hook pipeline runs: an iptables-restore subset for the
// raw, mangle, nat and filter tables, for one address family (iptables or ip6tables text).
//
// A RuleSet is parsed once from `iptables-save` style text, evaluates ONE table at ONE hook
// for one packet the way the kernel's ipt_do_table does (jump stack, RETURN, goto, policy,
// per-rule packet/byte counters), and renders itself back to the exact text
// `iptables-legacy-save [-c]` prints (see core/rules/README.md for the kernel rules followed).
//
// Owner: the pipeline of one shard. Not thread-safe: Evaluate() updates counters, so one
// thread uses a RuleSet at a time. Evaluate() does not allocate.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/conntrack/tuple.h"
#include "core/net/ip_address.h"

namespace ctsync::rules {

enum class Table : uint8_t { kRaw, kMangle, kNat, kFilter };
enum class Hook : uint8_t { kPrerouting, kInput, kForward, kOutput, kPostrouting };

// State bits seen by -m conntrack --ctstate and -m state. A packet has exactly one of
// INVALID / NEW / ESTABLISHED / RELATED / UNTRACKED, plus SNAT / DNAT when the connection
// has that NAT (the kernel's IPS_SRC_NAT / IPS_DST_NAT status bits).
enum CtStateBits : uint16_t {
  kCtInvalid = 1,
  kCtNew = 2,
  kCtEstablished = 4,
  kCtRelated = 8,
  kCtUntracked = 16,
  kCtSnat = 32,
  kCtDnat = 64,
};

// Kernel IPS_* status bits that --ctstatus names.
enum CtStatusBits : uint32_t {
  kIpsExpected = 1,
  kIpsSeenReply = 2,
  kIpsAssured = 4,
  kIpsConfirmed = 8,
};

// Everything a match may look at; filled by the pipeline for each packet and hook.
struct MatchContext {
  Family family = Family::kIpv4;
  IpAddress src, dst;
  uint8_t proto = 0;
  uint16_t sport = 0, dport = 0;  // TCP/UDP/SCTP/DCCP/UDP-Lite, when has_ports
  uint8_t tcp_flags = 0;          // FIN=1 SYN=2 RST=4 PSH=8 ACK=16 URG=32 (ECE/CWR ignored)
  bool has_ports = false;
  bool non_first_fragment = false;  // fragment offset != 0 (what -f matches)
  uint8_t icmp_type = 0, icmp_code = 0;
  bool has_icmp = false;
  std::string_view in_iface, out_iface;  // empty when the hook has none
  uint32_t packet_len = 0;               // L3 length, added to byte counters
  uint16_t ctstate = kCtInvalid;         // CtStateBits
  uint32_t ct_status = 0;                // kernel IPS_* bits
  bool ct_dir_reply = false;             // packet travels in the reply direction
  const Tuple* ct_orig = nullptr;        // null when untracked / invalid
  const Tuple* ct_reply = nullptr;
  uint32_t mark = 0;     // skb->mark
  uint32_t ct_mark = 0;  // connmark
};

// What non-terminating targets asked for; the pipeline applies them. Later targets see the
// values earlier ones set (a MARK followed by -m mark matches the new mark, as in the kernel).
struct PacketEffects {
  std::optional<uint32_t> mark;     // new skb->mark (MARK, CONNMARK --restore-mark)
  std::optional<uint32_t> ct_mark;  // new connmark (CONNMARK --set-xmark / --save-mark)
  bool notrack = false;             // NOTRACK or CT --notrack
  std::optional<uint16_t> ct_zone;  // CT --zone
  std::string ct_helper;            // CT --helper (copied only when a CT rule hits)
  uint32_t log_count = 0;           // LOG rules hit (LOG is counted, not printed)
};

enum class NatKind : uint8_t { kSnat, kDnat, kMasquerade, kRedirect };

// A nat-table target parsed into data for the NAT engine.
struct NatSpec {
  NatKind kind = NatKind::kSnat;
  Family family = Family::kIpv4;
  bool has_addr = false;  // SNAT/DNAT: always; MASQUERADE/REDIRECT: never
  IpAddress min_addr, max_addr;
  bool has_ports = false;
  uint16_t min_port = 0, max_port = 0;
  bool random = false, random_fully = false, persistent = false;
};

enum class RejectWith : uint8_t {
  kIcmpNetUnreachable,
  kIcmpHostUnreachable,
  kIcmpPortUnreachable,
  kIcmpProtoUnreachable,
  kIcmpNetProhibited,
  kIcmpHostProhibited,
  kIcmpAdminProhibited,
  kTcpReset,
  kIcmp6NoRoute,
  kIcmp6AdmProhibited,
  kIcmp6AddrUnreachable,
  kIcmp6PortUnreachable,
  kIcmp6PolicyFail,
  kIcmp6RejectRoute,
};
struct RejectSpec {
  RejectWith with = RejectWith::kIcmpPortUnreachable;
};

struct Verdict {
  enum Kind : uint8_t { kAccept, kDrop, kReject, kNat };
  Kind kind = kAccept;
  RejectSpec reject;  // kReject
  NatSpec nat;        // kNat
};

struct RuleHit {
  Table table;
  std::string chain;
  int index;  // 0-based within its chain, in save order
  friend bool operator==(const RuleHit&, const RuleHit&) = default;
};

// One rule as an operator sees it (for listings and the oracle comparison).
struct RuleInfo {
  Table table;
  std::string chain;
  int index;
  std::string text;  // iptables-save text without "-A CHAIN", e.g. "-o wan0 -j SNAT ..."
  uint64_t packets, bytes;
};

const char* TableName(Table t);
const char* HookName(Hook h);

namespace internal {
struct TableData;
}

class RuleSet {
 public:
  // Parses iptables-restore text. Counters given as `[p:b]` are kept (like restore -c).
  // Errors name the line and the word not understood, e.g. "line 7: unknown option --foo".
  static absl::StatusOr<RuleSet> Parse(std::string_view restore_text, Family family);

  RuleSet(RuleSet&&) noexcept;
  RuleSet& operator=(RuleSet&&) noexcept;
  ~RuleSet();

  Family family() const { return family_; }
  bool HasTable(Table t) const;

  // Evaluates `table` at `hook` for one packet: counts every rule whose matches all match,
  // applies non-terminating targets to *effects, and returns the verdict. A table that is
  // absent, or a hook the table has no chain for, gives kAccept with no counting.
  // `effects` (may be null) carries values set by earlier tables for the same packet in and
  // the new ones out. `hits` (may be null) is appended the counted rules in walk order;
  // only filling `hits` allocates.
  Verdict Evaluate(Table table, Hook hook, const MatchContext& ctx, PacketEffects* effects,
                   std::vector<RuleHit>* hits);

  // `iptables-save` (with_counters: `iptables-save -c`) text, without the "#" comment lines.
  std::string Save(bool with_counters) const;

  // Every rule in save order (tables in save order, chains in save order).
  std::vector<RuleInfo> Rules() const;

  // Canonical text of one rule, or nullopt if there is no such rule.
  std::optional<std::string> RuleText(Table table, std::string_view chain, int index) const;

  void ZeroCounters();

 private:
  RuleSet();
  Family family_ = Family::kIpv4;
  // Indexed by Table; null when the text never named the table.
  std::unique_ptr<internal::TableData> tables_[4];
  // Tables in the order iptables-legacy-save prints them: the kernel lists the most
  // recently registered table first, and a restore into a fresh namespace registers them in
  // the order the text names them.
  std::vector<Table> save_order_;
  // Scratch return stack for Evaluate(), sized at parse time so evaluation never allocates.
  std::vector<std::pair<int, int>> stack_;
};

}  // namespace ctsync::rules

// conntrack-style filters for ctsnap (the options `conntrack -L` takes): protocol, family,
// original/reply addresses (with an optional /prefix) and ports, TCP state, status bits,
// mark[/mask], zone, NAT kind. A flow matches when it matches every option given.
// Owned by tools/ctsnap. Plain data; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/conntrack/flow.h"
#include "core/net/ip_address.h"

namespace ctsync::ctsnap {

struct FlowFilter {
  std::optional<uint8_t> proto;
  std::optional<Family> family;
  std::optional<IpPrefix> orig_src, orig_dst, reply_src, reply_dst;
  std::optional<uint16_t> orig_sport, orig_dport, reply_sport, reply_dport;
  std::optional<TcpState> state;
  uint32_t status_all = 0;    // every bit must be set
  bool status_unset = false;  // UNSET: none of ASSURED, SEEN_REPLY, FIXED_TIMEOUT, EXPECTED
  std::optional<uint32_t> mark;
  uint32_t mark_mask = ~0u;
  std::optional<uint16_t> zone;
  bool src_nat = false, dst_nat = false, any_nat = false;

  bool Matches(const Flow& f) const;
};

// Consumes the filter option at args[*i] (and its value), advancing *i past what it used.
// Returns false when args[*i] is not a filter option; an error for a bad value, naming the
// option and the word.
absl::StatusOr<bool> ParseFilterOption(const std::vector<std::string>& args, size_t* i,
                                       FlowFilter* filter);

// One line per option, for usage text.
const char* FilterUsage();

}  // namespace ctsync::ctsnap

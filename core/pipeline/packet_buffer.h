// One packet in flight through the hooks: its bytes (owned: NAT and helpers rewrite them),
// the parse of those bytes, and the metadata the kernel keeps in the skb (interfaces,
// nfmark, the conntrack attachment, the fragment layout to restore on output).
// Owned by the pipeline for the duration of one packet; single thread.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/types/span.h"
#include "core/conntrack/ct_info.h"
#include "core/packet/defrag.h"
#include "core/packet/packet_parser.h"
#include "core/packet/parsed_packet.h"

namespace ctsync {

struct PacketBuffer {
  std::vector<uint8_t> frame;
  ParsedPacket pkt;
  bool l4_malformed = false;  // L3 fine, L4 header unusable: tracked as INVALID
  int in_iface = -1;
  int out_iface = -1;
  uint32_t mark = 0;  // skb->mark
  CtTemplate tmpl;
  CtAttachment ct;
  std::optional<FragmentLayout> frag_layout;  // set when the packet was reassembled
  IpAddress next_hop;
  bool locally_generated = false;

  absl::Span<const uint8_t> bytes() const { return frame; }
  // Parses `frame` again after a rewrite that may move headers (payload length changes).
  bool Reparse() {
    ParsedPacket p;
    const ParseResult r = ParseEthernet(frame, &p);
    if (!r.ok()) return false;
    pkt = p;
    return true;
  }
};

}  // namespace ctsync

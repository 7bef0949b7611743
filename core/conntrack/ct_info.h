// How a packet relates to its flow: the kernel's enum ip_conntrack_info plus the flow the
// packet is attached to (skb->_nfct). Set by ConntrackEngine::In, read by rules (ctstate,
// ctdir), NAT and confirmation. A plain value carried with one packet.
#pragma once

#include <cstdint>

#include "core/conntrack/flow.h"

namespace ctsync {

// Numbering follows the kernel (IP_CT_ESTABLISHED = 0, ..., IP_CT_UNTRACKED = 7); kNone is
// "no conntrack": the packet is INVALID.
enum class CtInfo : uint8_t {
  kEstablished = 0,
  kRelated = 1,
  kNew = 2,
  kEstablishedReply = 3,
  kRelatedReply = 4,
  kUntracked = 7,
  kNone = 8,
};

inline bool CtInfoIsReply(CtInfo i) {
  return i == CtInfo::kEstablishedReply || i == CtInfo::kRelatedReply;
}

struct CtAttachment {
  FlowIndex flow = kNoFlow;
  CtInfo info = CtInfo::kNone;

  bool tracked() const { return flow != kNoFlow; }
  Direction dir() const { return CtInfoIsReply(info) ? Direction::kReply : Direction::kOriginal; }
};

// What the raw table's CT target attached before conntrack ran (the kernel's template
// conntrack): NOTRACK, a zone, a helper.
struct CtTemplate {
  bool notrack = false;
  uint16_t zone = 0;
  FlowHelper helper = FlowHelper::kNone;
};

}  // namespace ctsync

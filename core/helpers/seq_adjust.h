// TCP sequence adjustment after a helper changed a segment's payload length under NAT (the
// kernel's nf_conntrack_seqadj.c): later segments of that direction get their sequence
// numbers moved, and the other direction's ACKs and SACK blocks moved back.
// Pure functions over one packet and the flow's SeqAdjust; datapath thread only.
#pragma once

#include <cstdint>

#include "core/conntrack/flow.h"
#include "core/pipeline/packet_buffer.h"

namespace ctsync {

// nf_ct_seqadj_set: records that the segment starting at `seq` (direction `dir`) grew by
// `offset` bytes. Returns false when offset is 0 (nothing to record).
bool SeqAdjustSet(SeqAdjust& sa, Direction dir, uint32_t seq, int32_t offset);

// nf_ct_seq_adjust: rewrites the TCP seq, ack and SACK blocks of the packet in `b` (TCP,
// direction `dir`), updating the checksum incrementally. False if the packet is malformed.
bool SeqAdjustPacket(PacketBuffer& b, const SeqAdjust& sa, Direction dir);

}  // namespace ctsync

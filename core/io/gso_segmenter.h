// Software segmentation of GSO/GRO super-frames. An AF_PACKET tap sees a sender's TSO /
// USO skb (veth peers) or a NIC's GRO aggregate before it is cut into wire-size packets, so
// a 64 KiB "frame" can arrive. The datapath must see what the wire carries: this splits
// such a frame, given the gso_size the kernel reports in the virtio_net_hdr, into the
// segments skb_segment would produce (TCP: consecutive sequence numbers, FIN/PSH on the
// last segment only, CWR on the first only; IPv4 ids counting up; every length and
// checksum recomputed). UDP GSO (UDP_L4) becomes datagrams of gso_size payload each.
// Stateless; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/types/span.h"

namespace ctsync {

enum class GsoKind { kTcp, kUdp };

// Calls `fn` with each segment of `frame` (built in *scratch, valid during the call) and
// returns how many there were. Returns 0 and calls nothing when the frame is not a parsable
// unfragmented TCP/UDP (as `kind` says) Ethernet frame, or gso_size is 0.
size_t SegmentGsoFrame(absl::Span<const uint8_t> frame, GsoKind kind, uint16_t gso_size,
                       std::vector<uint8_t>* scratch,
                       absl::FunctionRef<void(absl::Span<const uint8_t>)> fn);

}  // namespace ctsync

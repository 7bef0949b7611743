// A raw Ethernet port on one interface: an AF_PACKET socket with a memory-mapped
// TPACKET_V3 receive ring and a TPACKET_V3 transmit ring (or plain send() per frame).
// ctsyncd opens one per topology interface and drives it from the datapath loop.
//
// Choices, and why:
//  - RX: TPACKET_V3 blocks. The kernel fills whole blocks and hands them over when full or
//    after `rx_block_timeout_ms`, so one wake-up yields many frames. That timeout is the
//    extra latency a lone frame can see; 1 ms keeps it below typical RTT noise.
//  - TX: a TPACKET_V3 frame ring filled by Send() and kicked by one send() per batch
//    (kRing, the default), or one send() per frame (kSendto). Measured on a veth pair, one
//    thread sending on one end and receiving on the other (tests/core/io/
//    netns_packet_socket_test.cc, DISABLED_ThroughputOnVethPair; Release build, shared
//    2-core VM, best of several runs): 64-byte frames in batches of 64: ring ~1.0 M
//    frames/s, sendto ~0.7-0.9 M; ring with batches of 1 ~0.8 M. On veth the receiver's
//    work runs inside the sender's syscall, so the ring's saving (one syscall per batch
//    instead of per frame) is diluted; it grows with cheaper drivers. kSendto stays as a
//    fallback (e.g. kernels without TX ring support for V3). PACKET_QDISC_BYPASS gained
//    nothing measurable and skips tc, so it is off by default.
//  - PACKET_IGNORE_OUTGOING: the socket never sees its own (or anyone's) transmissions,
//    so forwarded frames are not read back as new input.
//  - Promiscuous mode stays off, so a real NIC filters unicast for other MACs (the
//    Topology MAC must be the interface's real one; veth delivers everything regardless,
//    and the responder and pipeline drop what is not for us).
//  - Frames the sender left with CHECKSUM_PARTIAL (veth peers, local senders with offload)
//    arrive with only the pseudo-header sum in the L4 checksum; they are completed in place
//    so the engine's checksum verification sees what the wire would carry.
//  - GSO/GRO super-frames (a veth peer's TSO skb, a NIC's GRO aggregate) are cut back into
//    wire-size segments (gso_segmenter.h) using the virtio_net_hdr the kernel puts in front
//    of each frame (PACKET_VNET_HDR); the same header says exactly where a partial
//    checksum goes. Transmitted frames carry a zero header (no offload requested).
//  - Hardware-stripped VLAN tags are put back, so the parser sees the frame as sent.
//
// Owner: one datapath thread. Not thread-safe. The fd is non-blocking; poll it for EPOLLIN.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/io/frame_port.h"
#include "core/pipeline/topology.h"

namespace ctsync {

enum class TxMode {
  kRing,    // TPACKET_V3 TX ring; Send() queues, Flush() kicks the kernel once.
  kSendto,  // one send() per Send(); Flush() does nothing.
};

struct PacketSocketOptions {
  std::string interface;  // required: the interface name ("lan0")

  // RX ring: rx_block_count blocks of rx_block_size bytes (a power-of-two multiple of the
  // page size). 16 x 256 KiB holds ~2,700 full-size frames in flight.
  uint32_t rx_block_size = 1u << 18;
  uint32_t rx_block_count = 16;
  uint32_t rx_block_timeout_ms = 1;

  TxMode tx_mode = TxMode::kRing;
  // TX ring: slots of tx_frame_size bytes (header + frame; 2048 holds a 1500-MTU frame).
  uint32_t tx_frame_size = 2048;
  uint32_t tx_frame_count = 1024;

  // PACKET_QDISC_BYPASS: hand frames straight to the driver (no tc, no queue backlog).
  bool qdisc_bypass = false;
  // Complete CHECKSUM_PARTIAL L4 checksums on receive (see the header comment).
  bool complete_partial_checksums = true;
  // PACKET_VNET_HDR: learn GSO sizes and checksum offsets from the kernel, and segment
  // super-frames. Without it, such frames reach the pipeline whole (and exceed the MTU).
  bool vnet_header = true;
};

#define CTSYNC_PACKET_SOCKET_COUNTERS(X)                                          \
  X(rx_frames)          /* frames handed to the receive callback */               \
  X(rx_bytes)           /* their bytes */                                         \
  X(rx_ring_drops)      /* PACKET_STATISTICS tp_drops: the ring was full */       \
  X(rx_truncated)       /* larger than a ring block could hold: dropped */        \
  X(rx_csum_completed)  /* CHECKSUM_PARTIAL frames completed in place */          \
  X(rx_vlan_restored)   /* frames whose stripped 802.1Q tag was put back */       \
  X(rx_gso_frames)      /* super-frames cut into segments */                      \
  X(rx_gso_segments)    /* the segments they became (counted in rx_frames too) */ \
  X(rx_gso_unsupported) /* super-frames we cannot segment (UFO, not TCP/UDP) */   \
  X(tx_frames)          /* frames queued or sent */                               \
  X(tx_bytes)           /* their bytes */                                         \
  X(tx_errors)          /* send() failures and frames the kernel refused */       \
  X(tx_ring_full)       /* Send() found no free TX slot even after a flush */     \
  X(tx_too_big)         /* frame larger than a TX slot or 65535 */

struct PacketSocketCounters {
#define CTSYNC_PACKET_SOCKET_COUNTER_FIELD(name) uint64_t name = 0;
  CTSYNC_PACKET_SOCKET_COUNTERS(CTSYNC_PACKET_SOCKET_COUNTER_FIELD)
#undef CTSYNC_PACKET_SOCKET_COUNTER_FIELD
};

class PacketSocket final : public FramePort {
 public:
  // Errors: NotFound (no such interface), PermissionDenied (no CAP_NET_RAW),
  // InvalidArgument (ring geometry), Internal (any other socket/mmap failure; the message
  // names the call and errno).
  static absl::StatusOr<std::unique_ptr<PacketSocket>> Open(const PacketSocketOptions& options);
  ~PacketSocket() override;

  PacketSocket(const PacketSocket&) = delete;
  PacketSocket& operator=(const PacketSocket&) = delete;

  int fd() const override { return fd_; }
  // `max` and the result count ring frames: a GSO super-frame is one ring frame but
  // reaches `fn` as several segments.
  size_t Receive(absl::FunctionRef<void(absl::Span<const uint8_t>)> fn, size_t max) override;
  absl::Status Send(absl::Span<const uint8_t> frame) override;
  absl::Status Flush() override;

  // Adds the kernel's ring-drop count (PACKET_STATISTICS, which resets on read) to
  // counters().rx_ring_drops. Cheap; call it from a periodic tick.
  void UpdateKernelStatistics() override;

  const PacketSocketCounters& counters() const { return counters_; }
  const std::string& interface_name() const { return options_.interface; }
  int ifindex() const { return ifindex_; }
  const MacAddress& mac() const { return mac_; }
  int mtu() const { return mtu_; }

 private:
  PacketSocket(const PacketSocketOptions& options, int fd, int ifindex);
  absl::Status SetUp();
  // Restores the VLAN tag, completes checksums and segments one ring frame, handing the
  // result to `fn` (once, or once per segment).
  void Deliver(const uint8_t* vnet, uint8_t* frame_start, uint32_t len, uint32_t status,
               uint16_t vlan_tci, uint16_t vlan_tpid,
               absl::FunctionRef<void(absl::Span<const uint8_t>)> fn);
  void ReleaseBlock();

  PacketSocketOptions options_;
  int fd_ = -1;
  int ifindex_ = 0;
  MacAddress mac_{};
  int mtu_ = 1500;

  uint8_t* map_ = nullptr;
  size_t map_size_ = 0;
  uint8_t* rx_ring_ = nullptr;
  uint8_t* tx_ring_ = nullptr;

  // RX cursor: the block being read, the next packet in it and how many remain.
  uint32_t rx_block_ = 0;
  uint8_t* rx_packet_ = nullptr;
  uint32_t rx_left_ = 0;

  uint32_t tx_slot_ = 0;
  uint32_t tx_pending_ = 0;

  std::vector<uint8_t> scratch_;  // VLAN re-insertion
  std::vector<uint8_t> segment_;  // GSO segments
  PacketSocketCounters counters_;
};

}  // namespace ctsync

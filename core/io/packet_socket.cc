#include "core/io/packet_socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/io/gso_segmenter.h"
#include "core/packet/checksum.h"
#include "core/packet/packet_parser.h"
#include "core/util/status_macros.h"

namespace ctsync {
namespace {

// Where frame data starts in a TX slot when PACKET_TX_HAS_OFF is not used.
constexpr uint32_t kTxDataOffset = TPACKET_ALIGN(sizeof(tpacket3_hdr));
constexpr uint32_t kRxNominalFrameSize = 2048;  // V3 ignores it beyond the geometry check
// struct virtio_net_hdr from <linux/virtio_net.h>, which C++ cannot include (a field is
// named `class`). Little-endian fields, as the kernel writes them for packet sockets on
// little-endian hosts.
struct VnetHeader {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
};
static_assert(sizeof(VnetHeader) == 10);
constexpr uint32_t kVnetHeaderLen = sizeof(VnetHeader);
constexpr uint8_t kVnetNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
constexpr uint8_t kGsoNone = 0;        // VIRTIO_NET_HDR_GSO_*
constexpr uint8_t kGsoTcpV4 = 1;
constexpr uint8_t kGsoUdp = 3;  // UFO: IP fragmentation, not handled
constexpr uint8_t kGsoTcpV6 = 4;
constexpr uint8_t kGsoEcn = 0x80;

absl::Status ErrnoStatus(const char* call, const std::string& iface, int err) {
  const std::string msg = absl::StrCat(call, " on ", iface, ": ", strerror(err));
  if (err == EPERM || err == EACCES)
    return absl::PermissionDeniedError(absl::StrCat(msg, " (AF_PACKET needs CAP_NET_RAW)"));
  if (err == ENODEV || err == ENXIO) return absl::NotFoundError(msg);
  return absl::InternalError(msg);
}

bool IsPowerOfTwo(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

uint32_t TxBlockSize(uint32_t frame_size) {
  const uint32_t page = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  return std::max(page, frame_size);
}

}  // namespace

PacketSocket::PacketSocket(const PacketSocketOptions& options, int fd, int ifindex)
    : options_(options), fd_(fd), ifindex_(ifindex) {}

PacketSocket::~PacketSocket() {
  if (map_ != nullptr) munmap(map_, map_size_);
  if (fd_ >= 0) close(fd_);
}

absl::StatusOr<std::unique_ptr<PacketSocket>> PacketSocket::Open(
    const PacketSocketOptions& options) {
  const std::string& name = options.interface;
  if (name.empty() || name.size() >= IFNAMSIZ)
    return absl::InvalidArgumentError(absl::StrCat("bad interface name '", name, "'"));
  const uint32_t page = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  if (options.rx_block_size < page || options.rx_block_size % page != 0 ||
      options.rx_block_count == 0)
    return absl::InvalidArgumentError(absl::StrCat("rx ring for ", name,
                                                   ": block size must be a multiple of ", page,
                                                   " and the block count positive"));
  if (options.tx_mode == TxMode::kRing &&
      (!IsPowerOfTwo(options.tx_frame_size) || options.tx_frame_size < 256 ||
       options.tx_frame_count == 0))
    return absl::InvalidArgumentError(absl::StrCat(
        "tx ring for ", name, ": frame size must be a power of two >= 256, count positive"));

  const unsigned ifindex = if_nametoindex(name.c_str());
  if (ifindex == 0) return absl::NotFoundError(absl::StrCat("no such interface '", name, "'"));

  // Protocol 0: the socket receives nothing until bind() names the interface, so frames of
  // other interfaces never enter the ring.
  const int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("socket(AF_PACKET)", name, errno);
  std::unique_ptr<PacketSocket> s(new PacketSocket(options, fd, static_cast<int>(ifindex)));
  RETURN_IF_ERROR(s->SetUp());
  return s;
}

absl::Status PacketSocket::SetUp() {
  const std::string& name = options_.interface;
  auto set_int = [&](int level, int opt, int value, const char* what) -> absl::Status {
    if (setsockopt(fd_, level, opt, &value, sizeof(value)) != 0)
      return ErrnoStatus(what, name, errno);
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(set_int(SOL_PACKET, PACKET_VERSION, TPACKET_V3, "PACKET_VERSION"));
  // Must precede the rings: the kernel sizes ring slots with the header in them.
  if (options_.vnet_header)
    RETURN_IF_ERROR(set_int(SOL_PACKET, PACKET_VNET_HDR, 1, "PACKET_VNET_HDR"));

  tpacket_req3 rx{};
  rx.tp_block_size = options_.rx_block_size;
  rx.tp_block_nr = options_.rx_block_count;
  rx.tp_frame_size = kRxNominalFrameSize;
  rx.tp_frame_nr = (rx.tp_block_size / rx.tp_frame_size) * rx.tp_block_nr;
  rx.tp_retire_blk_tov = options_.rx_block_timeout_ms;
  if (setsockopt(fd_, SOL_PACKET, PACKET_RX_RING, &rx, sizeof(rx)) != 0)
    return ErrnoStatus("PACKET_RX_RING", name, errno);
  const size_t rx_size = size_t{rx.tp_block_size} * rx.tp_block_nr;

  size_t tx_size = 0;
  if (options_.tx_mode == TxMode::kRing) {
    tpacket_req3 tx{};
    tx.tp_block_size = TxBlockSize(options_.tx_frame_size);
    const uint32_t per_block = tx.tp_block_size / options_.tx_frame_size;
    tx.tp_block_nr = (options_.tx_frame_count + per_block - 1) / per_block;
    tx.tp_frame_size = options_.tx_frame_size;
    tx.tp_frame_nr = per_block * tx.tp_block_nr;
    options_.tx_frame_count = tx.tp_frame_nr;
    if (setsockopt(fd_, SOL_PACKET, PACKET_TX_RING, &tx, sizeof(tx)) != 0)
      return ErrnoStatus("PACKET_TX_RING", name, errno);
    tx_size = size_t{tx.tp_block_size} * tx.tp_block_nr;
  }

  // The kernel lays the RX ring first and the TX ring right after it in one mapping.
  map_size_ = rx_size + tx_size;
  void* m = mmap(nullptr, map_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (m == MAP_FAILED) {
    map_ = nullptr;
    return ErrnoStatus("mmap(packet ring)", name, errno);
  }
  map_ = static_cast<uint8_t*>(m);
  rx_ring_ = map_;
  tx_ring_ = tx_size > 0 ? map_ + rx_size : nullptr;

  RETURN_IF_ERROR(set_int(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING"));
  if (options_.qdisc_bypass)
    RETURN_IF_ERROR(set_int(SOL_PACKET, PACKET_QDISC_BYPASS, 1, "PACKET_QDISC_BYPASS"));

  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  if (ioctl(fd_, SIOCGIFHWADDR, &ifr) != 0) return ErrnoStatus("SIOCGIFHWADDR", name, errno);
  std::memcpy(mac_.data(), ifr.ifr_hwaddr.sa_data, 6);
  if (ioctl(fd_, SIOCGIFMTU, &ifr) != 0) return ErrnoStatus("SIOCGIFMTU", name, errno);
  mtu_ = ifr.ifr_mtu;

  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = ifindex_;
  if (bind(fd_, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) != 0)
    return ErrnoStatus("bind(AF_PACKET)", name, errno);
  return absl::OkStatus();
}

void PacketSocket::Deliver(const uint8_t* vnet, uint8_t* data, uint32_t len, uint32_t status,
                           uint16_t vlan_tci, uint16_t vlan_tpid,
                           absl::FunctionRef<void(absl::Span<const uint8_t>)> fn) {
  uint8_t* frame = data;
  if ((status & TP_STATUS_VLAN_VALID) && len >= 12) {
    // The driver moved the outer tag into metadata; put it back where it was on the wire.
    scratch_.resize(len + 4);
    std::memcpy(scratch_.data(), data, 12);
    const uint16_t tpid = (status & TP_STATUS_VLAN_TPID_VALID) ? vlan_tpid : ETH_P_8021Q;
    StoreBe16(scratch_.data() + 12, tpid);
    StoreBe16(scratch_.data() + 14, vlan_tci);
    std::memcpy(scratch_.data() + 16, data + 12, len - 12);
    frame = scratch_.data();
    len += 4;
    ++counters_.rx_vlan_restored;
  }
  VnetHeader vh{};
  if (vnet != nullptr) std::memcpy(&vh, vnet, sizeof(vh));  // host order on x86/arm64 (LE)
  const uint8_t gso_type = vh.gso_type & ~kGsoEcn;
  if (gso_type != kGsoNone) {
    const GsoKind kind =
        (gso_type == kGsoTcpV4 || gso_type == kGsoTcpV6) ? GsoKind::kTcp : GsoKind::kUdp;
    size_t n = 0;
    if (gso_type != kGsoUdp) {  // UFO means IP fragments: not handled
      n = SegmentGsoFrame(absl::MakeConstSpan(frame, len), kind, vh.gso_size, &segment_,
                          [&](absl::Span<const uint8_t> seg) {
                            ++counters_.rx_frames;
                            counters_.rx_bytes += seg.size();
                            fn(seg);
                          });
    }
    if (n == 0) {
      ++counters_.rx_gso_unsupported;
    } else {
      ++counters_.rx_gso_frames;
      counters_.rx_gso_segments += n;
    }
    return;
  }
  if (options_.complete_partial_checksums) {
    if (vh.flags & kVnetNeedsCsum) {
      // The field holds the pseudo-header sum; the rest is summed from csum_start on.
      const uint32_t start = vh.csum_start, field = start + vh.csum_offset;
      if (start < len && field + 2 <= len) {
        uint16_t sum = static_cast<uint16_t>(
            ~FoldChecksum(OnesComplementSum(absl::MakeConstSpan(frame + start, len - start))));
        if (sum == 0 && vh.csum_offset == 6) sum = 0xffff;  // UDP: 0 means "no checksum"
        StoreBe16(frame + field, sum);
        ++counters_.rx_csum_completed;
      }
    } else if (vnet == nullptr && (status & TP_STATUS_CSUMNOTREADY)) {
      ParsedPacket p;
      if (ParseEthernet(absl::MakeConstSpan(frame, len), &p).ok() && !p.is_fragment &&
          RecomputeL4Checksum(p, absl::MakeSpan(frame, len)))
        ++counters_.rx_csum_completed;
    }
  }
  ++counters_.rx_frames;
  counters_.rx_bytes += len;
  fn(absl::MakeConstSpan(frame, len));
}

void PacketSocket::ReleaseBlock() {
  auto* bd =
      reinterpret_cast<tpacket_block_desc*>(rx_ring_ + size_t{rx_block_} * options_.rx_block_size);
  __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
  rx_block_ = (rx_block_ + 1) % options_.rx_block_count;
  rx_packet_ = nullptr;
  rx_left_ = 0;
}

size_t PacketSocket::Receive(absl::FunctionRef<void(absl::Span<const uint8_t>)> fn, size_t max) {
  size_t n = 0;
  while (n < max) {
    if (rx_packet_ == nullptr) {
      auto* bd = reinterpret_cast<tpacket_block_desc*>(rx_ring_ +
                                                       size_t{rx_block_} * options_.rx_block_size);
      if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) break;
      rx_left_ = bd->hdr.bh1.num_pkts;
      if (rx_left_ == 0) {
        ReleaseBlock();
        continue;
      }
      rx_packet_ = reinterpret_cast<uint8_t*>(bd) + bd->hdr.bh1.offset_to_first_pkt;
    }
    auto* h = reinterpret_cast<tpacket3_hdr*>(rx_packet_);
    if (h->tp_snaplen < h->tp_len) {
      ++counters_.rx_truncated;
    } else {
      // With PACKET_VNET_HDR the kernel writes the header right before the MAC header.
      const uint8_t* vnet =
          options_.vnet_header ? rx_packet_ + h->tp_mac - kVnetHeaderLen : nullptr;
      Deliver(vnet, rx_packet_ + h->tp_mac, h->tp_snaplen, h->tp_status, h->hv1.tp_vlan_tci,
              h->hv1.tp_vlan_tpid, fn);
      ++n;
    }
    if (--rx_left_ == 0) {
      ReleaseBlock();
    } else {
      rx_packet_ += h->tp_next_offset;
    }
  }
  return n;
}

absl::Status PacketSocket::Send(absl::Span<const uint8_t> frame) {
  const uint32_t vnet_len = options_.vnet_header ? kVnetHeaderLen : 0;
  if (options_.tx_mode == TxMode::kSendto) {
    // A zero virtio_net_hdr in front: no checksum or segmentation offload requested.
    VnetHeader none{};
    iovec iov[2] = {{&none, vnet_len}, {const_cast<uint8_t*>(frame.data()), frame.size()}};
    msghdr msg{};
    msg.msg_iov = vnet_len > 0 ? iov : iov + 1;
    msg.msg_iovlen = vnet_len > 0 ? 2 : 1;
    if (sendmsg(fd_, &msg, MSG_DONTWAIT) < 0) {
      ++counters_.tx_errors;
      return ErrnoStatus("send", options_.interface, errno);
    }
    ++counters_.tx_frames;
    counters_.tx_bytes += frame.size();
    return absl::OkStatus();
  }
  if (frame.size() + vnet_len + kTxDataOffset > options_.tx_frame_size) {
    ++counters_.tx_too_big;
    return absl::InvalidArgumentError(
        absl::StrCat("frame of ", frame.size(), " bytes exceeds the tx slot"));
  }
  auto* h = reinterpret_cast<tpacket3_hdr*>(tx_ring_ + size_t{tx_slot_} * options_.tx_frame_size);
  uint32_t status = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
  if (status != TP_STATUS_AVAILABLE && !(status & TP_STATUS_WRONG_FORMAT)) {
    // The slot is still queued or in flight: push what is queued and look again.
    (void)Flush();
    status = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
    if (status != TP_STATUS_AVAILABLE && !(status & TP_STATUS_WRONG_FORMAT)) {
      ++counters_.tx_ring_full;
      return absl::UnavailableError(absl::StrCat("tx ring of ", options_.interface, " full"));
    }
  }
  if (status & TP_STATUS_WRONG_FORMAT) ++counters_.tx_errors;  // the previous user of the slot
  uint8_t* slot_data = reinterpret_cast<uint8_t*>(h) + kTxDataOffset;
  std::memset(slot_data, 0, vnet_len);
  std::memcpy(slot_data + vnet_len, frame.data(), frame.size());
  h->tp_len = static_cast<uint32_t>(frame.size() + vnet_len);
  h->tp_snaplen = h->tp_len;
  h->tp_next_offset = 0;
  __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
  tx_slot_ = (tx_slot_ + 1) % options_.tx_frame_count;
  ++tx_pending_;
  ++counters_.tx_frames;
  counters_.tx_bytes += frame.size();
  return absl::OkStatus();
}

absl::Status PacketSocket::Flush() {
  if (tx_pending_ == 0) return absl::OkStatus();
  if (send(fd_, nullptr, 0, MSG_DONTWAIT) < 0) {
    const int err = errno;
    // Frames stay marked SEND_REQUEST; the next flush sends them.
    if (err == EAGAIN || err == ENOBUFS)
      return absl::UnavailableError(absl::StrCat("tx ring of ", options_.interface, " busy"));
    ++counters_.tx_errors;
    return ErrnoStatus("send(tx ring)", options_.interface, err);
  }
  tx_pending_ = 0;
  return absl::OkStatus();
}

void PacketSocket::UpdateKernelStatistics() {
  tpacket_stats_v3 st{};
  socklen_t len = sizeof(st);
  if (getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0)
    counters_.rx_ring_drops += st.tp_drops;
}

}  // namespace ctsync

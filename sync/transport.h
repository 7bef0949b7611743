// SyncChannel: the seam between the replicator and the network. A channel moves opaque,
// already authenticated datagrams (see wire.h) to every peer it reaches and hands received
// ones to a callback. Implementations: UdpUnicastChannel, UdpMulticastChannel
// (udp_channel.h); LinkSet (link_set.h) bundles several with fallback. Tests use fakes.
//
// Threads: a channel belongs to the thread running its boost::asio::io_context; Send,
// SetReceiver and the receive callback all run there. Delivery is best effort: the
// replicator's sequence numbers, acks and retransmissions make it reliable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/types/span.h"

namespace ctsync::sync {

struct ChannelStats {
  uint64_t sent = 0;
  uint64_t sent_bytes = 0;
  uint64_t send_errors = 0;  // counted drops: the replicator repairs them
  uint64_t received = 0;
  uint64_t received_bytes = 0;
  uint64_t receive_errors = 0;
};

class SyncChannel {
 public:
  using ReceiveFn = std::function<void(absl::Span<const uint8_t>)>;

  virtual ~SyncChannel() = default;
  // Sends one datagram to every peer of the channel. Never blocks for long; a failure is
  // counted, not returned (the reliability layer owns recovery).
  virtual void Send(absl::Span<const uint8_t> datagram) = 0;
  // Installs the receive callback and starts receiving.
  virtual void SetReceiver(ReceiveFn fn) = 0;
  virtual const ChannelStats& stats() const = 0;
  // Largest datagram (wire header and tag included) the link carries without IP
  // fragmentation: the replicator's mtu. 1472 = 1500-byte Ethernet minus IPv4 and UDP.
  virtual size_t max_datagram() const { return 1472; }
  virtual std::string name() const = 0;
};

}  // namespace ctsync::sync

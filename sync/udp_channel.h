// UDP transports for sync datagrams on Boost.Asio: unicast to a list of peers, or one
// multicast group on a chosen interface (conntrackd's "UDP" and "Multicast" sections).
//
// Receiving drains the socket (non-blocking reads until it is empty) on each wake-up, so a
// burst costs one reactor round trip, not one per datagram. Sending is synchronous on the
// io thread; a full socket buffer is waited out briefly, then counted as a send error.
//
// Threads: owned by the thread running the io_context (see transport.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/udp.hpp"
#include "sync/transport.h"

namespace ctsync::sync {

struct UdpUnicastOptions {
  std::string bind_address = "0.0.0.0";
  uint16_t port = 3780;  // 0: an ephemeral port (tests); see local_port()
  std::vector<std::string> peers;  // "address:port"
  int socket_buffer_bytes = 4 << 20;  // SO_SNDBUF / SO_RCVBUF (capped by the kernel)
};

struct UdpMulticastOptions {
  std::string group = "225.0.0.50";
  uint16_t port = 3780;
  // Local IPv4 address of the interface to send and join on ("0.0.0.0": the kernel's pick).
  std::string interface_address = "0.0.0.0";
  bool loopback = false;  // deliver to listeners on this host too (tests)
  int ttl = 1;
  int socket_buffer_bytes = 4 << 20;
};

class UdpChannelBase : public SyncChannel {
 public:
  ~UdpChannelBase() override;
  void Send(absl::Span<const uint8_t> datagram) override;
  void SetReceiver(ReceiveFn fn) override;
  const ChannelStats& stats() const override { return stats_; }
  uint16_t local_port() const;
  // From the MTU of the interface that holds the bound address (65536 on loopback), minus
  // the IP and UDP headers; 1472 when bound to a wildcard address or the MTU is unknown.
  size_t max_datagram() const override { return max_datagram_; }

 protected:
  explicit UdpChannelBase(boost::asio::io_context& io);
  absl::Status Open(const boost::asio::ip::udp::endpoint& bind, bool reuse, int buffer_bytes);
  void SendTo(absl::Span<const uint8_t> d, const boost::asio::ip::udp::endpoint& to);
  virtual void SendAll(absl::Span<const uint8_t> d) = 0;

  boost::asio::ip::udp::socket socket_;

 private:
  void ArmReceive();
  void Drain();

  ReceiveFn receiver_;
  std::vector<uint8_t> rx_;
  size_t max_datagram_ = 1472;
  boost::asio::ip::udp::endpoint from_;
  ChannelStats stats_;
};

class UdpUnicastChannel final : public UdpChannelBase {
 public:
  static absl::StatusOr<std::unique_ptr<UdpUnicastChannel>> Create(
      boost::asio::io_context& io, const UdpUnicastOptions& options);
  // Replaces the peer list (e.g. once ephemeral ports are known).
  void SetPeers(std::vector<boost::asio::ip::udp::endpoint> peers) { peers_ = std::move(peers); }
  std::string name() const override { return "udp"; }

 private:
  using UdpChannelBase::UdpChannelBase;
  void SendAll(absl::Span<const uint8_t> d) override;
  std::vector<boost::asio::ip::udp::endpoint> peers_;
};

class UdpMulticastChannel final : public UdpChannelBase {
 public:
  static absl::StatusOr<std::unique_ptr<UdpMulticastChannel>> Create(
      boost::asio::io_context& io, const UdpMulticastOptions& options);
  std::string name() const override { return "multicast"; }

 private:
  using UdpChannelBase::UdpChannelBase;
  void SendAll(absl::Span<const uint8_t> d) override;
  boost::asio::ip::udp::endpoint group_;
};

// "a.b.c.d:port" -> endpoint.
absl::StatusOr<boost::asio::ip::udp::endpoint> ParseUdpEndpoint(const std::string& text);

}  // namespace ctsync::sync

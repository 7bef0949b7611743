// TCP transport for sync datagrams on Boost.Asio: each datagram travels as one frame
// (4-byte big-endian length, then the datagram) over every established connection. The
// channel listens for peers and also connects to the peers it is given, reconnecting every
// `reconnect_interval` while a connection is down. Configure the peer list on one side of a
// pair only: with both, each datagram arrives twice (the replay window drops the copy).
//
// A frame longer than the largest datagram closes the connection (counted as a receive
// error): a peer speaking garbage gets no buffer of its choosing.
//
// Threads: owned by the thread running the io_context (see transport.h).
#pragma once

#include <deque>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/steady_timer.hpp"
#include "sync/transport.h"

namespace ctsync::sync {

struct TcpChannelOptions {
  std::string listen_address = "0.0.0.0";
  uint16_t port = 3781;            // 0: an ephemeral port (tests); see local_port()
  std::vector<std::string> peers;  // "address:port" to connect to
  int reconnect_interval_ms = 200;
  // Frames queued per connection before new ones are dropped (the reliability layer repairs).
  size_t max_queued_frames = 65536;
};

class TcpChannel final : public SyncChannel {
 public:
  static absl::StatusOr<std::unique_ptr<TcpChannel>> Create(boost::asio::io_context& io,
                                                            const TcpChannelOptions& options);
  ~TcpChannel() override;

  void Send(absl::Span<const uint8_t> datagram) override;
  void SetReceiver(ReceiveFn fn) override { receiver_ = std::move(fn); }
  const ChannelStats& stats() const override { return stats_; }
  std::string name() const override { return "tcp"; }

  uint16_t local_port() const;
  size_t connections() const { return conns_.size(); }
  // Replaces the peers to connect to (e.g. once ephemeral ports are known).
  void SetPeers(std::vector<boost::asio::ip::tcp::endpoint> peers);

 private:
  struct Conn;
  struct Outgoing {
    boost::asio::ip::tcp::endpoint peer;
    std::weak_ptr<Conn> conn;
    bool connecting = false;
  };

  TcpChannel(boost::asio::io_context& io, const TcpChannelOptions& options);
  void Accept();
  void Connect(Outgoing& out);
  void ScheduleReconnect();
  std::shared_ptr<Conn> Adopt(boost::asio::ip::tcp::socket socket);
  void ReadHeader(const std::shared_ptr<Conn>& c);
  void ReadBody(const std::shared_ptr<Conn>& c, uint32_t len);
  void Write(const std::shared_ptr<Conn>& c);
  void Close(const std::shared_ptr<Conn>& c);

  boost::asio::io_context& io_;
  TcpChannelOptions options_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer reconnect_timer_;
  std::list<std::shared_ptr<Conn>> conns_;
  std::list<Outgoing> outgoing_;
  ReceiveFn receiver_;
  ChannelStats stats_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // guards late callbacks
};

}  // namespace ctsync::sync

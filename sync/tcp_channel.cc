#include "sync/tcp_channel.h"

#include "absl/strings/str_cat.h"
#include "boost/asio/read.hpp"
#include "boost/asio/write.hpp"
#include "sync/udp_channel.h"
#include "sync/wire.h"

namespace ctsync::sync {

namespace asio = boost::asio;
using asio::ip::tcp;

struct TcpChannel::Conn {
  explicit Conn(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;
  uint8_t header[4];
  std::vector<uint8_t> body;
  std::deque<std::string> queue;  // framed, front is being written
  bool open = true;
};

absl::StatusOr<std::unique_ptr<TcpChannel>> TcpChannel::Create(asio::io_context& io,
                                                               const TcpChannelOptions& options) {
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(options.listen_address, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad listen address '", options.listen_address, "'"));
  }
  std::vector<tcp::endpoint> peers;
  for (const std::string& p : options.peers) {
    auto ep = ParseUdpEndpoint(p);  // same "address:port" syntax
    if (!ep.ok()) return ep.status();
    peers.emplace_back(ep->address(), ep->port());
  }
  std::unique_ptr<TcpChannel> ch(new TcpChannel(io, options));
  const tcp::endpoint bind(addr, options.port);
  ch->acceptor_.open(bind.protocol(), ec);
  if (!ec) ch->acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) ch->acceptor_.bind(bind, ec);
  if (!ec) ch->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("tcp listen on ", options.listen_address, ":", options.port, ": ",
                     ec.message()));
  }
  ch->Accept();
  ch->SetPeers(std::move(peers));
  return ch;
}

TcpChannel::TcpChannel(asio::io_context& io, const TcpChannelOptions& options)
    : io_(io), options_(options), acceptor_(io), reconnect_timer_(io) {}

TcpChannel::~TcpChannel() {
  *alive_ = false;
  boost::system::error_code ec;
  acceptor_.close(ec);
  reconnect_timer_.cancel();
  for (auto& c : conns_) c->socket.close(ec);
}

uint16_t TcpChannel::local_port() const {
  boost::system::error_code ec;
  return acceptor_.local_endpoint(ec).port();
}

void TcpChannel::SetPeers(std::vector<tcp::endpoint> peers) {
  outgoing_.clear();
  for (const tcp::endpoint& p : peers) outgoing_.push_back(Outgoing{p, {}, false});
  for (Outgoing& o : outgoing_) Connect(o);
  ScheduleReconnect();
}

void TcpChannel::Accept() {
  acceptor_.async_accept([this, alive = alive_](const boost::system::error_code& ec,
                                                tcp::socket s) {
    if (!*alive || ec == asio::error::operation_aborted) return;
    if (!ec) Adopt(std::move(s));
    Accept();
  });
}

void TcpChannel::Connect(Outgoing& out) {
  if (out.connecting || !out.conn.expired()) return;
  out.connecting = true;
  auto sock = std::make_shared<tcp::socket>(io_);
  Outgoing* o = &out;  // std::list: stable while the entry exists
  sock->async_connect(out.peer, [this, alive = alive_, sock, o](const boost::system::error_code& ec) {
    if (!*alive) return;
    bool known = false;
    for (Outgoing& x : outgoing_) known |= &x == o;
    if (!known) return;  // the peer list changed meanwhile
    o->connecting = false;
    if (!ec) o->conn = Adopt(std::move(*sock));
  });
}

void TcpChannel::ScheduleReconnect() {
  reconnect_timer_.expires_after(std::chrono::milliseconds(options_.reconnect_interval_ms));
  reconnect_timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
    if (!*alive || ec == asio::error::operation_aborted) return;
    for (Outgoing& o : outgoing_) Connect(o);
    ScheduleReconnect();
  });
}

std::shared_ptr<TcpChannel::Conn> TcpChannel::Adopt(tcp::socket socket) {
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  auto c = std::make_shared<Conn>(std::move(socket));
  conns_.push_back(c);
  ReadHeader(c);
  return c;
}

void TcpChannel::ReadHeader(const std::shared_ptr<Conn>& c) {
  asio::async_read(c->socket, asio::buffer(c->header),
                   [this, alive = alive_, c](const boost::system::error_code& ec, size_t) {
                     if (!*alive || !c->open) return;
                     if (ec) return Close(c);
                     const uint32_t len = (uint32_t{c->header[0]} << 24) |
                                          (uint32_t{c->header[1]} << 16) |
                                          (uint32_t{c->header[2]} << 8) | c->header[3];
                     if (len == 0 || len > kMaxPayload + kWireOverhead) {
                       ++stats_.receive_errors;
                       return Close(c);
                     }
                     ReadBody(c, len);
                   });
}

void TcpChannel::ReadBody(const std::shared_ptr<Conn>& c, uint32_t len) {
  c->body.resize(len);
  asio::async_read(c->socket, asio::buffer(c->body),
                   [this, alive = alive_, c](const boost::system::error_code& ec, size_t n) {
                     if (!*alive || !c->open) return;
                     if (ec) return Close(c);
                     ++stats_.received;
                     stats_.received_bytes += n;
                     if (receiver_) receiver_({c->body.data(), n});
                     ReadHeader(c);
                   });
}

void TcpChannel::Send(absl::Span<const uint8_t> d) {
  std::string frame;
  frame.reserve(4 + d.size());
  for (int shift = 24; shift >= 0; shift -= 8)
    frame.push_back(static_cast<char>(d.size() >> shift));
  frame.append(reinterpret_cast<const char*>(d.data()), d.size());
  if (conns_.empty()) {
    ++stats_.send_errors;
    return;
  }
  for (auto& c : conns_) {
    if (c->queue.size() >= options_.max_queued_frames) {
      ++stats_.send_errors;
      continue;
    }
    c->queue.push_back(frame);
    ++stats_.sent;
    stats_.sent_bytes += d.size();
    if (c->queue.size() == 1) Write(c);
  }
}

void TcpChannel::Write(const std::shared_ptr<Conn>& c) {
  asio::async_write(c->socket, asio::buffer(c->queue.front()),
                    [this, alive = alive_, c](const boost::system::error_code& ec, size_t) {
                      if (!*alive || !c->open) return;
                      if (ec) return Close(c);
                      c->queue.pop_front();
                      if (!c->queue.empty()) Write(c);
                    });
}

void TcpChannel::Close(const std::shared_ptr<Conn>& c) {
  if (!c->open) return;
  c->open = false;
  boost::system::error_code ec;
  c->socket.close(ec);
  conns_.remove(c);  // an outgoing peer's weak_ptr expires: the timer reconnects it
}

}  // namespace ctsync::sync

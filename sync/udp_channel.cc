#include "sync/udp_channel.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "boost/asio/ip/multicast.hpp"

namespace ctsync::sync {

namespace asio = boost::asio;
using asio::ip::udp;

namespace {

constexpr size_t kMaxDatagram = 65536;
// How long a send waits for room in a full socket buffer before counting a drop.
constexpr int kSendWaitMs = 20;

absl::Status Err(const std::string& what, const boost::system::error_code& ec) {
  return absl::UnavailableError(absl::StrCat(what, ": ", ec.message()));
}

// MTU of the interface that holds `addr`, or 0 when none does (wildcard) or it is unknown.
int InterfaceMtu(const asio::ip::address& addr) {
  if (addr.is_unspecified()) return 0;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return 0;
  std::string name;
  for (ifaddrs* i = list; i != nullptr && name.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    if (addr.is_v4() && i->ifa_addr->sa_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      if (ntohl(sin->sin_addr.s_addr) == addr.to_v4().to_uint()) name = i->ifa_name;
    } else if (addr.is_v6() && i->ifa_addr->sa_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      if (std::memcmp(&sin6->sin6_addr, addr.to_v6().to_bytes().data(), 16) == 0)
        name = i->ifa_name;
    }
  }
  freeifaddrs(list);
  if (name.empty() || name.size() >= IFNAMSIZ) return 0;
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return 0;
  ifreq req{};
  std::memcpy(req.ifr_name, name.c_str(), name.size() + 1);
  const int mtu = ::ioctl(fd, SIOCGIFMTU, &req) == 0 ? req.ifr_mtu : 0;
  ::close(fd);
  return mtu;
}

}  // namespace

absl::StatusOr<udp::endpoint> ParseUdpEndpoint(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "': expected address:port"));
  }
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(text.substr(0, colon), ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("'", text, "': bad address"));
  int port = 0;
  for (char c : text.substr(colon + 1)) {
    if (c < '0' || c > '9' || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("'", text, "': bad port"));
    }
    port = port * 10 + (c - '0');
  }
  if (port == 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "': bad port"));
  }
  return udp::endpoint(addr, static_cast<uint16_t>(port));
}

UdpChannelBase::UdpChannelBase(asio::io_context& io) : socket_(io), rx_(kMaxDatagram) {}

UdpChannelBase::~UdpChannelBase() {
  boost::system::error_code ec;
  socket_.close(ec);
}

absl::Status UdpChannelBase::Open(const udp::endpoint& bind, bool reuse, int buffer_bytes) {
  boost::system::error_code ec;
  socket_.open(bind.protocol(), ec);
  if (ec) return Err("open udp socket", ec);
  if (reuse) socket_.set_option(asio::socket_base::reuse_address(true), ec);
  socket_.set_option(asio::socket_base::send_buffer_size(buffer_bytes), ec);
  socket_.set_option(asio::socket_base::receive_buffer_size(buffer_bytes), ec);
  ec.clear();
  socket_.bind(bind, ec);
  if (ec) return Err(absl::StrCat("bind ", bind.address().to_string(), ":", bind.port()), ec);
  socket_.non_blocking(true, ec);
  if (ec) return Err("non-blocking udp socket", ec);
  const size_t ip_udp = bind.address().is_v6() ? 48 : 28;
  const int mtu = InterfaceMtu(bind.address());
  // 65507: the largest UDP payload over IPv4 (and below the 64 KiB receive buffer).
  if (static_cast<size_t>(mtu) > ip_udp + 1024)
    max_datagram_ = std::min<size_t>(static_cast<size_t>(mtu) - ip_udp, 65507);
  return absl::OkStatus();
}

uint16_t UdpChannelBase::local_port() const {
  boost::system::error_code ec;
  return socket_.local_endpoint(ec).port();
}

void UdpChannelBase::Send(absl::Span<const uint8_t> d) { SendAll(d); }

void UdpChannelBase::SendTo(absl::Span<const uint8_t> d, const udp::endpoint& to) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    boost::system::error_code ec;
    socket_.send_to(asio::buffer(d.data(), d.size()), to, 0, ec);
    if (!ec) {
      ++stats_.sent;
      stats_.sent_bytes += d.size();
      return;
    }
    if (ec != asio::error::would_block || attempt == 1) break;
    pollfd p{socket_.native_handle(), POLLOUT, 0};
    ::poll(&p, 1, kSendWaitMs);
  }
  ++stats_.send_errors;
}

void UdpChannelBase::SetReceiver(ReceiveFn fn) {
  const bool start = !receiver_;
  receiver_ = std::move(fn);
  if (start) ArmReceive();
}

void UdpChannelBase::ArmReceive() {
  socket_.async_wait(udp::socket::wait_read, [this](const boost::system::error_code& ec) {
    if (ec == asio::error::operation_aborted || !socket_.is_open()) return;
    Drain();
    ArmReceive();
  });
}

void UdpChannelBase::Drain() {
  // Bounded, so a flood cannot starve the io thread's timers.
  for (int i = 0; i < 4096; ++i) {
    boost::system::error_code ec;
    const size_t n = socket_.receive_from(asio::buffer(rx_), from_, 0, ec);
    if (ec == asio::error::would_block) return;
    if (ec) {
      ++stats_.receive_errors;
      return;
    }
    ++stats_.received;
    stats_.received_bytes += n;
    if (receiver_) receiver_({rx_.data(), n});
  }
}

absl::StatusOr<std::unique_ptr<UdpUnicastChannel>> UdpUnicastChannel::Create(
    asio::io_context& io, const UdpUnicastOptions& options) {
  boost::system::error_code ec;
  const auto bind_addr = asio::ip::make_address(options.bind_address, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("bad bind address '",
                                                         options.bind_address, "'"));
  std::vector<udp::endpoint> peers;
  for (const std::string& p : options.peers) {
    auto ep = ParseUdpEndpoint(p);
    if (!ep.ok()) return ep.status();
    peers.push_back(*ep);
  }
  std::unique_ptr<UdpUnicastChannel> ch(new UdpUnicastChannel(io));
  if (absl::Status s = ch->Open(udp::endpoint(bind_addr, options.port), false,
                                options.socket_buffer_bytes);
      !s.ok()) {
    return s;
  }
  ch->peers_ = std::move(peers);
  return ch;
}

void UdpUnicastChannel::SendAll(absl::Span<const uint8_t> d) {
  for (const udp::endpoint& p : peers_) SendTo(d, p);
}

absl::StatusOr<std::unique_ptr<UdpMulticastChannel>> UdpMulticastChannel::Create(
    asio::io_context& io, const UdpMulticastOptions& options) {
  boost::system::error_code ec;
  const auto group = asio::ip::make_address(options.group, ec);
  if (ec || !group.is_v4() || !group.is_multicast()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", options.group, "' is not an IPv4 multicast group"));
  }
  const auto iface = asio::ip::make_address_v4(options.interface_address, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad multicast interface address '", options.interface_address, "'"));
  }
  std::unique_ptr<UdpMulticastChannel> ch(new UdpMulticastChannel(io));
  // Bound to the group's port on any address, so several nodes on one host (tests) share it.
  if (absl::Status s = ch->Open(udp::endpoint(udp::v4(), options.port), true,
                                options.socket_buffer_bytes);
      !s.ok()) {
    return s;
  }
  ch->socket_.set_option(asio::ip::multicast::join_group(group.to_v4(), iface), ec);
  if (ec) return Err(absl::StrCat("join ", options.group), ec);
  ch->socket_.set_option(asio::ip::multicast::outbound_interface(iface), ec);
  if (ec) return Err("multicast outbound interface", ec);
  ch->socket_.set_option(asio::ip::multicast::enable_loopback(options.loopback), ec);
  ch->socket_.set_option(asio::ip::multicast::hops(options.ttl), ec);
  ch->group_ = udp::endpoint(group, ch->local_port());
  return ch;
}

void UdpMulticastChannel::SendAll(absl::Span<const uint8_t> d) { SendTo(d, group_); }

}  // namespace ctsync::sync

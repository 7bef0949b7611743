#include "tools/ctsyncd/metrics_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ctsync::daemon {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

class MetricsServer::Impl {
 public:
  Impl(Exposition e) : exposition_(std::move(e)), acceptor_(io_) {}

  absl::Status Listen(const std::string& listen) {
    const size_t colon = listen.rfind(':');
    if (colon == std::string::npos)
      return absl::InvalidArgumentError(absl::StrCat("metrics-listen '", listen, "' needs address:port"));
    int port;
    if (!absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 || port > 65535)
      return absl::InvalidArgumentError(absl::StrCat("bad metrics port in '", listen, "'"));
    std::string host = listen.substr(0, colon);
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    boost::system::error_code ec;
    const auto addr = asio::ip::make_address(host, ec);
    if (ec) return absl::InvalidArgumentError(absl::StrCat("bad metrics address '", host, "'"));
    const tcp::endpoint ep(addr, static_cast<uint16_t>(port));
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(16, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("metrics listen ", listen, ": ", ec.message()));
    Accept();
    thread_ = std::thread([this] { io_.run(); });
    return absl::OkStatus();
  }

  ~Impl() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  uint16_t port() const {
    boost::system::error_code ec;
    return acceptor_.local_endpoint(ec).port();
  }

 private:
  void Accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (!ec) Serve(std::move(socket));
      if (acceptor_.is_open()) Accept();
    });
  }

  // One request per connection: scrapes are rare and small.
  void Serve(tcp::socket socket) {
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> req;
    boost::system::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    http::read(socket, buffer, req, ec);
    if (ec) return;
    http::response<http::string_body> res;
    res.version(req.version());
    res.keep_alive(false);
    if (req.method() == http::verb::get && req.target() == "/metrics") {
      res.result(http::status::ok);
      res.set(http::field::content_type, "text/plain; version=0.0.4");
      res.body() = exposition_();
    } else {
      res.result(http::status::not_found);
      res.set(http::field::content_type, "text/plain");
      res.body() = "not found: try /metrics\n";
    }
    res.prepare_payload();
    http::write(socket, res, ec);
    socket.shutdown(tcp::socket::shutdown_both, ec);
  }

  Exposition exposition_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen,
                                                                    Exposition exposition) {
  auto impl = std::make_unique<Impl>(std::move(exposition));
  if (absl::Status s = impl->Listen(listen); !s.ok()) return s;
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsServer::~MetricsServer() = default;
uint16_t MetricsServer::port() const { return impl_->port(); }

std::string PromLine(const std::string& name, const std::string& labels, double value) {
  return absl::StrCat(name, labels.empty() ? "" : "{", labels, labels.empty() ? "" : "}", " ",
                      value, "\n");
}

}  // namespace ctsync::daemon

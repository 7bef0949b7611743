#include "tools/ctsyncd/metrics_server.h"

#include <boost/asio.hpp>

#include "gtest/gtest.h"

namespace ctsync::daemon {
namespace {

std::string HttpGet(uint16_t port, const std::string& path) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket s(io);
  boost::system::error_code ec;
  s.connect({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
  if (ec) return "connect failed: " + ec.message();
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n";
  boost::asio::write(s, boost::asio::buffer(req), ec);
  std::string out;
  char buf[4096];
  for (;;) {
    const size_t n = s.read_some(boost::asio::buffer(buf), ec);
    out.append(buf, n);
    if (ec) break;
  }
  return out;
}

TEST(MetricsServerTest, ServesMetricsAndRefusesOtherPaths) {
  int scrapes = 0;
  auto m = MetricsServer::Start("127.0.0.1:0", [&] {
    ++scrapes;
    return PromLine("ctsync_flows", "state=\"ESTABLISHED\"", 3);
  });
  ASSERT_TRUE(m.ok()) << m.status();
  const std::string body = HttpGet((*m)->port(), "/metrics");
  EXPECT_NE(body.find("200 OK"), std::string::npos) << body;
  EXPECT_NE(body.find("ctsync_flows{state=\"ESTABLISHED\"} 3\n"), std::string::npos) << body;
  EXPECT_NE(HttpGet((*m)->port(), "/other").find("404"), std::string::npos);
  EXPECT_EQ(scrapes, 1);
}

TEST(MetricsServerTest, BadListenAddressIsAClearError) {
  EXPECT_FALSE(MetricsServer::Start("nonsense", [] { return std::string(); }).ok());
  EXPECT_FALSE(MetricsServer::Start("300.1.1.1:80", [] { return std::string(); }).ok());
}

}  // namespace
}  // namespace ctsync::daemon

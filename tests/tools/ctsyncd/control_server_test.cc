#include "tools/ctsyncd/control_server.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace ctsync::daemon {
namespace {

std::string SocketPath() { return "/tmp/ctsyncd-test-" + std::to_string(::getpid()) + ".sock"; }

TEST(ControlServerTest, AnswersRequestsAndErrors) {
  auto server = ControlServer::Start(SocketPath(), [](const std::vector<std::string>& a)
                                                       -> absl::StatusOr<std::string> {
    if (a[0] == "echo") return absl::StrJoin(a, "|") + "\n";
    return absl::InvalidArgumentError("unknown command '" + a[0] + "'");
  });
  ASSERT_TRUE(server.ok()) << server.status();
  auto r = ControlRequest(SocketPath(), {"echo", "dump", "live"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->first);
  EXPECT_EQ(r->second, "echo|dump|live\n");
  r = ControlRequest(SocketPath(), {"bogus"});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->first);
  EXPECT_EQ(r->second, "unknown command 'bogus'");
  // A second daemon on the same socket is refused while the first one answers.
  auto second = ControlServer::Start(SocketPath(), [](const auto&) { return std::string(); });
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
  server->reset();
  EXPECT_NE(::access(SocketPath().c_str(), F_OK), 0);
  EXPECT_FALSE(ControlRequest(SocketPath(), {"ping"}).ok());
}

TEST(ControlServerTest, ReplacesAStaleSocketFile) {
  // What a killed daemon leaves: a socket file nobody listens on.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strcpy(a.sun_path, SocketPath().c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ::close(fd);
  ASSERT_EQ(::access(SocketPath().c_str(), F_OK), 0);
  auto s = ControlServer::Start(SocketPath(), [](const auto&) { return std::string("b\n"); });
  ASSERT_TRUE(s.ok()) << s.status();
  auto r = ControlRequest(SocketPath(), {"x"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->second, "b\n");
}

}  // namespace
}  // namespace ctsync::daemon

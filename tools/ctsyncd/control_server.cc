#include "tools/ctsyncd/control_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace ctsync::daemon {
namespace {

constexpr size_t kMaxRequest = 4096;

absl::StatusOr<sockaddr_un> Address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof(a.sun_path))
    return absl::InvalidArgumentError(absl::StrCat("control socket path too long: ", path));
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

bool WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ControlServer>> ControlServer::Start(const std::string& path,
                                                                    Handler handler) {
  auto addr = Address(path);
  if (!addr.ok()) return addr.status();
  // A socket file nobody answers on is left over from a dead daemon: replace it.
  if (::access(path.c_str(), F_OK) == 0) {
    auto probe = ControlRequest(path, {"ping"});
    if (probe.ok()) return absl::AlreadyExistsError(absl::StrCat("a daemon already serves ", path));
    ::unlink(path.c_str());
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0 ||
      ::listen(fd, 16) != 0) {
    const int e = errno;
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("bind ", path, ": ", std::strerror(e)));
  }
  ::chmod(path.c_str(), 0600);
  return std::unique_ptr<ControlServer>(new ControlServer(path, fd, std::move(handler)));
}

ControlServer::ControlServer(std::string path, int fd, Handler handler)
    : path_(std::move(path)), fd_(fd), handler_(std::move(handler)) {
  if (::pipe2(wake_, O_CLOEXEC) != 0) wake_[0] = wake_[1] = -1;
  thread_ = std::thread([this] { Serve(); });
}

ControlServer::~ControlServer() {
  if (wake_[1] >= 0) (void)!::write(wake_[1], "x", 1);
  if (thread_.joinable()) thread_.join();
  ::close(fd_);
  for (int f : wake_)
    if (f >= 0) ::close(f);
  ::unlink(path_.c_str());
}

void ControlServer::Serve() {
  for (;;) {
    pollfd p[2] = {{fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(p, wake_[0] >= 0 ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents) return;
    if (!(p[0].revents & POLLIN)) continue;
    const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    timeval tv{5, 0};
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::string req;
    char buf[512];
    while (req.find('\n') == std::string::npos && req.size() < kMaxRequest) {
      const ssize_t n = ::recv(c, buf, sizeof(buf), 0);
      if (n <= 0) break;
      req.append(buf, static_cast<size_t>(n));
    }
    const size_t nl = req.find('\n');
    if (nl == std::string::npos) {
      WriteAll(c, "ERR request too long or incomplete\n");
      ::close(c);
      continue;
    }
    std::vector<std::string> args = absl::StrSplit(req.substr(0, nl), ' ', absl::SkipEmpty());
    std::string reply;
    if (args.empty()) {
      reply = "ERR empty request\n";
    } else if (args[0] == "ping") {
      reply = "OK\npong\n";
    } else {
      absl::StatusOr<std::string> r = handler_(args);
      reply = r.ok() ? absl::StrCat("OK\n", *r) : absl::StrCat("ERR ", r.status().message(), "\n");
    }
    WriteAll(c, reply);
    ::close(c);
  }
}

absl::StatusOr<std::pair<bool, std::string>> ControlRequest(const std::string& path,
                                                            const std::vector<std::string>& args) {
  auto addr = Address(path);
  if (!addr.ok()) return addr.status();
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    const int e = errno;
    ::close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot reach ctsyncd at ", path, ": ", std::strerror(e)));
  }
  if (!WriteAll(fd, absl::StrCat(absl::StrJoin(args, " "), "\n"))) {
    ::close(fd);
    return absl::UnavailableError("control socket closed while sending");
  }
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  const size_t nl = out.find('\n');
  const std::string first = out.substr(0, nl);
  const std::string rest = nl == std::string::npos ? "" : out.substr(nl + 1);
  if (first == "OK") return std::make_pair(true, rest);
  if (first.rfind("ERR", 0) == 0) return std::make_pair(false, first.size() > 4 ? first.substr(4) : first);
  return absl::DataLossError("malformed answer from ctsyncd");
}

}  // namespace ctsync::daemon

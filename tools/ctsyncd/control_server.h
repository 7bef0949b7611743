// ctsyncd's control socket: a unix stream socket on which ctsyncctl sends one request line
// (words separated by spaces) and reads the answer: a first line "OK" or "ERR <reason>",
// then the body, then end of stream. One thread accepts and serves connections one at a
// time; the handler it calls may block (it usually posts work to the datapath thread and
// waits for the result).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace ctsync::daemon {

class ControlServer {
 public:
  // Returns the body for OK, or an error status whose message becomes "ERR <message>".
  using Handler = std::function<absl::StatusOr<std::string>(const std::vector<std::string>&)>;

  // Binds `path` (an existing socket file left by a dead daemon is replaced; a live one is
  // an error) and starts serving.
  static absl::StatusOr<std::unique_ptr<ControlServer>> Start(const std::string& path,
                                                              Handler handler);
  ~ControlServer();  // stops the thread and removes the socket file

 private:
  ControlServer(std::string path, int fd, Handler handler);
  void Serve();

  std::string path_;
  int fd_;
  int wake_[2] = {-1, -1};
  Handler handler_;
  std::thread thread_;
};

// Client side, for ctsyncctl and tests: sends one request, returns (ok, body-or-reason).
absl::StatusOr<std::pair<bool, std::string>> ControlRequest(const std::string& path,
                                                            const std::vector<std::string>& args);

}  // namespace ctsync::daemon

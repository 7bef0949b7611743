// The Prometheus text endpoint (Boost.Beast): GET /metrics answers with whatever the
// exposition callback returns (text format 0.0.4); anything else is 404. Runs its own
// thread with one io_context; the callback is called on that thread and must be
// thread-safe (ctsyncd's posts to the datapath thread and waits).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace ctsync::daemon {

class MetricsServer {
 public:
  using Exposition = std::function<std::string()>;
  // listen: "address:port" (port 0 picks one; see port()).
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& listen,
                                                              Exposition exposition);
  ~MetricsServer();
  uint16_t port() const;

  class Impl;

 private:
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One Prometheus sample line builder: name{labels} value.
std::string PromLine(const std::string& name, const std::string& labels, double value);

}  // namespace ctsync::daemon

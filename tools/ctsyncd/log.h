// ctsyncd's log: one line per message on stderr, "ctsyncd[pid]: LEVEL: text", which
// systemd's journal picks up as is. Thread-safe (one write(2) per line).
#pragma once

#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace ctsync::daemon {

enum class LogLevel { kError = 0, kWarning = 1, kInfo = 2, kDebug = 3 };

inline LogLevel ParseLevel(const std::string& s) {
  if (s == "error") return LogLevel::kError;
  if (s == "warning") return LogLevel::kWarning;
  if (s == "debug") return LogLevel::kDebug;
  return LogLevel::kInfo;
}

class Logger {
 public:
  explicit Logger(LogLevel level) : level_(level) {}
  void Error(const std::string& m) const { Write(LogLevel::kError, "error", m); }
  void Warning(const std::string& m) const { Write(LogLevel::kWarning, "warning", m); }
  void Info(const std::string& m) const { Write(LogLevel::kInfo, "info", m); }
  void Debug(const std::string& m) const { Write(LogLevel::kDebug, "debug", m); }

 private:
  void Write(LogLevel l, const char* name, const std::string& m) const {
    if (l > level_) return;
    const std::string line = absl::StrCat("ctsyncd[", ::getpid(), "]: ", name, ": ", m, "\n");
    (void)!::write(2, line.data(), line.size());
  }
  LogLevel level_;
};

}  // namespace ctsync::daemon

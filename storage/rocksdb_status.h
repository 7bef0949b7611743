// Converts RocksDB's status into absl::Status at the storage boundary, keeping the message,
// so callers above storage/ never see RocksDB types. Thread-safe.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "rocksdb/status.h"

namespace ctsync::storage {

absl::Status FromRocksDb(const rocksdb::Status& s, std::string_view what);

}  // namespace ctsync::storage

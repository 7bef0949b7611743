// Private to storage/: opening a flow store's RocksDB (read-write for FlowStore, read-only
// for snapshots and tools) with its column families, and walking its records.
// A StoreDb is used by one owner; RocksDB itself allows concurrent reads and writes.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rocksdb/db.h"
#include "storage/record_format.h"

namespace ctsync::storage::internal {

struct StoreDb {
  std::unique_ptr<rocksdb::DB> db;
  // Handles: index 0 default, 1 live, 2 external, 3 meta.
  std::vector<rocksdb::ColumnFamilyHandle*> handles;

  rocksdb::ColumnFamilyHandle* stream(Stream s) const { return handles[1 + static_cast<int>(s)]; }
  rocksdb::ColumnFamilyHandle* meta() const { return handles[3]; }

  StoreDb() = default;
  StoreDb(StoreDb&&) = default;
  StoreDb& operator=(StoreDb&&) = default;
  ~StoreDb();
  // Destroys the handles and closes the DB (flushing nothing it was not asked to).
  absl::Status Close();
};

struct OpenOptions {
  bool read_only = false;
  bool create_if_missing = false;
  size_t write_buffer_bytes = 64 << 20;
};

absl::StatusOr<StoreDb> OpenStoreDb(const std::string& path, const OpenOptions& options);

// Calls fn(key, value) for every record of the stream in key order; stops early (and
// returns OK) when fn returns false. Errors are RocksDB's (corruption, I/O).
absl::Status ForEachRawRecord(
    const StoreDb& db, Stream s,
    absl::FunctionRef<bool(std::string_view key, std::string_view value)> fn);

// Meta values (empty when missing).
std::string ReadMeta(const StoreDb& db, const char* key);

// A RocksDB logger that drops everything: read-only opens of snapshots must not create
// LOG files inside them (that would change the files the manifest lists).
std::shared_ptr<rocksdb::Logger> NullLogger();

// fsync a directory so a rename or a new file in it survives a crash.
absl::Status SyncDir(const std::string& dir);
// Writes `data` to `path` atomically: temp file, fsync, rename, fsync of the directory.
absl::Status WriteFileDurably(const std::string& path, std::string_view data);

}  // namespace ctsync::storage::internal

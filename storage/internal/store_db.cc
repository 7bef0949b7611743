#include "storage/internal/store_db.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "rocksdb/env.h"
#include "rocksdb/memtablerep.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "storage/internal/prefix_vector_memtable.h"
#include "storage/rocksdb_status.h"

namespace ctsync::storage::internal {
namespace {

class DropLogger : public rocksdb::Logger {
 public:
  using rocksdb::Logger::Logv;
  void Logv(const char*, va_list) override {}
};

absl::Status Errno(const std::string& what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// RocksDB's own diagnostics, warnings and worse, to stderr (the daemon's journal). Not the
// default LOG file in the store: on a full disk that file fails too, and the Debian build
// of RocksDB asserts when its file logger is used after a failed write.
class StderrLogger : public rocksdb::Logger {
 public:
  StderrLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    char line[1024];
    std::vsnprintf(line, sizeof(line), format, ap);
    std::fprintf(stderr, "rocksdb: %s\n", line);
  }
};

}  // namespace

StoreDb::~StoreDb() { (void)Close(); }

absl::Status StoreDb::Close() {
  if (!db) return absl::OkStatus();
  absl::Status result;
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    if (h == nullptr) continue;
    absl::Status s = FromRocksDb(db->DestroyColumnFamilyHandle(h), "close column family");
    if (result.ok()) result = s;
  }
  handles.clear();
  absl::Status s = FromRocksDb(db->Close(), "close store");
  if (result.ok()) result = s;
  db.reset();
  return result;
}

std::shared_ptr<rocksdb::Logger> NullLogger() { return std::make_shared<DropLogger>(); }

absl::StatusOr<StoreDb> OpenStoreDb(const std::string& path, const OpenOptions& options) {
  rocksdb::Options db_options;
  db_options.create_if_missing = options.create_if_missing;
  db_options.create_missing_column_families = options.create_if_missing;
  db_options.write_buffer_size = options.write_buffer_bytes;
  db_options.max_background_jobs = 2;
  // Point lookups never happen on the write path; keys arrive in random order, so leave
  // compression to the bottom levels where it pays.
  db_options.compression = rocksdb::kNoCompression;
  db_options.bottommost_compression = rocksdb::kLZ4Compression;
  if (options.read_only) {
    db_options.info_log = NullLogger();
  } else {
    db_options.info_log = std::make_shared<StderrLogger>();
  }
  // Writes are blind puts/deletes in random key order and reads are whole-stream scans
  // (restore, snapshots), never point lookups on the write path: a vector memtable makes
  // each insert an append (sorted once, at flush) instead of a skip-list walk, which was
  // most of the writer's time. Ours sorts on key prefixes held in the vector, which takes
  // the flush a fraction of RocksDB's VectorRep time (prefix_vector_memtable.h). The flow
  // column families get it (below); the meta family, a few keys read with point lookups,
  // keeps RocksDB's skip list.
  db_options.allow_concurrent_memtable_write = false;  // one writer thread anyway
  // A burst of 1M events is ~170 MB of memtable: with the default two buffers the writer
  // stops ("2 immutable memtables") whenever a flush is still sorting the previous one.
  db_options.max_write_buffer_number = 4;
  // Bounds the WAL a restart must replay after a crash.
  db_options.max_total_wal_size = 256 << 20;
  rocksdb::BlockBasedTableOptions table;
  // Debian's RocksDB is built portable (software CRC32C); XXH3 block checksums cost a
  // fraction on reads and flushes. Our records carry their own CRC32C anyway.
  table.checksum = rocksdb::kXXH3;
  // Reads are whole-stream scans, never point lookups: 16 KB blocks (default 4 KB) cost a
  // quarter of the block fetches, checksums and index entries per restored flow.
  table.block_size = 16 << 10;
  db_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::ColumnFamilyOptions cf_options(db_options);
  rocksdb::ColumnFamilyOptions flow_cf_options(db_options);
  flow_cf_options.memtable_factory = std::make_shared<PrefixVectorRepFactory>();
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, cf_options},
      {kLiveColumnFamily, flow_cf_options},
      {kExternalColumnFamily, flow_cf_options},
      {kMetaColumnFamily, cf_options},
  };
  StoreDb out;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  if (options.read_only) {
    if (!std::filesystem::exists(std::filesystem::path(path) / "CURRENT"))
      return absl::NotFoundError(absl::StrCat(path, ": not a flow store (no CURRENT file)"));
    s = rocksdb::DB::OpenForReadOnly(db_options, path, cfs, &out.handles, &raw);
  } else {
    s = rocksdb::DB::Open(db_options, path, cfs, &out.handles, &raw);
  }
  if (!s.ok()) {
    // A store missing one of our column families is not ours (or is damaged).
    return FromRocksDb(s, absl::StrCat("open flow store ", path));
  }
  out.db.reset(raw);
  return out;
}

absl::Status ForEachRawRecord(const StoreDb& db, Stream s,
                              absl::FunctionRef<bool(std::string_view, std::string_view)> fn) {
  rocksdb::ReadOptions ro;
  ro.verify_checksums = true;
  ro.fill_cache = false;
  // A scan of the whole stream: read ahead in large reads from the start rather than let
  // RocksDB grow its readahead from 8 KB.
  ro.readahead_size = 2 << 20;
  std::unique_ptr<rocksdb::Iterator> it(db.db->NewIterator(ro, db.stream(s)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const rocksdb::Slice k = it->key();
    const rocksdb::Slice v = it->value();
    if (!fn(std::string_view(k.data(), k.size()), std::string_view(v.data(), v.size()))) break;
  }
  return FromRocksDb(it->status(), absl::StrCat("read ", StreamName(s), " records"));
}

std::string ReadMeta(const StoreDb& db, const char* key) {
  std::string value;
  if (!db.db->Get(rocksdb::ReadOptions(), db.meta(), key, &value).ok()) return "";
  return value;
}

absl::Status SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Errno(absl::StrCat("open directory ", dir));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Errno(absl::StrCat("fsync directory ", dir));
  return absl::OkStatus();
}

absl::Status WriteFileDurably(const std::string& path, std::string_view data) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(absl::StrCat("create ", tmp));
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      absl::Status s = Errno(absl::StrCat("write ", tmp));
      ::close(fd);
      return s;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    absl::Status s = Errno(absl::StrCat("fsync ", tmp));
    ::close(fd);
    return s;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Errno(absl::StrCat("rename ", tmp));
  return SyncDir(std::filesystem::path(path).parent_path().string());
}

}  // namespace ctsync::storage::internal

#include "storage/rocksdb_status.h"

#include <filesystem>

#include "gtest/gtest.h"
#include "rocksdb/db.h"

namespace ctsync::storage {
namespace {

TEST(RocksDbStatusTest, MapsCodesAndKeepsContext) {
  EXPECT_TRUE(FromRocksDb(rocksdb::Status::OK(), "x").ok());
  absl::Status s = FromRocksDb(rocksdb::Status::Corruption("bad block"), "open store");
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("open store"), std::string_view::npos);
  EXPECT_NE(s.message().find("bad block"), std::string_view::npos);
  EXPECT_EQ(FromRocksDb(rocksdb::Status::NotFound(), "k").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(FromRocksDb(rocksdb::Status::NoSpace(), "w").code(),
            absl::StatusCode::kResourceExhausted);
}

// Opening a store in a missing directory without create_if_missing is a clear error.
TEST(RocksDbStatusTest, OpenMissingStoreIsAnError) {
  rocksdb::Options options;
  options.create_if_missing = false;
  rocksdb::DB* db = nullptr;
  const auto path = std::filesystem::temp_directory_path() / "ctsync-missing-store-test";
  std::filesystem::remove_all(path);
  absl::Status s = FromRocksDb(rocksdb::DB::Open(options, path.string(), &db), "open");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(db, nullptr);
}

}  // namespace
}  // namespace ctsync::storage

// The flow store's memtable (storage/internal/prefix_vector_memtable.h) against a std::map
// model, through a real RocksDB: keys of every length (short ones, 16 and 40 bytes, keys
// sharing their first 16 bytes, keys that are prefixes of others, overwrites, deletes),
// read forwards, backwards and by seek, from the mutable memtable, from a memtable being
// written to while an iterator is open, and after the data reached SST files.
#include "storage/internal/prefix_vector_memtable.h"

#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "tests/storage/test_flows.h"

namespace ctsync::storage::internal {
namespace {

class PrefixVectorMemtableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rocksdb::Options o;
    o.create_if_missing = true;
    o.memtable_factory = std::make_shared<PrefixVectorRepFactory>();
    o.allow_concurrent_memtable_write = false;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(o, dir_.Sub("db"), &raw).ok());
    db_.reset(raw);
  }

  // Keys chosen to stress the prefix: equal first 16 bytes, zero bytes at the end, one key a
  // prefix of another, lengths on both sides of 8 and 16.
  std::string RandomKey() {
    static const size_t kLengths[] = {0, 1, 7, 8, 9, 15, 16, 17, 40};
    std::string k(kLengths[rng_() % 9], '\0');
    for (char& c : k) c = static_cast<char>(rng_() % 3 == 0 ? 0 : rng_() % 4);
    return k;
  }

  void Mutate(int n) {
    for (int i = 0; i < n; ++i) {
      const std::string k = RandomKey();
      if (rng_() % 4 == 0) {
        ASSERT_TRUE(db_->Delete(rocksdb::WriteOptions(), k).ok());
        model_.erase(k);
      } else {
        const std::string v = std::to_string(rng_());
        ASSERT_TRUE(db_->Put(rocksdb::WriteOptions(), k, v).ok());
        model_[k] = v;
      }
    }
  }

  void ExpectSameAsModel() {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    auto m = model_.begin();
    for (it->SeekToFirst(); it->Valid(); it->Next(), ++m) {
      ASSERT_NE(m, model_.end());
      ASSERT_EQ(it->key().ToString(), m->first);
      ASSERT_EQ(it->value().ToString(), m->second);
    }
    ASSERT_TRUE(it->status().ok());
    EXPECT_EQ(m, model_.end());
    auto r = model_.rbegin();
    for (it->SeekToLast(); it->Valid(); it->Prev(), ++r) {
      ASSERT_NE(r, model_.rend());
      ASSERT_EQ(it->key().ToString(), r->first);
    }
    EXPECT_EQ(r, model_.rend());
    for (int i = 0; i < 200; ++i) {
      const std::string k = RandomKey();
      it->Seek(k);
      const auto lb = model_.lower_bound(k);
      ASSERT_EQ(it->Valid(), lb != model_.end());
      if (lb != model_.end()) {
        ASSERT_EQ(it->key().ToString(), lb->first);
      }
      it->SeekForPrev(k);
      auto ub = model_.upper_bound(k);
      ASSERT_EQ(it->Valid(), ub != model_.begin());
      if (ub != model_.begin()) {
        ASSERT_EQ(it->key().ToString(), (--ub)->first);
      }
      std::string v;
      const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), k, &v);
      const auto f = model_.find(k);
      ASSERT_EQ(s.ok(), f != model_.end()) << s.ToString();
      if (f != model_.end()) {
        ASSERT_EQ(v, f->second);
      }
    }
  }

  testing::TempDir dir_{"memtable"};
  std::unique_ptr<rocksdb::DB> db_;
  std::map<std::string, std::string> model_;
  std::mt19937 rng_{42};
};

TEST_F(PrefixVectorMemtableTest, MutableMemtableReadsLikeAMap) {
  Mutate(5000);
  ExpectSameAsModel();
}

TEST_F(PrefixVectorMemtableTest, IteratorKeepsItsViewWhileWritesContinue) {
  Mutate(2000);
  const std::map<std::string, std::string> before = model_;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  Mutate(2000);
  auto m = before.begin();
  for (it->SeekToFirst(); it->Valid(); it->Next(), ++m) {
    ASSERT_NE(m, before.end());
    ASSERT_EQ(it->key().ToString(), m->first);
    ASSERT_EQ(it->value().ToString(), m->second);
  }
  EXPECT_EQ(m, before.end());
  ExpectSameAsModel();
}

TEST_F(PrefixVectorMemtableTest, FlushedAndMixedWithNewWrites) {
  Mutate(3000);
  ASSERT_TRUE(db_->Flush(rocksdb::FlushOptions()).ok());
  ExpectSameAsModel();
  Mutate(3000);  // overwrites and deletes on top of the SST
  ExpectSameAsModel();
  ASSERT_TRUE(db_->Flush(rocksdb::FlushOptions()).ok());
  ExpectSameAsModel();
}

// Point lookups from several threads at once on the memtable, then on deletes over an SST
// (each Get builds its iterator in its own frame: under AddressSanitizer a leaked or shared
// one fails the test).
TEST_F(PrefixVectorMemtableTest, ConcurrentGetsFindTheLatestValue) {
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(db_->Put(rocksdb::WriteOptions(), "key" + std::to_string(i), "old").ok());
    ASSERT_TRUE(db_->Put(rocksdb::WriteOptions(), "key" + std::to_string(i), "v" + std::to_string(i)).ok());
  }
  auto lookups = [&] {
    for (int i = 0; i < 500; ++i) {
      std::string v;
      ASSERT_TRUE(db_->Get(rocksdb::ReadOptions(), "key" + std::to_string(i), &v).ok());
      ASSERT_EQ(v, "v" + std::to_string(i));
      ASSERT_TRUE(db_->Get(rocksdb::ReadOptions(), "absent" + std::to_string(i), &v).IsNotFound());
    }
  };
  std::thread a(lookups), b(lookups);
  a.join();
  b.join();
  ASSERT_TRUE(db_->Flush(rocksdb::FlushOptions()).ok());
  for (int i = 0; i < 500; i += 2)
    ASSERT_TRUE(db_->Delete(rocksdb::WriteOptions(), "key" + std::to_string(i)).ok());
  std::string v;
  EXPECT_TRUE(db_->Get(rocksdb::ReadOptions(), "key0", &v).IsNotFound());
  ASSERT_TRUE(db_->Get(rocksdb::ReadOptions(), "key1", &v).ok());
  EXPECT_EQ(v, "v1");
}

}  // namespace
}  // namespace ctsync::storage::internal

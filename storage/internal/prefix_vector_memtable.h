// Private to storage/: the memtable of the flow store's column families, a RocksDB
// MemTableRep. Like RocksDB's VectorRep, an insert is an append and the entries are sorted
// once, when the memtable is flushed (or read); unlike it, each entry carries the first 16
// bytes of its user key, so the sort compares integers held in the array instead of
// chasing two pointers into the arena per comparison. Flow keys are 16 bytes (IPv4) or
// 40 (IPv6), so most comparisons never leave the array; ties go to RocksDB's comparator.
// That sort was most of the flush thread's time with VectorRep (cache misses on 400K
// scattered keys per 64 MB memtable).
//
// Point lookups (DB::Get) work but copy the entries of a mutable memtable, as VectorRep's
// do: the store gives this memtable only to the flow column families, which are scanned,
// never looked up. Requires the bytewise comparator (the store's): the prefix order is memcmp
// order.
// Threads: one writer (RocksDB's memtable insert); iterators from any thread.
#pragma once

#include "rocksdb/memtablerep.h"

namespace ctsync::storage::internal {

class PrefixVectorRepFactory : public rocksdb::MemTableRepFactory {
 public:
  using rocksdb::MemTableRepFactory::CreateMemTableRep;
  rocksdb::MemTableRep* CreateMemTableRep(const rocksdb::MemTableRep::KeyComparator& compare,
                                          rocksdb::Allocator* allocator,
                                          const rocksdb::SliceTransform*,
                                          rocksdb::Logger*) override;
  const char* Name() const override { return "CtsyncPrefixVectorRepFactory"; }
};

}  // namespace ctsync::storage::internal

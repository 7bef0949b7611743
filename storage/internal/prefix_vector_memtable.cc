#include "storage/internal/prefix_vector_memtable.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <shared_mutex>
#include <vector>

namespace ctsync::storage::internal {
namespace {

using rocksdb::MemTableRep;
using rocksdb::Slice;

// One memtable entry: the first 16 bytes of its user key as two big-endian integers (zero
// padded: 0 is the smallest byte, so a shorter key that is a prefix of a longer one never
// sorts after it), and the entry itself (length-prefixed internal key, then the value).
struct Entry {
  uint64_t hi;
  uint64_t lo;
  const char* key;
};
using Entries = std::vector<Entry>;

uint64_t BigEndian64(const char* p, size_t n) {
  unsigned char buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::memcpy(buf, p, std::min<size_t>(n, 8));
  uint64_t v;
  std::memcpy(&v, buf, 8);
  return __builtin_bswap64(v);
}

// `internal_key` is the user key followed by RocksDB's 8-byte sequence/type trailer.
void SetPrefix(const Slice& internal_key, Entry* e) {
  const size_t n = internal_key.size() >= 8 ? internal_key.size() - 8 : 0;
  e->hi = BigEndian64(internal_key.data(), n);
  e->lo = n > 8 ? BigEndian64(internal_key.data() + 8, n - 8) : 0;
}

class PrefixVectorRep : public MemTableRep {
 public:
  PrefixVectorRep(const KeyComparator& compare, rocksdb::Allocator* allocator)
      : MemTableRep(allocator), compare_(compare), entries_(std::make_shared<Entries>()) {}

  void Insert(rocksdb::KeyHandle handle) override {
    Entry e;
    e.key = static_cast<const char*>(handle);
    SetPrefix(compare_.decode_key(e.key), &e);
    std::unique_lock<std::shared_mutex> lock(mu_);
    entries_->push_back(e);
    memory_.store(sizeof(*this) + entries_->capacity() * sizeof(Entry),
                  std::memory_order_relaxed);
  }

  bool Contains(const char* key) const override {
    std::shared_lock<std::shared_mutex> lock(mu_);
    return std::any_of(entries_->begin(), entries_->end(),
                       [&](const Entry& e) { return e.key == key; });
  }

  void MarkReadOnly() override {
    std::unique_lock<std::shared_mutex> lock(mu_);
    immutable_ = true;
  }

  // RocksDB asks after every insert (to decide on a flush): no lock.
  size_t ApproximateMemoryUsage() override { return memory_.load(std::memory_order_relaxed); }

  MemTableRep::Iterator* GetIterator(rocksdb::Arena* arena) override;
  MemTableRep::Iterator* GetDynamicPrefixIterator(rocksdb::Arena* arena) override;
  // A point lookup. RocksDB 7.8's MemTableRep::Get (the only way to run one: LookupKey is not
  // a public type) takes an iterator from GetDynamicPrefixIterator() and never deletes it,
  // which leaked a copy of the entries per Get. It runs here with that iterator built in
  // this frame instead of on the heap, and destroyed when the lookup is done.
  void Get(const rocksdb::LookupKey& k, void* callback_args,
           bool (*callback_func)(void* arg, const char* entry)) override;
  ~PrefixVectorRep() override;

 private:
  class Iter;
  struct GetScratch;
  static thread_local GetScratch* get_scratch_;  // see Get
  // What a new iterator reads: the sorted-once vector itself (*shared = this) once the
  // memtable is immutable, else a copy of the entries so far (*shared = nullptr).
  std::shared_ptr<Entries> IterEntries(PrefixVectorRep** shared);
  const KeyComparator& compare_;
  mutable std::shared_mutex mu_;
  std::shared_ptr<Entries> entries_;  // guarded by mu_ (the pointer and, until sorted, the vector)
  bool immutable_ = false;            // guarded by mu_
  bool sorted_ = false;               // guarded by mu_; only once immutable
  std::atomic<size_t> memory_{sizeof(*this)};
  std::mutex arena_iters_mu_;
  std::vector<void*> arena_iters_;  // guarded by arena_iters_mu_: see GetIterator
};

class PrefixVectorRep::Iter : public MemTableRep::Iterator {
 public:
  // shared != nullptr: the memtable is immutable and `entries` is its vector, sorted once
  // (under its lock) for all its iterators. Otherwise `entries` is this iterator's copy.
  Iter(PrefixVectorRep* shared, std::shared_ptr<Entries> entries, const KeyComparator& compare)
      : shared_(shared), entries_(std::move(entries)), compare_(compare), pos_(entries_->size()) {}

  bool Valid() const override { return pos_ < entries_->size(); }
  const char* key() const override { return (*entries_)[pos_].key; }
  void Next() override {
    if (pos_ < entries_->size()) ++pos_;
  }
  void Prev() override { pos_ = pos_ == 0 ? entries_->size() : pos_ - 1; }

  void Seek(const Slice& internal_key, const char*) override {
    Sort();
    Entry target;
    SetPrefix(internal_key, &target);
    const auto it = std::lower_bound(
        entries_->begin(), entries_->end(), target, [&](const Entry& e, const Entry& t) {
          if (e.hi != t.hi) return e.hi < t.hi;
          if (e.lo != t.lo) return e.lo < t.lo;
          return compare_(e.key, internal_key) < 0;
        });
    pos_ = static_cast<size_t>(it - entries_->begin());
  }

  void SeekForPrev(const Slice& internal_key, const char*) override {
    Sort();
    Entry target;
    SetPrefix(internal_key, &target);
    // First entry after the target, then one back: the last entry <= target.
    const auto it = std::upper_bound(
        entries_->begin(), entries_->end(), target, [&](const Entry& t, const Entry& e) {
          if (t.hi != e.hi) return t.hi < e.hi;
          if (t.lo != e.lo) return t.lo < e.lo;
          return compare_(e.key, internal_key) > 0;
        });
    pos_ = it == entries_->begin() ? entries_->size()
                                   : static_cast<size_t>(it - entries_->begin()) - 1;
  }

  void SeekToFirst() override {
    Sort();
    pos_ = 0;
  }
  void SeekToLast() override {
    Sort();
    pos_ = entries_->empty() ? 0 : entries_->size() - 1;
  }

 private:
  void SortEntries(Entries& v) const {
    std::sort(v.begin(), v.end(), [&](const Entry& a, const Entry& b) {
      if (a.hi != b.hi) return a.hi < b.hi;
      if (a.lo != b.lo) return a.lo < b.lo;
      return compare_(a.key, b.key) < 0;
    });
  }
  void Sort() {
    if (sorted_) return;
    if (shared_ != nullptr) {
      std::unique_lock<std::shared_mutex> lock(shared_->mu_);
      if (!shared_->sorted_) {
        SortEntries(*entries_);
        shared_->sorted_ = true;
      }
    } else {
      SortEntries(*entries_);
    }
    sorted_ = true;
  }

  PrefixVectorRep* shared_;
  std::shared_ptr<Entries> entries_;
  const KeyComparator& compare_;
  size_t pos_;
  bool sorted_ = false;
};

std::shared_ptr<Entries> PrefixVectorRep::IterEntries(PrefixVectorRep** shared) {
  std::shared_lock<std::shared_mutex> lock(mu_);
  if (immutable_) {
    *shared = this;
    return entries_;
  }
  *shared = nullptr;
  return std::make_shared<Entries>(*entries_);  // the writer keeps appending
}

MemTableRep::Iterator* PrefixVectorRep::GetIterator(rocksdb::Arena* arena) {
  PrefixVectorRep* shared = nullptr;
  std::shared_ptr<Entries> entries = IterEntries(&shared);
  if (arena == nullptr) return new Iter(shared, std::move(entries), compare_);
  // Arena mode: the caller runs the destructor in place and never frees the memory, which
  // RocksDB's Arena would own (its header is not public). The memtable keeps that memory
  // instead and frees it with itself; it outlives its iterators. Not from the memtable's
  // allocator: a read-only memtable's memory usage must not change (RocksDB asserts it).
  void* at = ::operator new(sizeof(Iter));
  {
    std::lock_guard<std::mutex> lock(arena_iters_mu_);
    arena_iters_.push_back(at);
  }
  return new (at) Iter(shared, std::move(entries), compare_);
}

// Set by Get for the iterator it lets MemTableRep::Get create: the memory to build it in,
// and then the iterator itself. Per thread: lookups may run on several threads at once.
struct PrefixVectorRep::GetScratch {
  alignas(Iter) unsigned char at[sizeof(Iter)];
  MemTableRep::Iterator* built = nullptr;
};
thread_local PrefixVectorRep::GetScratch* PrefixVectorRep::get_scratch_ = nullptr;

MemTableRep::Iterator* PrefixVectorRep::GetDynamicPrefixIterator(rocksdb::Arena* arena) {
  GetScratch* scratch = get_scratch_;
  if (scratch == nullptr || arena != nullptr || scratch->built != nullptr)
    return GetIterator(arena);
  PrefixVectorRep* shared = nullptr;
  std::shared_ptr<Entries> entries = IterEntries(&shared);
  scratch->built = new (scratch->at) Iter(shared, std::move(entries), compare_);
  return scratch->built;
}

void PrefixVectorRep::Get(const rocksdb::LookupKey& k, void* callback_args,
                          bool (*callback_func)(void* arg, const char* entry)) {
  GetScratch scratch;
  GetScratch* const outer = get_scratch_;
  get_scratch_ = &scratch;
  MemTableRep::Get(k, callback_args, callback_func);
  get_scratch_ = outer;
  if (scratch.built != nullptr) scratch.built->~Iterator();
}

PrefixVectorRep::~PrefixVectorRep() {
  for (void* p : arena_iters_) ::operator delete(p);
}

}  // namespace

rocksdb::MemTableRep* PrefixVectorRepFactory::CreateMemTableRep(
    const rocksdb::MemTableRep::KeyComparator& compare, rocksdb::Allocator* allocator,
    const rocksdb::SliceTransform*, rocksdb::Logger*) {
  return new PrefixVectorRep(compare, allocator);
}

}  // namespace ctsync::storage::internal

// Framing shared by the multi-record fuzz targets and tests/fuzz/make_seeds.py: an input is
// a run of records `kind (1 byte) | length (2 bytes, big endian) | body`. A record cut short
// by the end of the input keeps the bytes that are there, so every byte string is a valid
// input and the fuzzer is never stuck on framing.
//
// Owner: one fuzz target's single thread. Header-only, fuzz builds only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/types/span.h"

namespace ctsync::fuzz {

struct FuzzRecord {
  uint8_t kind = 0;
  absl::Span<const uint8_t> body;
};

class RecordReader {
 public:
  RecordReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  // False when the input is used up.
  bool Next(FuzzRecord* r) {
    if (pos_ >= size_) return false;
    r->kind = data_[pos_++];
    size_t len = 0;
    for (int i = 0; i < 2 && pos_ < size_; ++i) len = (len << 8) | data_[pos_++];
    if (len > size_ - pos_) len = size_ - pos_;
    r->body = absl::Span<const uint8_t>(data_ + pos_, len);
    pos_ += len;
    return true;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Aborts the run with a message: the fuzz targets' invariant check (libFuzzer reports the
// abort as a crash and saves the input).
#define CTSYNC_FUZZ_CHECK(cond)                                                              \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)

}  // namespace ctsync::fuzz

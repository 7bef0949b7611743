// Inputs that hit bugs already found and reported, which the owners have not fixed yet.
// The fuzz targets skip them so that one known crash does not hide every other finding;
// each filter names its regression test, and goes when that test passes.
//
// Owner: fuzz. Header-only, fuzz builds only.
#pragma once

#include <cstdint>

#include "ctsync/flow.pb.h"
#include "ctsync/sync.pb.h"

namespace ctsync::fuzz {

// Set to false once the fixes below are in, to check them under the fuzzer too.
inline constexpr bool kSkipKnownBugs = false;  // A2 is fixed in proto/flow_codec.cc

// Bug A2 (tests/proto/flow_codec_regression_test.cc, HugeCreationAgeIsRejectedOrInThePast):
// codec::FlowFromProto computes wall_time_ms - created_wall_ms before its range check, a
// signed overflow when the two are far apart (e.g. INT64_MAX and INT64_MIN).
// (Bugs A, B and C of README.md, the unchecked ms -> ns multiplications, are fixed.)
inline bool HitsKnownBug(const proto::Flow& f) {
  int64_t diff = 0;
  return kSkipKnownBugs && __builtin_sub_overflow(f.wall_time_ms(), f.created_wall_ms(), &diff);
}

inline bool HitsKnownBug(const proto::Batch& b) {
  if (!kSkipKnownBugs) return false;
  for (const proto::FlowUpdate& u : b.updates()) {
    if (u.has_flow() && HitsKnownBug(u.flow())) return true;
  }
  return false;
}

}  // namespace ctsync::fuzz

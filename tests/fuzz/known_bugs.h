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
inline constexpr bool kSkipKnownBugs = true;

// Millisecond counts that can be turned into nanoseconds, and subtracted from each other,
// without overflowing int64 (about +-146 years around the epoch).
inline bool MsFitsNanos(int64_t ms) {
  constexpr int64_t kLimit = INT64_MAX / 1'000'000 / 2;
  return ms >= -kLimit && ms <= kLimit;
}

// Known bug 1 (tests/proto/flow_codec_regression_test.cc): codec::FlowFromProto multiplies
// timeout_ms and (wall_time_ms - created_wall_ms) by 1e6 unchecked, a signed overflow.
// Known bug 2 (tests/storage/restore_regression_test.cc): RestoreCollector ages a record
// by wall_time_ms * 1e6 unchecked.
inline bool HitsKnownBug(const proto::Flow& f) {
  return kSkipKnownBugs && (!MsFitsNanos(f.timeout_ms()) || !MsFitsNanos(f.wall_time_ms()) ||
                            !MsFitsNanos(f.created_wall_ms()));
}

// Known bug 3 (tests/sync/replicator_regression_test.cc): Replicator::Deliver computes the
// batch age from wall_time_ms * 1e6 unchecked; the codec then restores the implied wall
// times from it (bug 1 again).
inline bool HitsKnownBug(const proto::Batch& b) {
  if (!kSkipKnownBugs) return false;
  if (!MsFitsNanos(b.wall_time_ms())) return true;
  for (const proto::FlowUpdate& u : b.updates()) {
    if (u.has_flow() && HitsKnownBug(u.flow())) return true;
  }
  return false;
}

}  // namespace ctsync::fuzz

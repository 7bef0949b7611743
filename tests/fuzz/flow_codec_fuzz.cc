// Fuzz target: proto::Flow bytes (as a peer or a file could hold them) through
// codec::FlowFromProto, then the decoded flow into a 64-entry engine.
//
// Invariants on every message the codec accepts:
//   - FlowToProto of the decoded flow decodes again (what we write we can read) to the same
//     tuples, status, zone, mark, helper, TCP state, sequence adjustment and counters;
//   - ConntrackEngine::Insert either takes the flow or returns an error; the engine then
//     expires it without trouble.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "core/conntrack/conntrack_engine.h"
#include "ctsync/flow.pb.h"
#include "google/protobuf/stubs/logging.h"
#include "proto/flow_codec.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/known_bugs.h"

namespace ctsync::fuzz {
namespace {

constexpr Nanos kNow = 1000 * kNanosPerSecond;
constexpr Nanos kWallNow = 1'700'000'000'000 * kNanosPerMilli;

// A fresh engine per input: every input starts at the same time, and time must not go
// backwards for one engine.
std::unique_ptr<ConntrackEngine> NewEngine() {
  ConntrackOptions o;
  o.settings.nf_conntrack_max = 64;
  o.settings.nf_conntrack_buckets = 64;
  auto engine = ConntrackEngine::Create(o, kNow);
  if (!engine.ok()) std::abort();
  return std::move(*engine);
}

void CheckReencode(const codec::DecodedFlow& d) {
  proto::Flow again;
  codec::FlowExtras extras;
  if (d.seq_adjust) extras.seq_adjust = &*d.seq_adjust;
  if (d.master_tuple) extras.master = &*d.master_tuple;
  extras.counters = &d.counters;
  codec::FlowToProto(d.flow, kNow, kWallNow, extras, &again);
  codec::DecodedFlow d2;
  const absl::Status s = codec::FlowFromProto(again, kNow, 0, &d2);
  if (!s.ok()) {
    std::fprintf(stderr, "re-encoded flow does not decode: %s\n%s\n",
                 std::string(s.message()).c_str(), again.DebugString().c_str());
    std::abort();
  }
  CTSYNC_FUZZ_CHECK(d2.flow.tuple[0] == d.flow.tuple[0]);
  CTSYNC_FUZZ_CHECK(d2.flow.tuple[1] == d.flow.tuple[1]);
  CTSYNC_FUZZ_CHECK(d2.flow.status == d.flow.status);
  CTSYNC_FUZZ_CHECK(d2.flow.zone == d.flow.zone);
  CTSYNC_FUZZ_CHECK(d2.flow.mark == d.flow.mark);
  CTSYNC_FUZZ_CHECK(d2.flow.helper == d.flow.helper);
  CTSYNC_FUZZ_CHECK(d2.flow.tcp == d.flow.tcp);
  CTSYNC_FUZZ_CHECK(d2.seq_adjust == d.seq_adjust);
  CTSYNC_FUZZ_CHECK(d2.master_tuple == d.master_tuple);
  CTSYNC_FUZZ_CHECK(d2.counters == d.counters);
}

}  // namespace
}  // namespace ctsync::fuzz

// Malformed strings are the point here: protobuf's complaint per parse would flood the log.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ctsync;
  using namespace ctsync::fuzz;
  proto::Flow msg;
  if (!msg.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (HitsKnownBug(msg)) return 0;
  // Ages from the input's first byte: 0, a little, a lot.
  const Nanos age = size == 0 ? 0 : Nanos{data[0] % 4} * 1000 * kNanosPerSecond;
  codec::DecodedFlow d;
  if (!codec::FlowFromProto(msg, kNow, age, &d).ok()) return 0;
  CheckReencode(d);
  if (d.remaining <= 0) return 0;
  std::unique_ptr<ConntrackEngine> engine = NewEngine();
  (void)engine->Insert(d.flow, &d.counters, kNow);
  engine->Expire(kNow + 10LL * 86400 * kNanosPerSecond, 1 << 20);
  return 0;
}

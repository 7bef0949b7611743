// Fuzz target: what storage reads back from disk, on arbitrary bytes: flow keys, flow
// values (CRC32C + proto::Flow) through RestoreCollector, export files through
// ReadExportFile, and the restored flows into a fresh 64-entry engine (live flows with
// RestoreIntoEngine, external ones through an ExternalCache, as ctsyncd does at start).
//
// An input that starts with the export magic "CTSNAPX1" is one export file. Any other
// input is a run of records (fuzz_input.h); kind % 4:
//   0 / 1  a store record of the live / external stream: body = key length (1 byte) | key
//          | value;
//   2      an export file (the body is written to a temporary file and read back);
//   3      a flow key alone: DecodeFlowKey and DescribeFlowKey; a key that decodes must
//          encode back to the same bytes.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "core/conntrack/conntrack_engine.h"
#include "google/protobuf/stubs/logging.h"
#include "storage/export_file.h"
#include "storage/record_format.h"
#include "storage/restore.h"
#include "sync/external_apply.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/fuzz/known_bugs.h"

namespace ctsync::fuzz {
namespace {

constexpr Nanos kNow = 1000 * kNanosPerSecond;
constexpr Nanos kWallNow = 1'700'000'000'000 * kNanosPerMilli;

std::string_view AsText(absl::Span<const uint8_t> b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

const std::string& TempPath() {
  static const std::string* path = [] {
    const char* dir = std::getenv("TMPDIR");
    return new std::string(
        absl::StrCat(dir && *dir ? dir : "/tmp", "/ctsync_store_fuzz_", getpid(), ".ctx"));
  }();
  return *path;
}

void ReadExport(absl::Span<const uint8_t> bytes, storage::RestoreCollector& collector) {
  const std::string& path = TempPath();
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) {
    std::abort();
  }
  std::fclose(f);
  (void)storage::IsExportFile(path);
  proto::ExportHeader header;
  const absl::Status s =
      storage::ReadExportFile(path, &header, [&](const storage::ExportRecordView& r) {
        if (r.status.ok()) {
          CTSYNC_FUZZ_CHECK(r.flow != nullptr);
          if (!HitsKnownBug(*r.flow)) collector.AddFlow(r.stream, *r.flow);
        } else {
          collector.AddError(std::string(r.status.message()));
        }
      });
  (void)s;
}

void Key(absl::Span<const uint8_t> body) {
  const std::string_view key = AsText(body);
  (void)storage::DescribeFlowKey(key);
  uint16_t zone = 0;
  Tuple t;
  if (!storage::DecodeFlowKey(key, &zone, &t).ok()) return;
  CTSYNC_FUZZ_CHECK(storage::EncodeFlowKey(zone, t) == key);
}

void Restore(storage::RestoredFlows flows) {
  ConntrackOptions o;
  o.settings.nf_conntrack_max = 64;
  o.settings.nf_conntrack_buckets = 64;
  o.event_ring_capacity = 0;
  auto engine = ConntrackEngine::Create(o, kNow);
  if (!engine.ok()) std::abort();
  const storage::EngineRestoreResult r = storage::RestoreIntoEngine(**engine, flows.live(), kNow);
  CTSYNC_FUZZ_CHECK(r.inserted + r.clashed + r.table_full <= flows.live().size());
  sync::ExternalCache cache(**engine);
  for (const codec::DecodedFlow& d : flows.external()) {
    sync::PeerFlowUpdate u;
    u.type = FlowEventType::kNew;
    u.decoded = d;
    u.original = d.flow.tuple[0];
    u.zone = d.flow.zone;
    cache.Apply(u, kNow);
  }
  // Everything must expire cleanly, masters and children alike.
  (*engine)->Expire(kNow + 10LL * 86400 * kNanosPerSecond, 1 << 20);
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
  storage::RestoreCollector collector(kNow, kWallNow);
  const absl::Span<const uint8_t> input(data, size);
  if (size >= 8 && std::string_view(reinterpret_cast<const char*>(data), 8) ==
                       std::string_view(storage::kExportMagic, 8)) {
    ReadExport(input, collector);
  } else {
    RecordReader reader(data, size);
    FuzzRecord r;
    while (reader.Next(&r)) {
      switch (r.kind % 4) {
        case 0:
        case 1: {
          const size_t klen = r.body.empty() ? 0 : std::min<size_t>(r.body[0], r.body.size() - 1);
          const absl::Span<const uint8_t> key = r.body.empty() ? r.body : r.body.subspan(1, klen);
          const absl::Span<const uint8_t> value =
              r.body.empty() ? r.body : r.body.subspan(1 + klen);
          proto::Flow flow;
          if (storage::DecodeFlowValue(AsText(key), AsText(value), &flow).ok() &&
              HitsKnownBug(flow)) {
            break;
          }
          collector.AddRecord(r.kind % 4 ? storage::Stream::kExternal : storage::Stream::kLive,
                              AsText(key), AsText(value));
          break;
        }
        case 2:
          ReadExport(r.body, collector);
          break;
        case 3:
          Key(r.body);
          break;
      }
    }
  }
  Restore(collector.Finish());
  return 0;
}

// Restore on start: turns stored flow records back into engine flows and inserts them,
// before the node handles its first packet. Owned by storage/.
//
// Time: each record carries the remaining timeout and the wall-clock time it was written,
// so a record's age (wall_now - its wall time, never negative) is subtracted from its
// timeout; that age includes the time the node was down. Flows whose remaining time is
// gone are dropped, as the kernel would have expired them meanwhile. The daemon rewrites
// the whole table at shutdown (FlowStore::RewriteStream), so the age is then exactly the
// downtime.
//
// DecodeForRestore: any thread. RestoreIntoEngine: the engine's owning thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/conntrack/conntrack_engine.h"
#include "proto/flow_codec.h"
#include "storage/record_format.h"

namespace ctsync::storage {

struct RestoredFlows {
  std::vector<codec::DecodedFlow> flows[kStreamCount];  // indexed by Stream
  uint64_t expired = 0;  // dropped: their timeout ran out while the node was down
  uint64_t corrupt = 0;  // records that failed their checksum or did not decode
  // The first kMaxNamedErrors bad records, each named by its key and what is wrong.
  std::vector<std::string> errors;
  static constexpr size_t kMaxNamedErrors = 16;

  const std::vector<codec::DecodedFlow>& live() const { return flows[0]; }
  const std::vector<codec::DecodedFlow>& external() const { return flows[1]; }
  // Moves `more` in after what is here (flows, counts, named errors up to the limit).
  void Append(RestoredFlows&& more);
};

// How long ago (ns) a record written at wall time `record_wall_ms` was, at `wall_now`: 0
// for a record from the future (the wall clock stepped back), saturating at the largest
// Nanos for a time so far back (or a damaged one) that the product would overflow.
Nanos RecordAge(Nanos wall_now, int64_t record_wall_ms);

// Collects records one at a time (from a store, a snapshot or an export file).
class RestoreCollector {
 public:
  // `now`: monotonic time the restored deadlines are set against; `wall_now`: the wall
  // clock at the same moment.
  RestoreCollector(Nanos now, Nanos wall_now) : now_(now), wall_now_(wall_now) {}
  void AddRecord(Stream s, std::string_view key, std::string_view value);
  void AddFlow(Stream s, const proto::Flow& flow);
  void AddError(std::string error);
  // Room for `n` more flows of a stream (saves regrowing vectors of big entries).
  void Reserve(Stream s, size_t n) { out_.flows[static_cast<int>(s)].reserve(n); }
  RestoredFlows Finish() { return std::move(out_); }

 private:
  Nanos now_;
  Nanos wall_now_;
  RestoredFlows out_;
  proto::Flow scratch_;  // reused: parsing into it keeps its allocations
};

// Restores from anything FlowSource opens: a snapshot directory, a store directory or an
// export file from another node. Records are aged against the wall time
// they carry, exactly as FlowStore::Restore does. Errors: the source does not open or
// cannot be walked to the end (truncated export, RocksDB corruption).
absl::StatusOr<RestoredFlows> RestoreFromPath(const std::string& path, Nanos now, Nanos wall_now);

// RestoreCollector::AddRecord spread over worker threads: the caller (reading the store)
// hands over raw records in chunks, `workers` threads check and decode them. Same result,
// in the same order, as one RestoreCollector; restore at start is mostly decoding, so this
// divides its time by the cores available. Add* and Finish from one thread.
class ParallelRestoreCollector {
 public:
  ParallelRestoreCollector(Nanos now, Nanos wall_now, unsigned workers);
  ~ParallelRestoreCollector();
  ParallelRestoreCollector(const ParallelRestoreCollector&) = delete;
  ParallelRestoreCollector& operator=(const ParallelRestoreCollector&) = delete;

  void AddRecord(Stream s, std::string_view key, std::string_view value);
  void AddError(std::string error);
  RestoredFlows Finish();

 private:
  struct Chunk;
  void Submit();
  void Work();

  Nanos now_;
  Nanos wall_now_;
  std::unique_ptr<Chunk> current_;
  std::vector<std::unique_ptr<Chunk>> chunks_;  // in submission order
  std::vector<std::string> errors_;             // the caller's own (read errors)
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Chunk*> pending_;  // guarded by mu_
  bool done_ = false;           // guarded by mu_
  std::vector<std::thread> threads_;
};

struct EngineRestoreResult {
  uint64_t inserted = 0;
  uint64_t clashed = 0;     // a tuple was already taken (AlreadyExists)
  uint64_t table_full = 0;  // ResourceExhausted: table or hash chain full
  uint64_t masters_linked = 0;
};

// Inserts flows with ConntrackEngine::Insert (which emits NEW for each). Their reply tuples
// carry the NAT bindings, so the NAT engine's tuple-uniqueness check against the table
// never hands a restored flow's port to a new flow. Restores NAT sequence adjustments and
// links RELATED flows to their masters when the master was restored too.
EngineRestoreResult RestoreIntoEngine(ConntrackEngine& engine,
                                      const std::vector<codec::DecodedFlow>& flows, Nanos now);

}  // namespace ctsync::storage

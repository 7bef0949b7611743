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
// Collectors: see each class. EngineRestorer / RestoreIntoEngine: the engine's owning thread.
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
#include "absl/types/span.h"
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
  // Streamed restore only (diagnostics): CPU time of its reader thread and of its decode
  // workers, to tell which stage a slow restore waited on.
  Nanos read_cpu = 0;
  Nanos decode_cpu = 0;

  const std::vector<codec::DecodedFlow>& live() const { return flows[0]; }
  const std::vector<codec::DecodedFlow>& external() const { return flows[1]; }
  // Moves `more` in after what is here (flows, counts, named errors up to the limit).
  void Append(RestoredFlows&& more);
  // Empties everything, keeping the flow vectors' capacity.
  void Clear();
};

// How long ago (ns) a record written at wall time `record_wall_ms` was, at `wall_now`: 0
// for a record from the future (the wall clock stepped back), saturating at the largest
// Nanos for a time so far back (or a damaged one) that the product would overflow.
Nanos RecordAge(Nanos wall_now, int64_t record_wall_ms);

// CPU time the calling thread has used so far (for RestoredFlows' read_cpu / decode_cpu).
Nanos ThreadCpuNow();

// Collects records one at a time (from a store, a snapshot or an export file).
class RestoreCollector {
 public:
  // `now`: monotonic time the restored deadlines are set against; `wall_now`: the wall
  // clock at the same moment.
  RestoreCollector(Nanos now, Nanos wall_now) : now_(now), wall_now_(wall_now) {}
  // Collects into `reuse` after emptying it: its vectors keep their capacity.
  RestoreCollector(Nanos now, Nanos wall_now, RestoredFlows reuse);
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

// Receives restored flows a run at a time, in record order within each stream (see
// ParallelRestoreCollector::Consume). The flows are the sink's to use or move from until it
// returns; their memory is then reused.
using RestoreSink = absl::FunctionRef<void(Stream, absl::Span<codec::DecodedFlow>)>;

// RestoreCollector::AddRecord spread over threads: a producer (the thread reading the store)
// hands over raw records, `workers` threads check and decode them in chunks (the consumer
// too, when the chunk it needs next is not ready), and a consumer takes the decoded chunks
// in the order the records came: one chunk at a time (Consume, to
// restore straight into the engine with a few chunks in memory) or all at once (Finish).
// Same flows, in the same order per stream, same counts and named errors as one
// RestoreCollector. AddRecord, AddError and EndInput from one producer thread; Consume or
// Finish from one consumer thread (Finish may be called by the producer itself).
class ParallelRestoreCollector {
 public:
  // max_in_flight: chunks handed over but not yet consumed; AddRecord waits for the
  // consumer beyond that. 0: no limit (needed when the producer calls Finish itself).
  ParallelRestoreCollector(Nanos now, Nanos wall_now, unsigned workers,
                           size_t max_in_flight = 0);
  ~ParallelRestoreCollector();
  ParallelRestoreCollector(const ParallelRestoreCollector&) = delete;
  ParallelRestoreCollector& operator=(const ParallelRestoreCollector&) = delete;

  void AddRecord(Stream s, std::string_view key, std::string_view value);
  void AddError(std::string error);  // a read error (counted as corrupt, named)
  void EndInput();                   // no more records
  // Until EndInput and the last chunk: sink(stream, flows) for each decoded chunk (live
  // and external flows of a chunk are passed separately). Returns the counts and named
  // errors; its flow vectors are empty.
  RestoredFlows Consume(RestoreSink sink);
  // EndInput, then every flow collected into the result.
  RestoredFlows Finish();

 private:
  struct Chunk;
  void Submit();
  void Work();
  void Decode(Chunk* c);  // any thread: decodes c, marks it decoded

  Nanos now_;
  Nanos wall_now_;
  size_t max_in_flight_;
  std::unique_ptr<Chunk> current_;  // producer only
  std::mutex mu_;
  std::condition_variable cv_;        // workers (work to do) and consumer (chunk decoded)
  std::condition_variable space_cv_;  // producer: a chunk was consumed
  std::deque<std::unique_ptr<Chunk>> chunks_;  // guarded by mu_: handed over, in order
  std::deque<Chunk*> pending_;                 // guarded by mu_: not yet decoded
  std::vector<std::unique_ptr<Chunk>> free_;   // guarded by mu_: consumed, for reuse
  std::vector<std::string> errors_;            // guarded by mu_: the producer's own
  Nanos decode_cpu_ = 0;                       // guarded by mu_: the workers' CPU so far
  bool ended_ = false;                         // guarded by mu_
  bool done_ = false;                          // guarded by mu_
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
// never hands a restored flow's port to a new flow. Restores NAT sequence adjustments and,
// in Finish, links RELATED flows to their masters when the master was restored too (a
// master may come after its child). Add as often as flows arrive. Engine's thread only.
class EngineRestorer {
 public:
  EngineRestorer(ConntrackEngine& engine, Nanos now) : engine_(engine), now_(now) {}
  void Add(absl::Span<const codec::DecodedFlow> flows);
  EngineRestoreResult Finish();

 private:
  struct Related {
    FlowIndex idx;
    uint16_t zone;
    Tuple master;  // a copy: the flows passed to Add may be gone by Finish
  };
  void InsertRun(absl::Span<const codec::DecodedFlow> flows);

  ConntrackEngine& engine_;
  Nanos now_;
  EngineRestoreResult result_;
  std::vector<Related> related_;
};

// EngineRestorer over one vector.
EngineRestoreResult RestoreIntoEngine(ConntrackEngine& engine,
                                      const std::vector<codec::DecodedFlow>& flows, Nanos now);

}  // namespace ctsync::storage

// Read-only access to saved flows for tools (ctsnap) and for loading another node's
// export: a live store directory (readable while its daemon runs), a snapshot directory
// (its manifest is checked on open) or an export file. Owned by storage/. One thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ctsync/flow.pb.h"
#include "ctsync/snapshot.pb.h"
#include "storage/internal/store_db.h"
#include "storage/record_format.h"

namespace ctsync::storage {

struct SourceRecord {
  Stream stream = Stream::kLive;
  std::string name;  // the record named for messages (its key, or its export index)
  std::string key;   // EncodeFlowKey of the flow (empty when the record is bad)
  proto::Flow flow;  // meaningful when status is OK
  absl::Status status;
};

class FlowSource {
 public:
  enum class Kind { kStore, kSnapshot, kExport };

  // Errors say what is wrong: not a store / snapshot / export, an incomplete snapshot, a
  // manifest that is missing, truncated or altered, a snapshot file missing or cut short.
  static absl::StatusOr<std::unique_ptr<FlowSource>> Open(const std::string& path);

  Kind kind() const { return kind_; }
  const std::string& path() const { return path_; }
  // Snapshots only.
  const std::optional<proto::SnapshotManifest>& manifest() const { return manifest_; }
  // Node id and wall time (ms) of the saved state, from the manifest, export header or meta.
  const std::string& node_id() const { return node_id_; }
  int64_t wall_time_ms() const { return wall_time_ms_; }

  // Every record, good and bad, in key order (stores, snapshots) or file order (exports).
  // An error means the walk could not finish (RocksDB corruption, a truncated export).
  absl::Status ForEach(const std::function<void(const SourceRecord&)>& fn) const;

 private:
  FlowSource() = default;
  Kind kind_ = Kind::kStore;
  std::string path_;
  std::optional<proto::SnapshotManifest> manifest_;
  std::string node_id_;
  int64_t wall_time_ms_ = 0;
  std::optional<internal::StoreDb> db_;
};

}  // namespace ctsync::storage

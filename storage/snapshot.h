// Snapshots of the flow store: consistent point-in-time copies (RocksDB checkpoints) in
// <root>/snapshots/<UTC time>-<sequence>/, each with a manifest.pb written last and
// fsynced. A directory without a valid manifest (or a "*.tmp" one RocksDB left while
// copying) is an incomplete snapshot: listed as such, never read as data, removed by
// retention. Owned by storage/; FlowStore takes snapshots, ctsnap reads them.
//
// Free functions; any thread. Two processes must not apply retention to one root at once.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/util/clock.h"
#include "ctsync/snapshot.pb.h"

namespace ctsync::storage {

inline constexpr char kSnapshotsDir[] = "snapshots";
inline constexpr char kManifestFile[] = "manifest.pb";

struct SnapshotInfo {
  std::string name;  // "20261122T053000Z-000001"
  std::string path;
  uint64_t sequence = 0;
  bool complete = false;
  std::string problem;               // why it is not complete
  proto::SnapshotManifest manifest;  // meaningful when complete
};

// "<yyyymmddThhmmssZ>-<6-digit sequence>"; names sort by time, then sequence.
std::string SnapshotName(Nanos wall, uint64_t sequence);

// Every snapshot under <root>/snapshots (root may also be the snapshots folder itself),
// oldest first. A missing folder is an empty list.
absl::StatusOr<std::vector<SnapshotInfo>> ListSnapshots(const std::string& root);

// manifest.pb layout: "CTSNAPM1" | length (u32 LE) | CRC32C of the body (u32 LE) | body (a
// serialized SnapshotManifest). Errors name the file and what is wrong with it.
absl::StatusOr<proto::SnapshotManifest> ReadManifest(const std::string& snapshot_dir);
absl::Status WriteManifest(const std::string& snapshot_dir, const proto::SnapshotManifest& m);

// Fills the manifest's counts, record checksum and file list from a finished checkpoint
// directory (opened read-only, so it is also proven to open).
absl::Status DescribeCheckpoint(const std::string& dir, proto::SnapshotManifest* m);

// Keeps the newest `keep` complete snapshots; removes older ones and every incomplete one.
// Call only while no snapshot is being written into the root.
absl::Status ApplyRetention(const std::string& root, size_t keep,
                            std::vector<std::string>* removed = nullptr);

// Everything `verify` checks in a store or snapshot directory: the manifest (when it is a
// snapshot), each listed file's presence, size and CRC32C, that RocksDB opens it, each
// record's checksum and decoding, and the manifest's counts and record checksum.
struct VerifyReport {
  std::vector<std::string> problems;  // one line per bad thing, naming it
  uint64_t records_ok = 0;
  uint64_t records_bad = 0;
  uint64_t files_checked = 0;
  bool ok() const { return problems.empty(); }
};
// `progress` (optional) is called now and then with records checked so far.
VerifyReport VerifyStoreDir(const std::string& dir,
                            const std::function<void(uint64_t)>& progress = nullptr);

// CRC32C and size of a whole file.
absl::Status FileCrc32c(const std::string& path, uint64_t* size, uint32_t* crc);

}  // namespace ctsync::storage

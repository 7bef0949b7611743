#include "storage/flow_source.h"

#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "storage/export_file.h"
#include "storage/snapshot.h"

namespace ctsync::storage {
namespace fs = std::filesystem;

absl::StatusOr<std::unique_ptr<FlowSource>> FlowSource::Open(const std::string& path) {
  std::unique_ptr<FlowSource> src(new FlowSource());
  src->path_ = path;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    if (!IsExportFile(path))
      return absl::InvalidArgumentError(absl::StrCat(path, ": not a ctsync export file"));
    src->kind_ = Kind::kExport;
    proto::ExportHeader header;
    // Reads the whole file once: a truncated or damaged export is refused here.
    absl::Status s = ReadExportFile(path, &header, [](const ExportRecordView&) {});
    if (!s.ok()) return s;
    src->node_id_ = header.node_id();
    src->wall_time_ms_ = header.wall_time_ms();
    return src;
  }
  if (!fs::is_directory(path, ec))
    return absl::NotFoundError(absl::StrCat(path, ": no such store, snapshot or export file"));
  if (path.size() > 4 && path.compare(path.size() - 4, 4, ".tmp") == 0)
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": incomplete snapshot (the checkpoint was interrupted)"));
  const bool snapshot =
      fs::exists(fs::path(path) / kManifestFile, ec) || !fs::exists(fs::path(path) / "LOCK", ec);
  if (snapshot) {
    src->kind_ = Kind::kSnapshot;
    absl::StatusOr<proto::SnapshotManifest> m = ReadManifest(path);
    if (!m.ok())
      return absl::Status(m.status().code(),
                          absl::StrCat("snapshot ", path, ": ", m.status().message()));
    // Cheap structural check before RocksDB reads anything: every file there, full size.
    for (const proto::SnapshotFile& f : m->files()) {
      const fs::path file = fs::path(path) / f.name();
      const uint64_t size = fs::file_size(file, ec);
      if (ec)
        return absl::DataLossError(absl::StrCat("snapshot ", path, ": file ", f.name(),
                                                " listed in the manifest is missing"));
      if (size != f.size())
        return absl::DataLossError(absl::StrCat("snapshot ", path, ": file ", f.name(), " is ",
                                                size, " bytes, the manifest says ", f.size(),
                                                size < f.size() ? " (truncated)" : ""));
    }
    src->manifest_ = *std::move(m);
    src->node_id_ = src->manifest_->node_id();
    src->wall_time_ms_ = src->manifest_->wall_time_ms();
  }
  absl::StatusOr<internal::StoreDb> db = internal::OpenStoreDb(path, {.read_only = true});
  if (!db.ok())
    return absl::Status(db.status().code(),
                        absl::StrCat(snapshot ? "snapshot " : "store ", path,
                                     " does not open: ", db.status().message()));
  if (!snapshot) {
    src->node_id_ = internal::ReadMeta(*db, kMetaNodeId);
    int64_t ms = 0;
    if (absl::SimpleAtoi(internal::ReadMeta(*db, kMetaLastWallMs), &ms)) src->wall_time_ms_ = ms;
  }
  src->db_ = *std::move(db);
  return src;
}

absl::Status FlowSource::ForEach(const std::function<void(const SourceRecord&)>& fn) const {
  SourceRecord rec;
  if (kind_ == Kind::kExport) {
    return ReadExportFile(path_, nullptr, [&](const ExportRecordView& v) {
      rec.stream = v.stream;
      rec.status = v.status;
      rec.key.clear();
      if (v.status.ok()) {
        rec.flow = *v.flow;
        if (absl::Status s = FlowKeyOf(rec.flow, &rec.key); !s.ok()) {
          rec.status = absl::DataLossError(absl::StrCat("record ", v.index, ": ", s.message()));
          rec.key.clear();
        }
      }
      rec.name = rec.key.empty() ? absl::StrCat("record ", v.index) : DescribeFlowKey(rec.key);
      fn(rec);
    });
  }
  for (Stream s : {Stream::kLive, Stream::kExternal}) {
    absl::Status st =
        internal::ForEachRawRecord(*db_, s, [&](std::string_view key, std::string_view value) {
          rec.stream = s;
          rec.name = DescribeFlowKey(key);
          rec.key.assign(key.data(), key.size());
          rec.status = DecodeFlowValue(key, value, &rec.flow);
          fn(rec);
          return true;
        });
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

}  // namespace ctsync::storage

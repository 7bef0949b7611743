// Export files: every flow of a store or snapshot in one self-checking file that another
// ctsync node can load (RestoreCollector::AddFlow). Owned by storage/.
//
// Layout (all integers little endian):
//   "CTSNAPX1"                                  8 bytes of magic
//   frame*  where frame = type (1 byte) | length (u32) | CRC32C of payload (u32) | payload
//     type 'H': payload = ExportHeader   (exactly one, first)
//     type 'R': payload = ExportRecord   (one per flow: stream + ctsync.proto.Flow)
//     type 'T': payload = ExportTrailer  (exactly one, last: record count and the CRC32C
//                                         over the records' frame checksums, in order)
// A file without its trailer is truncated; a frame whose checksum fails is named by its
// index and byte offset. The writer writes "<path>.tmp", fsyncs, then renames, so a crash
// never leaves a half file under the final name.
//
// ExportWriter: one thread. ReadExportFile: any thread.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ctsync/snapshot.pb.h"
#include "storage/record_format.h"

namespace ctsync::storage {

inline constexpr char kExportMagic[] = "CTSNAPX1";

class ExportWriter {
 public:
  static absl::StatusOr<std::unique_ptr<ExportWriter>> Create(const std::string& path,
                                                              const proto::ExportHeader& header);
  ~ExportWriter();  // without Finish: removes the temp file
  absl::Status Add(Stream stream, const proto::Flow& flow);
  // Trailer, fsync, rename to the final path.
  absl::Status Finish();
  uint64_t records() const { return records_; }

 private:
  ExportWriter(std::string path, FILE* file) : path_(std::move(path)), file_(file) {}
  absl::Status Frame(char type, const std::string& payload, uint32_t* crc = nullptr);

  std::string path_;
  FILE* file_;
  uint64_t records_ = 0;
  uint32_t records_crc_ = 0;
  bool finished_ = false;
};

struct ExportRecordView {
  uint64_t index = 0;   // 0-based record number
  uint64_t offset = 0;  // byte offset of its frame
  Stream stream = Stream::kLive;
  const proto::Flow* flow = nullptr;  // null when status is not OK
  absl::Status status;  // a bad frame (checksum, parse): reading goes on with the next
};

// Reads the header (into *header when given) and calls fn for every record frame,
// good or bad. Returns an error when the file cannot be trusted as a whole: bad magic or
// header, truncation (no trailer, a frame cut short), or a trailer that disagrees.
absl::Status ReadExportFile(const std::string& path, proto::ExportHeader* header,
                            const std::function<void(const ExportRecordView&)>& fn);

// True when the file starts with kExportMagic.
bool IsExportFile(const std::string& path);

}  // namespace ctsync::storage

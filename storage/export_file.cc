#include "storage/export_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "storage/crc32c.h"
#include "storage/internal/store_db.h"

namespace ctsync::storage {
namespace {

constexpr size_t kFrameHeader = 1 + 4 + 4;

void PutLe32(uint32_t v, char* p) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t GetLe32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ExportWriter>> ExportWriter::Create(
    const std::string& path, const proto::ExportHeader& header) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr)
    return absl::UnavailableError(absl::StrCat("create ", tmp, ": ", std::strerror(errno)));
  std::unique_ptr<ExportWriter> w(new ExportWriter(path, f));
  if (std::fwrite(kExportMagic, 1, 8, f) != 8)
    return absl::UnavailableError(absl::StrCat("write ", tmp, ": ", std::strerror(errno)));
  if (absl::Status s = w->Frame('H', header.SerializeAsString()); !s.ok()) return s;
  return w;
}

ExportWriter::~ExportWriter() {
  if (file_ != nullptr) std::fclose(file_);
  if (!finished_) std::remove((path_ + ".tmp").c_str());
}

absl::Status ExportWriter::Frame(char type, const std::string& payload, uint32_t* crc_out) {
  char head[kFrameHeader];
  head[0] = type;
  PutLe32(static_cast<uint32_t>(payload.size()), head + 1);
  const uint32_t crc = Crc32c(payload);
  PutLe32(crc, head + 5);
  if (crc_out) *crc_out = crc;
  if (std::fwrite(head, 1, kFrameHeader, file_) != kFrameHeader ||
      std::fwrite(payload.data(), 1, payload.size(), file_) != payload.size())
    return absl::UnavailableError(absl::StrCat("write ", path_, ".tmp: ", std::strerror(errno)));
  return absl::OkStatus();
}

absl::Status ExportWriter::Add(Stream stream, const proto::Flow& flow) {
  proto::ExportRecord r;
  r.set_stream(stream == Stream::kLive ? proto::ExportRecord::LIVE : proto::ExportRecord::EXTERNAL);
  *r.mutable_flow() = flow;
  uint32_t crc = 0;
  if (absl::Status s = Frame('R', r.SerializeAsString(), &crc); !s.ok()) return s;
  records_crc_ = Crc32cExtend(records_crc_, &crc, sizeof(crc));
  ++records_;
  return absl::OkStatus();
}

absl::Status ExportWriter::Finish() {
  proto::ExportTrailer t;
  t.set_records(records_);
  t.set_records_crc32c(records_crc_);
  if (absl::Status s = Frame('T', t.SerializeAsString()); !s.ok()) return s;
  const std::string tmp = path_ + ".tmp";
  if (std::fflush(file_) != 0 || ::fsync(fileno(file_)) != 0)
    return absl::UnavailableError(absl::StrCat("flush ", tmp, ": ", std::strerror(errno)));
  std::fclose(file_);
  file_ = nullptr;
  if (std::rename(tmp.c_str(), path_.c_str()) != 0)
    return absl::UnavailableError(absl::StrCat("rename ", tmp, ": ", std::strerror(errno)));
  finished_ = true;
  std::filesystem::path dir = std::filesystem::absolute(path_).parent_path();
  return internal::SyncDir(dir.string());
}

bool IsExportFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[8];
  return in.read(magic, 8) && std::memcmp(magic, kExportMagic, 8) == 0;
}

absl::Status ReadExportFile(const std::string& path, proto::ExportHeader* header,
                            const std::function<void(const ExportRecordView&)>& fn) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, kExportMagic, 8) != 0)
    return absl::DataLossError(absl::StrCat(path, ": not a ctsync export file (bad magic)"));
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  uint64_t offset = 8;
  uint64_t index = 0;
  uint32_t records_crc = 0;
  bool have_header = false;
  std::string payload;
  for (;;) {
    char head[kFrameHeader];
    in.read(head, kFrameHeader);
    if (in.gcount() == 0)
      return absl::DataLossError(
          absl::StrCat(path, ": truncated after ", index, " records (no trailer)"));
    if (static_cast<size_t>(in.gcount()) != kFrameHeader)
      return absl::DataLossError(
          absl::StrCat(path, ": truncated inside a frame header at byte ", offset));
    const char type = head[0];
    const uint32_t len = GetLe32(head + 1);
    const uint32_t crc = GetLe32(head + 5);
    if (type != 'H' && type != 'R' && type != 'T')
      return absl::DataLossError(absl::StrFormat("%s: unknown frame type 0x%02x at byte %d", path,
                                                 static_cast<uint8_t>(type), offset));
    // A damaged length must not make us allocate gigabytes.
    if (offset + kFrameHeader + len > file_size)
      return absl::DataLossError(absl::StrCat(path, ": truncated inside the frame at byte ", offset,
                                              " (it needs ", len, " bytes, the file has ",
                                              file_size - offset - kFrameHeader, ")"));
    payload.resize(len);
    in.read(payload.data(), len);
    if (static_cast<uint64_t>(in.gcount()) != len)
      return absl::DataLossError(absl::StrCat(path, ": truncated inside the frame at byte ", offset,
                                              " (", in.gcount(), " of ", len, " bytes)"));
    const bool crc_ok = Crc32c(payload) == crc;
    if (type == 'H') {
      proto::ExportHeader h;
      if (have_header || !crc_ok || !h.ParseFromString(payload))
        return absl::DataLossError(absl::StrCat(path, ": bad header frame"));
      if (h.format_version() > kStoreFormatVersion)
        return absl::FailedPreconditionError(absl::StrCat(
            path, ": format version ", h.format_version(), " is newer than ", kStoreFormatVersion));
      have_header = true;
      if (header) *header = h;
    } else if (!have_header) {
      return absl::DataLossError(absl::StrCat(path, ": no header frame"));
    } else if (type == 'R') {
      records_crc = Crc32cExtend(records_crc, &crc, sizeof(crc));
      ExportRecordView v;
      v.index = index++;
      v.offset = offset;
      proto::ExportRecord r;
      if (!crc_ok) {
        v.status = absl::DataLossError(
            absl::StrFormat("record %d at byte %d: checksum mismatch (stored %08x, computed %08x)",
                            v.index, offset, crc, Crc32c(payload)));
      } else if (!r.ParseFromString(payload)) {
        v.status = absl::DataLossError(
            absl::StrFormat("record %d at byte %d: does not parse", v.index, offset));
      } else {
        v.stream = r.stream() == proto::ExportRecord::EXTERNAL ? Stream::kExternal : Stream::kLive;
        v.flow = &r.flow();
      }
      fn(v);
    } else {
      proto::ExportTrailer t;
      if (!crc_ok || !t.ParseFromString(payload))
        return absl::DataLossError(absl::StrCat(path, ": bad trailer frame at byte ", offset));
      if (t.records() != index)
        return absl::DataLossError(
            absl::StrCat(path, ": trailer says ", t.records(), " records, file has ", index));
      if (t.records_crc32c() != records_crc)
        return absl::DataLossError(
            absl::StrCat(path, ": record checksums disagree with the trailer"));
      if (in.peek() != std::char_traits<char>::eof())
        return absl::DataLossError(absl::StrCat(path, ": data after the trailer"));
      return absl::OkStatus();
    }
    offset += kFrameHeader + len;
  }
}

}  // namespace ctsync::storage

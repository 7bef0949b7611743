#include "storage/snapshot.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/conntrack/flow_listing.h"
#include "core/conntrack/tcp_tracker.h"
#include "storage/crc32c.h"
#include "storage/internal/store_db.h"
#include "storage/record_format.h"

namespace ctsync::storage {
namespace fs = std::filesystem;
namespace {

constexpr char kManifestMagic[] = "CTSNAPM1";
constexpr size_t kManifestHeader = 8 + 4 + 4;

void PutLe32(uint32_t v, std::string* out) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t GetLe32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": missing"));
    return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno)));
  }
  std::string out;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(e)));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// Files of a checkpoint that the manifest covers: RocksDB's own (SST, WAL, MANIFEST,
// CURRENT, OPTIONS). Not our manifest, not info logs, not leftovers of our own writes.
bool CoveredFile(const std::string& name) {
  if (name == kManifestFile || name.rfind("LOG", 0) == 0) return false;
  if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) return false;
  return true;
}

bool ParseSequence(const std::string& name, uint64_t* seq) {
  std::string base = name;
  if (base.size() > 4 && base.compare(base.size() - 4, 4, ".tmp") == 0)
    base.resize(base.size() - 4);
  const size_t dash = base.rfind('-');
  if (dash == std::string::npos) return false;
  return absl::SimpleAtoi(absl::string_view(base).substr(dash + 1), seq);
}

std::string SnapshotsFolder(const std::string& root) {
  const fs::path sub = fs::path(root) / kSnapshotsDir;
  std::error_code ec;
  if (fs::is_directory(sub, ec)) return sub.string();
  if (fs::path(root).filename() == kSnapshotsDir) return root;
  return sub.string();
}

}  // namespace

std::string SnapshotName(Nanos wall, uint64_t sequence) {
  const time_t secs = static_cast<time_t>(wall / kNanosPerSecond);
  struct tm tm;
  gmtime_r(&secs, &tm);
  return absl::StrFormat("%04d%02d%02dT%02d%02d%02dZ-%06d", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, sequence);
}

absl::Status FileCrc32c(const std::string& path, uint64_t* size, uint32_t* crc) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": missing"));
    return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno)));
  }
  uint32_t c = 0;
  uint64_t total = 0;
  std::string buf(1 << 20, '\0');
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(e)));
    }
    if (n == 0) break;
    c = Crc32cExtend(c, buf.data(), static_cast<size_t>(n));
    total += static_cast<uint64_t>(n);
  }
  ::close(fd);
  *size = total;
  *crc = c;
  return absl::OkStatus();
}

absl::StatusOr<proto::SnapshotManifest> ReadManifest(const std::string& dir) {
  const std::string path = (fs::path(dir) / kManifestFile).string();
  absl::StatusOr<std::string> data = ReadWholeFile(path);
  if (!data.ok()) {
    if (absl::IsNotFound(data.status()))
      return absl::NotFoundError(
          absl::StrCat(path, ": missing (the snapshot was interrupted before it completed)"));
    return data.status();
  }
  if (data->size() < kManifestHeader)
    return absl::DataLossError(absl::StrCat(path, ": truncated (", data->size(),
                                            " bytes, shorter than its 16-byte header)"));
  if (data->compare(0, 8, kManifestMagic) != 0)
    return absl::DataLossError(absl::StrCat(path, ": not a ctsync manifest (bad magic)"));
  const uint32_t len = GetLe32(data->data() + 8);
  const uint32_t crc = GetLe32(data->data() + 12);
  if (data->size() - kManifestHeader != len)
    return absl::DataLossError(absl::StrCat(path, ": truncated or padded (header says ", len,
                                            " body bytes, file has ",
                                            data->size() - kManifestHeader, ")"));
  const std::string_view body(data->data() + kManifestHeader, len);
  const uint32_t actual = Crc32c(body);
  if (actual != crc)
    return absl::DataLossError(
        absl::StrFormat("%s: checksum mismatch (stored %08x, computed %08x)", path, crc, actual));
  proto::SnapshotManifest m;
  if (!m.ParseFromArray(body.data(), static_cast<int>(body.size())))
    return absl::DataLossError(absl::StrCat(path, ": checksum ok but the manifest does not parse"));
  if (m.format_version() > kStoreFormatVersion)
    return absl::FailedPreconditionError(absl::StrCat(path, ": format version ", m.format_version(),
                                                      " is newer than ", kStoreFormatVersion));
  return m;
}

absl::Status WriteManifest(const std::string& dir, const proto::SnapshotManifest& m) {
  std::string body;
  if (!m.SerializeToString(&body)) return absl::InternalError("manifest does not serialize");
  std::string data(kManifestMagic, 8);
  PutLe32(static_cast<uint32_t>(body.size()), &data);
  PutLe32(Crc32c(body), &data);
  data += body;
  return internal::WriteFileDurably((fs::path(dir) / kManifestFile).string(), data);
}

absl::Status DescribeCheckpoint(const std::string& dir, proto::SnapshotManifest* m) {
  // Files first: the read-only open below must not (and with the null logger does not)
  // add or change any of them.
  std::vector<std::string> names;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && CoveredFile(e.path().filename().string()))
      names.push_back(e.path().filename().string());
  }
  if (ec) return absl::UnavailableError(absl::StrCat(dir, ": ", ec.message()));
  std::sort(names.begin(), names.end());
  m->clear_files();
  for (const std::string& name : names) {
    proto::SnapshotFile* f = m->add_files();
    f->set_name(name);
    uint64_t size;
    uint32_t crc;
    if (absl::Status s = FileCrc32c((fs::path(dir) / name).string(), &size, &crc); !s.ok())
      return s;
    f->set_size(size);
    f->set_crc32c(crc);
  }
  absl::StatusOr<internal::StoreDb> db = internal::OpenStoreDb(dir, {.read_only = true});
  if (!db.ok()) return db.status();
  std::map<std::string, uint64_t> counts;
  uint32_t records_crc = 0;
  uint64_t per_stream[kStreamCount] = {0, 0};
  absl::Status bad;
  for (Stream s : {Stream::kLive, Stream::kExternal}) {
    absl::Status st =
        internal::ForEachRawRecord(*db, s, [&](std::string_view key, std::string_view value) {
          proto::Flow flow;
          uint32_t crc = 0;
          absl::Status d = DecodeFlowValue(key, value, &flow, &crc);
          records_crc = Crc32cExtend(records_crc, &crc, sizeof(crc));
          ++per_stream[static_cast<int>(s)];
          if (!d.ok()) {
            if (bad.ok()) bad = d;
            return true;
          }
          if (s == Stream::kLive) {
            const uint8_t p = static_cast<uint8_t>(flow.original().proto());
            const std::string proto_name = L4ProtoName(p, ListingFormat::kConntrackL);
            ++counts[proto_name];
            if (p == kProtoTcp)
              ++counts[absl::StrCat(proto_name, "/",
                                    TcpStateName(static_cast<TcpState>(flow.tcp().state())))];
          }
          return true;
        });
    if (!st.ok()) return st;
  }
  m->set_live_flows(per_stream[0]);
  m->set_external_flows(per_stream[1]);
  m->set_records_crc32c(records_crc);
  m->set_rocksdb_sequence(db->db->GetLatestSequenceNumber());
  m->clear_counts();
  for (const auto& [key, n] : counts) {
    proto::FlowCount* c = m->add_counts();
    c->set_key(key);
    c->set_count(n);
  }
  // A bad record in the source store is copied faithfully; verify will name it. The
  // snapshot itself is still a true copy, so it is not refused.
  return db->Close();
}

absl::StatusOr<std::vector<SnapshotInfo>> ListSnapshots(const std::string& root) {
  const std::string folder = SnapshotsFolder(root);
  std::vector<SnapshotInfo> out;
  std::error_code ec;
  if (!fs::exists(folder, ec)) return out;
  for (const fs::directory_entry& e : fs::directory_iterator(folder, ec)) {
    if (!e.is_directory()) continue;
    SnapshotInfo info;
    info.name = e.path().filename().string();
    info.path = e.path().string();
    if (!ParseSequence(info.name, &info.sequence)) continue;  // not one of ours
    if (info.name.size() > 4 && info.name.compare(info.name.size() - 4, 4, ".tmp") == 0) {
      info.problem = "incomplete: the checkpoint was interrupted while being copied";
    } else if (absl::StatusOr<proto::SnapshotManifest> m = ReadManifest(info.path); m.ok()) {
      info.complete = true;
      info.manifest = *std::move(m);
    } else {
      info.problem = absl::StrCat("incomplete: ", m.status().message());
    }
    out.push_back(std::move(info));
  }
  if (ec) return absl::UnavailableError(absl::StrCat(folder, ": ", ec.message()));
  std::sort(out.begin(), out.end(), [](const SnapshotInfo& a, const SnapshotInfo& b) {
    return a.sequence != b.sequence ? a.sequence < b.sequence : a.name < b.name;
  });
  return out;
}

absl::Status ApplyRetention(const std::string& root, size_t keep,
                            std::vector<std::string>* removed) {
  absl::StatusOr<std::vector<SnapshotInfo>> list = ListSnapshots(root);
  if (!list.ok()) return list.status();
  size_t complete = 0;
  for (const SnapshotInfo& s : *list) complete += s.complete ? 1 : 0;
  size_t complete_seen = 0;
  absl::Status result;
  for (const SnapshotInfo& s : *list) {  // oldest first
    bool drop = !s.complete;
    if (s.complete) drop = complete - complete_seen++ > keep;
    if (!drop) continue;
    std::error_code ec;
    // The manifest goes first, durably: a crash in the middle of remove_all then leaves a
    // snapshot listed as incomplete (removed next time), never one that looks complete but
    // has lost some of its files.
    if (s.complete) {
      fs::remove(fs::path(s.path) / kManifestFile, ec);
      if (!ec) {
        if (absl::Status synced = internal::SyncDir(s.path); !synced.ok()) {
          if (result.ok()) result = synced;
          continue;
        }
      }
    }
    if (!ec) fs::remove_all(s.path, ec);
    if (ec && result.ok())
      result = absl::UnavailableError(absl::StrCat("remove ", s.path, ": ", ec.message()));
    if (!ec && removed != nullptr) removed->push_back(s.name);
  }
  if (absl::Status s = internal::SyncDir(SnapshotsFolder(root)); !s.ok() && result.ok()) result = s;
  return result;
}

VerifyReport VerifyStoreDir(const std::string& dir, const std::function<void(uint64_t)>& progress) {
  VerifyReport r;
  std::optional<proto::SnapshotManifest> manifest;
  std::error_code ec;
  const bool is_snapshot =
      fs::exists(fs::path(dir) / kManifestFile, ec) || !fs::exists(fs::path(dir) / "LOCK", ec);
  if (is_snapshot) {
    absl::StatusOr<proto::SnapshotManifest> m = ReadManifest(dir);
    if (!m.ok()) {
      r.problems.push_back(std::string(m.status().message()));
    } else {
      manifest = *std::move(m);
      for (const proto::SnapshotFile& f : manifest->files()) {
        ++r.files_checked;
        const std::string path = (fs::path(dir) / f.name()).string();
        uint64_t size;
        uint32_t crc;
        if (absl::Status s = FileCrc32c(path, &size, &crc); !s.ok()) {
          r.problems.push_back(absl::StrCat("file ", f.name(), ": ", s.message()));
        } else if (size != f.size()) {
          r.problems.push_back(absl::StrCat("file ", f.name(), ": size ", size,
                                            " bytes, manifest says ", f.size(),
                                            size < f.size() ? " (truncated)" : ""));
        } else if (crc != f.crc32c()) {
          r.problems.push_back(absl::StrFormat(
              "file %s: checksum mismatch (manifest %08x, file %08x)", f.name(), f.crc32c(), crc));
        }
      }
    }
  }
  absl::StatusOr<internal::StoreDb> db = internal::OpenStoreDb(dir, {.read_only = true});
  if (!db.ok()) {
    r.problems.push_back(absl::StrCat("store does not open: ", db.status().message()));
    return r;
  }
  const std::string version = internal::ReadMeta(*db, kMetaFormatVersion);
  uint32_t v = 0;
  if (!version.empty() && (!absl::SimpleAtoi(version, &v) || v > kStoreFormatVersion))
    r.problems.push_back(absl::StrCat("meta format_version '", version, "' not supported"));
  uint32_t records_crc = 0;
  uint64_t per_stream[kStreamCount] = {0, 0};
  for (Stream s : {Stream::kLive, Stream::kExternal}) {
    absl::Status st =
        internal::ForEachRawRecord(*db, s, [&](std::string_view key, std::string_view value) {
          proto::Flow flow;
          uint32_t crc = 0;
          absl::Status d = DecodeFlowValue(key, value, &flow, &crc);
          records_crc = Crc32cExtend(records_crc, &crc, sizeof(crc));
          ++per_stream[static_cast<int>(s)];
          if (d.ok()) {
            std::string expect;
            if (!FlowKeyOf(flow, &expect).ok() || expect != key)
              d = absl::DataLossError("stored under a key that is not its own original tuple");
          }
          if (d.ok()) {
            ++r.records_ok;
          } else {
            ++r.records_bad;
            r.problems.push_back(
                absl::StrCat(StreamName(s), " record ", DescribeFlowKey(key), ": ", d.message()));
          }
          const uint64_t done = r.records_ok + r.records_bad;
          if (progress && done % 65536 == 0) progress(done);
          return true;
        });
    if (!st.ok()) r.problems.push_back(std::string(st.message()));
  }
  if (manifest) {
    if (manifest->live_flows() != per_stream[0] || manifest->external_flows() != per_stream[1])
      r.problems.push_back(absl::StrCat("record counts ", per_stream[0], " live + ", per_stream[1],
                                        " external, manifest says ", manifest->live_flows(), " + ",
                                        manifest->external_flows()));
    else if (manifest->records_crc32c() != records_crc)
      r.problems.push_back(absl::StrFormat("record set checksum %08x, manifest says %08x",
                                           records_crc, manifest->records_crc32c()));
  }
  return r;
}

}  // namespace ctsync::storage

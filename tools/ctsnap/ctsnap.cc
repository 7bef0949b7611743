#include "tools/ctsnap/ctsnap.h"

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/conntrack/flow_listing.h"
#include "core/conntrack/tcp_tracker.h"
#include "nlohmann/json.hpp"
#include "proto/flow_codec.h"
#include "storage/export_file.h"
#include "storage/flow_source.h"
#include "storage/restore.h"
#include "storage/snapshot.h"
#include "tools/ctsnap/flow_filter.h"

namespace ctsync::ctsnap {
namespace {

using storage::FlowSource;
using storage::SourceRecord;
using storage::Stream;

constexpr int kOk = 0;
constexpr int kFound = 1;
constexpr int kError = 2;

const char* Usage() {
  return "usage: ctsnap list ROOT [-o json]\n"
         "       ctsnap show PATH [-o json] [--counters] [--external|--all] [filters]\n"
         "       ctsnap stats PATH [--external|--all] [filters]\n"
         "       ctsnap diff A B [--timeouts] [--external|--all] [filters]\n"
         "       ctsnap verify PATH\n"
         "       ctsnap export PATH -o FILE [--external|--all] [filters]\n"
         "  PATH: a snapshot directory, a store directory or an export file\n";
}

// Progress of a long walk, on a terminal only: "\r<label>: N records".
class Progress {
 public:
  Progress(std::ostream* err, std::string label) : err_(err), label_(std::move(label)) {}
  ~Progress() { Done(); }
  void Tick(uint64_t n) {
    if (err_ == nullptr || n % 65536 != 0 || n == 0) return;
    *err_ << "\r" << label_ << ": " << n << " records" << std::flush;
    shown_ = true;
  }
  void Done() {
    if (shown_) *err_ << "\r\033[K" << std::flush;
    shown_ = false;
  }

 private:
  std::ostream* err_;
  std::string label_;
  bool shown_ = false;
};

struct CommonOptions {
  FlowFilter filter;
  bool streams[storage::kStreamCount] = {true, false};
  std::string output;  // -o
  bool counters = false;
  bool timeouts = false;
  std::vector<std::string> positional;
};

absl::StatusOr<CommonOptions> ParseCommon(const std::vector<std::string>& args) {
  CommonOptions o;
  for (size_t i = 1; i < args.size();) {
    absl::StatusOr<bool> f = ParseFilterOption(args, &i, &o.filter);
    if (!f.ok()) return f.status();
    if (*f) continue;
    const std::string& a = args[i];
    if (a == "-o" || a == "--output") {
      if (i + 1 >= args.size())
        return absl::InvalidArgumentError(absl::StrCat(a, ": needs a value"));
      o.output = args[i + 1];
      i += 2;
      continue;
    }
    if (a == "--external") {
      o.streams[0] = false;
      o.streams[1] = true;
    } else if (a == "--all") {
      o.streams[0] = o.streams[1] = true;
    } else if (a == "--counters") {
      o.counters = true;
    } else if (a == "--timeouts") {
      o.timeouts = true;
    } else if (!a.empty() && a[0] == '-') {
      return absl::InvalidArgumentError(absl::StrCat("unknown option '", a, "'"));
    } else {
      o.positional.push_back(a);
    }
    ++i;
  }
  return o;
}

// A saved flow made displayable: decoded with its timeout as of the source's save time.
struct ViewFlow {
  Stream stream = Stream::kLive;
  const std::string* key = nullptr;
  const proto::Flow* msg = nullptr;
  Flow flow;
  FlowAccounting counters;
};

// The wall time (ns) the source was saved at; 0 when unknown or out of range (the value
// comes from a file).
Nanos MillisToNanos(int64_t ms) {
  return ms > 0 && ms < std::numeric_limits<Nanos>::max() / kNanosPerMilli ? ms * kNanosPerMilli
                                                                           : 0;
}
Nanos SavedAtNanos(const FlowSource& src) { return MillisToNanos(src.wall_time_ms()); }

// Walks a source: good records that pass the filter go to fn, bad ones (checksum,
// decoding) to bad. Timeouts are as of the source's save time; `now` for listings is 0.
absl::Status Walk(const FlowSource& src, const CommonOptions& o, Progress* progress,
                  const std::function<void(const ViewFlow&)>& fn, std::vector<std::string>* bad) {
  uint64_t n = 0;
  const Nanos ref_ns = SavedAtNanos(src);
  return src.ForEach([&](const SourceRecord& r) {
    if (progress) progress->Tick(++n);
    if (!o.streams[static_cast<int>(r.stream)]) return;
    if (!r.status.ok()) {
      bad->push_back(absl::StrCat(storage::StreamName(r.stream), " record ", r.name, ": ",
                                  r.status.message()));
      return;
    }
    const int64_t rec_ms = r.flow.wall_time_ms();
    const Nanos age = ref_ns > 0 ? storage::RecordAge(ref_ns, rec_ms) : 0;
    codec::DecodedFlow d;
    if (absl::Status s = codec::FlowFromProto(r.flow, 0, age, &d); !s.ok()) {
      bad->push_back(
          absl::StrCat(storage::StreamName(r.stream), " record ", r.name, ": ", s.message()));
      return;
    }
    if (!o.filter.Matches(d.flow)) return;
    ViewFlow v;
    v.stream = r.stream;
    v.key = &r.key;
    v.msg = &r.flow;
    v.flow = d.flow;
    v.counters = d.counters;
    fn(v);
  });
}

// `counters`: nullptr leaves them out.
std::string Line(const Flow& f, const FlowAccounting* counters) {
  ListingOptions lo;
  lo.counters = counters;
  return FormatConntrackLine(f, 0, ListingFormat::kConntrackL, lo);
}

const char* NatKind(uint32_t status) {
  const bool s = status & kIpsSrcNat, d = status & kIpsDstNat;
  return s && d ? "snat+dnat" : s ? "snat" : d ? "dnat" : "none";
}

std::vector<std::string> StatusNames(uint32_t status) {
  static constexpr std::pair<uint32_t, const char*> kBits[] = {{kIpsExpected, "EXPECTED"},
                                                               {kIpsSeenReply, "SEEN_REPLY"},
                                                               {kIpsAssured, "ASSURED"},
                                                               {kIpsConfirmed, "CONFIRMED"},
                                                               {kIpsSrcNat, "SRC_NAT"},
                                                               {kIpsDstNat, "DST_NAT"},
                                                               {kIpsSeqAdjust, "SEQ_ADJUST"},
                                                               {kIpsSrcNatDone, "SRC_NAT_DONE"},
                                                               {kIpsDstNatDone, "DST_NAT_DONE"},
                                                               {kIpsDying, "DYING"},
                                                               {kIpsFixedTimeout, "FIXED_TIMEOUT"},
                                                               {kIpsHelper, "HELPER"},
                                                               {kIpsOffload, "OFFLOAD"},
                                                               {kIpsHwOffload, "HW_OFFLOAD"}};
  std::vector<std::string> out;
  for (const auto& [bit, name] : kBits)
    if (status & bit) out.push_back(name);
  return out;
}

nlohmann::json TupleJson(const Tuple& t) {
  nlohmann::json j;
  j["src"] = t.src.ToString(t.family);
  j["dst"] = t.dst.ToString(t.family);
  if (t.proto == kProtoIcmp || t.proto == kProtoIcmpv6) {
    j["type"] = t.icmp_type();
    j["code"] = t.icmp_code();
    j["id"] = t.icmp_id();
  } else {
    j["sport"] = t.sport;
    j["dport"] = t.dport;
  }
  return j;
}

nlohmann::json FlowJson(const ViewFlow& v) {
  const Flow& f = v.flow;
  nlohmann::json j;
  j["stream"] = storage::StreamName(v.stream);
  j["family"] = L3ProtoName(f.family());
  j["proto"] = L4ProtoName(f.proto(), ListingFormat::kConntrackL);
  if (f.proto() == kProtoTcp) j["state"] = TcpStateName(f.tcp.state);
  j["timeout"] = f.expires > 0 ? f.expires / kNanosPerSecond : 0;
  j["original"] = TupleJson(f.tuple[0]);
  j["reply"] = TupleJson(f.tuple[1]);
  j["status"] = StatusNames(f.status);
  j["nat"] = NatKind(f.status);
  j["mark"] = f.mark;
  j["zone"] = f.zone;
  j["id"] = f.id;
  if (f.helper == FlowHelper::kFtp) j["helper"] = "ftp";
  j["counters"] = {
      {"original",
       {{"packets", v.counters.dir[0].packets}, {"bytes", v.counters.dir[0].bytes}}},
      {"reply", {{"packets", v.counters.dir[1].packets}, {"bytes", v.counters.dir[1].bytes}}}};
  j["saved_wall_ms"] = v.msg->wall_time_ms();
  return j;
}

absl::StatusOr<std::unique_ptr<FlowSource>> OpenSource(const std::string& path) {
  return FlowSource::Open(path);
}

int Fail(std::ostream& err, const absl::Status& s) {
  err << "ctsnap: " << s.message() << "\n";
  return kError;
}

void ReportBad(std::ostream& err, const std::vector<std::string>& bad) {
  for (const std::string& b : bad) err << "ctsnap: skipped bad " << b << "\n";
}

std::string IsoTime(int64_t wall_ms) {
  const time_t secs = static_cast<time_t>(wall_ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  return absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                         static_cast<int>(wall_ms % 1000));
}

// ---- list ----
int List(const CommonOptions& o, std::ostream& out, std::ostream& err) {
  if (o.positional.size() != 1) {
    err << Usage();
    return kError;
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(o.positional[0], ec))
    return Fail(err, absl::NotFoundError(absl::StrCat(o.positional[0], ": no such directory")));
  absl::StatusOr<std::vector<storage::SnapshotInfo>> list = storage::ListSnapshots(o.positional[0]);
  if (!list.ok()) return Fail(err, list.status());
  nlohmann::json arr = nlohmann::json::array();
  for (const storage::SnapshotInfo& s : *list) {
    const proto::SnapshotManifest& m = s.manifest;
    std::vector<std::string> counts;
    for (const proto::FlowCount& c : m.counts())
      counts.push_back(absl::StrCat(c.key(), ":", c.count()));
    if (o.output == "json") {
      nlohmann::json j;
      j["name"] = s.name;
      j["path"] = s.path;
      j["complete"] = s.complete;
      if (!s.complete) {
        j["problem"] = s.problem;
      } else {
        j["time"] = IsoTime(m.wall_time_ms());
        j["node"] = m.node_id();
        j["sequence"] = m.sequence();
        j["reason"] = m.reason();
        j["format_version"] = m.format_version();
        j["live"] = m.live_flows();
        j["external"] = m.external_flows();
        nlohmann::json c = nlohmann::json::object();
        for (const proto::FlowCount& fc : m.counts()) c[fc.key()] = fc.count();
        j["counts"] = c;
        j["files"] = m.files_size();
        j["records_crc32c"] = absl::StrFormat("%08x", m.records_crc32c());
      }
      arr.push_back(j);
      continue;
    }
    if (!s.complete) {
      out << s.name << " incomplete problem=\"" << s.problem << "\"\n";
      continue;
    }
    out << s.name << " complete time=" << IsoTime(m.wall_time_ms()) << " node=" << m.node_id()
        << " reason=" << m.reason() << " version=" << m.format_version()
        << " live=" << m.live_flows() << " external=" << m.external_flows()
        << " counts=" << (counts.empty() ? "-" : absl::StrJoin(counts, ","))
        << absl::StrFormat(" records_crc32c=%08x", m.records_crc32c()) << "\n";
  }
  if (o.output == "json") out << arr.dump(2) << "\n";
  return kOk;
}

// ---- show ----
int Show(const CommonOptions& o, std::ostream& out, std::ostream& err, std::ostream* prog) {
  if (o.positional.size() != 1) {
    err << Usage();
    return kError;
  }
  if (!o.output.empty() && o.output != "json")
    return Fail(err, absl::InvalidArgumentError(absl::StrCat("-o: '", o.output, "' is not json")));
  absl::StatusOr<std::unique_ptr<FlowSource>> src = OpenSource(o.positional[0]);
  if (!src.ok()) return Fail(err, src.status());
  Progress progress(prog, "reading");
  std::vector<std::string> bad;
  uint64_t shown = 0;
  absl::Status s = Walk(
      **src, o, &progress,
      [&](const ViewFlow& v) {
        ++shown;
        if (o.output == "json") {
          nlohmann::json j = FlowJson(v);
          j["line"] = Line(v.flow, o.counters ? &v.counters : nullptr);
          out << j.dump() << "\n";
        } else {
          out << Line(v.flow, o.counters ? &v.counters : nullptr) << "\n";
        }
      },
      &bad);
  progress.Done();
  ReportBad(err, bad);
  if (!s.ok()) return Fail(err, s);
  // conntrack's own closing line, on stderr as conntrack prints it.
  err << "ctsnap: " << shown << " flow entries have been shown.\n";
  return kOk;
}

// ---- stats ----
const char* AgeBucket(int64_t age_ms) {
  if (age_ms < 60'000) return "lt_1m";
  if (age_ms < 600'000) return "1m_10m";
  if (age_ms < 3'600'000) return "10m_1h";
  if (age_ms < 86'400'000) return "1h_1d";
  return "ge_1d";
}

int Stats(const CommonOptions& o, std::ostream& out, std::ostream& err, std::ostream* prog) {
  if (o.positional.size() != 1) {
    err << Usage();
    return kError;
  }
  absl::StatusOr<std::unique_ptr<FlowSource>> src = OpenSource(o.positional[0]);
  if (!src.ok()) return Fail(err, src.status());
  std::map<std::string, uint64_t> counts;
  // Every key present, zero or not, so scripts can rely on them.
  for (const char* k :
       {"flows.live", "flows.external", "nat.none", "nat.snat", "nat.dnat", "nat.snat+dnat",
        "age.lt_1m", "age.1m_10m", "age.10m_1h", "age.1h_1d", "age.ge_1d", "bad_records"})
    counts[k] = 0;
  const Nanos ref_ns = SavedAtNanos(**src);
  Progress progress(prog, "reading");
  std::vector<std::string> bad;
  absl::Status s = Walk(
      **src, o, &progress,
      [&](const ViewFlow& v) {
        const Flow& f = v.flow;
        ++counts[absl::StrCat("flows.", storage::StreamName(v.stream))];
        ++counts[absl::StrCat("proto.", L4ProtoName(f.proto(), ListingFormat::kConntrackL))];
        if (f.proto() == kProtoTcp) ++counts[absl::StrCat("tcp_state.", TcpStateName(f.tcp.state))];
        ++counts[absl::StrCat("nat.", NatKind(f.status))];
        if (f.has(kIpsAssured)) ++counts["status.assured"];
        if (!f.has(kIpsSeenReply)) ++counts["status.unreplied"];
        // Age of the flow at the save time (or at its record's own time when that is unknown).
        const Nanos ref = ref_ns > 0 ? ref_ns : MillisToNanos(v.msg->wall_time_ms());
        const Nanos age = storage::RecordAge(ref, v.msg->created_wall_ms());
        ++counts[absl::StrCat("age.", AgeBucket(age / kNanosPerMilli))];
      },
      &bad);
  progress.Done();
  counts["bad_records"] = bad.size();
  ReportBad(err, bad);
  if (!s.ok()) return Fail(err, s);
  for (const auto& [k, n] : counts) out << k << " " << n << "\n";
  return kOk;
}

// ---- diff ----
// What changed between two saves of one flow. Timeouts, window positions and counters move
// with every packet, so they count only with --timeouts.
std::string Changes(const Flow& a, const Flow& b, bool timeouts) {
  std::vector<std::string> c;
  if (a.tuple[1] != b.tuple[1]) {
    c.push_back(absl::StrCat("reply ", a.tuple[1].src.ToString(a.family()), ":", a.tuple[1].sport,
                             "->", a.tuple[1].dst.ToString(a.family()), ":", a.tuple[1].dport,
                             " => ", b.tuple[1].src.ToString(b.family()), ":", b.tuple[1].sport,
                             "->", b.tuple[1].dst.ToString(b.family()), ":", b.tuple[1].dport));
  }
  if (a.proto() == kProtoTcp && a.tcp.state != b.tcp.state)
    c.push_back(
        absl::StrCat("state ", TcpStateName(a.tcp.state), " => ", TcpStateName(b.tcp.state)));
  const uint32_t ignore = kIpsConfirmed | kIpsDying;
  if ((a.status & ~ignore) != (b.status & ~ignore))
    c.push_back(absl::StrCat("status ", absl::StrJoin(StatusNames(a.status & ~ignore), ","), " => ",
                             absl::StrJoin(StatusNames(b.status & ~ignore), ",")));
  if (a.mark != b.mark) c.push_back(absl::StrCat("mark ", a.mark, " => ", b.mark));
  if (a.helper != b.helper) c.push_back("helper");
  if (a.proto() == kProtoTcp && a.tcp.state == b.tcp.state &&
      (a.tcp.seen[0] != b.tcp.seen[0] || a.tcp.seen[1] != b.tcp.seen[1]) && timeouts)
    c.push_back("tcp window");
  if (timeouts && a.expires / kNanosPerSecond != b.expires / kNanosPerSecond)
    c.push_back(
        absl::StrCat("timeout ", a.expires / kNanosPerSecond, " => ", b.expires / kNanosPerSecond));
  return absl::StrJoin(c, "; ");
}

int Diff(const CommonOptions& o, std::ostream& out, std::ostream& err, std::ostream* prog) {
  if (o.positional.size() != 2) {
    err << Usage();
    return kError;
  }
  absl::StatusOr<std::unique_ptr<FlowSource>> a = OpenSource(o.positional[0]);
  if (!a.ok()) return Fail(err, a.status());
  absl::StatusOr<std::unique_ptr<FlowSource>> b = OpenSource(o.positional[1]);
  if (!b.ok()) return Fail(err, b.status());
  // Keyed by stream byte + record key. Holds one side in memory.
  absl::flat_hash_map<std::string, Flow> left;
  std::vector<std::string> bad;
  {
    Progress progress(prog, "reading A");
    absl::Status s = Walk(
        **a, o, &progress,
        [&](const ViewFlow& v) {
          left.emplace(absl::StrCat(std::string(1, static_cast<char>(v.stream)), *v.key), v.flow);
        },
        &bad);
    if (!s.ok()) return Fail(err, s);
  }
  struct Entry {
    std::string key;
    char mark;
    std::string text;
  };
  std::vector<Entry> entries;
  uint64_t unchanged = 0;
  {
    Progress progress(prog, "reading B");
    absl::Status s = Walk(
        **b, o, &progress,
        [&](const ViewFlow& v) {
          std::string k = absl::StrCat(std::string(1, static_cast<char>(v.stream)), *v.key);
          auto it = left.find(k);
          if (it == left.end()) {
            entries.push_back({std::move(k), '+', Line(v.flow, nullptr)});
            return;
          }
          const std::string c = Changes(it->second, v.flow, o.timeouts);
          if (c.empty()) {
            ++unchanged;
          } else {
            entries.push_back({k, '~', absl::StrCat(Line(v.flow, nullptr), "\n    changed: ", c)});
          }
          left.erase(it);
        },
        &bad);
    if (!s.ok()) return Fail(err, s);
  }
  for (auto& [k, f] : left) entries.push_back({k, '-', Line(f, nullptr)});
  std::sort(entries.begin(), entries.end(), [](const Entry& x, const Entry& y) {
    return x.key != y.key ? x.key < y.key : x.mark < y.mark;
  });
  uint64_t added = 0, removed = 0, changed = 0;
  const bool both = o.streams[0] && o.streams[1];
  for (const Entry& e : entries) {
    added += e.mark == '+';
    removed += e.mark == '-';
    changed += e.mark == '~';
    out << e.mark << " ";
    if (both) out << storage::StreamName(static_cast<Stream>(e.key[0])) << " ";
    out << e.text << "\n";
  }
  ReportBad(err, bad);
  out << "# added=" << added << " removed=" << removed << " changed=" << changed
      << " unchanged=" << unchanged << "\n";
  return entries.empty() ? kOk : kFound;
}

// ---- verify ----
int Verify(const CommonOptions& o, std::ostream& out, std::ostream& err, std::ostream* prog) {
  if (o.positional.size() != 1) {
    err << Usage();
    return kError;
  }
  const std::string& path = o.positional[0];
  std::vector<std::string> problems;
  uint64_t ok_records = 0, bad_records = 0, files = 0;
  Progress progress(prog, "verifying");
  if (storage::IsExportFile(path)) {
    uint64_t n = 0;
    absl::Status s =
        storage::ReadExportFile(path, nullptr, [&](const storage::ExportRecordView& v) {
          progress.Tick(++n);
          absl::Status st = v.status;
          if (st.ok()) {
            codec::DecodedFlow d;
            st = codec::FlowFromProto(*v.flow, 0, 0, &d);
          }
          if (st.ok()) {
            ++ok_records;
          } else {
            ++bad_records;
            problems.push_back(absl::StrCat("record ", v.index, ": ", st.message()));
          }
        });
    if (!s.ok()) problems.push_back(std::string(s.message()));
  } else {
    storage::VerifyReport r =
        storage::VerifyStoreDir(path, [&](uint64_t done) { progress.Tick(done); });
    problems = std::move(r.problems);
    ok_records = r.records_ok;
    bad_records = r.records_bad;
    files = r.files_checked;
  }
  progress.Done();
  for (const std::string& p : problems) out << "BAD " << p << "\n";
  out << (problems.empty() ? "OK" : "FAILED") << " records_ok=" << ok_records
      << " records_bad=" << bad_records << " files_checked=" << files
      << " problems=" << problems.size() << "\n";
  return problems.empty() ? kOk : kFound;
}

// ---- export ----
int Export(const CommonOptions& o, std::ostream& out, std::ostream& err, std::ostream* prog) {
  if (o.positional.size() != 1 || o.output.empty()) {
    err << Usage();
    return kError;
  }
  absl::StatusOr<std::unique_ptr<FlowSource>> src = OpenSource(o.positional[0]);
  if (!src.ok()) return Fail(err, src.status());
  proto::ExportHeader h;
  h.set_format_version(storage::kStoreFormatVersion);
  h.set_node_id((*src)->node_id());
  h.set_wall_time_ms((*src)->wall_time_ms());
  h.set_source(o.positional[0]);
  absl::StatusOr<std::unique_ptr<storage::ExportWriter>> w =
      storage::ExportWriter::Create(o.output, h);
  if (!w.ok()) return Fail(err, w.status());
  Progress progress(prog, "exporting");
  std::vector<std::string> bad;
  absl::Status write_error;
  absl::Status s = Walk(
      **src, o, &progress,
      [&](const ViewFlow& v) {
        if (write_error.ok()) write_error = (*w)->Add(v.stream, *v.msg);
      },
      &bad);
  progress.Done();
  ReportBad(err, bad);
  if (!s.ok()) return Fail(err, s);
  if (!write_error.ok()) return Fail(err, write_error);
  if (absl::Status f = (*w)->Finish(); !f.ok()) return Fail(err, f);
  out << "exported " << (*w)->records() << " flows to " << o.output << "\n";
  return bad.empty() ? kOk : kFound;
}

}  // namespace

int Run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, bool progress) {
  if (args.empty() || args[0] == "-h" || args[0] == "--help") {
    (args.empty() ? err : out) << Usage() << FilterUsage();
    return args.empty() ? kError : kOk;
  }
  absl::StatusOr<CommonOptions> o = ParseCommon(args);
  if (!o.ok()) {
    err << "ctsnap: " << o.status().message() << "\n" << Usage();
    return kError;
  }
  std::ostream* prog = progress ? &err : nullptr;
  const std::string& cmd = args[0];
  if (cmd == "list") return List(*o, out, err);
  if (cmd == "show") return Show(*o, out, err, prog);
  if (cmd == "stats") return Stats(*o, out, err, prog);
  if (cmd == "diff") return Diff(*o, out, err, prog);
  if (cmd == "verify") return Verify(*o, out, err, prog);
  if (cmd == "export") return Export(*o, out, err, prog);
  err << "ctsnap: unknown command '" << cmd << "'\n" << Usage();
  return kError;
}

}  // namespace ctsync::ctsnap

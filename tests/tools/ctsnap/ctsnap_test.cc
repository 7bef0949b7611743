#include "tools/ctsnap/ctsnap.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "proto/flow_codec.h"
#include "rocksdb/db.h"
#include "storage/flow_store.h"
#include "storage/internal/store_db.h"
#include "tests/storage/test_flows.h"

namespace ctsync::ctsnap {
namespace {

using storage::testing::Event;
using storage::testing::MakeFlow;
using storage::testing::TempDir;
constexpr Nanos kSec = kNanosPerSecond;

struct Result {
  int rc;
  std::string out;
  std::string err;
};

Result Ctsnap(std::vector<std::string> args) {
  std::ostringstream out, err;
  const int rc = Run(args, out, err, /*progress=*/false);
  return {rc, out.str(), err.str()};
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

class CtsnapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::FlowStoreOptions o;
    o.path = dir_.Sub("store");
    o.node_id = "fw-a";
    o.clock = &clock_;
    o.sync = storage::SyncPolicy::kNone;
    o.snapshot_root = dir_.path();
    o.snapshot_on_close = false;
    store_ = *storage::FlowStore::Create(o);
    const Nanos now = clock_.Now();
    Flow nat = MakeFlow(1, now, 3600 * kSec, false, true);  // tcp, SNAT
    nat.mark = 7;
    Flow udp = MakeFlow(2, now - 120 * kSec, 30 * kSec, true);  // created 2 min ago
    udp.expires = now + 30 * kSec;
    udp.status = kIpsConfirmed;  // unreplied
    udp.zone = 3;
    Flow syn = MakeFlow(3, now, 120 * kSec);
    syn.tcp.state = TcpState::kSynSent;
    syn.status = kIpsConfirmed;
    Flow v6;
    v6.tuple[0].family = Family::kIpv6;
    v6.tuple[0].proto = kProtoUdp;
    Family f;
    v6.tuple[0].src = *IpAddress::Parse("2001:db8::1", &f);
    v6.tuple[0].dst = *IpAddress::Parse("2001:db8::2", &f);
    v6.tuple[0].sport = 5000;
    v6.tuple[0].dport = 53;
    v6.tuple[1] = storage::testing::Reverse(v6.tuple[0]);
    v6.status = kIpsConfirmed | kIpsSeenReply;
    v6.created = now;
    v6.expires = now + 25 * kSec;
    for (const Flow& fl : {nat, udp, syn, v6})
      store_->Enqueue(storage::Stream::kLive, Event(FlowEventType::kNew, fl, now));
    proto::Flow peer;
    codec::FlowToProto(MakeFlow(9, now, 50 * kSec), now, clock_.WallNanos(), {}, &peer);
    store_->EnqueueProto(storage::Stream::kExternal, FlowEventType::kNew, peer);
    ASSERT_TRUE(store_->Flush().ok());
    auto snap = store_->TakeSnapshot("command");
    ASSERT_TRUE(snap.ok()) << snap.status();
    snap1_ = snap->path;
    nat_ = nat;
    syn_ = syn;
  }

  TempDir dir_{"ctsnap"};
  ManualClock clock_{1000 * kSec};
  std::unique_ptr<storage::FlowStore> store_;
  std::string snap1_;
  Flow nat_, syn_;
};

TEST_F(CtsnapTest, ShowPrintsConntrackLines) {
  Result r = Ctsnap({"show", snap1_});
  ASSERT_EQ(r.rc, 0) << r.err;
  // Key order: zone 0 IPv4 flows by tuple, zone 0 IPv6, then zone 3.
  EXPECT_EQ(r.out,
            "tcp      6 3600 ESTABLISHED src=192.0.2.0 dst=198.51.100.20 sport=1 dport=80 "
            "src=198.51.100.20 dst=203.0.113.5 sport=80 dport=10001 [ASSURED] mark=7 use=1\n"
            "tcp      6 120 SYN_SENT src=192.0.2.0 dst=198.51.100.20 sport=3 dport=80 [UNREPLIED] "
            "src=198.51.100.20 dst=192.0.2.0 sport=80 dport=3 mark=0 use=1\n"
            "udp      17 25 src=2001:db8::1 dst=2001:db8::2 sport=5000 dport=53 src=2001:db8::2 "
            "dst=2001:db8::1 sport=53 dport=5000 mark=0 use=1\n"
            "udp      17 30 src=192.0.2.0 dst=198.51.100.20 sport=2 dport=53 [UNREPLIED] "
            "src=198.51.100.20 dst=192.0.2.0 sport=53 dport=2 mark=0 zone=3 use=1\n");
  EXPECT_NE(r.err.find("4 flow entries have been shown"), std::string::npos);

  Result ext = Ctsnap({"show", snap1_, "--external"});
  EXPECT_EQ(Lines(ext.out).size(), 1u);
  Result all = Ctsnap({"show", snap1_, "--all"});
  EXPECT_EQ(Lines(all.out).size(), 5u);
}

struct FilterCase {
  std::vector<std::string> filter;
  std::vector<std::string> want_sports;  // "sport=N" of each line, in order
};

TEST_F(CtsnapTest, ConntrackFilters) {
  const FilterCase cases[] = {
      {{"-p", "udp"}, {"sport=5000", "sport=2"}},
      {{"-p", "tcp", "--state", "ESTABLISHED"}, {"sport=1"}},
      {{"--state", "syn_sent"}, {"sport=3"}},
      {{"-s", "192.0.2.0/24", "--dport", "80"}, {"sport=1", "sport=3"}},
      {{"-f", "ipv6"}, {"sport=5000"}},
      {{"-d", "2001:db8::2"}, {"sport=5000"}},
      {{"-q", "203.0.113.5"}, {"sport=1"}},
      {{"-n"}, {"sport=1"}},
      {{"-g"}, {}},
      {{"-u", "ASSURED"}, {"sport=1"}},
      {{"--status", "SEEN_REPLY"}, {"sport=1", "sport=5000"}},
      {{"-u", "UNSET"}, {"sport=3", "sport=2"}},
      {{"-m", "7"}, {"sport=1"}},
      {{"-m", "0x5/0x4"}, {"sport=1"}},
      {{"-w", "3"}, {"sport=2"}},
      {{"--orig-port-src", "3"}, {"sport=3"}},
      {{"--reply-port-dst", "10001"}, {"sport=1"}},
  };
  for (const FilterCase& c : cases) {
    std::vector<std::string> args = {"show", snap1_};
    args.insert(args.end(), c.filter.begin(), c.filter.end());
    Result r = Ctsnap(args);
    SCOPED_TRACE(::testing::PrintToString(c.filter));
    ASSERT_EQ(r.rc, 0) << r.err;
    std::vector<std::string> got;
    for (const std::string& l : Lines(r.out)) {
      const size_t p = l.find("sport=");
      got.push_back(l.substr(p, l.find(' ', p) - p));
    }
    EXPECT_EQ(got, c.want_sports);
  }
}

TEST_F(CtsnapTest, BadArgumentsAreClearErrors) {
  Result r = Ctsnap({"show", snap1_, "--state", "BOGUS"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--state: 'BOGUS' is not a TCP state"), std::string::npos) << r.err;
  r = Ctsnap({"show", snap1_, "-s", "300.1.1.1"});
  EXPECT_NE(r.err.find("-s: '300.1.1.1' is not an IP address"), std::string::npos) << r.err;
  r = Ctsnap({"show", dir_.Sub("nothing-here")});
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("no such store, snapshot or export file"), std::string::npos) << r.err;
  EXPECT_EQ(Ctsnap({"frobnicate"}).rc, 2);
  r = Ctsnap({"list", dir_.Sub("nothing-here")});
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("no such directory"), std::string::npos) << r.err;
  EXPECT_EQ(Ctsnap({"show", snap1_, "--bogus"}).rc, 2);
}

TEST_F(CtsnapTest, JsonOutput) {
  Result r = Ctsnap({"show", snap1_, "-o", "json", "-n"});
  ASSERT_EQ(r.rc, 0) << r.err;
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 1u);
  nlohmann::json j = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(j["proto"], "tcp");
  EXPECT_EQ(j["state"], "ESTABLISHED");
  EXPECT_EQ(j["nat"], "snat");
  EXPECT_EQ(j["reply"]["dst"], "203.0.113.5");
  EXPECT_EQ(j["reply"]["dport"], 10001);
  EXPECT_EQ(j["mark"], 7);
  EXPECT_EQ(j["timeout"], 3600);
  EXPECT_EQ(j["line"].get<std::string>().substr(0, 16), "tcp      6 3600 ");
}

TEST_F(CtsnapTest, Stats) {
  Result r = Ctsnap({"stats", snap1_, "--all"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out,
            "age.10m_1h 0\nage.1h_1d 0\nage.1m_10m 1\nage.ge_1d 0\nage.lt_1m 4\n"
            "bad_records 0\nflows.external 1\nflows.live 4\n"
            "nat.dnat 0\nnat.none 4\nnat.snat 1\nnat.snat+dnat 0\n"
            "proto.tcp 3\nproto.udp 2\nstatus.assured 2\nstatus.unreplied 2\n"
            "tcp_state.ESTABLISHED 2\ntcp_state.SYN_SENT 1\n");
}

TEST_F(CtsnapTest, DiffNamesAddedRemovedAndChanged) {
  const Nanos now = clock_.Now();
  Flow est = syn_;
  est.tcp.state = TcpState::kEstablished;
  est.status |= kIpsSeenReply | kIpsAssured;
  store_->Enqueue(storage::Stream::kLive, Event(FlowEventType::kUpdate, est, now));
  store_->Enqueue(storage::Stream::kLive, Event(FlowEventType::kDestroy, nat_, now));
  store_->Enqueue(storage::Stream::kLive,
                  Event(FlowEventType::kNew, MakeFlow(4, now, 60 * kSec, true), now));
  ASSERT_TRUE(store_->Flush().ok());
  clock_.Advance(5 * kSec);
  auto snap2 = store_->TakeSnapshot("command");
  ASSERT_TRUE(snap2.ok());

  Result r = Ctsnap({"diff", snap1_, snap2->path});
  EXPECT_EQ(r.rc, 1) << r.err;
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 5u) << r.out;
  EXPECT_EQ(lines[0].substr(0, 30), "- tcp      6 3600 ESTABLISHED ");
  EXPECT_EQ(lines[1].substr(0, 30), "~ tcp      6 115 ESTABLISHED s");
  EXPECT_NE(lines[2].find("state SYN_SENT => ESTABLISHED"), std::string::npos) << lines[2];
  EXPECT_NE(lines[2].find("status  => SEEN_REPLY,ASSURED"), std::string::npos) << lines[2];
  EXPECT_EQ(lines[3].substr(0, 13), "+ udp      17");
  EXPECT_EQ(lines[4], "# added=1 removed=1 changed=1 unchanged=2");

  // A snapshot against the live store it came from: identical.
  Result same = Ctsnap({"diff", snap2->path, dir_.Sub("store")});
  EXPECT_EQ(same.rc, 0) << same.out << same.err;
  EXPECT_EQ(same.out, "# added=0 removed=0 changed=0 unchanged=4\n");
}

TEST_F(CtsnapTest, ExportRoundTripAndVerify) {
  const std::string file = dir_.Sub("flows.export");
  Result e = Ctsnap({"export", snap1_, "-o", file, "--all"});
  ASSERT_EQ(e.rc, 0) << e.err;
  EXPECT_EQ(e.out, "exported 5 flows to " + file + "\n");
  // The export shows the same flows as the snapshot, and diffs equal to it.
  EXPECT_EQ(Ctsnap({"show", file, "--all"}).out, Ctsnap({"show", snap1_, "--all"}).out);
  EXPECT_EQ(Ctsnap({"diff", snap1_, file, "--all"}).rc, 0);
  Result v = Ctsnap({"verify", file});
  EXPECT_EQ(v.rc, 0);
  EXPECT_EQ(v.out, "OK records_ok=5 records_bad=0 files_checked=0 problems=0\n");

  std::filesystem::resize_file(file, std::filesystem::file_size(file) - 5);
  Result t = Ctsnap({"show", file});
  EXPECT_EQ(t.rc, 2);
  EXPECT_NE(t.err.find("truncated"), std::string::npos) << t.err;
  v = Ctsnap({"verify", file});
  EXPECT_EQ(v.rc, 1);
  EXPECT_NE(v.out.find("BAD " + file + ": truncated"), std::string::npos) << v.out;
}

// A record whose checksum fails is named by verify, skipped (and named) by show.
TEST_F(CtsnapTest, VerifyNamesEachBadRecord) {
  Result ok = Ctsnap({"verify", snap1_});
  EXPECT_EQ(ok.rc, 0) << ok.out;
  EXPECT_EQ(ok.out.substr(0, 25), "OK records_ok=5 records_b");

  ASSERT_TRUE(store_->Close().ok());
  {
    auto db = storage::internal::OpenStoreDb(dir_.Sub("store"), {});
    ASSERT_TRUE(db.ok()) << db.status();
    std::string key = storage::EncodeFlowKey(0, syn_.tuple[0]);
    std::string value;
    ASSERT_TRUE(
        db->db->Get(rocksdb::ReadOptions(), db->stream(storage::Stream::kLive), key, &value).ok());
    value[value.size() - 1] ^= 0x01;
    ASSERT_TRUE(
        db->db->Put(rocksdb::WriteOptions(), db->stream(storage::Stream::kLive), key, value).ok());
  }
  Result v = Ctsnap({"verify", dir_.Sub("store")});
  EXPECT_EQ(v.rc, 1);
  EXPECT_EQ(Lines(v.out)[0].substr(0, 74),
            "BAD live record zone 0 tcp 192.0.2.0:3 -> 198.51.100.20:80: checksum misma");
  EXPECT_NE(v.out.find("FAILED records_ok=4 records_bad=1"), std::string::npos) << v.out;
  Result s = Ctsnap({"show", dir_.Sub("store")});
  EXPECT_EQ(s.rc, 0);
  EXPECT_EQ(Lines(s.out).size(), 3u);
  EXPECT_NE(s.err.find("skipped bad live record zone 0 tcp 192.0.2.0:3"), std::string::npos)
      << s.err;
}

TEST_F(CtsnapTest, ListShowsManifestsAndIncompleteSnapshots) {
  std::filesystem::create_directories(dir_.Sub("snapshots/20260101T000000Z-000009"));
  Result r = Ctsnap({"list", dir_.path()});
  ASSERT_EQ(r.rc, 0) << r.err;
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find(" complete time=2023-11-14T22:30:00.000Z node=fw-a reason=command "
                          "version=2 live=4 external=1 counts=tcp:2,tcp/ESTABLISHED:1,"
                          "tcp/SYN_SENT:1,udp:2 records_crc32c="),
            std::string::npos)
      << lines[0];
  EXPECT_EQ(lines[0].substr(0, 33), "20231114T223000Z-000001 complete ");
  EXPECT_EQ(lines[1].substr(0, 42), "20260101T000000Z-000009 incomplete problem");
  Result j = Ctsnap({"list", dir_.path(), "-o", "json"});
  nlohmann::json arr = nlohmann::json::parse(j.out);
  ASSERT_EQ(arr.size(), 2u);
  EXPECT_EQ(arr[0]["live"], 4);
  EXPECT_EQ(arr[0]["counts"]["udp"], 2);
  EXPECT_EQ(arr[1]["complete"], false);
}

// A store written by format version 1 (record bodies carry the original tuple) reads the
// same as this version's (they leave it to the key): show, stats, verify, diff and export.
TEST_F(CtsnapTest, Version1StoreReadsTheSame) {
  ASSERT_TRUE(store_->Close().ok());
  const std::string v2 = dir_.Sub("store");
  const std::string v1 = dir_.Sub("store-v1");
  std::filesystem::copy(v2, v1, std::filesystem::copy_options::recursive);
  {
    auto db = storage::internal::OpenStoreDb(v1, {});
    ASSERT_TRUE(db.ok()) << db.status();
    size_t rewritten = 0;
    for (storage::Stream s : {storage::Stream::kLive, storage::Stream::kExternal}) {
      std::vector<std::pair<std::string, std::string>> records;
      ASSERT_TRUE(storage::internal::ForEachRawRecord(*db, s, [&](std::string_view k,
                                                                   std::string_view v) {
                    records.emplace_back(k, v);
                    return true;
                  }).ok());
      for (const auto& [key, value] : records) {
        proto::Flow flow;
        ASSERT_TRUE(storage::DecodeFlowValue(key, value, &flow).ok());
        ASSERT_FALSE(flow.original().src().empty());
        std::string old_layout;
        storage::EncodeFlowValue(key, flow.SerializeAsString(), &old_layout);
        ASSERT_GT(old_layout.size(), value.size() + 20);  // the tuple really was left out
        ASSERT_TRUE(db->db->Put(rocksdb::WriteOptions(), db->stream(s), key, old_layout).ok());
        ++rewritten;
      }
    }
    EXPECT_EQ(rewritten, 5u);
    ASSERT_TRUE(
        db->db->Put(rocksdb::WriteOptions(), db->meta(), storage::kMetaFormatVersion, "1").ok());
    ASSERT_TRUE(db->db->Flush(rocksdb::FlushOptions(), db->handles).ok());
  }
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"show", "--all"}, {"stats", "--all"}, {"show", "-o", "json"}}) {
    std::vector<std::string> a1 = {args[0], v1}, a2 = {args[0], v2};
    a1.insert(a1.end(), args.begin() + 1, args.end());
    a2.insert(a2.end(), args.begin() + 1, args.end());
    Result r1 = Ctsnap(a1), r2 = Ctsnap(a2);
    ASSERT_EQ(r1.rc, 0) << r1.err;
    EXPECT_EQ(r1.out, r2.out) << ::testing::PrintToString(args);
  }
  Result v = Ctsnap({"verify", v1});
  EXPECT_EQ(v.rc, 0) << v.out;
  EXPECT_EQ(v.out.substr(0, 33), "OK records_ok=5 records_bad=0 fil");
  Result d = Ctsnap({"diff", v1, v2, "--all"});
  EXPECT_EQ(d.rc, 0) << d.out << d.err;
  EXPECT_EQ(d.out, "# added=0 removed=0 changed=0 unchanged=5\n");
  const std::string file = dir_.Sub("v1.export");
  ASSERT_EQ(Ctsnap({"export", v1, "-o", file, "--all"}).rc, 0);
  EXPECT_EQ(Ctsnap({"show", file, "--all"}).out, Ctsnap({"show", v2, "--all"}).out);
}

}  // namespace
}  // namespace ctsync::ctsnap

// Disk faults under the flow store while the node keeps working: the disk fills up (a small
// tmpfs the test mounts and fills), and the file system turns read-only under the open store
// (an ext4 image on a loop device, mounted errors=remount-ro, forced read-only through
// /sys/fs/ext4/<dev>/trigger_fs_error, as the kernel does on an I/O error). The active's
// engine feeds the store and the replicator as the daemon does; the store must fail with a
// clear, counted error, the engine must keep accepting flows and the backup must keep
// learning them, and once the disk is usable again the store must hold the whole table.
#include <filesystem>
#include <thread>

#include "proto/flow_codec.h"
#include "storage/flow_store.h"
#include "tests/faults/fault_env.h"
#include "tools/ctsyncd/store_keeper.h"

namespace ctsync::faults {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class StoreFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (mount)";
    mnt_ = "/tmp/" + Tag("mnt");
    fs::create_directories(mnt_);
  }
  void TearDown() override {
    store_.reset();
    if (mounted_) Sh("umount -l " + mnt_);
    if (!image_.empty()) fs::remove(image_);
    std::error_code ec;
    fs::remove(mnt_, ec);
  }

  storage::FlowStoreOptions StoreOptions() {
    storage::FlowStoreOptions o;
    o.path = mnt_ + "/store";
    o.node_id = "fw-a";
    o.clock = &a_->clock;
    o.sync = storage::SyncPolicy::kInterval;
    o.write_buffer_bytes = 1 << 20;
    o.snapshot_on_close = false;
    return o;
  }
  absl::Status OpenStore() {
    auto s = storage::FlowStore::Create(StoreOptions());
    if (!s.ok()) return s.status();
    store_ = *std::move(s);
    return absl::OkStatus();
  }
  // a (active, feeding the store) and b (backup) on loopback.
  void MakeNodes() {
    NodeOptions ao, bo;
    ao.id = 1;
    bo.id = 2;
    a_ = std::make_unique<Node>(io_, ao);
    b_ = std::make_unique<Node>(io_, bo);
    a_->SetPeer(b_->endpoint());
    b_->SetPeer(a_->endpoint());
    a_->event_sink = [this](const FlowEvent& e) {
      if (store_) store_->Enqueue(storage::Stream::kLive, e);
    };
  }
  // Creates flows on a; every one must be accepted by the engine and learnt by b.
  void CreateAndSync(uint32_t first, uint32_t count) {
    a_->AddLocal(first, count);
    const size_t want = a_->Flows();
    EXPECT_TRUE(RunUntil(io_, {a_.get(), b_.get()}, [&] { return b_->Learnt() == want; }))
        << b_->Learnt() << " of " << want;
  }
  // The whole table as the owner hands it to RewriteStream.
  std::vector<proto::Flow> Table() {
    std::vector<proto::Flow> out;
    const Nanos now = a_->clock.Now(), wall = a_->clock.WallNanos();
    a_->engine->table().ForEach([&](FlowIndex, const Flow& f) {
      codec::FlowToProto(f, now, wall, {}, &out.emplace_back());
    });
    return out;
  }
  size_t StoredLive() {
    auto r = store_->Restore(a_->clock.Now(), a_->clock.WallNanos());
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->live().size() : 0;
  }

  asio::io_context io_;
  std::string mnt_, image_;
  bool mounted_ = false;
  std::unique_ptr<Node> a_, b_;
  std::unique_ptr<storage::FlowStore> store_;
};

TEST_F(StoreFaultTest, DiskFullIsReportedDatapathGoesOnStoreRecovers) {
  ASSERT_EQ(Sh("mount -t tmpfs -o size=48m tmpfs " + mnt_), 0);
  mounted_ = true;
  MakeNodes();
  ASSERT_TRUE(OpenStore().ok());
  CreateAndSync(0, 2000);
  ASSERT_TRUE(store_->Flush().ok());

  // Fill the disk to the last byte.
  Sh("dd if=/dev/zero of=" + mnt_ + "/filler bs=64k");
  ASSERT_NE(Sh("dd if=/dev/zero of=" + mnt_ + "/filler2 bs=4k count=1"), 0) << "disk not full";

  CreateAndSync(2000, 20000);  // the datapath and the sync link do not notice
  EXPECT_EQ(a_->Flows(), 22000u);
  EXPECT_EQ(b_->Flows(), 22000u);
  const absl::Status full = store_->Flush();
  EXPECT_FALSE(full.ok());
  EXPECT_NE(full.message().find("No space left on device"), std::string_view::npos) << full;
  EXPECT_NE(full.message().find("write flow batch"), std::string_view::npos) << full;
  const storage::FlowStoreCounters c = store_->counters();
  EXPECT_GE(c.write_errors, 1u);
  EXPECT_GE(c.lost_to_errors, 1u);
  EXPECT_TRUE(store_->needs_full_rewrite(storage::Stream::kLive));
  std::printf("disk full: %s\n  write_errors %lu lost_to_errors %lu committed %lu\n",
              std::string(full.message()).c_str(), c.write_errors, c.lost_to_errors,
              c.committed);

  // Space returns. RocksDB does not resume after a failed WAL append, so the owner reopens
  // the store and rewrites it from the table: every flow is on disk again.
  fs::remove(mnt_ + "/filler");
  fs::remove(mnt_ + "/filler2");
  store_->Close().IgnoreError();  // reports the failure; must neither hang nor abort
  store_.reset();
  ASSERT_TRUE(OpenStore().ok());
  EXPECT_GE(StoredLive(), 2000u);  // what was committed before the disk filled survived
  store_->RewriteStream(storage::Stream::kLive, Table());
  CreateAndSync(22000, 1000);  // and the feed goes on
  ASSERT_TRUE(store_->Flush().ok());
  EXPECT_EQ(StoredLive(), 23000u);
}

// The same disk-full fault with the daemon's StoreKeeper holding the store: nobody but
// the keeper acts. It reports the error once, and once space returns it reopens the store
// and rewrites it from the table by itself.
TEST_F(StoreFaultTest, DiskFullKeeperReportsOnceThenHealsTheStoreByItself) {
  ASSERT_EQ(Sh("mount -t tmpfs -o size=48m tmpfs " + mnt_), 0);
  mounted_ = true;
  MakeNodes();
  daemon::StoreKeeperOptions ko;
  ko.store = StoreOptions();
  ko.retry_min = 100 * kNanosPerMilli;
  ko.retry_max = 400 * kNanosPerMilli;
  std::vector<std::string> errors, infos;
  daemon::StoreKeeper::Hooks h;
  h.on_datapath = [](absl::FunctionRef<void()> fn) { fn(); };  // the test thread is it
  h.table = [this](std::vector<proto::Flow>* live, std::vector<proto::Flow>* ext) {
    *live = Table();
    ext->clear();
  };
  h.error = [&](const std::string& m) { errors.push_back(m); };
  h.info = [&](const std::string& m) { infos.push_back(m); };
  daemon::StoreKeeper keeper(ko, std::move(h), a_->clock);
  ASSERT_TRUE(keeper.Open().ok());
  a_->event_sink = [&](const FlowEvent& e) {
    if (auto s = keeper.store()) s->Enqueue(storage::Stream::kLive, e);
  };
  CreateAndSync(0, 2000);
  keeper.Check();
  EXPECT_TRUE(keeper.healthy());

  Sh("dd if=/dev/zero of=" + mnt_ + "/filler bs=64k");
  CreateAndSync(2000, 20000);
  // Errors keep coming while the disk is full; the reason is logged once. Closing the
  // failed store frees a little space, so a reopen and its rewrite can succeed for a while
  // before the next writes fail again: keep feeding until the keeper has seen that, or a
  // heal wait below could start on a store that RocksDB has since given up on.
  uint32_t created = 22000;
  for (int i = 0; i < 20 || (keeper.healthy() && i < 200); ++i) {
    keeper.Check();
    CreateAndSync(created, 10);
    created += 10;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_FALSE(keeper.healthy());
  ASSERT_GE(errors.size(), 1u);
  EXPECT_NE(errors[0].find("No space left on device"), std::string::npos) << errors[0];
  // Reopen attempts back off; a failure that stays the same is not logged at every check.
  EXPECT_LT(errors.size(), 10u);
  EXPECT_EQ(b_->Flows(), created);  // the datapath and the sync link did not notice

  fs::remove(mnt_ + "/filler");
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!keeper.healthy() && std::chrono::steady_clock::now() < deadline) {
    keeper.Check();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(keeper.healthy()) << (errors.empty() ? "" : errors.back());
  EXPECT_GE(keeper.reopens(), 1u);
  CreateAndSync(30000, 1000);  // and the feed goes on into the reopened store
  std::shared_ptr<storage::FlowStore> s = keeper.store();
  ASSERT_TRUE(s->Flush().ok());
  auto r = s->Restore(a_->clock.Now(), a_->clock.WallNanos());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->live().size(), a_->Flows());
  EXPECT_EQ(a_->Flows(), created + 1000);
  for (const std::string& m : infos) std::printf("keeper: %s\n", m.c_str());
  for (const std::string& m : errors) std::printf("keeper error: %s\n", m.c_str());
}

TEST_F(StoreFaultTest, ReadOnlyStoreIsReportedDatapathGoesOnStoreRecovers) {
  if (Sh("command -v mkfs.ext4") != 0) GTEST_SKIP() << "no mkfs.ext4";
  image_ = "/tmp/" + Tag("ext4.img");
  ASSERT_EQ(Sh("truncate -s 64M " + image_ + " && mkfs.ext4 -q -F " + image_), 0);
  const std::string mount = "mount -o loop,errors=remount-ro " + image_ + " " + mnt_;
  if (Sh(mount) != 0) GTEST_SKIP() << "no loop devices here";
  mounted_ = true;
  const std::string dev = fs::path(ShOut("findmnt -n -o SOURCE " + mnt_)).filename().string();
  const std::string trigger =
      "/sys/fs/ext4/" + dev.substr(0, dev.find_first_of("\n ")) + "/trigger_fs_error";
  if (!fs::exists(trigger)) GTEST_SKIP() << "no " << trigger;
  MakeNodes();
  ASSERT_TRUE(OpenStore().ok());
  CreateAndSync(0, 2000);
  ASSERT_TRUE(store_->Flush().ok());

  // The kernel turns the file system read-only under the open store.
  {
    std::ofstream t(trigger);
    t << "1\n";
    t.flush();
    ASSERT_TRUE(t.good());
  }
  const std::string opts = ShOut("findmnt -n -o OPTIONS " + mnt_);
  ASSERT_TRUE(opts.rfind("ro,", 0) == 0 || opts.find("emergency_ro") != std::string::npos)
      << opts;
  CreateAndSync(2000, 10000);
  EXPECT_EQ(b_->Flows(), 12000u);
  const absl::Status ro = store_->Flush();
  EXPECT_FALSE(ro.ok());
  EXPECT_NE(ro.message().find("Read-only file system"), std::string_view::npos) << ro;
  EXPECT_GE(store_->counters().write_errors, 1u);
  std::printf("read-only: %s\n", std::string(ro.message()).c_str());
  store_->Close().IgnoreError();
  store_.reset();

  // Restarting on the read-only disk fails with an error naming the store and the cause.
  const absl::Status reopen = OpenStore();
  EXPECT_FALSE(reopen.ok());
  EXPECT_NE(reopen.message().find(mnt_), std::string_view::npos) << reopen;
  EXPECT_NE(reopen.message().find("Read-only file system"), std::string_view::npos) << reopen;

  // The operator repairs the file system: the store opens and takes the whole table.
  ASSERT_EQ(Sh("umount " + mnt_), 0);
  mounted_ = false;
  const int fsck = Sh("e2fsck -fy " + image_);
  EXPECT_LE(fsck, 1) << "e2fsck could not repair the image";  // 0: clean, 1: repaired
  ASSERT_EQ(Sh(mount), 0);
  mounted_ = true;
  const absl::Status reopened = OpenStore();
  ASSERT_TRUE(reopened.ok()) << reopened << "\n" << ShOut("findmnt -n -o OPTIONS " + mnt_);
  EXPECT_GE(StoredLive(), 2000u);
  store_->RewriteStream(storage::Stream::kLive, Table());
  ASSERT_TRUE(store_->Flush().ok());
  EXPECT_EQ(StoredLive(), 12000u);
}

}  // namespace
}  // namespace ctsync::faults

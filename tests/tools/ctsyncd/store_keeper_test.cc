#include "tools/ctsyncd/store_keeper.h"

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "proto/flow_codec.h"
#include "tests/sync/test_flows.h"

namespace ctsync::daemon {
namespace {

namespace fs = std::filesystem;

// A keeper over a real store in a temporary directory; "the table" is `flows`, and the
// datapath is the test's own thread.
class StoreKeeperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("keeper-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    clock_.Set(1000 * kNanosPerSecond);
  }
  void TearDown() override {
    keeper_.reset();
    fs::remove_all(dir_);
  }

  StoreKeeperOptions Options(const fs::path& store) {
    StoreKeeperOptions o;
    o.store.path = store.string();
    o.store.node_id = "fw-a";
    o.store.clock = &clock_;
    o.store.snapshot_on_close = false;
    return o;
  }
  void MakeKeeper(StoreKeeperOptions o) {
    StoreKeeper::Hooks h;
    h.on_datapath = [](absl::FunctionRef<void()> fn) { fn(); };
    h.table = [this](std::vector<proto::Flow>* live, std::vector<proto::Flow>* ext) {
      ++table_copies_;
      for (uint32_t i = 0; i < table_size_; ++i) {
        const Flow f = sync::testing::MakeTcpNatFlow(i, clock_.Now());
        codec::FlowToProto(f, clock_.Now(), clock_.WallNanos(), {}, &live->emplace_back());
      }
      ext->clear();
    };
    h.error = [this](const std::string& m) { errors_.push_back(m); };
    h.info = [this](const std::string& m) { infos_.push_back(m); };
    h.events_dropped = [this] { return ring_dropped_; };
    keeper_ = std::make_unique<StoreKeeper>(std::move(o), std::move(h), clock_);
  }
  size_t StoredLive() {
    auto s = keeper_->store();
    if (!s) return 0;
    EXPECT_TRUE(s->Flush().ok());
    auto r = s->Restore(clock_.Now(), clock_.WallNanos());
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->live().size() : 0;
  }

  fs::path dir_;
  ManualClock clock_;
  std::unique_ptr<StoreKeeper> keeper_;
  uint32_t table_size_ = 0;
  int table_copies_ = 0;
  uint64_t ring_dropped_ = 0;  // what the engine's event ring reports
  std::vector<std::string> errors_, infos_;
};

TEST_F(StoreKeeperTest, DroppedEventsAreRepairedByARewriteFromTheTable) {
  StoreKeeperOptions o = Options(dir_ / "store");
  o.store.queue_capacity = 64;  // a burst far above what the queue holds
  MakeKeeper(o);
  ASSERT_TRUE(keeper_->Open().ok());
  table_size_ = 5000;
  auto store = keeper_->store();
  size_t accepted = 0;
  for (uint32_t i = 0; i < table_size_; ++i) {
    accepted += store->Enqueue(storage::Stream::kLive,
                               sync::testing::MakeEvent(FlowEventType::kNew,
                                                        sync::testing::MakeTcpNatFlow(i, clock_.Now()),
                                                        clock_.Now()));
  }
  store.reset();
  ASSERT_LT(accepted, table_size_) << "the queue never overflowed: the test proves nothing";
  keeper_->Check();
  EXPECT_EQ(table_copies_, 1);
  EXPECT_EQ(keeper_->table_rewrites(), 1u);
  EXPECT_TRUE(keeper_->healthy());
  EXPECT_EQ(StoredLive(), table_size_);
  // Repaired: the next check has nothing to do.
  keeper_->Check();
  EXPECT_EQ(table_copies_, 1);
  EXPECT_TRUE(errors_.empty());
}

// Events the engine's ring dropped never reached the store, whose own counters know
// nothing of them: a rise of the ring's count brings a rewrite, at most one per interval.
TEST_F(StoreKeeperTest, EventsTheRingDroppedAreRepairedByARewriteFromTheTable) {
  StoreKeeperOptions o = Options(dir_ / "store");
  MakeKeeper(o);
  ASSERT_TRUE(keeper_->Open().ok());
  table_size_ = 300;
  keeper_->Check();
  EXPECT_EQ(table_copies_, 0);
  ring_dropped_ = 5;
  keeper_->Check();
  EXPECT_EQ(table_copies_, 1);
  EXPECT_EQ(StoredLive(), table_size_);
  keeper_->Check();
  EXPECT_EQ(table_copies_, 1);  // nothing new dropped
  ring_dropped_ = 9;
  table_size_ = 400;
  keeper_->Check();
  EXPECT_EQ(table_copies_, 1);  // within rewrite_interval of the last rewrite
  clock_.Advance(o.rewrite_interval);
  keeper_->Check();
  EXPECT_EQ(table_copies_, 2);
  EXPECT_EQ(StoredLive(), table_size_);
  EXPECT_TRUE(errors_.empty());
}

TEST_F(StoreKeeperTest, AStoreThatCannotOpenIsRetriedWithBackoffThenRewritten) {
  // The store's parent is a regular file: RocksDB cannot create the directory.
  const fs::path blocker = dir_ / "blocker";
  std::ofstream(blocker) << "not a directory";
  StoreKeeperOptions o = Options(blocker / "store");
  MakeKeeper(o);
  table_size_ = 300;
  EXPECT_FALSE(keeper_->Open().ok());
  EXPECT_FALSE(keeper_->healthy());
  EXPECT_EQ(keeper_->store(), nullptr);
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_NE(errors_[0].find(o.store.path), std::string::npos) << errors_[0];

  keeper_->Check();  // too early: nothing tried
  EXPECT_EQ(keeper_->reopens(), 0u);
  clock_.Advance(o.retry_min);
  keeper_->Check();  // tried, failed again: the same reason is not logged again
  EXPECT_EQ(keeper_->store(), nullptr);
  EXPECT_EQ(errors_.size(), 1u);
  clock_.Advance(o.retry_min);
  keeper_->Check();  // the backoff doubled: still waiting
  EXPECT_EQ(errors_.size(), 1u);
  EXPECT_EQ(keeper_->store(), nullptr);

  fs::remove(blocker);  // the operator fixed the disk
  clock_.Advance(o.retry_min);
  keeper_->Check();
  ASSERT_NE(keeper_->store(), nullptr);
  EXPECT_TRUE(keeper_->healthy());
  EXPECT_EQ(keeper_->reopens(), 1u);
  EXPECT_EQ(table_copies_, 1);
  EXPECT_EQ(StoredLive(), table_size_);
}

TEST_F(StoreKeeperTest, CountersSurviveAReopen) {
  MakeKeeper(Options(dir_ / "store"));
  ASSERT_TRUE(keeper_->Open().ok());
  table_size_ = 10;
  auto store = keeper_->store();
  for (uint32_t i = 0; i < 10; ++i) {
    store->Enqueue(storage::Stream::kLive,
                   sync::testing::MakeEvent(FlowEventType::kNew,
                                            sync::testing::MakeTcpNatFlow(i, clock_.Now()),
                                            clock_.Now()));
  }
  ASSERT_TRUE(store->Flush().ok());
  store.reset();
  const uint64_t before = keeper_->counters().committed;
  EXPECT_EQ(before, 10u);
  ASSERT_TRUE(keeper_->Close().ok());
  EXPECT_EQ(keeper_->counters().committed, before);
}

}  // namespace
}  // namespace ctsync::daemon

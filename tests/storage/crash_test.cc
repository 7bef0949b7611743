// Crash safety: a writer process streaming events with sync-every-batch (and taking
// snapshots) is killed with SIGKILL at random points, including in the middle of a
// snapshot; after each kill the store must open, every record must verify, every batch the
// writer acknowledged must be there, and every snapshot must be complete and verify or be
// reported as incomplete.
//
// The writer is this same test binary re-executed with a filter selecting
// CrashWriterChild.Run (a fork without exec would inherit RocksDB's background threads in
// a broken state). The child reports each committed count, and "snapshot starting"
// markers, through a pipe.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "storage/flow_source.h"
#include "storage/flow_store.h"
#include "tests/storage/test_flows.h"

namespace ctsync::storage {
namespace {

constexpr char kDirEnv[] = "CTSYNC_CRASH_WRITER_DIR";
constexpr char kFdEnv[] = "CTSYNC_CRASH_WRITER_FD";
constexpr char kBaseEnv[] = "CTSYNC_CRASH_WRITER_BASE";
constexpr uint64_t kSnapshotMarker = 1ull << 63;
constexpr Nanos kLongTtl = 1'000'000 * kNanosPerSecond;

FlowStoreOptions WriterOptions(const std::string& dir) {
  FlowStoreOptions o;
  o.path = dir + "/store";
  o.node_id = "crash-node";
  o.clock = &SystemClock::Get();
  o.sync = SyncPolicy::kEveryBatch;
  o.max_batch = 256;
  o.queue_capacity = 1 << 16;
  o.snapshot_root = dir;
  o.snapshot_retain = 3;
  o.snapshot_on_close = false;
  return o;
}

// The child's way out: the reason goes to its log (which the parent shows), the code
// to DescribeExit.
[[noreturn]] void ExitWithStatus(int code, const char* what, const absl::Status& status) {
  std::fprintf(stderr, "%s: %s\n", what, status.ToString().c_str());
  std::fflush(stderr);
  ::_exit(code);
}

TEST(CrashWriterChild, Run) {
  const char* dir = std::getenv(kDirEnv);
  if (dir == nullptr) GTEST_SKIP() << "helper of CrashTest: runs only when CrashTest starts it";
  const int fd = std::atoi(std::getenv(kFdEnv));
  const uint32_t base = static_cast<uint32_t>(std::atoll(std::getenv(kBaseEnv)));
  FlowStoreOptions o = WriterOptions(dir);
  o.on_commit = [fd](uint64_t n) {
    if (::write(fd, &n, sizeof(n)) != sizeof(n)) ::_exit(4);
  };
  auto store = FlowStore::Create(o);
  if (!store.ok()) ExitWithStatus(3, "open", store.status());
  for (uint32_t i = 0;; ++i) {
    const Nanos now = SystemClock::Get().Now();
    const FlowEvent e =
        testing::Event(FlowEventType::kNew, testing::MakeFlow(base + i, now, kLongTtl), now);
    while (!(*store)->Enqueue(Stream::kLive, e)) std::this_thread::yield();
    if (i % 4000 == 3999) {
      const uint64_t marker = kSnapshotMarker | i;
      if (::write(fd, &marker, sizeof(marker)) != sizeof(marker)) ::_exit(4);
      if (auto snap = (*store)->TakeSnapshot("command"); !snap.ok())
        ExitWithStatus(5, "snapshot", snap.status());
    }
  }
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) {
    switch (WEXITSTATUS(status)) {
      case 3: return "exit 3 (the store did not open)";
      case 4: return "exit 4 (the pipe write failed)";
      case 5: return "exit 5 (a snapshot failed)";
      default: return "exit " + std::to_string(WEXITSTATUS(status));
    }
  }
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

std::string TailOf(const std::string& path, size_t max) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > max ? s.substr(s.size() - max) : s;
}

struct Acked {
  uint32_t base;
  uint64_t count;
};

TEST(CrashTest, KillWriterAtRandomPointsLosesNothingAcknowledged) {
  testing::TempDir dir("crash");
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  std::vector<Acked> acked;
  int killed_in_snapshot = 0;
  int incomplete_seen = 0;
  constexpr int kRounds = 10;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(::testing::Message() << "round " << round);
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const uint32_t base = static_cast<uint32_t>(round) * 1'000'000;
    const std::string child_log = dir.path() + "/writer.log";
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      // The child's output goes to a file the parent shows if the child dies on its own
      // (a sanitizer report, a failed snapshot).
      const int log_fd = ::open(child_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      ::setenv(kDirEnv, dir.path().c_str(), 1);
      ::setenv(kFdEnv, std::to_string(fds[1]).c_str(), 1);
      ::setenv(kBaseEnv, std::to_string(base).c_str(), 1);
      ::execl("/proc/self/exe", "/proc/self/exe", "--gtest_filter=CrashWriterChild.Run",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    // Odd rounds kill right after a snapshot starts; even rounds after a random number of
    // committed events (mid-stream, batches in flight).
    const bool in_snapshot = round % 2 == 1;
    const uint64_t kill_after = std::uniform_int_distribution<uint64_t>(1, 12000)(rng);
    const int kill_at_snapshot = std::uniform_int_distribution<int>(1, 2)(rng);
    uint64_t committed = 0;
    int snapshots_started = 0;
    bool child_alive = true;
    for (;;) {
      uint64_t v;
      const ssize_t n = ::read(fds[0], &v, sizeof(v));
      if (n != sizeof(v)) {
        child_alive = false;
        break;
      }
      if (v & kSnapshotMarker) {
        if (in_snapshot && ++snapshots_started == kill_at_snapshot) break;
      } else {
        committed = v;
        if (!in_snapshot && committed >= kill_after) break;
      }
    }
    if (!child_alive) {
      int status = 0;
      ::waitpid(pid, &status, 0);
      FAIL() << "writer exited on its own: " << DescribeExit(status) << "\n"
             << TailOf(child_log, 4000);
    }
    ::kill(pid, SIGKILL);
    // Whatever it acknowledged before dying counts too.
    for (;;) {
      uint64_t v;
      if (::read(fds[0], &v, sizeof(v)) != sizeof(v)) break;
      if (!(v & kSnapshotMarker)) committed = v;
    }
    ::close(fds[0]);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
    killed_in_snapshot += in_snapshot;
    acked.push_back({base, committed});

    // The store opens, every record verifies, every acknowledged event is there.
    FlowStoreOptions o = WriterOptions(dir.path());
    auto store = FlowStore::Create(o);
    ASSERT_TRUE(store.ok()) << store.status();
    const Nanos now = SystemClock::Get().Now();
    auto restored = (*store)->Restore(now, SystemClock::Get().WallNanos());
    ASSERT_TRUE(restored.ok()) << restored.status();
    EXPECT_EQ(restored->corrupt, 0u) << (restored->errors.empty() ? "" : restored->errors[0]);
    EXPECT_EQ(restored->expired, 0u);
    std::set<std::string> keys;
    for (const auto& d : restored->live()) keys.insert(EncodeFlowKey(0, d.flow.tuple[0]));
    for (const Acked& a : acked) {
      uint64_t missing = 0;
      for (uint64_t i = 0; i < a.count; ++i) {
        const Flow f = testing::MakeFlow(a.base + static_cast<uint32_t>(i), 0, 0);
        missing += keys.count(EncodeFlowKey(0, f.tuple[0])) == 0;
      }
      EXPECT_EQ(missing, 0u) << "of " << a.count << " acknowledged from base " << a.base;
    }
    ASSERT_TRUE((*store)->Close().ok());

    // Snapshots: complete ones verify and open; the others are reported, never read.
    auto list = ListSnapshots(dir.path());
    ASSERT_TRUE(list.ok());
    for (const SnapshotInfo& s : *list) {
      if (!s.complete) {
        ++incomplete_seen;
        EXPECT_NE(s.problem.find("incomplete"), std::string::npos);
        EXPECT_FALSE(FlowSource::Open(s.path).ok());
        continue;
      }
      VerifyReport v = VerifyStoreDir(s.path);
      EXPECT_TRUE(v.ok()) << s.name << ": " << (v.problems.empty() ? "" : v.problems[0]);
      EXPECT_TRUE(FlowSource::Open(s.path).ok()) << s.name;
    }
  }
  EXPECT_EQ(killed_in_snapshot, kRounds / 2);
  uint64_t total = 0;
  for (const Acked& a : acked) total += a.count;
  EXPECT_GT(total, 0u);
  std::printf(
      "crash test: %d kills, %llu acknowledged events checked, %d incomplete snapshot "
      "listings\n",
      kRounds, static_cast<unsigned long long>(total), incomplete_seen);
}

}  // namespace
}  // namespace ctsync::storage

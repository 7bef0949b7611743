#include "storage/export_file.h"

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "proto/flow_codec.h"
#include "storage/flow_source.h"
#include "storage/restore.h"
#include "tests/storage/test_flows.h"

namespace ctsync::storage {
namespace {

using testing::MakeFlow;
constexpr Nanos kSec = kNanosPerSecond;
constexpr Nanos kWall = 1'700'000'000 * kSec;

class ExportFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    proto::ExportHeader h;
    h.set_format_version(kStoreFormatVersion);
    h.set_node_id("fw-a");
    h.set_wall_time_ms(kWall / kNanosPerMilli);
    auto w = ExportWriter::Create(path_, h);
    ASSERT_TRUE(w.ok()) << w.status();
    for (uint32_t i = 0; i < 5; ++i) {
      proto::Flow f;
      codec::FlowToProto(MakeFlow(i, 0, 100 * kSec), 0, kWall, {}, &f);
      ASSERT_TRUE((*w)->Add(i == 4 ? Stream::kExternal : Stream::kLive, f).ok());
    }
    ASSERT_TRUE((*w)->Finish().ok());
    std::ifstream in(path_, std::ios::binary);
    bytes_.assign(std::istreambuf_iterator<char>(in), {});
  }
  void Rewrite(const std::string& bytes) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), bytes.size());
  }

  testing::TempDir dir_{"export"};
  std::string path_ = dir_.Sub("flows.ctx");
  std::string bytes_;
};

TEST_F(ExportFileTest, RoundTripAndLoadIntoRestore) {
  EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));
  EXPECT_EQ(bytes_.substr(0, 8), "CTSNAPX1");
  proto::ExportHeader h;
  RestoreCollector c(0, kWall + 10 * kSec);
  ASSERT_TRUE(ReadExportFile(path_, &h, [&](const ExportRecordView& v) {
                ASSERT_TRUE(v.status.ok());
                c.AddFlow(v.stream, *v.flow);
              }).ok());
  EXPECT_EQ(h.node_id(), "fw-a");
  RestoredFlows r = c.Finish();
  ASSERT_EQ(r.live().size(), 4u);
  ASSERT_EQ(r.external().size(), 1u);
  EXPECT_EQ(r.live()[0].remaining, 90 * kSec);

  auto src = FlowSource::Open(path_);
  ASSERT_TRUE(src.ok()) << src.status();
  EXPECT_EQ((*src)->kind(), FlowSource::Kind::kExport);
  EXPECT_EQ((*src)->node_id(), "fw-a");

  // Another node loads the file with the same ageing rules as its own store.
  absl::StatusOr<RestoredFlows> loaded = RestoreFromPath(path_, 7 * kSec, kWall + 95 * kSec);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->live().size(), 4u);
  EXPECT_EQ(loaded->live()[0].remaining, 5 * kSec);
  EXPECT_EQ(loaded->live()[0].flow.expires, 12 * kSec);
  EXPECT_EQ(loaded->external().size(), 1u);
  EXPECT_FALSE(RestoreFromPath(dir_.Sub("missing"), 0, kWall).ok());
}

// Cut the file at every length: never a crash, always an error (or, for the one full
// length, success), and the error says "truncated" or names the bad part.
TEST_F(ExportFileTest, EveryTruncationIsAnError) {
  for (size_t len = 0; len < bytes_.size(); ++len) {
    Rewrite(bytes_.substr(0, len));
    absl::Status s = ReadExportFile(path_, nullptr, [](const ExportRecordView&) {});
    ASSERT_FALSE(s.ok()) << len;
    const std::string msg(s.message());
    EXPECT_TRUE(msg.find("truncated") != std::string::npos ||
                msg.find("bad magic") != std::string::npos)
        << len << ": " << msg;
  }
}

TEST_F(ExportFileTest, DamagedRecordIsNamedAndReadingGoesOn) {
  // The second record's payload: skip magic, the header frame and the first record frame.
  auto frame_len = [&](size_t at) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(bytes_[at + 1 + i]);
    return 9 + v;
  };
  size_t at = 8;
  at += frame_len(at);  // header
  at += frame_len(at);  // record 0
  const size_t second = at;
  std::string bad = bytes_;
  bad[second + 12] ^= 0x40;
  Rewrite(bad);
  std::vector<std::string> problems;
  int good = 0;
  absl::Status s = ReadExportFile(path_, nullptr, [&](const ExportRecordView& v) {
    if (v.status.ok()) {
      ++good;
    } else {
      problems.emplace_back(v.status.message());
    }
  });
  EXPECT_TRUE(s.ok()) << s;  // the frame structure and trailer are intact
  EXPECT_EQ(good, 4);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("record 1 at byte " + std::to_string(second) + ": checksum mismatch"),
            std::string::npos)
      << problems[0];
}

TEST_F(ExportFileTest, NotAnExport) {
  Rewrite("hello world, not an export");
  EXPECT_FALSE(IsExportFile(path_));
  auto src = FlowSource::Open(path_);
  ASSERT_FALSE(src.ok());
  EXPECT_NE(src.status().message().find("not a ctsync export file"), std::string_view::npos);
}

}  // namespace
}  // namespace ctsync::storage

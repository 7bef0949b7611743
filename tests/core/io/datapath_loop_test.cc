#include "core/io/datapath_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <deque>
#include <thread>
#include <vector>

#include "core/packet/packet_builder.h"
#include "gtest/gtest.h"
#include "tests/core/io/test_frames.h"

namespace ctsync {
namespace {

using io_test::Ip;

constexpr int kLan = 0;
constexpr int kWan = 1;
const MacAddress kLanMac = {0x02, 0, 0, 0, 0x01, 0x01};
const MacAddress kWanMac = {0x02, 0, 0, 0, 0x02, 0x01};
const MacAddress kLanHostMac = {0x02, 0, 0, 0, 0x01, 0x02};
const MacAddress kNewHostMac = {0x02, 0, 0, 0, 0x02, 0x77};

// A port fed by the test: readable (via its eventfd) while frames wait in its inbox.
class FakePort final : public FramePort {
 public:
  FakePort() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~FakePort() override { close(fd_); }

  void Inject(std::vector<uint8_t> frame) {
    inbox_.push_back(std::move(frame));
    const uint64_t one = 1;
    ASSERT_EQ(write(fd_, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
  }

  int fd() const override { return fd_; }
  size_t Receive(absl::FunctionRef<void(absl::Span<const uint8_t>)> fn, size_t max) override {
    size_t n = 0;
    while (n < max && !inbox_.empty()) {
      fn(inbox_.front());
      inbox_.pop_front();
      ++n;
    }
    if (inbox_.empty()) {
      uint64_t v;
      (void)!read(fd_, &v, sizeof(v));
    }
    return n;
  }
  absl::Status Send(absl::Span<const uint8_t> frame) override {
    sent.emplace_back(frame.begin(), frame.end());
    return absl::OkStatus();
  }
  absl::Status Flush() override {
    ++flushes;
    return absl::OkStatus();
  }

  std::vector<std::vector<uint8_t>> sent;
  int flushes = 0;

 private:
  int fd_;
  std::deque<std::vector<uint8_t>> inbox_;
};

class DatapathLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ct = ConntrackEngine::Create(ConntrackOptions{}, clock_.Now());
    ASSERT_TRUE(ct.ok()) << ct.status();
    conntrack_ = *std::move(ct);
    pipeline_ = std::make_unique<Pipeline>(PipelineOptions{}, Topology::OracleFirewall(),
                                           conntrack_.get(), nullptr);
    std::vector<std::unique_ptr<FramePort>> ports;
    for (int i = 0; i < 2; ++i) {
      auto p = std::make_unique<FakePort>();
      fake_[i] = p.get();
      ports.push_back(std::move(p));
    }
    auto loop =
        DatapathLoop::Create(DatapathLoopOptions{}, pipeline_.get(), &clock_, std::move(ports));
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = *std::move(loop);
  }

  ManualClock clock_;
  std::unique_ptr<ConntrackEngine> conntrack_;
  std::unique_ptr<Pipeline> pipeline_;
  FakePort* fake_[2] = {nullptr, nullptr};
  std::unique_ptr<DatapathLoop> loop_;
};

TEST_F(DatapathLoopTest, CreateChecksPortCount) {
  std::vector<std::unique_ptr<FramePort>> one;
  one.push_back(std::make_unique<FakePort>());
  auto loop = DatapathLoop::Create(DatapathLoopOptions{}, pipeline_.get(), &clock_, std::move(one));
  EXPECT_EQ(loop.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DatapathLoopTest, AnswersArpWithoutInvolvingThePipeline) {
  fake_[kLan]->Inject(BuildArp(kArpOpRequest, kBroadcastMac, kLanHostMac, kLanHostMac,
                               Ip("192.0.2.10"), MacAddress{}, Ip("192.0.2.1")));
  ASSERT_TRUE(loop_->RunOnce(0).ok());
  ASSERT_EQ(fake_[kLan]->sent.size(), 1u);
  auto reply = ParseArp(fake_[kLan]->sent[0]);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->op, kArpOpReply);
  EXPECT_EQ(reply->sender_mac, kLanMac);
  EXPECT_EQ(loop_->counters().neighbour_frames, 1u);
  EXPECT_EQ(pipeline_->counters().rx_frames, 0u);
  EXPECT_TRUE(fake_[kWan]->sent.empty());
}

TEST_F(DatapathLoopTest, ForwardsThroughThePipeline) {
  fake_[kLan]->Inject(PacketBuilder().Ipv4("192.0.2.10", "198.51.100.20").Udp(40000, 53).Build());
  ASSERT_TRUE(loop_->RunOnce(0).ok());
  ASSERT_EQ(fake_[kWan]->sent.size(), 1u);
  const auto& out = fake_[kWan]->sent[0];
  EXPECT_EQ(FormatMac({out[0], out[1], out[2], out[3], out[4], out[5]}), "02:00:00:00:02:02");
  EXPECT_EQ(FormatMac({out[6], out[7], out[8], out[9], out[10], out[11]}), "02:00:00:00:02:01");
  EXPECT_EQ(out[14 + 8], 63);  // TTL decremented
  EXPECT_EQ(pipeline_->counters().tx_frames, 1u);
  EXPECT_EQ(loop_->counters().tx_frames, 1u);
  EXPECT_GE(fake_[kWan]->flushes, 1);
}

TEST_F(DatapathLoopTest, TakesAtMostABatchPerWakeUp) {
  DatapathLoopOptions o;
  o.rx_batch = 2;
  std::vector<std::unique_ptr<FramePort>> ports;
  auto* lan = new FakePort();
  ports.emplace_back(lan);
  ports.push_back(std::make_unique<FakePort>());
  auto loop = DatapathLoop::Create(o, pipeline_.get(), &clock_, std::move(ports));
  ASSERT_TRUE(loop.ok());
  for (int i = 0; i < 5; ++i)
    lan->Inject(BuildArp(kArpOpRequest, kBroadcastMac, kLanHostMac, kLanHostMac, Ip("192.0.2.10"),
                         MacAddress{}, Ip("192.0.2.1")));
  ASSERT_TRUE((*loop)->RunOnce(0).ok());
  EXPECT_EQ((*loop)->counters().rx_frames, 2u);
  ASSERT_TRUE((*loop)->RunOnce(0).ok());
  ASSERT_TRUE((*loop)->RunOnce(0).ok());
  EXPECT_EQ((*loop)->counters().rx_frames, 5u);
  EXPECT_EQ(lan->sent.size(), 5u);
}

TEST_F(DatapathLoopTest, PostRunsOnTheLoopThreadAndWakesIt) {
  std::thread::id ran_on;
  int runs = 0;
  std::thread poster([&] {
    loop_->Post([&] {
      ran_on = std::this_thread::get_id();
      ++runs;
    });
  });
  // Blocks until the post arrives (or 10 s): the eventfd wakes epoll.
  while (runs == 0 && loop_->counters().wakeups < 1000)
    ASSERT_TRUE(loop_->RunOnce(10 * kNanosPerSecond).ok());
  poster.join();
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_EQ(loop_->counters().posted_tasks, 1u);
}

TEST_F(DatapathLoopTest, PostedPromotionAnnouncesTheVirtualAddress) {
  loop_->Post([&] { loop_->AddVirtualAddress(kWan, Family::kIpv4, Ip("203.0.113.5")); });
  ASSERT_TRUE(loop_->RunOnce(0).ok());
  ASSERT_EQ(fake_[kWan]->sent.size(), 2u);
  EXPECT_EQ(ParseArp(fake_[kWan]->sent[0])->sender_ip, Ip("203.0.113.5"));
  EXPECT_EQ(loop_->counters().announcements, 2u);
  // Now answered on wan0.
  fake_[kWan]->Inject(BuildArp(kArpOpRequest, kBroadcastMac, kNewHostMac, kNewHostMac,
                               Ip("198.51.100.20"), MacAddress{}, Ip("203.0.113.5")));
  ASSERT_TRUE(loop_->RunOnce(0).ok());
  ASSERT_EQ(fake_[kWan]->sent.size(), 3u);
  EXPECT_EQ(ParseArp(fake_[kWan]->sent[2])->sender_mac, kWanMac);
  loop_->AnnounceVirtualAddresses();
  EXPECT_EQ(fake_[kWan]->sent.size(), 5u);
  EXPECT_EQ(loop_->counters().announcements, 4u);
  EXPECT_TRUE(loop_->RemoveVirtualAddress(kWan, Family::kIpv4, Ip("203.0.113.5")));
  loop_->AnnounceVirtualAddresses();
  EXPECT_EQ(fake_[kWan]->sent.size(), 5u);
}

TEST_F(DatapathLoopTest, SendViaResolvesUnknownNextHops) {
  std::vector<uint8_t> frame = PacketBuilder().Ipv4("192.0.2.1", "198.51.100.77").Udp(1, 2).Build();
  loop_->SendVia(Family::kIpv4, kWan, Ip("198.51.100.77"), frame);
  loop_->FlushTransmits();
  ASSERT_EQ(fake_[kWan]->sent.size(), 1u);
  EXPECT_EQ(ParseArp(fake_[kWan]->sent[0])->target_ip, Ip("198.51.100.77"));

  // The retry comes from the loop's tick, driven by the injected clock.
  clock_.Advance(kNanosPerSecond);
  ASSERT_TRUE(loop_->RunOnce(0).ok());
  EXPECT_GE(loop_->counters().ticks, 1u);
  ASSERT_EQ(fake_[kWan]->sent.size(), 2u);

  fake_[kWan]->Inject(BuildArp(kArpOpReply, kWanMac, kNewHostMac, kNewHostMac, Ip("198.51.100.77"),
                               kWanMac, Ip("198.51.100.1")));
  ASSERT_TRUE(loop_->RunOnce(0).ok());
  ASSERT_EQ(fake_[kWan]->sent.size(), 3u);
  const auto& released = fake_[kWan]->sent[2];
  EXPECT_EQ(
      FormatMac({released[0], released[1], released[2], released[3], released[4], released[5]}),
      FormatMac(kNewHostMac));
  EXPECT_EQ(std::vector<uint8_t>(released.begin() + 6, released.end()),
            std::vector<uint8_t>(frame.begin() + 6, frame.end()));
}

// The pipeline's side of the resolver hook: a frame it emits with a zero destination MAC.
TEST_F(DatapathLoopTest, ZeroMacFramesAreRoutedAgainAndResolved) {
  // 198.51.100.0/24 is connected on wan0; .88 has no static neighbour.
  std::vector<uint8_t> frame = PacketBuilder()
                                   .SrcMac(kWanMac)
                                   .DstMac({0, 0, 0, 0, 0, 0})
                                   .Ipv4("192.0.2.10", "198.51.100.88")
                                   .Udp(1, 2)
                                   .Build();
  loop_->Transmit(kWan, frame);
  // Beyond the default route: the gateway 198.51.100.254 has a static entry.
  std::vector<uint8_t> far = PacketBuilder()
                                 .SrcMac(kWanMac)
                                 .DstMac({0, 0, 0, 0, 0, 0})
                                 .Ipv4("192.0.2.10", "203.0.113.99")
                                 .Udp(1, 2)
                                 .Build();
  loop_->Transmit(kWan, far);
  std::vector<uint8_t> junk(20, 0);
  loop_->Transmit(kWan, junk);
  loop_->FlushTransmits();
  EXPECT_EQ(loop_->counters().tx_resolve, 2u);
  EXPECT_EQ(loop_->counters().tx_unroutable, 1u);
  ASSERT_EQ(fake_[kWan]->sent.size(), 2u);
  // .88 got an ARP request (its frame is held); the gateway's frame went straight out.
  const auto& gw = fake_[kWan]->sent[1];
  EXPECT_EQ(FormatMac({gw[0], gw[1], gw[2], gw[3], gw[4], gw[5]}), "02:00:00:00:02:02");
  auto arp = ParseArp(fake_[kWan]->sent[0]);
  ASSERT_TRUE(arp.has_value());
  EXPECT_EQ(arp->target_ip, Ip("198.51.100.88"));
  EXPECT_EQ(loop_->resolver().counters().frames_held, 1u);
}

TEST_F(DatapathLoopTest, TicksFollowTheInjectedClock) {
  ASSERT_TRUE(loop_->RunOnce(0).ok());
  EXPECT_EQ(loop_->counters().ticks, 0u);
  clock_.Advance(10 * kNanosPerMilli);
  ASSERT_TRUE(loop_->RunOnce(0).ok());
  EXPECT_EQ(loop_->counters().ticks, 1u);
  ASSERT_TRUE(loop_->RunOnce(0).ok());
  EXPECT_EQ(loop_->counters().ticks, 1u);
}

TEST_F(DatapathLoopTest, RunStopsWhenTheFlagIsSet) {
  std::atomic<bool> stop{false};
  std::thread stopper([&] { loop_->Post([&] { stop.store(true); }); });
  EXPECT_TRUE(loop_->Run(stop).ok());
  stopper.join();
  EXPECT_TRUE(stop.load());
}

}  // namespace
}  // namespace ctsync

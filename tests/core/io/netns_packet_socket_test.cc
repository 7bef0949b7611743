// Root-only tests of the live I/O path on a veth pair between two namespaces the test
// creates (suites prefixed Netns: relabelled `integration`; skipped when not root).
// Also prints the PacketSocket throughput measurement quoted in packet_socket.h.
#include <arpa/inet.h>
#include <errno.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "core/io/datapath_loop.h"
#include "core/io/packet_socket.h"
#include "core/packet/checksum.h"
#include "core/packet/packet_builder.h"
#include "core/packet/packet_parser.h"
#include "gtest/gtest.h"
#include "tests/core/io/test_frames.h"
#include "tests/core/io/test_netns.h"

namespace ctsync {
namespace {

using io_test::InNetns;
using io_test::Ip;
using io_test::NetnsPair;

constexpr uint16_t kLocalExperimentalEthertype = 0x88b5;

bool WaitReadable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1;
}

std::vector<uint8_t> ExperimentalFrame(const MacAddress& dst, const MacAddress& src, size_t size,
                                       uint32_t seq) {
  std::vector<uint8_t> f(size, 0xab);
  std::copy(dst.begin(), dst.end(), f.begin());
  std::copy(src.begin(), src.end(), f.begin() + 6);
  StoreBe16(f.data() + 12, kLocalExperimentalEthertype);
  StoreBe32(f.data() + 14, seq);
  return f;
}

absl::StatusOr<std::unique_ptr<PacketSocket>> OpenIn(const std::string& ns, PacketSocketOptions o) {
  return InNetns(ns, [&] { return PacketSocket::Open(o); });
}

PacketSocketOptions On(const char* iface, TxMode mode = TxMode::kRing) {
  PacketSocketOptions o;
  o.interface = iface;
  o.tx_mode = mode;
  return o;
}

// A datagram socket opened inside `ns` (non-blocking), or -1.
int UdpSocketIn(const std::string& ns, int family) {
  return InNetns(ns, [&] { return socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); });
}

class NetnsPacketSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = io_test::NetnsUnavailable()) GTEST_SKIP() << *why;
    std::string error;
    ns_ = NetnsPair::Create(&error);
    ASSERT_NE(ns_, nullptr) << error;
  }

  std::unique_ptr<NetnsPair> ns_;
};

TEST_F(NetnsPacketSocketTest, OpenReportsClearErrors) {
  auto missing = OpenIn(ns_->a, On("nope0"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
  EXPECT_NE(std::string(missing.status().message()).find("nope0"), std::string::npos);

  auto no_cap = InNetns(ns_->a, [] {
    // Capabilities are per thread: drop CAP_NET_RAW from this one only.
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    syscall(SYS_capget, &hdr, data);
    data[CAP_NET_RAW / 32].effective &= ~(1u << (CAP_NET_RAW % 32));
    syscall(SYS_capset, &hdr, data);
    return PacketSocket::Open(On("va"));
  });
  EXPECT_EQ(no_cap.status().code(), absl::StatusCode::kPermissionDenied) << no_cap.status();
  EXPECT_NE(std::string(no_cap.status().message()).find("CAP_NET_RAW"), std::string::npos);

  PacketSocketOptions bad = On("va");
  bad.rx_block_size = 1000;
  EXPECT_EQ(OpenIn(ns_->a, bad).status().code(), absl::StatusCode::kInvalidArgument);
}

// (TX mode, PACKET_VNET_HDR on/off)
class NetnsPacketSocketModeTest : public NetnsPacketSocketTest,
                                  public ::testing::WithParamInterface<std::tuple<TxMode, bool>> {
 protected:
  PacketSocketOptions Options(const char* iface) const {
    PacketSocketOptions o = On(iface, std::get<0>(GetParam()));
    o.vnet_header = std::get<1>(GetParam());
    return o;
  }
};

TEST_P(NetnsPacketSocketModeTest, SendsAndReceivesButNeverReadsItsOwnFrames) {
  auto a = OpenIn(ns_->a, Options("va"));
  auto b = OpenIn(ns_->b, Options("vb"));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  PacketSocket& sa = **a;
  PacketSocket& sb = **b;
  EXPECT_EQ(sa.interface_name(), "va");
  EXPECT_GT(sa.ifindex(), 0);
  EXPECT_EQ(sa.mtu(), 1500);

  std::vector<std::vector<uint8_t>> sent;
  for (uint32_t i = 0; i < 3; ++i) {
    sent.push_back(ExperimentalFrame(sb.mac(), sa.mac(), 100 + i, i));
    ASSERT_TRUE(sa.Send(sent.back()).ok());
  }
  // A tagged frame: veth strips the tag into metadata; the socket must put it back.
  std::vector<uint8_t> tagged = ExperimentalFrame(sb.mac(), sa.mac(), 80, 99);
  const uint8_t tag[4] = {0x81, 0x00, 0x00, 0x2a};
  tagged.insert(tagged.begin() + 12, tag, tag + 4);
  sent.push_back(tagged);
  ASSERT_TRUE(sa.Send(tagged).ok());
  ASSERT_TRUE(sa.Flush().ok());

  std::vector<std::vector<uint8_t>> got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (got.size() < sent.size() && std::chrono::steady_clock::now() < deadline) {
    WaitReadable(sb.fd(), 100);
    sb.Receive(
        [&](absl::Span<const uint8_t> f) {
          if (f.size() >= 14 && (LoadBe16(f.data() + 12) == kLocalExperimentalEthertype ||
                                 LoadBe16(f.data() + 12) == 0x8100))
            got.emplace_back(f.begin(), f.end());
        },
        64);
  }
  ASSERT_EQ(got.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(got[i], sent[i]) << "frame " << i;
  EXPECT_EQ(sb.counters().rx_vlan_restored, 1u);
  EXPECT_EQ(sa.counters().tx_frames, 4u);
  EXPECT_EQ(sa.counters().tx_errors, 0u);

  // PACKET_IGNORE_OUTGOING: the sender's ring holds none of its own frames. Wait past the
  // block retire timeout so a frame it had captured would be visible.
  WaitReadable(sa.fd(), 50);
  size_t own = 0;
  sa.Receive(
      [&](absl::Span<const uint8_t> f) {
        if (f.size() >= 14 && LoadBe16(f.data() + 12) == kLocalExperimentalEthertype) ++own;
      },
      64);
  EXPECT_EQ(own, 0u);
}

INSTANTIATE_TEST_SUITE_P(Netns, NetnsPacketSocketModeTest,
                         ::testing::Combine(::testing::Values(TxMode::kRing, TxMode::kSendto),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) == TxMode::kRing ? "Ring"
                                                                                       : "Sendto") +
                                  (std::get<1>(info.param) ? "Vnet" : "Plain");
                         });

// Both ways of completing a CHECKSUM_PARTIAL sum: from the virtio_net_hdr offsets, and
// (without PACKET_VNET_HDR) by parsing the frame.
TEST_F(NetnsPacketSocketTest, CompletesChecksumsTheSenderLeftToOffload) {
  ASSERT_TRUE(ns_->Ip(ns_->b, "addr add 192.0.2.10/24 dev vb"));
  for (bool vnet : {true, false}) {
    SCOPED_TRACE(vnet ? "vnet header" : "parsed");
    PacketSocketOptions o = On("va");
    o.vnet_header = vnet;
    auto a = OpenIn(ns_->a, o);
    ASSERT_TRUE(a.ok()) << a.status();
    PacketSocket& sa = **a;
    ns_->Ip(ns_->b,
            "neigh replace 192.0.2.77 lladdr " + FormatMac(sa.mac()) + " dev vb nud permanent");
    const int udp = UdpSocketIn(ns_->b, AF_INET);
    ASSERT_GE(udp, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(9);
    inet_pton(AF_INET, "192.0.2.77", &to.sin_addr);
    ASSERT_EQ(sendto(udp, "checksum", 8, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 8);
    close(udp);

    bool seen = false, valid = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!seen && std::chrono::steady_clock::now() < deadline) {
      WaitReadable(sa.fd(), 100);
      sa.Receive(
          [&](absl::Span<const uint8_t> f) {
            ParsedPacket p;
            if (!ParseEthernet(f, &p).ok() || p.proto != kProtoUdp) return;
            seen = true;
            valid = VerifyL4Checksum(p, f);
          },
          64);
    }
    ASSERT_TRUE(seen);
    EXPECT_TRUE(valid);
    // veth advertises checksum offload, so the kernel left the sum to "hardware".
    EXPECT_EQ(sa.counters().rx_csum_completed, 1u);
  }
}

// ---- the datapath loop against a real kernel neighbour ----

class NetnsDatapathLoopTest : public NetnsPacketSocketTest {
 protected:
  // Our node on va: 192.0.2.1/24 and 2001:db8:1::1/64. The kernel in b: .10 and ::10.
  void StartLoop(bool static_neighbours) {
    ASSERT_TRUE(ns_->Ip(ns_->b, "addr add 192.0.2.10/24 dev vb"));
    ASSERT_TRUE(ns_->Ip(ns_->b, "addr add 2001:db8:1::10/64 dev vb nodad"));
    auto port = OpenIn(ns_->a, On("va"));
    ASSERT_TRUE(port.ok()) << port.status();
    Interface va;
    va.name = "va";
    va.mac = (*port)->mac();
    InterfaceAddress v4, v6;
    v4.address = *IpAddress::Parse("192.0.2.1", &v4.family);
    v4.prefix_len = 24;
    v6.address = *IpAddress::Parse("2001:db8:1::1", &v6.family);
    v6.prefix_len = 64;
    va.addresses = {v4, v6};
    Topology t;
    ASSERT_TRUE(t.AddInterface(va).ok());
    if (static_neighbours) {
      const std::string vb_mac = ns_->MacOf(ns_->b, "vb");
      ASSERT_TRUE(t.AddNeighbour("192.0.2.10", vb_mac, "va").ok()) << vb_mac;
      ASSERT_TRUE(t.AddNeighbour("2001:db8:1::10", vb_mac, "va").ok());
    }
    auto ct = ConntrackEngine::Create(ConntrackOptions{}, SystemClock::Get().Now());
    ASSERT_TRUE(ct.ok());
    conntrack_ = *std::move(ct);
    pipeline_ =
        std::make_unique<Pipeline>(PipelineOptions{}, std::move(t), conntrack_.get(), nullptr);
    std::vector<std::unique_ptr<FramePort>> ports;
    ports.push_back(*std::move(port));
    auto loop = DatapathLoop::Create(DatapathLoopOptions{}, pipeline_.get(), &SystemClock::Get(),
                                     std::move(ports));
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = *std::move(loop);
  }

  // Runs the loop until `done` or 5 s pass.
  template <typename F>
  bool RunUntil(F done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!loop_->RunOnce(20 * kNanosPerMilli).ok()) return false;
      if (done()) return true;
    }
    return false;
  }

  std::unique_ptr<ConntrackEngine> conntrack_;
  std::unique_ptr<Pipeline> pipeline_;
  std::unique_ptr<DatapathLoop> loop_;
};

// The kernel in b resolves our address with ARP / NS, sends a datagram to a closed port
// and gets the port-unreachable our pipeline answers: ARP, NA, checksum completion, local
// delivery and transmit all work against a real stack.
TEST_F(NetnsDatapathLoopTest, KernelResolvesUsAndGetsPortUnreachable) {
  StartLoop(/*static_neighbours=*/true);
  struct Target {
    int family;
    const char* addr;
  };
  for (const Target& target : {Target{AF_INET, "192.0.2.1"}, Target{AF_INET6, "2001:db8:1::1"}}) {
    SCOPED_TRACE(target.addr);
    const int udp = UdpSocketIn(ns_->b, target.family);
    ASSERT_GE(udp, 0);
    sockaddr_storage ss{};
    socklen_t len;
    if (target.family == AF_INET) {
      auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
      s4->sin_family = AF_INET;
      s4->sin_port = htons(9);
      inet_pton(AF_INET, target.addr, &s4->sin_addr);
      len = sizeof(*s4);
    } else {
      auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
      s6->sin6_family = AF_INET6;
      s6->sin6_port = htons(9);
      inet_pton(AF_INET6, target.addr, &s6->sin6_addr);
      len = sizeof(*s6);
    }
    ASSERT_EQ(connect(udp, reinterpret_cast<sockaddr*>(&ss), len), 0);
    ASSERT_EQ(send(udp, "hello", 5, 0), 5);
    int err = 0;
    EXPECT_TRUE(RunUntil([&] {
      char buf[16];
      if (recv(udp, buf, sizeof(buf), 0) < 0 && errno == ECONNREFUSED) err = ECONNREFUSED;
      return err != 0;
    }));
    EXPECT_EQ(err, ECONNREFUSED);
    close(udp);
    const std::string neigh =
        io_test::ShellOutput("ip -n " + ns_->b + " neigh show " + target.addr);
    EXPECT_NE(neigh.find(FormatMac(loop_->pipeline().topology().interface(0).mac)),
              std::string::npos)
        << neigh;
  }
  EXPECT_GE(loop_->responder().counters().arp_requests_answered, 1u);
  EXPECT_GE(loop_->responder().counters().ns_answered, 1u);
  EXPECT_EQ(pipeline_->counters().local_replies, 2u);
}

// SendVia with no static neighbour: our ARP request / NS gets the kernel's answer and the
// held datagram reaches a socket in b.
TEST_F(NetnsDatapathLoopTest, ResolverLearnsTheKernelsAddressAndReleasesHeldFrames) {
  StartLoop(/*static_neighbours=*/false);
  struct Target {
    int family;
    const char* src;
    const char* dst;
  };
  for (const Target& t : {Target{AF_INET, "192.0.2.1", "192.0.2.10"},
                          Target{AF_INET6, "2001:db8:1::1", "2001:db8:1::10"}}) {
    SCOPED_TRACE(t.dst);
    const int udp = UdpSocketIn(ns_->b, t.family);
    ASSERT_GE(udp, 0);
    sockaddr_storage ss{};
    socklen_t len;
    if (t.family == AF_INET) {
      auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
      s4->sin_family = AF_INET;
      s4->sin_port = htons(5000);
      len = sizeof(*s4);
    } else {
      auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
      s6->sin6_family = AF_INET6;
      s6->sin6_port = htons(5000);
      len = sizeof(*s6);
    }
    ASSERT_EQ(bind(udp, reinterpret_cast<sockaddr*>(&ss), len), 0);
    PacketBuilder b;
    b.SrcMac(loop_->pipeline().topology().interface(0).mac).DstMac({0, 0, 0, 0, 0, 0});
    if (t.family == AF_INET) {
      b.Ipv4(t.src, t.dst);
    } else {
      b.Ipv6(t.src, t.dst);
    }
    std::vector<uint8_t> frame = b.Udp(4000, 5000).Payload("released").Build();
    Family family;
    const IpAddress next_hop = *IpAddress::Parse(t.dst, &family);
    loop_->SendVia(family, 0, next_hop, frame);
    loop_->FlushTransmits();
    std::string got;
    EXPECT_TRUE(RunUntil([&] {
      char buf[64];
      const ssize_t n = recv(udp, buf, sizeof(buf), 0);
      if (n > 0) got.assign(buf, n);
      return !got.empty();
    }));
    EXPECT_EQ(got, "released");
    close(udp);
  }
  EXPECT_EQ(loop_->resolver().counters().resolved, 2u);
  EXPECT_EQ(loop_->resolver().counters().frames_released, 2u);
}

// ---- measurement ----

struct Rate {
  double frames_per_second = 0;
  uint64_t sent = 0;
  uint64_t received = 0;
};

// One thread sends `total` frames of `size` bytes on `tx` in batches and drains `rx`
// after every batch: the cost of one send plus one receive per frame on one core.
Rate Measure(PacketSocket& tx, PacketSocket& rx, size_t size, uint64_t total, size_t batch) {
  Rate r;
  const auto start = std::chrono::steady_clock::now();
  auto drain = [&] {
    rx.Receive(
        [&](absl::Span<const uint8_t> f) {
          if (f.size() >= 14 && LoadBe16(f.data() + 12) == kLocalExperimentalEthertype)
            ++r.received;
        },
        1u << 20);
  };
  std::vector<uint8_t> frame = ExperimentalFrame(rx.mac(), tx.mac(), size, 0);
  while (r.sent < total) {
    for (size_t i = 0; i < batch && r.sent < total; ++i) {
      StoreBe32(frame.data() + 14, static_cast<uint32_t>(r.sent));
      if (tx.Send(frame).ok()) ++r.sent;
    }
    (void)tx.Flush();
    drain();
  }
  // The last partial block retires after the block timeout.
  const auto tail = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  while (r.received < r.sent && std::chrono::steady_clock::now() < tail) {
    WaitReadable(rx.fd(), 10);
    drain();
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.frames_per_second = static_cast<double>(r.received) / secs;
  return r;
}

// Opt-in (about 10 s): --gtest_also_run_disabled_tests --gtest_filter='*Throughput*'.
TEST_F(NetnsPacketSocketTest, DISABLED_ThroughputOnVethPair) {
  struct Config {
    const char* name;
    TxMode mode;
    size_t size;
    size_t batch;
    bool qdisc_bypass = false;
  };
  const Config configs[] = {
      {"ring    64B batch 64", TxMode::kRing, 64, 64},
      {"sendto  64B batch 64", TxMode::kSendto, 64, 64},
      {"ring    64B batch 1 ", TxMode::kRing, 64, 1},
      {"ring  1514B batch 64", TxMode::kRing, 1514, 64},
      {"sendto 1514B batch 64", TxMode::kSendto, 1514, 64},
      {"ring    64B batch 64 qdisc bypass", TxMode::kRing, 64, 64, true},
      {"sendto  64B batch 64 qdisc bypass", TxMode::kSendto, 64, 64, true},
  };
  for (const Config& c : configs) {
    PacketSocketOptions o = On("va", c.mode);
    o.qdisc_bypass = c.qdisc_bypass;
    auto a = OpenIn(ns_->a, o);
    auto b = OpenIn(ns_->b, On("vb"));
    ASSERT_TRUE(a.ok() && b.ok());
    // Best of three: the machine is shared, so the best run is the least disturbed.
    Rate r;
    for (int run = 0; run < 3; ++run) {
      const Rate x = Measure(**a, **b, c.size, 200000, c.batch);
      if (x.frames_per_second > r.frames_per_second) r = x;
    }
    (*b)->UpdateKernelStatistics();
    std::printf("[ measure ] %s: %.0f frames/s (sent %llu, received %llu, ring drops %llu)\n",
                c.name, r.frames_per_second, static_cast<unsigned long long>(r.sent),
                static_cast<unsigned long long>(r.received),
                static_cast<unsigned long long>((*b)->counters().rx_ring_drops));
    EXPECT_GT(r.received, 0u) << c.name;
  }
}

}  // namespace
}  // namespace ctsync

// The userspace firewall between two real kernels: namespace c (client, 192.0.2.10) and
// s (server, 198.51.100.20) talk through namespace f, whose kernel does not forward; our
// DatapathLoop on f's lan0/wan0 does. Root only (suite prefix Netns); skipped otherwise.
// Also the opt-in forwarding throughput measurement.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/io/datapath_loop.h"
#include "core/packet/packet_builder.h"
#include "core/packet/packet_parser.h"
#include "gtest/gtest.h"
#include "tests/core/io/test_frames.h"
#include "tests/core/io/test_netns.h"

namespace ctsync {
namespace {

using io_test::InNetns;
using io_test::NetnsSet;

constexpr size_t kClient = 0, kFirewall = 1, kServer = 2;

sockaddr_in V4(const char* addr, uint16_t port) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_port = htons(port);
  inet_pton(AF_INET, addr, &s.sin_addr);
  return s;
}

class NetnsForwardingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = io_test::NetnsUnavailable()) GTEST_SKIP() << *why;
    std::string error;
    ns_ = NetnsSet::Create({"c", "f", "s"}, &error);
    ASSERT_NE(ns_, nullptr) << error;
    const std::string& c = ns_->name(kClient);
    const std::string& f = ns_->name(kFirewall);
    const std::string& s = ns_->name(kServer);
    ASSERT_TRUE(ns_->Veth(kClient, "eth0", kFirewall, "lan0"));
    ASSERT_TRUE(ns_->Veth(kServer, "eth0", kFirewall, "wan0"));
    ASSERT_TRUE(ns_->Ip(c, "addr add 192.0.2.10/24 dev eth0"));
    ASSERT_TRUE(ns_->Ip(c, "route add default via 192.0.2.1"));
    ASSERT_TRUE(ns_->Ip(s, "addr add 198.51.100.20/24 dev eth0"));
    ASSERT_TRUE(ns_->Ip(s, "route add default via 198.51.100.1"));
    ASSERT_TRUE(ns_->Ip(c, "addr add 2001:db8:1::10/64 dev eth0 nodad"));
    ASSERT_TRUE(ns_->Ip(c, "-6 route add default via 2001:db8:1::1"));
    ASSERT_TRUE(ns_->Ip(s, "addr add 2001:db8:2::20/64 dev eth0 nodad"));
    ASSERT_TRUE(ns_->Ip(s, "-6 route add default via 2001:db8:2::1"));

    // f's topology as ctsyncd would load it; the kernel of f has no addresses at all.
    Topology t;
    auto iface = [&](const char* name, const char* v4, const char* v6) {
      Interface i;
      i.name = name;
      i.mac = *ParseMac(ns_->MacOf(f, name));
      InterfaceAddress a4, a6;
      a4.address = *IpAddress::Parse(v4, &a4.family);
      a4.prefix_len = 24;
      a6.address = *IpAddress::Parse(v6, &a6.family);
      a6.prefix_len = 64;
      i.addresses = {a4, a6};
      return i;
    };
    ASSERT_TRUE(t.AddInterface(iface("lan0", "192.0.2.1", "2001:db8:1::1")).ok());
    ASSERT_TRUE(t.AddInterface(iface("wan0", "198.51.100.1", "2001:db8:2::1")).ok());
    const std::string client_mac = ns_->MacOf(c, "eth0");
    const std::string server_mac = ns_->MacOf(s, "eth0");
    ASSERT_TRUE(t.AddNeighbour("192.0.2.10", client_mac, "lan0").ok());
    ASSERT_TRUE(t.AddNeighbour("198.51.100.20", server_mac, "wan0").ok());
    ASSERT_TRUE(t.AddNeighbour("2001:db8:1::10", client_mac, "lan0").ok());
    ASSERT_TRUE(t.AddNeighbour("2001:db8:2::20", server_mac, "wan0").ok());
    // A next hop whose kernel drops what it gets (not its address, no forwarding): the
    // throughput sink.
    ASSERT_TRUE(t.AddNeighbour("198.51.100.30", server_mac, "wan0").ok());

    auto ct = ConntrackEngine::Create(ConntrackOptions{}, SystemClock::Get().Now());
    ASSERT_TRUE(ct.ok());
    conntrack_ = *std::move(ct);
    pipeline_ =
        std::make_unique<Pipeline>(PipelineOptions{}, std::move(t), conntrack_.get(), nullptr);
    auto ports = InNetns(f, [&] {
      return DatapathLoop::OpenPacketSockets(pipeline_->topology(), PacketSocketOptions{});
    });
    ASSERT_TRUE(ports.ok()) << ports.status();
    auto loop = DatapathLoop::Create(DatapathLoopOptions{}, pipeline_.get(), &SystemClock::Get(),
                                     *std::move(ports));
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = *std::move(loop);
  }

  template <typename F>
  bool RunUntil(F done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!loop_->RunOnce(20 * kNanosPerMilli).ok()) return false;
      if (done()) return true;
    }
    return false;
  }

  std::unique_ptr<NetnsSet> ns_;
  std::unique_ptr<ConntrackEngine> conntrack_;
  std::unique_ptr<Pipeline> pipeline_;
  std::unique_ptr<DatapathLoop> loop_;
};

TEST_F(NetnsForwardingTest, UdpRequestAndReplyCrossTheUserspaceFirewall) {
  const int server = InNetns(ns_->name(kServer), [] {
    return socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  });
  const int client = InNetns(ns_->name(kClient), [] {
    return socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  });
  ASSERT_GE(server, 0);
  ASSERT_GE(client, 0);
  sockaddr_in any = V4("0.0.0.0", 7000);
  ASSERT_EQ(bind(server, reinterpret_cast<sockaddr*>(&any), sizeof(any)), 0);
  sockaddr_in to = V4("198.51.100.20", 7000);
  ASSERT_EQ(sendto(client, "ping", 4, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 4);

  char buf[64];
  sockaddr_in from{};
  socklen_t from_len = sizeof(from);
  ssize_t n = -1;
  ASSERT_TRUE(RunUntil([&] {
    n = recvfrom(server, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    return n > 0;
  }));
  EXPECT_EQ(std::string(buf, n), "ping");
  char src[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &from.sin_addr, src, sizeof(src));
  EXPECT_STREQ(src, "192.0.2.10");

  ASSERT_EQ(sendto(server, "pong", 4, 0, reinterpret_cast<sockaddr*>(&from), from_len), 4);
  ASSERT_TRUE(RunUntil([&] {
    n = recv(client, buf, sizeof(buf), 0);
    return n > 0;
  }));
  EXPECT_EQ(std::string(buf, n), "pong");
  close(server);
  close(client);

  EXPECT_EQ(pipeline_->counters().tx_frames, 2u);
  EXPECT_EQ(conntrack_->table().confirmed_count(), 1u);
  EXPECT_GE(loop_->responder().counters().arp_requests_answered, 2u);  // both kernels asked
}

// IPv6: the client kernel finds its gateway by Neighbour Solicitation.
TEST_F(NetnsForwardingTest, Udp6RequestAndReplyCrossTheUserspaceFirewall) {
  auto v6 = [](const char* addr, uint16_t port) {
    sockaddr_in6 s{};
    s.sin6_family = AF_INET6;
    s.sin6_port = htons(port);
    inet_pton(AF_INET6, addr, &s.sin6_addr);
    return s;
  };
  const int server = InNetns(ns_->name(kServer), [] {
    return socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  });
  const int client = InNetns(ns_->name(kClient), [] {
    return socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  });
  ASSERT_GE(server, 0);
  ASSERT_GE(client, 0);
  sockaddr_in6 any = v6("::", 7000);
  ASSERT_EQ(bind(server, reinterpret_cast<sockaddr*>(&any), sizeof(any)), 0);
  sockaddr_in6 to = v6("2001:db8:2::20", 7000);
  ASSERT_EQ(sendto(client, "ping6", 5, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 5);
  char buf[64];
  sockaddr_in6 from{};
  socklen_t from_len = sizeof(from);
  ssize_t n = -1;
  ASSERT_TRUE(RunUntil([&] {
    n = recvfrom(server, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    return n > 0;
  }));
  EXPECT_EQ(std::string(buf, n), "ping6");
  ASSERT_EQ(sendto(server, "pong6", 5, 0, reinterpret_cast<sockaddr*>(&from), from_len), 5);
  ASSERT_TRUE(RunUntil([&] {
    n = recv(client, buf, sizeof(buf), 0);
    return n > 0;
  }));
  EXPECT_EQ(std::string(buf, n), "pong6");
  close(server);
  close(client);
  EXPECT_GE(loop_->responder().counters().ns_answered, 2u);
  EXPECT_EQ(conntrack_->table().confirmed_count(), 1u);
}

// A TCP bulk transfer: handshake, window tracking and many full-size segments.
TEST_F(NetnsForwardingTest, TcpBulkTransferCrossesTheUserspaceFirewall) {
  const int listener = InNetns(ns_->name(kServer), [] {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in any = V4("0.0.0.0", 8080);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&any), sizeof(any)) != 0 ||
        listen(fd, 1) != 0)
      return -1;
    return fd;
  });
  ASSERT_GE(listener, 0);
  const int client = InNetns(ns_->name(kClient), [] {
    return socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  });
  ASSERT_GE(client, 0);
  sockaddr_in to = V4("198.51.100.20", 8080);
  ASSERT_NE(connect(client, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  ASSERT_EQ(errno, EINPROGRESS);

  int server = -1;
  ASSERT_TRUE(RunUntil([&] {
    pollfd p{listener, POLLIN, 0};
    if (poll(&p, 1, 0) == 1) server = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
    return server >= 0;
  }));
  constexpr size_t kBytes = 1 << 20;
  const std::string data(kBytes, 'd');
  size_t written = 0, read_total = 0;
  char buf[65536];
  EXPECT_TRUE(RunUntil([&] {
    if (written < kBytes) {
      const ssize_t n = send(client, data.data() + written, kBytes - written, MSG_NOSIGNAL);
      if (n > 0) written += n;
    }
    ssize_t n;
    while ((n = recv(server, buf, sizeof(buf), 0)) > 0) read_total += n;
    return read_total == kBytes;
  }));
  EXPECT_EQ(read_total, kBytes);
  EXPECT_EQ(pipeline_->counters().too_big, 0u);
  // The client's TSO super-frames were cut back to MSS-size segments on lan0.
  const auto& lan = static_cast<PacketSocket&>(loop_->port(0)).counters();
  RecordProperty("lan0_gso_frames", static_cast<int>(lan.rx_gso_frames));
  RecordProperty("lan0_gso_segments", static_cast<int>(lan.rx_gso_segments));
  EXPECT_EQ(lan.rx_gso_unsupported, 0u);
  close(client);
  close(server);
  close(listener);
}

// Opt-in (a few seconds): --gtest_also_run_disabled_tests --gtest_filter='*Forwarding*'.
// One thread injects UDP frames on c's eth0, runs the loop, and drains s's eth0: every
// frame costs two PacketSocket sends, two receives and one Pipeline::Receive on one core.
TEST_F(NetnsForwardingTest, DISABLED_ForwardingThroughput) {
  auto inject = InNetns(ns_->name(kClient), [] {
    PacketSocketOptions o;
    o.interface = "eth0";
    return PacketSocket::Open(o);
  });
  auto sink = InNetns(ns_->name(kServer), [] {
    PacketSocketOptions o;
    o.interface = "eth0";
    return PacketSocket::Open(o);
  });
  ASSERT_TRUE(inject.ok() && sink.ok());
  const MacAddress lan_mac = pipeline_->topology().interface(0).mac;
  constexpr int kFlows = 256;
  std::vector<std::vector<uint8_t>> frames;
  for (int i = 0; i < kFlows; ++i)
    frames.push_back(PacketBuilder()
                         .SrcMac((*inject)->mac())
                         .DstMac(lan_mac)
                         .Ipv4("192.0.2.10", "198.51.100.30")
                         .Udp(static_cast<uint16_t>(20000 + i), 9)
                         .Payload(std::string(18, 'x'))
                         .Build());
  constexpr uint64_t kTotal = 200000;
  for (int run = 0; run < 3; ++run) {
    uint64_t sent = 0, received = 0;
    auto drain = [&] {
      (*sink)->Receive(
          [&](absl::Span<const uint8_t> f) {
            if (f.size() > 14 && LoadBe16(f.data() + 12) == kEtherTypeIpv4) ++received;
          },
          1u << 20);
    };
    const auto start = std::chrono::steady_clock::now();
    while (sent < kTotal) {
      for (int i = 0; i < 64; ++i)
        if ((*inject)->Send(frames[sent % kFlows]).ok()) ++sent;
      (void)(*inject)->Flush();
      (void)loop_->RunOnce(0);
      drain();
    }
    const auto tail = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    while (received < sent && std::chrono::steady_clock::now() < tail) {
      (void)loop_->RunOnce(2 * kNanosPerMilli);
      drain();
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("[ measure ] forwarding run %d: %.0f frames/s (sent %llu, forwarded %llu)\n", run,
                static_cast<double>(received) / secs, static_cast<unsigned long long>(sent),
                static_cast<unsigned long long>(received));
    EXPECT_GT(received, 0u);
  }
}

}  // namespace
}  // namespace ctsync

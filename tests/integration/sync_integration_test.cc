// Sync over real sockets on 127.0.0.1 (ephemeral ports), several nodes in one process on one
// io_context: each node is a ConntrackEngine + Replicator + ExternalCache wired as the
// daemon wires them. Faults (loss, duplication, reordering) come from relay sockets placed
// between the nodes. Real time, but every test finishes in seconds.
#include <chrono>
#include <deque>
#include <memory>
#include <random>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/udp.hpp"
#include "gtest/gtest.h"
#include "sync/external_apply.h"
#include "sync/link_set.h"
#include "sync/replicator.h"
#include "sync/tcp_channel.h"
#include "sync/udp_channel.h"
#include "tests/sync/test_flows.h"

namespace ctsync::sync {
namespace {

namespace asio = boost::asio;
using asio::ip::udp;
using testing::MakeTcpNatFlow;

const udp::endpoint kLoopback(asio::ip::make_address("127.0.0.1"), 0);

// Forwards datagrams from its socket to `to`, losing, duplicating and reordering some.
class FaultyRelay {
 public:
  FaultyRelay(asio::io_context& io, udp::endpoint to, double loss, double dup, double reorder,
              uint32_t seed)
      : socket_(io, kLoopback), to_(to), loss_(loss), dup_(dup), reorder_(reorder), rng_(seed) {
    socket_.set_option(asio::socket_base::receive_buffer_size(4 << 20));
    socket_.set_option(asio::socket_base::send_buffer_size(4 << 20));
    Arm();
  }
  udp::endpoint endpoint() const { return udp::endpoint(kLoopback.address(), socket_.local_endpoint().port()); }
  void set_loss(double l) { loss_ = l; }
  uint64_t dropped() const { return dropped_; }

 private:
  bool Chance(double p) { return p > 0 && std::uniform_real_distribution<>(0, 1)(rng_) < p; }
  void Arm() {
    socket_.async_receive_from(asio::buffer(buf_), from_,
                               [this](const boost::system::error_code& ec, size_t n) {
                                 if (ec) return;
                                 Forward(std::string(buf_.data(), n));
                                 Arm();
                               });
  }
  void Forward(std::string d) {
    if (Chance(loss_)) {
      ++dropped_;
      return;
    }
    if (Chance(reorder_) && held_.size() < 8) {  // sent after the next one(s)
      held_.push_back(std::move(d));
      return;
    }
    const int copies = Chance(dup_) ? 2 : 1;
    boost::system::error_code ec;
    for (int i = 0; i < copies; ++i) socket_.send_to(asio::buffer(d), to_, 0, ec);
    while (!held_.empty()) {
      socket_.send_to(asio::buffer(held_.front()), to_, 0, ec);
      held_.pop_front();
    }
  }

  udp::socket socket_;
  udp::endpoint to_;
  double loss_, dup_, reorder_;
  std::mt19937 rng_;
  std::array<char, 65536> buf_;
  udp::endpoint from_;
  std::deque<std::string> held_;
  uint64_t dropped_ = 0;
};

// One ctsync node: engine, replicator and external cache over a set of UDP links.
struct Node {
  Node(asio::io_context& io, uint32_t id, size_t links, uint64_t incarnation) : id(id) {
    ConntrackOptions co;
    co.settings.nf_conntrack_max = 1 << 17;
    co.settings.nf_conntrack_buckets = 1 << 17;
    co.event_ring_capacity = 1 << 17;
    engine = std::move(*ConntrackEngine::Create(co, clock.Now()));
    ext = std::make_unique<ExternalCache>(*engine);
    std::vector<std::unique_ptr<SyncChannel>> chans;
    for (size_t i = 0; i < links; ++i) {
      UdpUnicastOptions uo;
      uo.bind_address = "127.0.0.1";
      uo.port = 0;
      auto ch = UdpUnicastChannel::Create(io, uo);
      EXPECT_TRUE(ch.ok()) << ch.status();
      udp_.push_back(ch->get());
      chans.push_back(std::move(*ch));
    }
    this->links = std::make_unique<LinkSet>(std::move(chans), 300 * kNanosPerMilli);
    ReplicatorOptions ro;
    ro.node_id = id;
    ro.incarnation = incarnation;
    ro.keys.key = "integration-key";
    ro.peer_dead_after = 300 * kNanosPerMilli;
    ro.alive_interval = 50 * kNanosPerMilli;
    Replicator::Callbacks cb;
    cb.send = [this](absl::Span<const uint8_t> d) { this->links->Send(d); };
    cb.apply = [this](const PeerFlowUpdate& u) { ext->Apply(u, clock.Now()); };
    cb.dump = [this](uint64_t* cursor, size_t max, std::vector<FlowEvent>* out) {
      const FlowTable& t = engine->table();
      uint64_t i = *cursor;
      for (; i < t.capacity() && max > 0; ++i) {
        if (!t.IsConfirmed(static_cast<FlowIndex>(i)) || ext->IsExternal(static_cast<FlowIndex>(i)))
          continue;
        FlowEvent e;
        e.type = FlowEventType::kNew;
        e.flow = t.flow(static_cast<FlowIndex>(i));
        out->push_back(e);
        --max;
      }
      *cursor = i;
      return i < t.capacity();
    };
    rep = std::move(*Replicator::Create(ro, std::move(cb), clock));
    this->links->SetLinkReceiver([this](size_t link, absl::Span<const uint8_t> d) {
      if (rep->OnDatagram(d)) this->links->NoteHeard(link, clock.Now());
    });
  }

  udp::endpoint endpoint(size_t link = 0) const {
    return udp::endpoint(kLoopback.address(), udp_[link]->local_port());
  }
  void SetPeers(size_t link, std::vector<udp::endpoint> peers) { udp_[link]->SetPeers(peers); }

  // Local flows: inserted in the engine; their events (not the learnt ones') replicated.
  void AddLocal(uint32_t first, uint32_t count) {
    for (uint32_t i = first; i < first + count; ++i) {
      ASSERT_TRUE(engine->Insert(MakeTcpNatFlow(i, clock.Now()), nullptr, clock.Now()).ok());
    }
  }
  void Pump() {
    while (auto e = engine->events().Pop()) {
      if (!ext->IsExternal(e->index)) rep->Publish(*e);
    }
    rep->Flush();
    rep->Tick();
    links->Update(clock.Now());
  }
  size_t Learnt() const { return ext->CountExternal(); }

  uint32_t id;
  SystemClock clock;
  std::unique_ptr<ConntrackEngine> engine;
  std::unique_ptr<ExternalCache> ext;
  std::unique_ptr<LinkSet> links;
  std::unique_ptr<Replicator> rep;
  std::vector<UdpUnicastChannel*> udp_;
};

uint64_t NextIncarnation() {
  static uint64_t inc = 1;
  return ++inc;
}

// Runs the io_context and the nodes' timers until `done` or the deadline.
bool RunUntil(asio::io_context& io, const std::vector<Node*>& nodes, std::function<bool()> done,
              std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    io.run_for(std::chrono::milliseconds(2));
    for (Node* n : nodes) n->Pump();
    if (done()) return true;
  }
  return false;
}

void Mesh(const std::vector<Node*>& nodes) {
  for (Node* n : nodes) {
    std::vector<udp::endpoint> peers;
    for (Node* m : nodes)
      if (m != n) peers.push_back(m->endpoint());
    n->SetPeers(0, peers);
  }
}

TEST(SyncIntegrationTest, TwoNodesConverge) {
  asio::io_context io;
  Node a(io, 1, 1, NextIncarnation()), b(io, 2, 1, NextIncarnation());
  Mesh({&a, &b});
  a.AddLocal(0, 20000);
  b.AddLocal(100000, 5000);
  EXPECT_TRUE(RunUntil(io, {&a, &b}, [&] { return b.Learnt() == 20000 && a.Learnt() == 5000; }))
      << a.Learnt() << " " << b.Learnt();
  EXPECT_EQ(b.engine->table().confirmed_count(), 25000u);
  EXPECT_EQ(b.rep->drops().Total(), 0u);
}

TEST(SyncIntegrationTest, ThreeNodesConverge) {
  asio::io_context io;
  Node a(io, 1, 1, NextIncarnation()), b(io, 2, 1, NextIncarnation()),
      c(io, 3, 1, NextIncarnation());
  Mesh({&a, &b, &c});
  a.AddLocal(0, 10000);
  b.AddLocal(100000, 10000);
  c.AddLocal(200000, 10000);
  EXPECT_TRUE(RunUntil(io, {&a, &b, &c}, [&] {
    return a.Learnt() == 20000 && b.Learnt() == 20000 && c.Learnt() == 20000;
  })) << a.Learnt() << " " << b.Learnt() << " " << c.Learnt();
}

TEST(SyncIntegrationTest, LossDuplicationReorderingEveryFlowArrives) {
  asio::io_context io;
  Node a(io, 1, 1, NextIncarnation()), b(io, 2, 1, NextIncarnation());
  FaultyRelay ab(io, b.endpoint(), 0.05, 0.05, 0.05, 1), ba(io, a.endpoint(), 0.05, 0.05, 0.05, 2);
  a.SetPeers(0, {ab.endpoint()});
  b.SetPeers(0, {ba.endpoint()});
  RunUntil(io, {&a, &b}, [] { return false; }, std::chrono::milliseconds(100));
  for (uint32_t round = 0; round < 10; ++round) {
    a.AddLocal(round * 3000, 3000);
    RunUntil(io, {&a, &b}, [] { return false; }, std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(RunUntil(io, {&a, &b}, [&] { return b.Learnt() == 30000; }))
      << b.Learnt() << " learnt; a: retransmits " << a.rep->stats().retransmits
      << " queue_overflow " << a.rep->stats().queue_overflow << " send_errors "
      << a.links->stats().send_errors << "; b: nacks " << b.rep->stats().nacks_sent
      << " resyncs asked " << b.rep->stats().resync_requests_sent << " gaps_skipped "
      << b.rep->stats().gaps_skipped << " duplicates " << b.rep->stats().duplicates
      << "; relays dropped " << ab.dropped() + ba.dropped();
  EXPECT_EQ(b.Learnt(), 30000u);  // every flow, counted
  EXPECT_GT(ab.dropped() + ba.dropped(), 0u);
  EXPECT_GT(a.rep->stats().retransmits, 0u);
  EXPECT_GT(b.rep->drops()[DropReason::kReplay], 0u);  // duplicates were caught
}

TEST(SyncIntegrationTest, RestartedPeerResyncs) {
  asio::io_context io;
  Node a(io, 1, 1, NextIncarnation());
  auto b = std::make_unique<Node>(io, 2, 1, NextIncarnation());
  Mesh({&a, b.get()});
  a.AddLocal(0, 10000);
  ASSERT_TRUE(RunUntil(io, {&a, b.get()}, [&] { return b->Learnt() == 10000; }));
  b.reset();  // the backup dies with its table
  RunUntil(io, {&a}, [] { return false; }, std::chrono::milliseconds(400));
  a.AddLocal(50000, 1000);  // while it is away
  RunUntil(io, {&a}, [] { return false; }, std::chrono::milliseconds(50));
  b = std::make_unique<Node>(io, 2, 1, NextIncarnation());
  Mesh({&a, b.get()});
  EXPECT_TRUE(RunUntil(io, {&a, b.get()}, [&] { return b->Learnt() == 11000; })) << b->Learnt();
  EXPECT_GE(b->rep->stats().resync_requests_sent, 1u);
  EXPECT_GE(a.rep->stats().resyncs_served, 1u);
}

TEST(SyncIntegrationTest, ForgedReplayedTruncatedChangeNothing) {
  asio::io_context io;
  Node a(io, 1, 1, NextIncarnation()), b(io, 2, 1, NextIncarnation());
  // a sends to b through a tap that remembers every datagram.
  std::vector<std::string> seen;
  udp::socket tap(io, kLoopback);
  std::array<char, 65536> buf;
  udp::endpoint from;
  std::function<void()> arm = [&] {
    tap.async_receive_from(asio::buffer(buf), from, [&](const boost::system::error_code& ec, size_t n) {
      if (ec) return;
      seen.emplace_back(buf.data(), n);
      tap.send_to(asio::buffer(buf.data(), n), b.endpoint());
      arm();
    });
  };
  arm();
  a.SetPeers(0, {udp::endpoint(kLoopback.address(), tap.local_endpoint().port())});
  b.SetPeers(0, {a.endpoint()});
  a.AddLocal(0, 2000);
  ASSERT_TRUE(RunUntil(io, {&a, &b}, [&] { return b.Learnt() == 2000; }));
  const size_t table_before = b.engine->table().confirmed_count();
  const uint64_t applied_before = b.ext->stats().inserted + b.ext->stats().updated;

  udp::socket attacker(io, kLoopback);
  size_t sent = 0;
  const std::vector<std::string> captured = seen;  // the tap keeps recording meanwhile
  for (const std::string& d : captured) {
    // Paced, so the receiver's socket buffer never overflows: every copy must be judged.
    if (++sent % 16 == 0) io.run_for(std::chrono::milliseconds(1));
    attacker.send_to(asio::buffer(d), b.endpoint());                          // replay
    attacker.send_to(asio::buffer(d.data(), d.size() / 2), b.endpoint());     // truncated
    std::string forged = d;
    forged[kHeaderSize + 3] ^= 0x5a;                                           // garbled
    attacker.send_to(asio::buffer(forged), b.endpoint());
  }
  RunUntil(io, {&a, &b}, [] { return false; }, std::chrono::milliseconds(300));
  const DropCounters& drops = b.rep->drops();
  EXPECT_GE(drops[DropReason::kReplay] + drops[DropReason::kTooOld], captured.size());
  EXPECT_GE(drops[DropReason::kBadLength] + drops[DropReason::kTooShort], captured.size());
  EXPECT_GE(drops[DropReason::kBadHmac], captured.size());
  EXPECT_EQ(b.engine->table().confirmed_count(), table_before);
  EXPECT_EQ(b.ext->stats().inserted + b.ext->stats().updated, applied_before);
  EXPECT_EQ(b.ext->stats().destroyed, 0u);
}

TEST(SyncIntegrationTest, FallsBackToSecondLinkWhenPreferredDies) {
  asio::io_context io;
  Node a(io, 1, 2, NextIncarnation()), b(io, 2, 2, NextIncarnation());
  // Link 0 goes through relays we can cut; link 1 is direct.
  FaultyRelay ab(io, b.endpoint(0), 0, 0, 0, 3), ba(io, a.endpoint(0), 0, 0, 0, 4);
  a.SetPeers(0, {ab.endpoint()});
  b.SetPeers(0, {ba.endpoint()});
  a.SetPeers(1, {b.endpoint(1)});
  b.SetPeers(1, {a.endpoint(1)});
  a.AddLocal(0, 1000);
  ASSERT_TRUE(RunUntil(io, {&a, &b}, [&] { return b.Learnt() == 1000; }));
  // On a loaded machine (or under TSan) a slow loop can miss link 0's heartbeats for longer
  // than dead_after and fail over early; hearing it again brings the preferred link back.
  EXPECT_TRUE(RunUntil(io, {&a, &b}, [&] { return a.links->active() == 0; }));
  ab.set_loss(1.0);
  ba.set_loss(1.0);
  a.AddLocal(10000, 1000);
  EXPECT_TRUE(RunUntil(io, {&a, &b}, [&] { return b.Learnt() == 2000; })) << b.Learnt();
  EXPECT_EQ(a.links->active(), 1u);
  EXPECT_GE(a.links->failovers(), 1u);
}

// Multicast on the loopback interface (group 239.255.0.1, site-local): every node joins the
// same group and port; our own echo is dropped as own_node.
TEST(SyncIntegrationTest, MulticastConverges) {
  asio::io_context io;
  SystemClock clock;
  std::vector<std::unique_ptr<UdpMulticastChannel>> chans;
  std::vector<std::unique_ptr<Replicator>> reps;
  std::vector<size_t> learnt(2, 0);
  uint16_t port = 0;
  for (uint32_t id = 1; id <= 2; ++id) {
    UdpMulticastOptions mo;
    mo.group = "239.255.0.1";
    mo.port = port;
    mo.interface_address = "127.0.0.1";
    mo.loopback = true;
    auto ch = UdpMulticastChannel::Create(io, mo);
    if (!ch.ok()) GTEST_SKIP() << "no multicast on loopback here: " << ch.status();
    port = (*ch)->local_port();
    chans.push_back(std::move(*ch));
    ReplicatorOptions ro;
    ro.node_id = id;
    ro.incarnation = NextIncarnation();
    ro.keys.key = "mc-key";
    UdpMulticastChannel* c = chans.back().get();
    Replicator::Callbacks cb;
    cb.send = [c](absl::Span<const uint8_t> d) { c->Send(d); };
    cb.apply = [&learnt, id](const PeerFlowUpdate&) { ++learnt[id - 1]; };
    reps.push_back(std::move(*Replicator::Create(ro, std::move(cb), clock)));
    Replicator* r = reps.back().get();
    c->SetReceiver([r](absl::Span<const uint8_t> d) { r->OnDatagram(d); });
  }
  for (uint32_t i = 0; i < 3000; ++i)
    reps[0]->Publish(testing::MakeEvent(FlowEventType::kNew, MakeTcpNatFlow(i, 0), 0));
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (learnt[1] < 3000 && std::chrono::steady_clock::now() < end) {
    io.run_for(std::chrono::milliseconds(2));
    for (auto& r : reps) {
      r->Flush();
      r->Tick();
    }
  }
  if (learnt[1] == 0 && chans[1]->stats().received == 0)
    GTEST_SKIP() << "multicast datagrams are not looped back here";
  EXPECT_EQ(learnt[1], 3000u);
  EXPECT_EQ(learnt[0], 0u);
  EXPECT_GT(reps[0]->drops()[DropReason::kOwnNode], 0u);
}

// Over TCP: b connects to a; a restarts its channel (connection lost), b reconnects and the
// reliable layer repairs whatever the broken connection swallowed.
TEST(SyncIntegrationTest, TcpTransportConvergesAndReconnects) {
  asio::io_context io;
  SystemClock clock;
  struct TcpNode {
    std::unique_ptr<TcpChannel> chan;
    std::unique_ptr<Replicator> rep;
    absl::flat_hash_map<Tuple, int> learnt;
  };
  auto make = [&](TcpNode& n, uint32_t id, std::vector<std::string> peers, uint16_t port) {
    TcpChannelOptions to;
    to.listen_address = "127.0.0.1";
    to.port = port;
    to.peers = std::move(peers);
    to.reconnect_interval_ms = 50;
    auto ch = TcpChannel::Create(io, to);
    ASSERT_TRUE(ch.ok()) << ch.status();
    n.chan = std::move(*ch);
    ReplicatorOptions ro;
    ro.node_id = id;
    ro.incarnation = NextIncarnation();
    ro.keys.key = "tcp-key";
    Replicator::Callbacks cb;
    cb.send = [&n](absl::Span<const uint8_t> d) { n.chan->Send(d); };
    cb.apply = [&n](const PeerFlowUpdate& u) { n.learnt[u.original] = 1; };
    n.rep = std::move(*Replicator::Create(ro, std::move(cb), clock));
    n.chan->SetReceiver([&n](absl::Span<const uint8_t> d) { n.rep->OnDatagram(d); });
  };
  TcpNode a, b;
  make(a, 1, {}, 0);
  const uint16_t a_port = a.chan->local_port();
  make(b, 2, {absl::StrCat("127.0.0.1:", a_port)}, 0);
  auto run = [&](std::function<bool()> done) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < end) {
      io.run_for(std::chrono::milliseconds(2));
      a.rep->Flush();
      a.rep->Tick();
      b.rep->Tick();
      if (done()) return true;
    }
    return false;
  };
  ASSERT_TRUE(run([&] { return a.chan->connections() == 1; }));
  for (uint32_t i = 0; i < 5000; ++i)
    a.rep->Publish(testing::MakeEvent(FlowEventType::kNew, MakeTcpNatFlow(i, 0), 0));
  EXPECT_TRUE(run([&] { return b.learnt.size() == 5000; })) << b.learnt.size();
  // a's channel goes away and comes back on the same port; b reconnects.
  auto rep_a = std::move(a.rep);
  a.chan.reset();
  TcpChannelOptions to;
  to.listen_address = "127.0.0.1";
  to.port = a_port;
  a.chan = std::move(*TcpChannel::Create(io, to));
  a.rep = std::move(rep_a);
  a.chan->SetReceiver([&a](absl::Span<const uint8_t> d) { a.rep->OnDatagram(d); });
  for (uint32_t i = 5000; i < 6000; ++i)
    a.rep->Publish(testing::MakeEvent(FlowEventType::kNew, MakeTcpNatFlow(i, 0), 0));
  EXPECT_TRUE(run([&] { return b.learnt.size() == 6000; })) << b.learnt.size();
  EXPECT_GE(a.chan->connections(), 1u);
}

}  // namespace
}  // namespace ctsync::sync

// A peer sending at line rate cannot make the receiver run out of memory: for a few seconds
// two threads blast the backup's sync port on loopback as fast as they can, one with
// unauthenticated datagrams (wrong key, garbage), one with authentic DATA from a third node
// that skips datagrams (so the receiver holds out-of-order batches and nacks that are never
// answered). Meanwhile the legitimate active keeps creating flows. The receiver's resident
// memory must stop growing, every bad datagram must be a counted drop, and every legitimate
// flow must arrive.
#include <atomic>
#include <thread>

#include "sync/wire.h"
#include "tests/faults/fault_env.h"

namespace ctsync::faults {
namespace {

using namespace std::chrono_literals;
using sync::DropReason;

size_t CountPresent(const Node& n, uint32_t first, uint32_t count) {
  size_t found = 0;
  for (uint32_t i = first; i < first + count; ++i) {
    const Flow f = sync::testing::MakeTcpNatFlow(i, 0);
    found += n.engine->table().Find(f.tuple[0], f.zone).found();
  }
  return found;
}

// Unauthenticated: alternately a well-formed datagram signed with the wrong key and bytes
// that are not a datagram at all.
void FloodUnauthenticated(udp::endpoint to, std::atomic<bool>& stop, uint64_t& sent) {
  asio::io_context io;
  udp::socket s(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  s.non_blocking(true);
  std::string forged, junk(900, '\x5a');
  sync::WireHeader h;
  h.node_id = 4;
  h.incarnation = 1;
  const std::string payload(1000, '\x11');
  const std::string bad_key = "not-the-key";
  while (!stop.load(std::memory_order_relaxed)) {
    ++h.seq;
    forged.clear();
    sync::EncodeDatagram(h, {reinterpret_cast<const uint8_t*>(payload.data()), payload.size()},
                         {reinterpret_cast<const uint8_t*>(bad_key.data()), bad_key.size()},
                         &forged);
    boost::system::error_code ec;
    s.send_to(asio::buffer(h.seq % 2 ? forged : junk), to, 0, ec);
    if (!ec) ++sent;
  }
}

// Authentic: node 3, best effort (it keeps nothing to retransmit), publishing the same 20000
// flows over and over and skipping one datagram in 50.
void FloodAuthentic(udp::endpoint to, const std::string& key, std::atomic<bool>& stop,
                    uint64_t& sent) {
  asio::io_context io;
  udp::socket s(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  s.non_blocking(true);
  SystemClock clock;
  sync::ReplicatorOptions ro;
  ro.node_id = 3;
  ro.incarnation = NextIncarnation();
  ro.keys.key = key;
  ro.mode = sync::ReplicationMode::kBestEffort;
  uint64_t n = 0;
  sync::Replicator::Callbacks cb;
  cb.send = [&](absl::Span<const uint8_t> d) {
    if (++n % 50 == 0) return;
    boost::system::error_code ec;
    s.send_to(asio::buffer(d.data(), d.size()), to, 0, ec);
    if (!ec) ++sent;
  };
  cb.apply = [](const sync::PeerFlowUpdate&) {};
  auto rep = std::move(*sync::Replicator::Create(ro, std::move(cb), clock));
  for (uint32_t i = 0; !stop.load(std::memory_order_relaxed); i = (i + 1) % 20000) {
    rep->Publish(sync::testing::MakeEvent(FlowEventType::kNew,
                                          sync::testing::MakeTcpNatFlow(1'000'000 + i,
                                                                        clock.Now()),
                                          clock.Now()));
    if (i % 64 == 0) rep->Tick();
  }
}

TEST(FloodTest, LineRatePeerCannotExhaustMemory) {
  asio::io_context io;
  NodeOptions ao, bo;
  ao.id = 1;
  bo.id = 2;
  Node a(io, ao), b(io, bo);
  a.SetPeer(b.endpoint());
  b.SetPeer(a.endpoint());
  a.AddLocal(0, 5000);
  ASSERT_TRUE(RunUntil(io, {&a, &b}, [&] { return b.Learnt() == 5000; })) << b.Learnt();
  RunFor(io, {&a, &b}, 200ms);
  const size_t rss_before = RssBytes();

  std::atomic<bool> stop{false};
  uint64_t sent_bad = 0, sent_auth = 0;
  std::thread bad(FloodUnauthenticated, b.endpoint(), std::ref(stop), std::ref(sent_bad));
  std::thread auth(FloodAuthentic, b.endpoint(), "fault-key", std::ref(stop),
                   std::ref(sent_auth));
  size_t rss_half = 0, rss_max = 0;
  constexpr int kSlices = 40;  // 4 s in 100 ms slices
  for (int slice = 0; slice < kSlices; ++slice) {
    if (slice % 4 == 0) a.AddLocal(10000 + slice * 250, 1000);  // the active goes on
    RunFor(io, {&a, &b}, 100ms);
    const size_t rss = RssBytes();
    rss_max = std::max(rss_max, rss);
    if (slice == kSlices / 2) rss_half = rss;
  }
  const size_t rss_end = RssBytes();
  stop.store(true);
  bad.join();
  auth.join();

  const sync::DropCounters& drops = b.rep->drops();
  const sync::ReplicatorStats& st = b.rep->stats();
  std::printf("flood: sent %lu unauthenticated, %lu authentic datagrams; b received %lu;\n"
              "  drops bad_hmac %lu bad_magic %lu too_short %lu; reorder_overflow %lu;\n"
              "  rss before %.1f MB, half-time %.1f MB, end %.1f MB, max %.1f MB\n",
              sent_bad, sent_auth, b.chan->stats().received, drops[DropReason::kBadHmac],
              drops[DropReason::kBadMagic], drops[DropReason::kTooShort], st.reorder_overflow,
              rss_before / 1e6, rss_half / 1e6, rss_end / 1e6, rss_max / 1e6);
  EXPECT_GT(sent_bad, 10000u);
  EXPECT_GT(sent_auth, 10000u);
  // Every unauthenticated datagram that was read is a counted drop (half forged, half junk).
  EXPECT_GT(drops[DropReason::kBadHmac], 1000u);
  EXPECT_GT(drops[DropReason::kBadMagic] + drops[DropReason::kTooShort], 1000u);
  // The flooding peer's out-of-order batches are held up to reorder_max, no more.
  for (const sync::PeerInfo& p : b.rep->Peers()) EXPECT_LE(p.pending, 8192u) << p.node_id;
  // Memory: the second half of the flood adds little (the bounded structures are full), and
  // the whole flood stays far below what the traffic would need if it were kept.
  // The sanitizers inflate RSS, so the bound is scaled, not dropped: ThreadSanitizer's
  // shadow memory multiplies every allocation (its history buffers grow with the thread
  // count), and AddressSanitizer keeps up to 256 MB of freed datagram buffers in quarantine
  // on top of its redzones.
#if defined(__SANITIZE_THREAD__)
  constexpr size_t kSanitizerScale = 8;
#elif defined(__SANITIZE_ADDRESS__)
  constexpr size_t kSanitizerScale = 3;
#else
  constexpr size_t kSanitizerScale = 1;
#endif
  EXPECT_LT(rss_end, rss_half + kSanitizerScale * (32u << 20))
      << "rss still growing at the end of the flood";
  EXPECT_LT(rss_max, rss_before + kSanitizerScale * (256u << 20));

  // The legitimate peer's flows all arrive once the flood stops.
  EXPECT_TRUE(RunUntil(io, {&a, &b}, [&] { return CountPresent(b, 10000, 10000) == 10000; }))
      << CountPresent(b, 10000, 10000);
  EXPECT_EQ(CountPresent(b, 0, 5000), 5000u);
}

}  // namespace
}  // namespace ctsync::faults

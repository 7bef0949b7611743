#include "tools/ctreplay/sync_pair.h"

#include <boost/asio.hpp>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "sync/external_apply.h"
#include "sync/fragment_update_codec.h"
#include "sync/replicator.h"
#include "sync/udp_channel.h"

namespace ctsync::ctreplay {

namespace asio = boost::asio;

class SyncPair::Impl {
 public:
  Impl(Pipeline& a, Pipeline& b, const Clock& clock)
      : a_(a.conntrack()),
        b_(b.conntrack()),
        defrag_a_(a.defragmenter()),
        defrag_b_(b.defragmenter()),
        clock_(clock),
        external_(b_) {}

  absl::Status Init() {
    sync::UdpUnicastOptions o;
    o.bind_address = "127.0.0.1";
    o.port = 0;
    auto ca = sync::UdpUnicastChannel::Create(io_, o);
    if (!ca.ok()) return ca.status();
    auto cb = sync::UdpUnicastChannel::Create(io_, o);
    if (!cb.ok()) return cb.status();
    chan_a_ = std::move(*ca);
    chan_b_ = std::move(*cb);
    const auto lo = asio::ip::make_address("127.0.0.1");
    chan_a_->SetPeers({asio::ip::udp::endpoint(lo, chan_b_->local_port())});
    chan_b_->SetPeers({asio::ip::udp::endpoint(lo, chan_a_->local_port())});

    sync::ReplicatorOptions ro;
    ro.keys.key = "ctreplay failover key";
    ro.node_id = 1;
    ro.incarnation = 1;
    sync::Replicator::Callbacks cba;
    cba.send = [this](absl::Span<const uint8_t> d) { chan_a_->Send(d); };
    cba.apply = [](const sync::PeerFlowUpdate&) {};
    auto ra = sync::Replicator::Create(ro, std::move(cba), clock_);
    if (!ra.ok()) return ra.status();
    ro.node_id = 2;
    sync::Replicator::Callbacks cbb;
    cbb.send = [this](absl::Span<const uint8_t> d) { chan_b_->Send(d); };
    cbb.apply = [this](const sync::PeerFlowUpdate& u) { external_.Apply(u, clock_.Now()); };
    cbb.apply_fragment = [this](const sync::PeerFragmentUpdate& u) {
      sync::ApplyFragmentUpdate(u, defrag_b_, clock_.Now());
    };
    auto rb = sync::Replicator::Create(ro, std::move(cbb), clock_);
    if (!rb.ok()) return rb.status();
    rep_a_ = std::move(*ra);
    rep_b_ = std::move(*rb);
    chan_a_->SetReceiver([this](absl::Span<const uint8_t> d) { rep_a_->OnDatagram(d); });
    chan_b_->SetReceiver([this](absl::Span<const uint8_t> d) { rep_b_->OnDatagram(d); });
    return absl::OkStatus();
  }

  absl::Status Replicate() {
    // In chunks, waiting for each: the whole of a large table sent at once would overflow
    // the loopback socket buffers, and this single-threaded pump does not run the
    // retransmission timers.
    for (;;) {
      size_t n = 0;
      while (n < 512) {
        auto e = a_.events().Pop();
        if (!e) break;
        rep_a_->Publish(*e);
        ++n;
      }
      DefragEvent fe;
      while (n < 512 && defrag_a_.PopEvent(&fe)) {
        rep_a_->PublishFragment(fe);
        ++n;
      }
      rep_a_->Flush();
      const uint64_t want = rep_a_->last_stream_seq();
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (Delivered() < want) {
        io_.poll();
        io_.restart();
        if (std::chrono::steady_clock::now() > deadline)
          return absl::DeadlineExceededError(absl::StrCat(
              "sync did not converge: B holds ", Delivered(), " of ", want, " datagrams"));
      }
      if (n < 512) break;
    }
    // B's own table events are its external copies: a backup never sends them back.
    while (b_.events().Pop()) {
    }
    return absl::OkStatus();
  }

  uint64_t Delivered() const {
    for (const sync::PeerInfo& p : rep_b_->Peers())
      if (p.node_id == 1) return p.delivered;
    return 0;
  }

  void Promote() { external_.Commit(); }

 private:
  ConntrackEngine& a_;
  ConntrackEngine& b_;
  Defragmenter& defrag_a_;
  Defragmenter& defrag_b_;
  const Clock& clock_;
  sync::ExternalCache external_;
  asio::io_context io_;
  std::unique_ptr<sync::UdpUnicastChannel> chan_a_, chan_b_;
  std::unique_ptr<sync::Replicator> rep_a_, rep_b_;
};

absl::StatusOr<std::unique_ptr<SyncPair>> SyncPair::Create(Pipeline& a, Pipeline& b,
                                                           const Clock& clock) {
  auto impl = std::make_unique<Impl>(a, b, clock);
  if (absl::Status s = impl->Init(); !s.ok()) return s;
  return std::unique_ptr<SyncPair>(new SyncPair(std::move(impl)));
}

SyncPair::SyncPair(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SyncPair::~SyncPair() = default;
absl::Status SyncPair::Replicate() { return impl_->Replicate(); }
void SyncPair::Promote() { impl_->Promote(); }

}  // namespace ctsync::ctreplay

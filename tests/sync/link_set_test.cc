#include "sync/link_set.h"

#include "gtest/gtest.h"
#include "sync/wire.h"

namespace ctsync::sync {
namespace {

class FakeChannel final : public SyncChannel {
 public:
  void Send(absl::Span<const uint8_t> d) override { sent.emplace_back(d.begin(), d.end()); }
  void SetReceiver(ReceiveFn fn) override { receiver = std::move(fn); }
  const ChannelStats& stats() const override { return stats_; }
  std::string name() const override { return "fake"; }
  std::vector<std::string> sent;
  ReceiveFn receiver;
  ChannelStats stats_;
};

std::string Datagram(MsgType type) {
  WireHeader h;
  h.type = type;
  h.node_id = 1;
  h.incarnation = 1;
  h.seq = 1;
  std::string out;
  EncodeDatagram(h, {}, {}, &out);
  return out;
}

absl::Span<const uint8_t> B(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(LinkSetTest, PrefersFirstLiveLinkAndFallsBack) {
  std::vector<std::unique_ptr<SyncChannel>> links;
  auto* l0 = new FakeChannel;
  auto* l1 = new FakeChannel;
  links.emplace_back(l0);
  links.emplace_back(l1);
  LinkSet set(std::move(links), /*dead_after=*/100);
  std::vector<size_t> got;
  set.SetLinkReceiver([&](size_t link, absl::Span<const uint8_t>) { got.push_back(link); });
  l1->receiver(B("x"));
  EXPECT_EQ(got, std::vector<size_t>{1});

  // Nothing heard yet: stay on the preferred link.
  EXPECT_EQ(set.Update(0), 0u);
  set.NoteHeard(1, 0);
  EXPECT_EQ(set.Update(50), 1u);  // only link 1 works
  set.NoteHeard(0, 60);
  EXPECT_EQ(set.Update(70), 0u);  // preferred is back
  EXPECT_EQ(set.Update(200), 0u);  // nobody heard within dead_after: stay
  EXPECT_EQ(set.failovers(), 2u);

  // DATA only on the active link; ALIVE on all of them.
  set.Send(B(Datagram(MsgType::kData)));
  set.Send(B(Datagram(MsgType::kAlive)));
  EXPECT_EQ(l0->sent.size(), 2u);
  EXPECT_EQ(l1->sent.size(), 1u);
}

}  // namespace
}  // namespace ctsync::sync

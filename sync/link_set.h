// LinkSet: several sync channels (dedicated links) in order of preference, used as one.
// Data goes over the active link: the most preferred one on which an authentic peer
// datagram arrived within `dead_after`. Heartbeats (ALIVE) go over every link, so the health
// of a standby link is known before it is needed; receiving is always on all links (the
// replay window drops the duplicate heartbeats).
//
// The replicator decides what is authentic; whoever wires the two calls NoteHeard(link, now)
// when Replicator::OnDatagram returns true for a datagram that came over `link`.
//
// Threads: the io thread, like the channels it holds.
#pragma once

#include <memory>
#include <vector>

#include "core/util/clock.h"
#include "sync/transport.h"

namespace ctsync::sync {

class LinkSet final : public SyncChannel {
 public:
  using LinkReceiveFn = std::function<void(size_t link, absl::Span<const uint8_t>)>;

  // `links` in order of preference (at least one).
  LinkSet(std::vector<std::unique_ptr<SyncChannel>> links, Nanos dead_after);

  void Send(absl::Span<const uint8_t> datagram) override;
  // Receives from every link; the link index is dropped (use SetLinkReceiver to keep it).
  void SetReceiver(ReceiveFn fn) override;
  void SetLinkReceiver(LinkReceiveFn fn);
  const ChannelStats& stats() const override;
  std::string name() const override { return "links"; }

  void NoteHeard(size_t link, Nanos now);
  // Re-evaluates the active link; returns it.
  size_t Update(Nanos now);
  size_t active() const { return active_; }
  uint64_t failovers() const { return failovers_; }
  SyncChannel& link(size_t i) { return *links_[i]; }
  size_t size() const { return links_.size(); }

 private:
  std::vector<std::unique_ptr<SyncChannel>> links_;
  std::vector<Nanos> last_heard_;
  Nanos dead_after_;
  size_t active_ = 0;
  uint64_t failovers_ = 0;
  mutable ChannelStats total_;
};

}  // namespace ctsync::sync

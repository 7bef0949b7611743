#include "sync/link_set.h"

#include "sync/wire.h"

namespace ctsync::sync {

LinkSet::LinkSet(std::vector<std::unique_ptr<SyncChannel>> links, Nanos dead_after)
    : links_(std::move(links)), last_heard_(links_.size(), INT64_MIN / 2),
      dead_after_(dead_after) {}

void LinkSet::Send(absl::Span<const uint8_t> d) {
  if (links_.empty()) return;
  // The message type sits at a fixed offset; a heartbeat goes everywhere.
  const bool alive = d.size() > 5 && d[5] == static_cast<uint8_t>(MsgType::kAlive);
  if (alive) {
    for (auto& l : links_) l->Send(d);
  } else {
    links_[active_]->Send(d);
  }
}

void LinkSet::SetReceiver(ReceiveFn fn) {
  SetLinkReceiver([fn = std::move(fn)](size_t, absl::Span<const uint8_t> d) { fn(d); });
}

void LinkSet::SetLinkReceiver(LinkReceiveFn fn) {
  for (size_t i = 0; i < links_.size(); ++i) {
    links_[i]->SetReceiver([fn, i](absl::Span<const uint8_t> d) { fn(i, d); });
  }
}

const ChannelStats& LinkSet::stats() const {
  total_ = ChannelStats{};
  for (const auto& l : links_) {
    const ChannelStats& s = l->stats();
    total_.sent += s.sent;
    total_.sent_bytes += s.sent_bytes;
    total_.send_errors += s.send_errors;
    total_.received += s.received;
    total_.received_bytes += s.received_bytes;
    total_.receive_errors += s.receive_errors;
  }
  return total_;
}

void LinkSet::NoteHeard(size_t link, Nanos now) {
  if (link < last_heard_.size()) last_heard_[link] = now;
}

size_t LinkSet::Update(Nanos now) {
  // With no link heard at all (peers down, or start-up) stay where we are: there is nothing
  // better to switch to.
  for (size_t i = 0; i < links_.size(); ++i) {
    if (now - last_heard_[i] <= dead_after_) {
      if (i != active_) ++failovers_;
      active_ = i;
      break;
    }
  }
  return active_;
}

}  // namespace ctsync::sync

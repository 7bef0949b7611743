#include "sync/replicator.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace ctsync::sync {
namespace {

// Batch field tags (ctsync/sync.proto), for appending fields without building a message.
constexpr uint8_t kTagStreamSeq = (1 << 3) | 0;
constexpr uint8_t kTagWallTime = (2 << 3) | 0;
constexpr uint8_t kTagResync = (4 << 3) | 0;
constexpr uint8_t kTagRecords = (5 << 3) | 2;
constexpr uint8_t kTagRecordFormat = (6 << 3) | 0;
constexpr uint8_t kTagFragments = (7 << 3) | 2;
// Room kept in a batch for the records' tag and length, record_format, stream_seq,
// wall_time_ms and resync.
constexpr size_t kBatchTrailer = 1 + 5 + 1 + 5 + 1 + 10 + 1 + 10 + 2;
// Ranges per nack and datagrams resent per nack, so a nack cannot make us flood.
constexpr int kMaxNackRanges = 64;
constexpr uint64_t kMaxResendPerNack = 4096;
// A first DATA at or below this stream_seq is repaired by nacks rather than a resync.
constexpr uint64_t kRepairableHead = 64;
// Updates handed to apply_batch at a time: enough to overlap a group of cache misses, few
// enough to stay in L1/L2.
constexpr size_t kApplyBatch = 32;

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

absl::StatusOr<std::unique_ptr<Replicator>> Replicator::Create(const ReplicatorOptions& options,
                                                               Callbacks callbacks,
                                                               const Clock& clock) {
  if (options.node_id == 0) return absl::InvalidArgumentError("sync node id must be non-zero");
  if (options.keys.key.empty()) return absl::InvalidArgumentError("sync key is empty");
  if (options.mtu < kWireOverhead + kBatchTrailer + 256 || options.mtu > kMaxPayload) {
    return absl::InvalidArgumentError(absl::StrCat("sync mtu ", options.mtu, " out of range"));
  }
  if (!callbacks.send || !callbacks.apply) {
    return absl::InvalidArgumentError("replicator needs send and apply callbacks");
  }
  uint64_t incarnation = options.incarnation;
  if (incarnation == 0) incarnation = static_cast<uint64_t>(std::max<Nanos>(1, clock.WallNanos()));
  return std::unique_ptr<Replicator>(
      new Replicator(options, std::move(callbacks), clock, incarnation));
}

Replicator::Replicator(const ReplicatorOptions& options, Callbacks callbacks, const Clock& clock,
                       uint64_t incarnation)
    : options_(options),
      callbacks_(std::move(callbacks)),
      clock_(clock),
      incarnation_(incarnation),
      verifier_(options.node_id, options.keys) {
  dump_batch_.resync = true;
  last_alive_ = clock_.Now() - options_.alive_interval;  // first Tick announces us
  last_refresh_ = clock_.Now();
}

size_t Replicator::BodyLimit() const { return options_.mtu - kWireOverhead - kBatchTrailer; }

// ---------------------------------------------------------------------------- sending

void Replicator::Publish(const FlowEvent& e) {
  const bool pass = e.type == FlowEventType::kDestroy ? options_.send_filter.MatchesKey(e.flow.tuple[0])
                                                      : options_.send_filter.Matches(e.flow);
  if (!pass) {
    ++stats_.events_filtered_out;
    return;
  }
  Append(live_, e, clock_.Now());
  ++stats_.events_sent;
}

void Replicator::Append(BatchBuilder& b, const FlowEvent& e, Nanos now) {
  if (b.events == 0) {
    b.wall = clock_.WallNanos();
    b.wall_ms = b.wall / kNanosPerMilli;
    b.started = now;
    b.ctx = RecordContext{};
  }
  // Every event of a batch is stamped with the batch's wall clock, so the per-flow wall time
  // is implied; the remaining lifetime is still taken at `now`.
  const size_t mark = b.body.size();
  const RecordContext before = b.ctx;
  AppendFlowRecord(e, now, b.wall, &b.ctx, &b.body);
  if (b.events > 0 && b.body.size() > BodyLimit()) {
    b.body.resize(mark);
    b.ctx = before;
    FlushBuilder(b);
    b.wall = clock_.WallNanos();
    b.wall_ms = b.wall / kNanosPerMilli;
    b.started = now;
    b.ctx = RecordContext{};
    // Re-encode against the new batch's wall clock and an empty delta context.
    AppendFlowRecord(e, now, b.wall, &b.ctx, &b.body);
  }
  ++b.events;
}

void Replicator::PublishFragment(const DefragEvent& e) {
  const Nanos now = clock_.Now();
  EncodeFragmentUpdate(e, now, &scratch_fragment_);
  std::string entry;
  entry.push_back(static_cast<char>(kTagFragments));
  PutVarint(&entry, scratch_fragment_.ByteSizeLong());
  if (!scratch_fragment_.AppendToString(&entry)) return;  // cannot fail for a set message
  if (frags_.count > 0 && frags_.body.size() + entry.size() > BodyLimit()) FlushFragments();
  if (frags_.count == 0) {
    frags_.wall_ms = clock_.WallNanos() / kNanosPerMilli;
    frags_.started = now;
  }
  frags_.body += entry;
  ++frags_.count;
  ++stats_.fragments_sent;
}

void Replicator::Flush() {
  FlushBuilder(live_);
  FlushFragments();
}

void Replicator::FlushFragments() {
  if (frags_.count == 0) return;
  const uint64_t seq = next_stream_seq_++;
  std::string payload = std::move(frags_.body);
  payload.push_back(static_cast<char>(kTagStreamSeq));
  PutVarint(&payload, seq);
  payload.push_back(static_cast<char>(kTagWallTime));
  PutVarint(&payload, static_cast<uint64_t>(frags_.wall_ms));
  frags_.body.clear();
  frags_.count = 0;
  SendData(seq, std::move(payload));
}

void Replicator::FlushBuilder(BatchBuilder& b) {
  if (b.events == 0) return;
  const uint64_t seq = next_stream_seq_++;
  std::string payload;
  payload.reserve(b.body.size() + kBatchTrailer);
  payload.push_back(static_cast<char>(kTagRecords));
  PutVarint(&payload, b.body.size());
  payload += b.body;
  payload.push_back(static_cast<char>(kTagRecordFormat));
  PutVarint(&payload, kRecordFormat);
  payload.push_back(static_cast<char>(kTagStreamSeq));
  PutVarint(&payload, seq);
  payload.push_back(static_cast<char>(kTagWallTime));
  PutVarint(&payload, static_cast<uint64_t>(b.wall_ms));
  if (b.resync) {
    payload.push_back(static_cast<char>(kTagResync));
    payload.push_back(1);
  }
  b.body.clear();
  b.events = 0;
  SendData(seq, std::move(payload));
}

void Replicator::SendData(uint64_t seq, std::string payload) {
  // When the queue fills up (a dump, or a burst), ask for an ack at once instead of waiting
  // for the receivers' ack timer, so flow control does not stall the sender.
  const bool ack_now =
      Reliable() && (queue_.size() + 1 >= options_.dump_window / 2 ||
                     queue_.size() + 1 >= options_.queue_max_datagrams / 2 ||
                     (queue_bytes_ + payload.size()) * 2 >= options_.send_window_bytes);
  SendDatagram(MsgType::kData, ack_now ? kFlagAckRequest : 0, Bytes(payload));
  ++stats_.data_sent;
  if (Reliable()) {
    queue_bytes_ += payload.size();
    queue_.push_back(Retained{seq, std::move(payload), clock_.Now()});
    while (queue_.size() > options_.queue_max_datagrams ||
           (queue_bytes_ > options_.queue_max_bytes && queue_.size() > 1)) {
      queue_bytes_ -= queue_.front().payload.size();
      queue_.pop_front();
      ++stats_.queue_overflow;
    }
  }
}

void Replicator::SendDatagram(MsgType type, uint16_t flags, absl::Span<const uint8_t> payload) {
  WireHeader h;
  h.type = type;
  h.flags = flags;
  h.node_id = options_.node_id;
  h.incarnation = incarnation_;
  h.seq = next_dgram_seq_++;
  out_.clear();
  EncodeDatagram(h, payload, Bytes(verifier_.keys().key), &out_);
  ++stats_.datagrams_sent;
  stats_.bytes_sent += out_.size();
  callbacks_.send(Bytes(out_));
}

void Replicator::SendMessage(MsgType type, const google::protobuf::MessageLite& m) {
  std::string payload;
  m.AppendToString(&payload);
  SendDatagram(type, 0, Bytes(payload));
}

void Replicator::SendAlive() {
  proto::Alive a;
  a.set_last_stream_seq(next_stream_seq_ - 1);
  a.set_oldest_retained(queue_.empty() ? next_stream_seq_ : queue_.front().stream_seq);
  a.set_queue_len(static_cast<uint32_t>(queue_.size()));
  a.set_mode(static_cast<uint32_t>(options_.mode));
  SendMessage(MsgType::kAlive, a);
  ++stats_.alives_sent;
  last_alive_ = clock_.Now();
}

bool Replicator::Retransmit(uint64_t stream_seq, Nanos now) {
  Retained& r = queue_[stream_seq - queue_.front().stream_seq];
  // A slow receiver nacks what is still in its socket buffer; resending that at every nack
  // would only fill the buffer further (a retransmission storm). Once per nack interval.
  if (now - r.last_sent < options_.nack_delay) return false;
  r.last_sent = now;
  SendDatagram(MsgType::kData, kFlagRetransmit, Bytes(r.payload));
  ++stats_.retransmits;
  return true;
}

void Replicator::TrimQueue() {
  // Keep what some live peer has not acknowledged. With no live peer we keep everything
  // (bounded): a peer that appears soon can still be repaired without a full resync.
  uint64_t min_acked = UINT64_MAX;
  for (const auto& [id, p] : peers_) {
    if (p.alive) min_acked = std::min(min_acked, p.acked_ours);
  }
  if (min_acked == UINT64_MAX) return;
  while (!queue_.empty() && queue_.front().stream_seq <= min_acked) {
    queue_bytes_ -= queue_.front().payload.size();
    queue_.pop_front();
  }
}

// -------------------------------------------------------------------------- receiving

bool Replicator::OnDatagram(absl::Span<const uint8_t> datagram) {
  const Nanos now = clock_.Now();
  ++stats_.datagrams_received;
  VerifiedDatagram v;
  if (verifier_.Verify(datagram, now, &v)) return false;
  const std::string_view payload(reinterpret_cast<const char*>(v.payload.data()),
                                 v.payload.size());
  auto parse = [&](google::protobuf::MessageLite& m) {
    if (m.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) return true;
    verifier_.CountDrop(DropReason::kBadPayload);
    return false;
  };
  // Parse before touching peer state, so an authentic but garbled datagram changes nothing.
  switch (v.header.type) {
    case MsgType::kData: {
      rx_arena_.Reset();
      proto::Batch* b = google::protobuf::Arena::CreateMessage<proto::Batch>(&rx_arena_);
      if (!parse(*b)) return false;
      if (b->stream_seq() == 0) {
        verifier_.CountDrop(DropReason::kBadPayload);
        return false;
      }
      Peer& p = PeerFor(v, now);
      ++stats_.data_received;
      OnData(p, *b, now);
      if ((v.header.flags & kFlagAckRequest) && Reliable() && p.delivered > 0) SendAck(p, now);
      return true;
    }
    case MsgType::kAck: {
      proto::Ack a;
      if (!parse(a)) return false;
      Peer& p = PeerFor(v, now);
      OnAck(p, a);
      return true;
    }
    case MsgType::kNack: {
      proto::Nack n;
      if (!parse(n)) return false;
      Peer& p = PeerFor(v, now);
      OnNack(p, n);
      return true;
    }
    case MsgType::kAlive: {
      proto::Alive a;
      if (!parse(a)) return false;
      Peer& p = PeerFor(v, now);
      OnAlive(p, a, now);
      return true;
    }
    case MsgType::kResyncRequest: {
      proto::ResyncRequest r;
      if (!parse(r)) return false;
      PeerFor(v, now);
      if (r.for_node() == options_.node_id && r.for_incarnation() == incarnation_) {
        ++stats_.resync_requests_received;
        StartDump();
      }
      return true;
    }
    case MsgType::kResyncDone: {
      proto::ResyncDone d;
      if (!parse(d)) return false;
      Peer& p = PeerFor(v, now);
      p.resync_wanted = false;
      resync_on_join_ = false;
      Notify(PeerEvent::Kind::kResyncDone, p);
      return true;
    }
  }
  return false;
}

Replicator::Peer& Replicator::PeerFor(const VerifiedDatagram& v, Nanos now) {
  auto [it, inserted] = peers_.try_emplace(v.header.node_id);
  Peer& p = it->second;
  if (inserted || v.header.incarnation != p.incarnation) {
    const bool restarted = !inserted;
    p = Peer{};
    p.node_id = v.header.node_id;
    p.incarnation = v.header.incarnation;
    p.alive = true;
    p.last_heard = now;
    if (restarted) {
      ++stats_.peers_restarted;
      Notify(PeerEvent::Kind::kRestarted, p);
    } else {
      ++stats_.peers_joined;
      Notify(PeerEvent::Kind::kJoined, p);
      if (resync_on_join_) WantResync(p, now);
    }
    return p;
  }
  p.last_heard = now;
  if (!p.alive) {
    p.alive = true;
    Notify(PeerEvent::Kind::kRecovered, p);
  }
  return p;
}

void Replicator::OnData(Peer& p, const proto::Batch& batch, Nanos now) {
  const uint64_t s = batch.stream_seq();
  if (!p.stream_known) {
    p.stream_known = true;
    // Near the start of the stream a missing head is more likely reordering than a late
    // join: try to repair it with nacks (an unavailable answer leads to a resync anyway).
    // Later on, what came before must come by a dump.
    if (s <= kRepairableHead) {
      p.delivered = 0;
    } else {
      p.delivered = s - 1;
      AskResync(p, now);
    }
  }
  if (batch.resync()) p.resync_wanted = false;  // the dump we asked for is arriving
  p.highest_seen = std::max(p.highest_seen, s);
  p.highest_data = std::max(p.highest_data, s);
  p.last_data = now;
  if (!Reliable()) {
    Deliver(p, batch);
    p.delivered = std::max(p.delivered, s);
    return;
  }
  if (s <= p.delivered || p.pending.count(s)) {
    ++stats_.duplicates;
    return;
  }
  if (s == p.delivered + 1) {
    Deliver(p, batch);
    p.delivered = s;
    p.bytes_since_ack += batch.records().size();
    for (const proto::FragmentUpdate& f : batch.fragments()) p.bytes_since_ack += f.frame().size();
    DrainPending(p);
  } else if (p.pending.size() >= options_.reorder_max) {
    ++stats_.reorder_overflow;  // it will be nacked again
  } else {
    p.pending.emplace(s, batch);  // a heap copy: the arena is reset per datagram
  }
  if (p.delivered >= p.acked_sent + options_.ack_every ||
      (p.delivered > p.acked_sent && p.bytes_since_ack >= options_.ack_every_bytes)) {
    SendAck(p, now);
  }
}

void Replicator::DrainPending(Peer& p) {
  while (!p.pending.empty() && p.pending.begin()->first <= p.delivered + 1) {
    auto node = p.pending.extract(p.pending.begin());
    if (node.key() == p.delivered + 1) {
      Deliver(p, node.mapped());
      p.delivered = node.key();
    }
  }
  if (p.pending.empty() && p.highest_seen <= p.delivered) p.gap_since = -1;
}

void Replicator::Deliver(Peer& p, const proto::Batch& batch) {
  const Nanos now = clock_.Now();
  // In milliseconds and compared before subtracting: a peer's wall time is authentic but
  // may be absurd, and must not overflow anything.
  const int64_t now_ms = clock_.WallNanos() / kNanosPerMilli;
  const int64_t cap_ms = options_.max_batch_age / kNanosPerMilli;
  const int64_t sent_ms = batch.wall_time_ms();
  const Nanos age = sent_ms >= now_ms          ? 0
                    : sent_ms < now_ms - cap_ms ? options_.max_batch_age
                                                : (now_ms - sent_ms) * kNanosPerMilli;
  PeerFlowUpdate& u = scratch_peer_update_;
  u.peer = p.node_id;
  u.resync = batch.resync();
  const auto offer = [&] {
    const bool pass = u.type == FlowEventType::kDestroy
                          ? options_.accept_filter.MatchesKey(u.original)
                          : options_.accept_filter.Matches(u.decoded.flow);
    if (!pass) {
      ++stats_.events_filtered_in;
      return;
    }
    if (callbacks_.apply_batch) {
      pending_apply_.push_back(u);
      if (pending_apply_.size() >= kApplyBatch) {
        callbacks_.apply_batch(pending_apply_);
        pending_apply_.clear();
      }
    } else {
      callbacks_.apply(u);
    }
  };
  struct FlushPending {
    Replicator* r;
    ~FlushPending() {
      if (r->pending_apply_.empty()) return;
      r->callbacks_.apply_batch(r->pending_apply_);
      r->pending_apply_.clear();
    }
  } flush_pending{this};
  for (const proto::FragmentUpdate& f : batch.fragments()) {
    ++stats_.fragments_received;
    if (!DecodeFragmentUpdate(f, age, &scratch_peer_fragment_).ok()) {
      ++stats_.bad_fragments;
      continue;
    }
    if (!callbacks_.apply_fragment) {
      ++stats_.fragments_ignored;
      continue;
    }
    scratch_peer_fragment_.peer = p.node_id;
    callbacks_.apply_fragment(scratch_peer_fragment_);
  }
  // Format 1 peers send FlowUpdate messages, newer ones records; a batch may hold both.
  for (const proto::FlowUpdate& fu : batch.updates()) {
    ++stats_.events_received;
    if (!DecodeFlowUpdate(fu, batch.wall_time_ms(), now, age, &u).ok()) {
      ++stats_.bad_flows;
      continue;
    }
    offer();
  }
  if (batch.records().empty()) return;
  if (batch.record_format() != kRecordFormat) {
    ++stats_.bad_flows;  // a format we cannot read: the whole batch is refused, visibly
    return;
  }
  RecordContext ctx;
  const std::string_view records = batch.records();
  size_t pos = 0;
  while (pos < records.size()) {
    ++stats_.events_received;
    if (!ReadFlowRecord(records, &pos, batch.wall_time_ms(), now, age, &ctx, &scratch_flow_, &u)
             .ok()) {
      ++stats_.bad_flows;
      continue;
    }
    offer();
  }
}

void Replicator::OnAlive(Peer& p, const proto::Alive& a, Nanos now) {
  if (!p.stream_known) {
    p.stream_known = true;
    if (a.last_stream_seq() == 0 || (Reliable() && a.oldest_retained() <= 1)) {
      p.delivered = 0;  // the whole stream is still to come (or can be repaired)
    } else {
      p.delivered = a.last_stream_seq();
      AskResync(p, now);
    }
  }
  p.highest_seen = std::max(p.highest_seen, a.last_stream_seq());
  if (!Reliable()) return;
  // The next DATA we need is no longer kept by the sender: skip the hole and resync.
  if (p.highest_seen > p.delivered && a.oldest_retained() > p.delivered + 1) {
    SkipTo(p, a.oldest_retained());
    AskResync(p, now);
  }
}

void Replicator::SkipTo(Peer& p, uint64_t oldest_retained) {
  // Authentic DATA held out of order below the hole's end is still applied, in order.
  while (!p.pending.empty() && p.pending.begin()->first < oldest_retained) {
    auto node = p.pending.extract(p.pending.begin());
    stats_.gaps_skipped += node.key() - p.delivered - 1;
    Deliver(p, node.mapped());
    p.delivered = node.key();
  }
  if (oldest_retained - 1 > p.delivered) {
    stats_.gaps_skipped += oldest_retained - 1 - p.delivered;
    p.delivered = oldest_retained - 1;
  }
  DrainPending(p);
}

void Replicator::OnAck(Peer& p, const proto::Ack& a) {
  if (a.for_node() != options_.node_id || a.for_incarnation() != incarnation_) return;
  ++stats_.acks_received;
  if (a.stream_seq() > p.acked_ours) p.acked_ours = std::min(a.stream_seq(), next_stream_seq_ - 1);
  TrimQueue();
  if (dump_.active && Reliable()) PumpDump(options_.dump_window);
}

void Replicator::OnNack(Peer& p, const proto::Nack& n) {
  if (n.for_node() != options_.node_id || n.for_incarnation() != incarnation_) return;
  ++stats_.nacks_received;
  if (!Reliable()) return;
  bool unavailable = false;
  const Nanos now = clock_.Now();
  uint64_t budget = kMaxResendPerNack;
  int ranges = 0;
  for (const proto::SeqRange& r : n.missing()) {
    if (++ranges > kMaxNackRanges) break;
    // The queue holds a contiguous run of stream numbers ending at the last one sent.
    const uint64_t front = queue_.empty() ? next_stream_seq_ : queue_.front().stream_seq;
    const uint64_t last = std::min(r.last(), next_stream_seq_ - 1);
    uint64_t first = r.first();
    if (first < front && first <= last) {
      unavailable = true;
      first = front;
    }
    for (uint64_t s = first; s <= last && budget > 0; ++s)
      if (Retransmit(s, now)) --budget;
  }
  if (unavailable) {
    ++stats_.nack_unavailable;
    SendAlive();  // tells the peer where our queue starts, so it resyncs at once
  }
}

void Replicator::SendAck(Peer& p, Nanos now) {
  proto::Ack a;
  a.set_for_node(p.node_id);
  a.set_for_incarnation(p.incarnation);
  a.set_stream_seq(p.delivered);
  SendMessage(MsgType::kAck, a);
  ++stats_.acks_sent;
  p.acked_sent = p.delivered;
  p.bytes_since_ack = 0;
  p.last_ack = now;
}

void Replicator::MaybeNack(Peer& p, Nanos now) {
  const bool gap = !p.pending.empty() || p.highest_seen > p.delivered;
  if (!gap) {
    p.gap_since = -1;
    return;
  }
  if (p.gap_since < 0) {
    p.gap_since = now;
    return;
  }
  if (now - p.gap_since < options_.nack_delay || now - p.last_nack < options_.nack_delay) return;
  proto::Nack n;
  n.set_for_node(p.node_id);
  n.set_for_incarnation(p.incarnation);
  uint64_t next = p.delivered + 1;
  for (const auto& [s, batch] : p.pending) {
    if (n.missing_size() >= kMaxNackRanges) break;
    if (s > next) {
      proto::SeqRange* r = n.add_missing();
      r->set_first(next);
      r->set_last(s - 1);
    }
    next = s + 1;
  }
  // The tail their alive announced may still be in flight (or in our socket buffer, when
  // we are the slow side): ask for it only once their DATA has stopped coming for a while.
  const uint64_t tail =
      now - p.last_data >= 4 * options_.nack_delay ? p.highest_seen : p.highest_data;
  if (n.missing_size() < kMaxNackRanges && tail >= next) {
    proto::SeqRange* r = n.add_missing();
    r->set_first(next);
    r->set_last(tail);
  }
  if (n.missing_size() == 0) return;
  SendMessage(MsgType::kNack, n);
  ++stats_.nacks_sent;
  p.last_nack = now;
}

void Replicator::AskResync(Peer& p, Nanos now) {
  proto::ResyncRequest r;
  r.set_for_node(p.node_id);
  r.set_for_incarnation(p.incarnation);
  SendMessage(MsgType::kResyncRequest, r);
  ++stats_.resync_requests_sent;
  p.resync_wanted = true;
  p.resync_asked = now;
}

void Replicator::Notify(PeerEvent::Kind kind, const Peer& p) {
  if (callbacks_.peer_event) callbacks_.peer_event(PeerEvent{kind, p.node_id, p.incarnation});
}

// ------------------------------------------------------------------------- commands

void Replicator::RequestResync() {
  const Nanos now = clock_.Now();
  // A peer that is silent right now (a loaded machine, a link flapping during a failover)
  // is asked as soon as it is heard again, and a peer not known yet when it joins: the
  // request must not be lost with the instant it was made.
  if (peers_.empty()) resync_on_join_ = true;
  for (auto& [id, p] : peers_) {
    if (p.alive) {
      AskResync(p, now);
    } else {
      WantResync(p, now);
    }
  }
}

void Replicator::WantResync(Peer& p, Nanos now) {
  p.resync_wanted = true;
  p.resync_asked = now - options_.resync_retry;  // due at the first Tick it is alive
}

void Replicator::StartDump() {
  if (!callbacks_.dump) return;
  if (dump_.active) {
    dump_.again = true;
    return;
  }
  dump_ = DumpState{};
  dump_.active = true;
  ++stats_.resyncs_served;
  Flush();  // live events read before the dump go first
  PumpDump(options_.dump_window);
}

void Replicator::PumpDump(size_t max_datagrams) {
  const Nanos now = clock_.Now();
  const uint64_t start_seq = next_stream_seq_;
  while (dump_.active) {
    if (Reliable() ? queue_.size() >= options_.dump_window
                   : next_stream_seq_ - start_seq >= max_datagrams) {
      return;
    }
    dump_events_.clear();
    const bool more = callbacks_.dump(&dump_.cursor, options_.dump_chunk_flows, &dump_events_);
    Flush();
    for (const FlowEvent& e : dump_events_) {
      if (!options_.send_filter.Matches(e.flow)) continue;
      Append(dump_batch_, e, now);
      ++dump_.flows;
      ++stats_.dump_flows_sent;
    }
    FlushBuilder(dump_batch_);
    if (!more) {
      proto::ResyncDone d;
      d.set_last_stream_seq(next_stream_seq_ - 1);
      d.set_flows(dump_.flows);
      SendMessage(MsgType::kResyncDone, d);
      const bool again = dump_.again;
      dump_ = DumpState{};
      if (again) StartDump();
      return;
    }
  }
}

void Replicator::RotateKey(std::string new_key, Nanos previous_valid_for) {
  verifier_.RotateKey(std::move(new_key), clock_.Now() + previous_valid_for);
}

// ----------------------------------------------------------------------------- timers

void Replicator::Tick() {
  const Nanos now = clock_.Now();
  if (live_.events > 0 && now - live_.started >= options_.flush_delay) FlushBuilder(live_);
  if (frags_.count > 0 && now - frags_.started >= options_.flush_delay) FlushFragments();
  for (auto& [id, p] : peers_) {
    if (p.alive && now - p.last_heard > options_.peer_dead_after) {
      p.alive = false;
      ++stats_.peers_dead;
      Notify(PeerEvent::Kind::kDead, p);
      continue;
    }
    if (!p.alive) continue;
    if (Reliable()) {
      if (p.delivered > p.acked_sent && now - p.last_ack >= options_.ack_interval)
        SendAck(p, now);
      MaybeNack(p, now);
    }
    if (p.resync_wanted && now - p.resync_asked >= options_.resync_retry) AskResync(p, now);
  }
  TrimQueue();
  if (now - last_alive_ >= options_.alive_interval) SendAlive();
  if (options_.mode == ReplicationMode::kRefresh &&
      now - last_refresh_ >= options_.refresh_interval) {
    last_refresh_ = now;
    StartDump();
  }
  if (dump_.active) PumpDump(options_.dump_window);
}

std::vector<PeerInfo> Replicator::Peers() const {
  std::vector<PeerInfo> out;
  for (const auto& [id, p] : peers_) {
    out.push_back(PeerInfo{p.node_id, p.incarnation, p.alive, p.delivered, p.acked_ours,
                           p.pending.size(), p.resync_wanted});
  }
  std::sort(out.begin(), out.end(),
            [](const PeerInfo& a, const PeerInfo& b) { return a.node_id < b.node_id; });
  return out;
}

}  // namespace ctsync::sync

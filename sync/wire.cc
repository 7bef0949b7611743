#include "sync/wire.h"

#include <cstring>

#include "sync/hmac.h"

namespace ctsync::sync {
namespace {

void PutBe(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>(v >> (8 * i)));
}

uint64_t GetBe(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

absl::Span<const uint8_t> AsBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

const char* DropReasonName(DropReason r) {
  static constexpr const char* kNames[] = {
#define CTSYNC_X(name, text) text,
      CTSYNC_SYNC_DROP_REASONS(CTSYNC_X)
#undef CTSYNC_X
  };
  const size_t i = static_cast<size_t>(r);
  return i < kNumDropReasons ? kNames[i] : "unknown";
}

uint64_t DropCounters::Total() const {
  uint64_t t = 0;
  for (uint64_t c : count) t += c;
  return t;
}

void EncodeDatagram(const WireHeader& header, absl::Span<const uint8_t> payload,
                    absl::Span<const uint8_t> key, std::string* out) {
  const size_t start = out->size();
  out->reserve(start + kWireOverhead + payload.size());
  out->append(reinterpret_cast<const char*>(kWireMagic), sizeof(kWireMagic));
  out->push_back(static_cast<char>(kWireVersion));
  out->push_back(static_cast<char>(header.type));
  PutBe(out, header.flags, 2);
  PutBe(out, header.node_id, 4);
  PutBe(out, header.incarnation, 8);
  PutBe(out, header.seq, 8);
  PutBe(out, payload.size(), 4);
  out->append(reinterpret_cast<const char*>(payload.data()), payload.size());
  const HmacTag tag = ComputeHmac(
      key, {reinterpret_cast<const uint8_t*>(out->data()) + start, out->size() - start});
  out->append(reinterpret_cast<const char*>(tag.data()), tag.size());
}

std::optional<DropReason> ParseHeader(absl::Span<const uint8_t> d, WireHeader* h) {
  if (d.size() < kWireOverhead) return DropReason::kTooShort;
  if (std::memcmp(d.data(), kWireMagic, sizeof(kWireMagic)) != 0) return DropReason::kBadMagic;
  if (d[4] < kMinWireVersion || d[4] > kWireVersion) return DropReason::kBadVersion;
  if (d[5] == 0 || d[5] > kMaxMsgType) return DropReason::kBadType;
  h->type = static_cast<MsgType>(d[5]);
  h->flags = static_cast<uint16_t>(GetBe(&d[6], 2));
  h->node_id = static_cast<uint32_t>(GetBe(&d[8], 4));
  h->incarnation = GetBe(&d[12], 8);
  h->seq = GetBe(&d[20], 8);
  h->payload_len = static_cast<uint32_t>(GetBe(&d[28], 4));
  if (h->payload_len > kMaxPayload || d.size() != kWireOverhead + h->payload_len)
    return DropReason::kBadLength;
  return std::nullopt;
}

std::optional<DropReason> ReplayWindow::Check(uint64_t seq) const {
  if (seq == 0) return DropReason::kTooOld;  // sequence numbers start at 1
  if (seq > highest_) return std::nullopt;
  // Words are reused cyclically, so only the kWords - 1 words below the newest one count.
  if (seq / 64 + kWords <= highest_ / 64) return DropReason::kTooOld;
  return Bit(seq) ? std::optional<DropReason>(DropReason::kReplay) : std::nullopt;
}

void ReplayWindow::Accept(uint64_t seq) {
  if (seq > highest_) {
    // Forget the words the window slides past (one bit per seq, words reused cyclically).
    const uint64_t old_word = highest_ / 64;
    const uint64_t new_word = seq / 64;
    if (new_word - old_word >= kWords) {
      bits_.fill(0);
    } else {
      for (uint64_t w = old_word + 1; w <= new_word; ++w) bits_[w % kWords] = 0;
    }
    highest_ = seq;
  }
  bits_[(seq / 64) % kWords] |= uint64_t{1} << (seq % 64);
}

std::optional<DropReason> DatagramVerifier::Verify(absl::Span<const uint8_t> d, Nanos now,
                                                   VerifiedDatagram* out) {
  WireHeader h;
  if (std::optional<DropReason> r = ParseHeader(d, &h)) return Drop(*r);
  const absl::Span<const uint8_t> signed_part = d.subspan(0, kHeaderSize + h.payload_len);
  const absl::Span<const uint8_t> tag = d.subspan(kHeaderSize + h.payload_len, kTagSize);
  bool previous = false;
  if (!VerifyHmac(AsBytes(keys_.key), signed_part, tag)) {
    if (keys_.previous_key.empty() || now >= keys_.previous_key_until ||
        !VerifyHmac(AsBytes(keys_.previous_key), signed_part, tag)) {
      return Drop(DropReason::kBadHmac);
    }
    previous = true;
  }
  // Authentic from here on. Our own multicast echo is authentic too, but not news.
  if (h.node_id == own_node_id_) return Drop(DropReason::kOwnNode);
  PeerWindow& p = peers_[h.node_id];
  bool fresh = false;
  if (h.incarnation == 0 || h.incarnation < p.incarnation) return Drop(DropReason::kOldIncarnation);
  if (h.incarnation > p.incarnation) {
    p.incarnation = h.incarnation;
    p.window = ReplayWindow{};
    fresh = true;
  }
  if (std::optional<DropReason> r = p.window.Check(h.seq)) return Drop(*r);
  p.window.Accept(h.seq);
  out->header = h;
  out->payload = d.subspan(kHeaderSize, h.payload_len);
  out->new_incarnation = fresh;
  out->previous_key = previous;
  return std::nullopt;
}

void DatagramVerifier::RotateKey(std::string new_key, Nanos previous_until) {
  keys_.previous_key = std::move(keys_.key);
  keys_.previous_key_until = previous_until;
  keys_.key = std::move(new_key);
}

uint64_t DatagramVerifier::IncarnationOf(uint32_t node) const {
  auto it = peers_.find(node);
  return it == peers_.end() ? 0 : it->second.incarnation;
}

}  // namespace ctsync::sync

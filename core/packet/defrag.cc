#include "core/packet/defrag.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/packet/checksum.h"
#include "core/packet/packet_parser.h"

namespace ctsync {

namespace {

constexpr uint32_t kMaxDatagram = 65535;
constexpr uint32_t kIpv6HeaderLen = 40;
constexpr uint32_t kFragHeaderLen = 8;
constexpr uint8_t kNextFragment = 44;

// ECN codepoints of the fragments seen, as ip_frag_ecn() maps them.
constexpr uint8_t kEcnNotEct = 0x01;
constexpr uint8_t kEcnEct1 = 0x02;
constexpr uint8_t kEcnEct0 = 0x04;
constexpr uint8_t kEcnCe = 0x08;

// Parse errors of the transport header only: a first fragment may cut it (the pipeline
// lets such packets through to conntrack the same way).
bool IsL4Error(ParseError e) {
  return e == ParseError::kTruncatedL4 || e == ParseError::kBadTcpOffset ||
         e == ParseError::kBadUdpLength || e == ParseError::kBadUdpliteCoverage;
}

uint8_t EcnBit(uint8_t tos) { return static_cast<uint8_t>(1u << (tos & 3)); }

// ip_options_fragment(): options without the "copied" flag become NOPs in the headers of
// the second and later fragments; the header keeps its length.
void BlankUncopiedOptions(uint8_t* opt, uint32_t len) {
  while (len > 0) {
    const uint8_t kind = opt[0];
    if (kind == 0) return;  // end of list
    if (kind == 1) {        // NOP
      ++opt;
      --len;
      continue;
    }
    if (len < 2) return;
    const uint32_t size = opt[1];
    if (size < 2 || size > len) return;
    if ((kind & 0x80) == 0) std::memset(opt, 1, size);
    opt += size;
    len -= size;
  }
}

// Sizes of the pieces: the layout's when they still add up (and respect the 8-byte rule),
// else cuts of at most `chunk` bytes. Empty result = impossible.
std::vector<uint32_t> PieceSizes(const FragmentLayout& layout, uint32_t payload, uint32_t chunk,
                                 bool* fast_path) {
  std::vector<uint32_t> sizes;
  uint64_t sum = 0;
  bool aligned = true;
  for (size_t i = 0; i < layout.payload_sizes.size(); ++i) {
    sum += layout.payload_sizes[i];
    if (i + 1 < layout.payload_sizes.size() && layout.payload_sizes[i] % 8 != 0) aligned = false;
    if (layout.payload_sizes[i] == 0) aligned = false;
  }
  *fast_path = aligned && !layout.payload_sizes.empty() && sum == payload;
  if (*fast_path) {
    sizes.assign(layout.payload_sizes.begin(), layout.payload_sizes.end());
    return sizes;
  }
  if (chunk < 8) return sizes;
  uint32_t left = payload;
  do {
    const uint32_t n = std::min(left, chunk);
    sizes.push_back(n);
    left -= n;
  } while (left > 0);
  return sizes;
}

}  // namespace

Defragmenter::Defragmenter(const DefragOptions& options) : options_(options) {}

void Defragmenter::Kill(QueueMap::iterator it) {
  if (it->second.exported) {
    DefragEvent e;
    e.kind = DefragEvent::Kind::kGone;
    e.key = it->first;
    Record(std::move(e));
  }
  memory_ -= it->second.memory;
  queues_.erase(it);
}

void Defragmenter::Record(DefragEvent e) {
  if (events_.size() >= options_.export_capacity) {
    ++counters_.export_overflow;
    return;
  }
  events_.push_back(std::move(e));
}

bool Defragmenter::PopEvent(DefragEvent* out) {
  if (events_.empty()) return false;
  *out = std::move(events_.front());
  events_.pop_front();
  return true;
}

DefragResult Defragmenter::Add(const ParsedPacket& pkt, absl::Span<const uint8_t> frame,
                               uint16_t zone, Nanos now) {
  ++counters_.fragments;
  return Insert(pkt, frame, zone, now, std::nullopt);
}

DefragResult Defragmenter::Import(absl::Span<const uint8_t> frame, uint16_t zone, Nanos lifetime,
                                  Nanos now) {
  ParsedPacket pkt;
  const ParseResult parsed = ParseEthernet(frame, &pkt);
  // An L4 header cut by the fragmentation is normal for a first fragment; anything worse
  // in the L2/L3 headers is not a fragment we can hold.
  if ((!parsed.ok() && !IsL4Error(parsed.error())) || !pkt.is_fragment ||
      pkt.family == Family::kNone) {
    ++counters_.learnt_bad;
    return DefragResult{};
  }
  // Bytes after the IP datagram (padding) are not kept, so they cannot be charged either.
  frame = frame.subspan(0, std::min<size_t>(frame.size(), pkt.l3_offset + pkt.ip_total_len));
  if (lifetime <= 0) {
    ++counters_.learnt_stale;
    return DefragResult{};
  }
  return Insert(pkt, frame, zone, now, lifetime);
}

bool Defragmenter::ImportGone(const FragmentQueueKey& key) {
  auto it = queues_.find(key);
  if (it == queues_.end()) return false;
  ++counters_.learnt_gone;
  Kill(it);
  return true;
}

DefragResult Defragmenter::Insert(const ParsedPacket& pkt, absl::Span<const uint8_t> frame,
                                  uint16_t zone, Nanos now, std::optional<Nanos> learnt_lifetime) {
  DefragResult result;
  const bool learnt = learnt_lifetime.has_value();
  const bool v6 = pkt.family == Family::kIpv6;
  const uint64_t datagram_end = uint64_t{pkt.l3_offset} + pkt.ip_total_len;
  const uint32_t data_start = v6 ? pkt.frag_header_offset + kFragHeaderLen : pkt.l4_offset;
  if (!pkt.is_fragment || pkt.family == Family::kNone || datagram_end > frame.size() ||
      data_start > datagram_end || (v6 && pkt.frag_header_offset == 0)) {
    ++counters_.bad_input;
    return result;
  }
  if (memory_ > options_.high_thresh) {
    ++counters_.memory_drops;
    return result;
  }

  const Key key{pkt.family, v6 ? uint8_t{0} : pkt.proto, zone, pkt.frag_id, pkt.src, pkt.dst};
  auto it = queues_.find(key);
  if (it != queues_.end() && it->second.deadline <= now) {
    ++counters_.timeouts;  // its timer would have fired already
    Kill(it);
    it = queues_.end();
  }
  if (it == queues_.end()) {
    if (queues_.size() >= options_.max_queues) {
      ++counters_.queue_limit_drops;
      return result;
    }
    Queue q;
    const Nanos timeout = v6 ? options_.ipv6_timeout : options_.ipv4_timeout;
    // A learnt queue lives what was left of the peer's, never longer than ours would.
    q.deadline = now + (learnt ? std::min(*learnt_lifetime, timeout) : timeout);
    q.generation = next_generation_++;
    q.memory = kQueueOverhead;
    memory_ += kQueueOverhead;
    std::deque<ExpiryRecord>& fifo = v6 ? expiry_v6_ : expiry_v4_;
    const ExpiryRecord rec{q.deadline, q.generation, key};
    if (fifo.empty() || fifo.back().deadline <= q.deadline) {
      fifo.push_back(rec);
    } else {
      fifo.insert(std::upper_bound(fifo.begin(), fifo.end(), q.deadline,
                                   [](Nanos d, const ExpiryRecord& r) { return d < r.deadline; }),
                  rec);
    }
    it = queues_.emplace(key, std::move(q)).first;
  }
  Queue& q = it->second;

  const uint32_t offset = pkt.frag_offset;
  uint32_t end = offset + static_cast<uint32_t>(datagram_end - data_start);
  // IPv4 kills the queue on inconsistent fragments; IPv6 conntrack drops the fragment only.
  auto reject = [&]() {
    ++counters_.invalid;
    if (!v6) Kill(it);
    return result;
  };
  if (!pkt.more_fragments) {
    if (end < q.len || (q.last_in && end != q.len)) return reject();
    q.last_in = true;
    q.len = end;
  } else {
    if (end & 7) {
      if (v6) {
        ++counters_.invalid;
        Kill(it);
        return result;
      }
      end &= ~7u;
    }
    if (end > q.len) {
      if (q.last_in) return reject();
      q.len = end;
    }
  }
  if (end == offset) return reject();

  // inet_frag_queue_insert(): runs of back-to-back fragments; a fragment inside one run is
  // a duplicate, any other overlap poisons the queue.
  if (q.runs.empty()) {
    q.runs.push_back({offset, end});
  } else if (q.runs.back().end < end) {
    if (offset < q.runs.back().end) {
      ++counters_.overlaps;
      Kill(it);
      return result;
    }
    if (offset == q.runs.back().end) {
      q.runs.back().end = end;
    } else {
      q.runs.push_back({offset, end});
    }
  } else {
    auto pos = std::lower_bound(q.runs.begin(), q.runs.end(), offset,
                                [](const Run& r, uint32_t o) { return r.end <= o; });
    if (pos != q.runs.end() && pos->offset < end) {
      if (offset >= pos->offset && end <= pos->end) {
        ++counters_.duplicates;
      } else {
        ++counters_.overlaps;
        Kill(it);
      }
      return result;
    }
    q.runs.insert(pos, Run{offset, end});
  }

  Fragment f{offset, end, {}};
  f.data.assign(frame.begin() + data_start, frame.begin() + data_start + (end - offset));
  q.fragments.push_back(std::move(f));
  if (offset == 0) {
    q.first_in = true;
    const uint32_t head_end = v6 ? pkt.frag_header_offset : pkt.l4_offset;
    q.head.assign(frame.begin(), frame.begin() + head_end);
    q.l3_offset = pkt.l3_offset;
    if (v6) {
      q.v6_nexthdr_field = static_cast<uint16_t>(pkt.frag_nexthdr_field_offset - pkt.l3_offset);
      q.v6_next = frame[pkt.frag_header_offset];
    }
  }
  const uint32_t fragsize = v6 ? pkt.ip_total_len : pkt.l3_header_len + (end - offset);
  q.max_size = static_cast<uint16_t>(std::max<uint32_t>(q.max_size, fragsize));
  if (!v6 && pkt.df) {
    q.max_df_size = static_cast<uint16_t>(std::max<uint32_t>(q.max_df_size, fragsize));
  }
  q.meat += end - offset;
  q.ecn |= EcnBit(pkt.tos);
  const size_t charge = frame.size() + kFragmentOverhead;
  q.memory += charge;
  memory_ += charge;

  if (q.first_in && q.last_in && q.meat == q.len) {
    if (!learnt) return Reassemble(it);
    // The peer held all of these only if it reassembled and passed the datagram on itself
    // (or it is lying): passing it on here too would duplicate it.
    ++counters_.learnt_complete;
    Kill(it);
    return result;
  }
  if (learnt) {
    ++counters_.learnt;
  } else if (options_.export_capacity > 0) {
    DefragEvent e;
    e.kind = DefragEvent::Kind::kQueued;
    e.key = key;
    e.deadline = q.deadline;
    e.frame.assign(frame.begin(), frame.end());
    Record(std::move(e));
    q.exported = true;
  }
  result.kind = DefragResult::Kind::kQueued;
  return result;
}

DefragResult Defragmenter::Reassemble(QueueMap::iterator it) {
  DefragResult result;
  Queue& q = it->second;
  const bool v6 = it->first.family == Family::kIpv6;
  if ((q.ecn & kEcnNotEct) && (q.ecn & (kEcnEct0 | kEcnEct1 | kEcnCe))) {
    ++counters_.ecn_mismatch;
    Kill(it);
    return result;
  }
  const bool ce = (q.ecn & kEcnCe) != 0;
  const uint32_t unfrag_len = static_cast<uint32_t>(q.head.size()) - q.l3_offset;
  const uint32_t total = unfrag_len + q.len;
  if (total > (v6 ? kMaxDatagram + kIpv6HeaderLen : kMaxDatagram)) {
    ++counters_.oversize;
    Kill(it);
    return result;
  }
  std::sort(q.fragments.begin(), q.fragments.end(),
            [](const Fragment& a, const Fragment& b) { return a.offset < b.offset; });

  std::vector<uint8_t>& out = result.frame;
  out.reserve(q.head.size() + q.len);
  out = q.head;
  FragmentLayout& layout = result.layout;
  layout.family = it->first.family;
  layout.id = it->first.id;
  for (const Fragment& f : q.fragments) {
    out.insert(out.end(), f.data.begin(), f.data.end());
    layout.payload_sizes.push_back(static_cast<uint16_t>(f.end - f.offset));
  }
  uint8_t* ip = out.data() + q.l3_offset;
  if (v6) {
    ip[q.v6_nexthdr_field] = q.v6_next;
    StoreBe16(ip + 4, static_cast<uint16_t>(total - kIpv6HeaderLen));
    if (ce) ip[1] |= 0x30;  // ECN bits of the traffic class
    layout.max_fragment_size = q.max_size;
    layout.v6_unfragmentable_len = static_cast<uint16_t>(unfrag_len);
    layout.v6_nexthdr_field = q.v6_nexthdr_field;
  } else {
    StoreBe16(ip + 2, static_cast<uint16_t>(total));
    // DF only if the largest fragment carried it (ip_frag_reasm's IPSKB_FRAG_PMTU rule).
    StoreBe16(ip + 6, q.max_df_size == q.max_size ? 0x4000 : 0);
    if (ce) ip[1] |= 0x03;
    SetIpv4HeaderChecksum(absl::MakeSpan(ip, unfrag_len));
    layout.max_fragment_size = std::max(q.max_size, q.max_df_size);
  }
  ++counters_.reassembled;
  Kill(it);
  result.kind = DefragResult::Kind::kReassembled;
  return result;
}

size_t Defragmenter::Expire(Nanos now, size_t max_steps) {
  size_t steps = 0;
  size_t expired = 0;
  for (std::deque<ExpiryRecord>* fifo : {&expiry_v4_, &expiry_v6_}) {
    while (steps < max_steps && !fifo->empty() && fifo->front().deadline <= now) {
      const ExpiryRecord rec = fifo->front();
      fifo->pop_front();
      ++steps;
      auto it = queues_.find(rec.key);
      if (it == queues_.end() || it->second.generation != rec.generation) continue;
      ++counters_.timeouts;
      ++expired;
      Kill(it);
    }
  }
  return expired;
}

absl::StatusOr<std::vector<std::vector<uint8_t>>> Refragment(absl::Span<const uint8_t> frame,
                                                             const FragmentLayout& layout) {
  ParsedPacket pkt;
  const ParseResult parsed = ParseEthernet(frame, &pkt);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("refragment: unparsable datagram: ",
                                                   std::string(ParseErrorName(parsed.error()))));
  }
  if (pkt.family != layout.family || pkt.is_fragment) {
    return absl::InvalidArgumentError("refragment: family mismatch or already a fragment");
  }
  const absl::Span<const uint8_t> l2 = frame.subspan(0, pkt.l3_offset);
  const uint8_t* ip = frame.data() + pkt.l3_offset;
  std::vector<std::vector<uint8_t>> out;

  if (pkt.family == Family::kIpv4) {
    const uint32_t ihl = pkt.l3_header_len;
    const uint32_t payload = pkt.ip_total_len - ihl;
    const uint32_t chunk =
        layout.max_fragment_size > ihl ? ((layout.max_fragment_size - ihl) & ~7u) : 0;
    bool fast = false;
    const std::vector<uint32_t> sizes = PieceSizes(layout, payload, chunk, &fast);
    if (sizes.empty()) return absl::InvalidArgumentError("refragment: no room for data");
    const bool keep_df = !fast && pkt.df;
    const uint8_t* data = ip + ihl;
    uint32_t offset = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      std::vector<uint8_t> f;
      f.reserve(l2.size() + ihl + sizes[i]);
      f.insert(f.end(), l2.begin(), l2.end());
      f.insert(f.end(), ip, ip + ihl);
      uint8_t* h = f.data() + l2.size();
      if (i > 0) BlankUncopiedOptions(h + 20, ihl - 20);
      StoreBe16(h + 2, static_cast<uint16_t>(ihl + sizes[i]));
      uint16_t frag = static_cast<uint16_t>(offset >> 3);
      if (i + 1 < sizes.size()) frag |= 0x2000;
      if (keep_df) frag |= 0x4000;
      StoreBe16(h + 6, frag);
      SetIpv4HeaderChecksum(absl::MakeSpan(h, ihl));
      f.insert(f.end(), data + offset, data + offset + sizes[i]);
      offset += sizes[i];
      out.push_back(std::move(f));
    }
    return out;
  }

  const uint32_t unfrag = layout.v6_unfragmentable_len;
  if (unfrag < kIpv6HeaderLen || unfrag > pkt.ip_total_len || layout.v6_nexthdr_field >= unfrag) {
    return absl::InvalidArgumentError("refragment: IPv6 layout does not fit the datagram");
  }
  const uint8_t next = ip[layout.v6_nexthdr_field];
  const uint32_t payload = pkt.ip_total_len - unfrag;
  const uint32_t room = unfrag + kFragHeaderLen;
  const uint32_t chunk =
      layout.max_fragment_size > room ? ((layout.max_fragment_size - room) & ~7u) : 0;
  bool fast = false;
  const std::vector<uint32_t> sizes = PieceSizes(layout, payload, chunk, &fast);
  if (sizes.empty()) return absl::InvalidArgumentError("refragment: no room for data");
  const uint8_t* data = ip + unfrag;
  uint32_t offset = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    std::vector<uint8_t> f;
    f.reserve(l2.size() + room + sizes[i]);
    f.insert(f.end(), l2.begin(), l2.end());
    f.insert(f.end(), ip, ip + unfrag);
    uint8_t* h = f.data() + l2.size();
    h[layout.v6_nexthdr_field] = kNextFragment;
    StoreBe16(h + 4, static_cast<uint16_t>(unfrag - kIpv6HeaderLen + kFragHeaderLen + sizes[i]));
    uint8_t fh[kFragHeaderLen] = {next, 0, 0, 0, 0, 0, 0, 0};
    StoreBe16(fh + 2, static_cast<uint16_t>(offset | (i + 1 < sizes.size() ? 1 : 0)));
    StoreBe32(fh + 4, layout.id);
    f.insert(f.end(), fh, fh + kFragHeaderLen);
    f.insert(f.end(), data + offset, data + offset + sizes[i]);
    offset += sizes[i];
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace ctsync

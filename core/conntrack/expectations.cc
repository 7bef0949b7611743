#include "core/conntrack/expectations.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace ctsync {
namespace {

bool MaskedEqual(const IpAddress& a, const IpAddress& b, const IpAddress& m) {
  for (int i = 0; i < 16; ++i)
    if ((a.bytes[i] & m.bytes[i]) != (b.bytes[i] & m.bytes[i])) return false;
  return true;
}

std::string MaskText(Family f, const IpAddress& m) { return m.ToString(f); }

}  // namespace

bool Expectation::Matches(const Tuple& t, uint16_t z) const {
  return z == zone && t.family == tuple.family && t.proto == tuple.proto &&
         MaskedEqual(t.src, tuple.src, mask.src) && MaskedEqual(t.dst, tuple.dst, mask.dst) &&
         (t.sport & mask.sport) == (tuple.sport & mask.sport) &&
         (t.dport & mask.dport) == (tuple.dport & mask.dport);
}

bool ExpectationTable::Add(Expectation e, int max_per_master) {
  for (const Expectation& x : entries_)
    if (x.master == e.master && x.tuple == e.tuple && x.mask == e.mask) return false;
  int count = 0;
  for (const Expectation& x : entries_) count += x.master == e.master;
  if (count >= max_per_master) {
    // Oldest first: entries_ keeps insertion order.
    auto it = std::find_if(entries_.begin(), entries_.end(),
                           [&](const Expectation& x) { return x.master == e.master; });
    entries_.erase(it);
    ++deleted_;
  }
  e.id = next_id_++;
  entries_.push_back(e);
  ++created_;
  return true;
}

std::optional<Expectation> ExpectationTable::Take(const Tuple& t, uint16_t zone, Nanos now) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->expires > now && it->Matches(t, zone)) {
      Expectation e = *it;
      entries_.erase(it);
      ++deleted_;
      return e;
    }
  }
  return std::nullopt;
}

void ExpectationTable::RemoveMaster(FlowIndex master) {
  const size_t before = entries_.size();
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const Expectation& e) { return e.master == master; }),
                 entries_.end());
  deleted_ += before - entries_.size();
}

size_t ExpectationTable::Expire(Nanos now) {
  const size_t before = entries_.size();
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const Expectation& e) { return e.expires <= now; }),
                 entries_.end());
  deleted_ += before - entries_.size();
  return before - entries_.size();
}

std::string FormatExpectation(const Expectation& e, Nanos now) {
  const Family f = e.tuple.family;
  const Nanos left = std::max<Nanos>(0, e.expires - now) / kNanosPerSecond;
  return absl::StrCat(left, " proto=", e.tuple.proto, " src=", e.tuple.src.ToString(f),
                      " dst=", e.tuple.dst.ToString(f), " sport=", e.tuple.sport,
                      " dport=", e.tuple.dport, " mask-src=", MaskText(f, e.mask.src),
                      " mask-dst=", MaskText(f, e.mask.dst), " sport=", e.mask.sport,
                      " dport=", e.mask.dport, " master-src=", e.master_tuple.src.ToString(f),
                      " master-dst=", e.master_tuple.dst.ToString(f),
                      " sport=", e.master_tuple.sport, " dport=", e.master_tuple.dport,
                      " class=", e.klass, e.helper == FlowHelper::kFtp ? " helper=ftp" : "");
}

}  // namespace ctsync

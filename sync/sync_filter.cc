#include "sync/sync_filter.h"

#include <algorithm>

namespace ctsync::sync {
namespace {

bool AnyContains(const std::vector<IpPrefix>& prefixes, const Tuple& t) {
  for (const IpPrefix& p : prefixes) {
    if (p.Contains(t.family, t.src) || p.Contains(t.family, t.dst)) return true;
  }
  return false;
}

}  // namespace

bool SyncFilter::MatchesKey(const Tuple& original) const {
  if (!protocols.empty() &&
      std::find(protocols.begin(), protocols.end(), original.proto) == protocols.end()) {
    return false;
  }
  if (!accept_prefixes.empty() && !AnyContains(accept_prefixes, original)) return false;
  if (AnyContains(ignore_prefixes, original)) return false;
  return true;
}

bool SyncFilter::Matches(const Flow& f) const {
  if (!MatchesKey(f.tuple[0])) return false;
  if (f.proto() == kProtoTcp && !tcp_states.empty() &&
      std::find(tcp_states.begin(), tcp_states.end(), f.tcp.state) == tcp_states.end()) {
    return false;
  }
  return true;
}

}  // namespace ctsync::sync

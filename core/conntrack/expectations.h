// Expectations: connections a helper (FTP) has announced and that conntrack should treat
// as RELATED to their master when they arrive (the kernel's nf_conntrack_expect.c).
// Owned by the ConntrackEngine of one shard; single-threaded like it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/conntrack/flow.h"
#include "core/conntrack/tuple.h"

namespace ctsync {

struct Expectation {
  // The expected connection's original tuple; a zero mask field matches anything (the FTP
  // helper leaves the source port open).
  Tuple tuple;
  Tuple mask;
  uint16_t zone = 0;
  FlowIndex master = kNoFlow;
  Tuple master_tuple;  // the master's original tuple (listings, replication)
  Nanos expires = 0;
  uint8_t klass = 0;
  FlowHelper helper = FlowHelper::kFtp;
  // NAT: where the expected connection must really go (nf_conntrack_expect saved_addr /
  // saved_proto, dir) when the helper rewrote the announced address.
  bool nat = false;
  IpAddress saved_addr;
  uint16_t saved_port = 0;
  Direction dir = Direction::kOriginal;  // direction of the packet that announced it
  uint64_t id = 0;

  bool Matches(const Tuple& t, uint16_t z) const;
};

class ExpectationTable {
 public:
  // nf_ct_expect_related with the helper's max_expected per master (FTP: 1): a new
  // expectation of a master that already has `max_per_master` evicts its oldest.
  // Returns false if an identical expectation exists (the caller keeps the old one).
  bool Add(Expectation e, int max_per_master);

  // Finds and removes the expectation a new connection matches (nf_ct_find_expectation).
  std::optional<Expectation> Take(const Tuple& t, uint16_t zone, Nanos now);

  // Removes every expectation of `master` (the master went away).
  void RemoveMaster(FlowIndex master);
  size_t Expire(Nanos now);

  const std::vector<Expectation>& all() const { return entries_; }
  size_t size() const { return entries_.size(); }
  uint64_t created() const { return created_; }
  uint64_t deleted() const { return deleted_; }

 private:
  std::vector<Expectation> entries_;  // few at a time: a vector is the fastest structure
  uint64_t next_id_ = 1;
  uint64_t created_ = 0;
  uint64_t deleted_ = 0;
};

// One expectation as `conntrack -L expect` prints it, e.g.
// "299 proto=6 src=198.51.100.20 dst=203.0.113.5 sport=0 dport=50000 mask-src=255.255.255.255
//  mask-dst=255.255.255.255 sport=0 dport=65535 master-src=192.0.2.10 master-dst=198.51.100.20
//  sport=40021 dport=21 class=0 helper=ftp"
std::string FormatExpectation(const Expectation& e, Nanos now);

}  // namespace ctsync

// The one conversion between the engine's Flow (core/conntrack/flow.h) and the wire/disk
// message ctsync.proto.Flow, shared by sync (replication) and storage (persistence).
// Stateless; any thread may call it on data it owns.
//
// Time: a Flow holds an absolute monotonic deadline, which means nothing on another node or
// after a restart, so the message carries the remaining lifetime plus the wall-clock time at
// which it was taken. The decoder takes the record's age (how long ago, by the caller's
// reckoning, the record was made) and shortens the lifetime by it.
#pragma once

#include <optional>

#include "absl/status/status.h"
#include "core/conntrack/expectations.h"
#include "core/conntrack/flow.h"
#include "core/conntrack/flow_events.h"
#include "core/conntrack/tuple.h"
#include "ctsync/flow.pb.h"

namespace ctsync::codec {

void TupleToProto(const Tuple& t, proto::Tuple* out);
absl::Status TupleFromProto(const proto::Tuple& in, Tuple* out);

struct FlowExtras {
  const SeqAdjust* seq_adjust = nullptr;  // NAT sequence adjustment, when the flow has one
  const Tuple* master = nullptr;          // original tuple of the master of a RELATED flow
  const FtpLineState* ftp_state = nullptr;    // flows with the ftp helper
  const Expectation* expectation = nullptr;   // the flow's pending expectation, if any
  const FlowAccounting* counters = nullptr;   // none: written as zero

  const FlowAccounting& CountersOrZero() const {
    static constexpr FlowAccounting kNone;
    return counters ? *counters : kNone;
  }
};

// The side state an engine event carries (pointers into `e`).
inline FlowExtras ExtrasOf(const FlowEvent& e) {
  return FlowExtras{e.has_seq_adjust ? &e.seq_adjust : nullptr, e.has_master ? &e.master : nullptr,
                    e.has_ftp_state ? &e.ftp_state : nullptr,
                    e.has_expectation ? &e.expectation : nullptr,
                    e.has_counters ? &e.counters : nullptr};
}

// `now` is the monotonic time the flow's deadline is measured against, `wall_now` the wall
// clock at the same moment.
void FlowToProto(const Flow& f, Nanos now, Nanos wall_now, const FlowExtras& extras,
                 proto::Flow* out);

struct DecodedFlow {
  Flow flow;  // index-valued fields (master) are kNoFlow: resolve master_tuple yourself
  std::optional<SeqAdjust> seq_adjust;
  std::optional<Tuple> master_tuple;
  std::optional<FtpLineState> ftp_state;
  // master is kNoFlow and master_tuple the flow's original tuple; expires = now + remaining.
  std::optional<Expectation> expectation;
  FlowAccounting counters;  // zero when the sender kept none
  Nanos remaining = 0;  // lifetime left after subtracting the age; may be <= 0 (expired)

  // As `*this = DecodedFlow{}`, without building and copying a 500-byte temporary: a
  // backup decodes millions of these a second, mostly without the optional parts.
  void Clear() {
    flow = Flow{};
    seq_adjust.reset();
    master_tuple.reset();
    ftp_state.reset();
    expectation.reset();
    counters = FlowAccounting{};
    remaining = 0;
  }
};

// The plain-valued fields of a flow as every encoding carries them (this message and sync's
// compact records), checked and converted in one place: FlowFromProto and the record
// decoder both go through these, so a value one accepts the other accepts too.
struct FlowScalars {
  uint64_t status = 0;  // bits the receiver decides for itself are dropped
  uint64_t zone = 0;
  uint32_t mark = 0;
  uint64_t id = 0;
  int64_t timeout_ms = 0;
  int64_t wall_time_ms = 0;     // when the record was taken
  int64_t created_wall_ms = 0;  // when the flow was created
};
// Sets out->flow's status, zone, mark, id, expires and created, and out->remaining.
absl::Status ScalarsToFlow(const FlowScalars& in, Nanos now, Nanos age, DecodedFlow* out);

struct TcpScalars {
  struct Dir {
    uint32_t td_end = 0, td_maxend = 0, td_maxwin = 0, td_maxack = 0;
    uint64_t td_scale = 0, flags = 0;
  };
  uint64_t state = 0;
  Dir dir[2];  // indexed by Direction
  uint64_t last_dir = 0, retrans = 0, last_index = 0, last_win = 0, last_wscale = 0,
           last_flags = 0;
  uint32_t last_seq = 0, last_ack = 0, last_end = 0;
};
absl::Status TcpScalarsToState(const TcpScalars& in, TcpConnState* out);

// The FTP helper's state of `extras` (`ftp`, `expectations`) into *out, as FlowToProto
// writes it; `family` is the master flow's.
void HelperStateToProto(const FlowExtras& extras, Nanos now, Family family, proto::Flow* out);
// The FTP helper's state (`ftp`, `expectations`) of a message into out (whose flow must be
// decoded already: an expectation takes its master's family and zone).
absl::Status HelperStateFromProto(const proto::Flow& in, Nanos now, Nanos age, DecodedFlow* out);

// Validates everything a peer or a file could get wrong (address lengths, families,
// protocol numbers, TCP state range, window scale) and returns a clear error instead of a
// flow that would misbehave. flow.expires = now + remaining.
absl::Status FlowFromProto(const proto::Flow& in, Nanos now, Nanos age, DecodedFlow* out);

}  // namespace ctsync::codec

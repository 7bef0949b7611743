// Compact flow records: the DATA payload's `Batch.records` (proto/ctsync/sync.proto), a run
// of length-prefixed, fixed-layout records with varints, replacing one protobuf FlowUpdate
// per event (about 2x smaller, and no per-event protobuf parse on the receiver).
//
// Neither side builds a proto::Flow per event (only the rare FTP helper state travels as a
// message). Encoding writes straight from the engine's Flow the values FlowToProto would put
// in a message; decoding reads the record whole into plain values and converts them with
// the codec's shared checks (codec::ScalarsToFlow, TcpScalarsToState, HelperStateFromProto:
// proto/flow_codec.h), the same ones FlowFromProto uses, so a record is accepted exactly
// when the message with the same values would be.
//
// Records are delta-coded against the previous record of the same batch (RecordContext):
// status, timeout, age and id as differences, the server address and the NAT address as
// "same as before". A batch is self-contained (each datagram can be lost or repaired on its
// own); a new batch starts from an empty context.
//
// Stateless apart from the caller's context and scratch message; any thread on data it owns.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "core/conntrack/flow_events.h"
#include "ctsync/flow.pb.h"
#include "sync/flow_update_codec.h"

namespace ctsync::sync {

// Version of the record layout, sent in Batch.record_format. A receiver rejects (counted
// bad_flows) a batch whose format it does not know instead of guessing.
inline constexpr uint32_t kRecordFormat = 1;

// What a record is delta-coded against: the previous record of the batch.
struct RecordContext {
  // A previous record's original destination and NAT address (length 0: none yet).
  uint8_t dst_len = 0;
  uint8_t nat_len = 0;
  char dst[16] = {};
  char nat[16] = {};
  uint32_t status = 0;
  int64_t timeout_ms = 0;
  int64_t age_ms = 0;
  uint64_t id = 0;
};

// Appends one record for `e` to *out and advances *ctx. `now` / `wall_now` as for
// codec::FlowToProto; the batch's wall time must be wall_now / 1 ms (the record carries no
// wall time of its own).
void AppendFlowRecord(const FlowEvent& e, Nanos now, Nanos wall_now, RecordContext* ctx,
                      std::string* out);

// Reads the record at *pos of `records` into *out, advancing *pos past it (also when the
// record's contents are rejected, so the caller can count it and go on). A framing error
// (truncated length) sets *pos to the end. `scratch` holds FTP helper state, when present.
absl::Status ReadFlowRecord(std::string_view records, size_t* pos, int64_t batch_wall_ms,
                            Nanos now, Nanos age, RecordContext* ctx, proto::Flow* scratch,
                            PeerFlowUpdate* out);

}  // namespace ctsync::sync

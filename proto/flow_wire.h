// FlowToProto followed by SerializeToString in one step: the same bytes (tests/proto checks
// them byte for byte), written straight from the engine's Flow into a buffer without
// building a proto::Flow. For the flow store's writer, which encodes every engine event:
// the message path spent more time filling and sizing the message than writing it.
// Stateless; any thread, on data it owns.
#pragma once

#include <string>

#include "proto/flow_codec.h"

namespace ctsync::codec {

// Appends the serialized ctsync.proto.Flow for `f` to *out (see FlowToProto for `now`,
// `wall_now`). Covers flows with a sequence adjustment and a master; returns false and
// appends nothing for a flow with FTP line state or an expectation (rare: the caller takes
// the message path for those). with_original = false leaves out the original tuple (the
// flow store's records, whose key holds it): the bytes of the message after
// clear_original().
bool AppendFlowWire(const Flow& f, Nanos now, Nanos wall_now, const FlowExtras& extras,
                    std::string* out, bool with_original = true);

}  // namespace ctsync::codec

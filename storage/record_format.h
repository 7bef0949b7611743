// The on-disk record of one flow in the store, snapshots and export files, owned by
// storage/. Pure functions, any thread.
//
// Key   = zone (2 bytes, big endian) | family (1) | protocol (1) | source address (4 or 16)
//         | destination address (4 or 16) | source port (2, BE) | destination port (2, BE):
//         the flow's original tuple in its zone, the same identity the table hashes, so a
//         DESTROY deletes by key and a later NEW of the same tuple overwrites. 16 bytes for
//         IPv4, 40 for IPv6.
// Value = CRC32C of (key | body) (4 bytes, little endian) | body, where body is a
//         serialized ctsync.proto.Flow. The checksum covers the key too, so a value moved
//         under another key is caught, and lets `verify` name the one bad record (RocksDB's
//         block checksums only name a block).
//         Since format version 2 the body leaves out the original tuple, which the key
//         already holds (24 of ~150 bytes for IPv4 TCP, 48 for IPv6): readers take it from
//         the key when the body has none, so records of both versions read the same, and a
//         version 2 store may hold some of each.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "core/conntrack/tuple.h"
#include "ctsync/flow.pb.h"

namespace ctsync::storage {

// Version of this layout and of the column families below; kept in the meta column
// family and in manifests. A reader refuses a newer one. 1: body with the original tuple;
// 2: without it (see Value above).
inline constexpr uint32_t kStoreFormatVersion = 2;

// Which flows a record belongs to: the node's own (live) or the peers' (external cache).
enum class Stream : uint8_t { kLive = 0, kExternal = 1 };
inline constexpr int kStreamCount = 2;
const char* StreamName(Stream s);  // "live" / "external"

// Column family names; "meta" holds node_id, format_version and last_wall_ms.
inline constexpr char kLiveColumnFamily[] = "live";
inline constexpr char kExternalColumnFamily[] = "external";
inline constexpr char kMetaColumnFamily[] = "meta";
inline constexpr char kMetaNodeId[] = "node_id";
inline constexpr char kMetaFormatVersion[] = "format_version";
inline constexpr char kMetaLastWallMs[] = "last_wall_ms";

std::string EncodeFlowKey(uint16_t zone, const Tuple& original);
// The same key appended to *out (the writer reuses its buffers: no allocation per event).
void AppendFlowKey(uint16_t zone, const Tuple& original, std::string* out);
absl::Status DecodeFlowKey(std::string_view key, uint16_t* zone, Tuple* original);
// For messages: "zone 0 tcp 192.0.2.1:1234 -> 198.51.100.7:80", or the key in hex when it
// does not decode.
std::string DescribeFlowKey(std::string_view key);

// Appends the value for `body` (a serialized proto::Flow) stored under `key`.
void EncodeFlowValue(std::string_view key, std::string_view body, std::string* out);
// The same for a value built in place: *value holds kFlowValueHeaderBytes (any) then the
// body; the checksum goes into those first bytes. Saves copying the body once more.
inline constexpr size_t kFlowValueHeaderBytes = 4;
void SealFlowValue(std::string_view key, std::string* value);

// Checks the value's checksum and parses it, taking the original tuple from the key when
// the body has none (version 2); the error says what is wrong (short value, checksum
// mismatch with both values, unparsable body, a key that does not decode). *crc gets the
// stored checksum.
absl::Status DecodeFlowValue(std::string_view key, std::string_view value, proto::Flow* out,
                             uint32_t* crc = nullptr);

// The key a proto::Flow is stored under (validates its original tuple and zone).
absl::Status FlowKeyOf(const proto::Flow& flow, std::string* key);

}  // namespace ctsync::storage

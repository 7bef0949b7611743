#include "storage/record_format.h"

#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/conntrack/flow_listing.h"
#include "proto/flow_codec.h"
#include "storage/crc32c.h"

namespace ctsync::storage {
namespace {

void PutBe16(uint16_t v, std::string* out) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v & 0xff));
}

uint16_t GetBe16(const char* p) {
  return static_cast<uint16_t>((static_cast<uint8_t>(p[0]) << 8) | static_cast<uint8_t>(p[1]));
}

uint32_t GetLe32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

uint32_t RecordCrc(std::string_view key, std::string_view body) {
  return Crc32cExtend(Crc32c(key), body.data(), body.size());
}

}  // namespace

const char* StreamName(Stream s) { return s == Stream::kLive ? "live" : "external"; }

std::string EncodeFlowKey(uint16_t zone, const Tuple& t) {
  std::string out;
  AppendFlowKey(zone, t, &out);
  return out;
}

void AppendFlowKey(uint16_t zone, const Tuple& t, std::string* out) {
  const size_t n = t.family == Family::kIpv6 ? 16 : 4;
  out->reserve(out->size() + 8 + 2 * n);
  PutBe16(zone, out);
  out->push_back(static_cast<char>(t.family));
  out->push_back(static_cast<char>(t.proto));
  out->append(reinterpret_cast<const char*>(t.src.bytes.data()), n);
  out->append(reinterpret_cast<const char*>(t.dst.bytes.data()), n);
  PutBe16(t.sport, out);
  PutBe16(t.dport, out);
}

absl::Status DecodeFlowKey(std::string_view key, uint16_t* zone, Tuple* t) {
  if (key.size() != 16 && key.size() != 40)
    return absl::DataLossError(absl::StrCat("key of ", key.size(), " bytes (want 16 or 40)"));
  const size_t n = key.size() == 16 ? 4 : 16;
  const auto family = static_cast<Family>(static_cast<uint8_t>(key[2]));
  if ((n == 4 && family != Family::kIpv4) || (n == 16 && family != Family::kIpv6))
    return absl::DataLossError("key family does not match its length");
  *zone = GetBe16(key.data());
  *t = Tuple{};
  t->family = family;
  t->proto = static_cast<uint8_t>(key[3]);
  std::memcpy(t->src.bytes.data(), key.data() + 4, n);
  std::memcpy(t->dst.bytes.data(), key.data() + 4 + n, n);
  t->sport = GetBe16(key.data() + 4 + 2 * n);
  t->dport = GetBe16(key.data() + 6 + 2 * n);
  return absl::OkStatus();
}

std::string DescribeFlowKey(std::string_view key) {
  uint16_t zone;
  Tuple t;
  if (!DecodeFlowKey(key, &zone, &t).ok())
    return absl::StrCat("key 0x",
                        absl::BytesToHexString(absl::string_view(key.data(), key.size())));
  const bool v6 = t.family == Family::kIpv6;
  return absl::StrFormat("zone %d %s %s%s%s:%d -> %s%s%s:%d", zone,
                         L4ProtoName(t.proto, ListingFormat::kConntrackL), v6 ? "[" : "",
                         t.src.ToString(t.family), v6 ? "]" : "", t.sport, v6 ? "[" : "",
                         t.dst.ToString(t.family), v6 ? "]" : "", t.dport);
}

void EncodeFlowValue(std::string_view key, std::string_view body, std::string* out) {
  const uint32_t crc = RecordCrc(key, body);
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  out->append(body.data(), body.size());
}

void SealFlowValue(std::string_view key, std::string* value) {
  const uint32_t crc =
      RecordCrc(key, std::string_view(*value).substr(kFlowValueHeaderBytes));
  for (size_t i = 0; i < kFlowValueHeaderBytes; ++i)
    (*value)[i] = static_cast<char>((crc >> (8 * i)) & 0xff);
}

absl::Status DecodeFlowValue(std::string_view key, std::string_view value, proto::Flow* out,
                             uint32_t* crc) {
  if (value.size() < 4)
    return absl::DataLossError(absl::StrCat("value of ", value.size(), " bytes is too short"));
  const uint32_t stored = GetLe32(value.data());
  if (crc != nullptr) *crc = stored;
  const std::string_view body = value.substr(4);
  const uint32_t actual = RecordCrc(key, body);
  if (stored != actual)
    return absl::DataLossError(
        absl::StrFormat("checksum mismatch (stored %08x, computed %08x)", stored, actual));
  if (!out->ParseFromArray(body.data(), static_cast<int>(body.size())))
    return absl::DataLossError("checksum ok but the flow message does not parse");
  if (!out->has_original()) {
    uint16_t zone;
    Tuple original;
    if (absl::Status s = DecodeFlowKey(key, &zone, &original); !s.ok())
      return absl::DataLossError(absl::StrCat("checksum ok but the key is bad: ", s.message()));
    codec::TupleToProto(original, out->mutable_original());
  }
  return absl::OkStatus();
}

absl::Status FlowKeyOf(const proto::Flow& flow, std::string* key) {
  Tuple t;
  if (absl::Status s = codec::TupleFromProto(flow.original(), &t); !s.ok()) return s;
  if (flow.zone() > 0xffff) return absl::InvalidArgumentError("zone out of range");
  *key = EncodeFlowKey(static_cast<uint16_t>(flow.zone()), t);
  return absl::OkStatus();
}

}  // namespace ctsync::storage

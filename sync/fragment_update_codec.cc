#include "sync/fragment_update_codec.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"

namespace ctsync::sync {

namespace {

std::string AddressBytes(const IpAddress& a, Family f) {
  const size_t n = f == Family::kIpv4 ? 4 : 16;
  return std::string(reinterpret_cast<const char*>(a.bytes.data()), n);
}

}  // namespace

void EncodeFragmentUpdate(const DefragEvent& e, Nanos now, proto::FragmentUpdate* out) {
  out->Clear();
  out->set_zone(e.key.zone);
  if (e.kind == DefragEvent::Kind::kQueued) {
    out->set_type(proto::FragmentUpdate::QUEUED);
    out->set_frame(e.frame.data(), e.frame.size());
    // Rounded down: the copy never outlives the original.
    const Nanos left = std::max<Nanos>(0, e.deadline - now);
    out->set_lifetime_ms(static_cast<uint32_t>(std::min<Nanos>(left / kNanosPerMilli, UINT32_MAX)));
    return;
  }
  out->set_type(proto::FragmentUpdate::GONE);
  out->set_family(e.key.family == Family::kIpv4 ? 4 : 6);
  out->set_src(AddressBytes(e.key.src, e.key.family));
  out->set_dst(AddressBytes(e.key.dst, e.key.family));
  out->set_id(e.key.id);
  out->set_proto(e.key.proto);
}

absl::Status DecodeFragmentUpdate(const proto::FragmentUpdate& in, Nanos age,
                                  PeerFragmentUpdate* out) {
  if (in.zone() > UINT16_MAX) return absl::InvalidArgumentError("fragment: zone out of range");
  out->key = FragmentQueueKey{};
  out->key.zone = static_cast<uint16_t>(in.zone());
  out->frame.clear();
  out->lifetime = 0;
  switch (in.type()) {
    case proto::FragmentUpdate::QUEUED: {
      out->kind = DefragEvent::Kind::kQueued;
      if (in.frame().empty() || in.frame().size() > kMaxFragmentFrame)
        return absl::InvalidArgumentError(
            absl::StrCat("fragment: frame of ", in.frame().size(), " bytes"));
      const auto* p = reinterpret_cast<const uint8_t*>(in.frame().data());
      out->frame.assign(p, p + in.frame().size());
      out->lifetime = Nanos{in.lifetime_ms()} * kNanosPerMilli - std::max<Nanos>(0, age);
      return absl::OkStatus();
    }
    case proto::FragmentUpdate::GONE: {
      out->kind = DefragEvent::Kind::kGone;
      const size_t n = in.family() == 4 ? 4 : in.family() == 6 ? 16 : 0;
      if (n == 0) return absl::InvalidArgumentError("fragment: family must be 4 or 6");
      if (in.src().size() != n || in.dst().size() != n)
        return absl::InvalidArgumentError("fragment: address length does not fit the family");
      if (in.proto() > UINT8_MAX || (n == 16 && in.proto() != 0))
        return absl::InvalidArgumentError("fragment: protocol out of range");
      const auto* src = reinterpret_cast<const uint8_t*>(in.src().data());
      const auto* dst = reinterpret_cast<const uint8_t*>(in.dst().data());
      out->key.family = n == 4 ? Family::kIpv4 : Family::kIpv6;
      out->key.src = n == 4 ? IpAddress::FromV4Bytes(src) : IpAddress::FromV6Bytes(src);
      out->key.dst = n == 4 ? IpAddress::FromV4Bytes(dst) : IpAddress::FromV6Bytes(dst);
      out->key.id = in.id();
      out->key.proto = static_cast<uint8_t>(in.proto());
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat("fragment: unknown type ", in.type()));
  }
}

bool ApplyFragmentUpdate(const PeerFragmentUpdate& u, Defragmenter& defrag, Nanos now) {
  if (u.kind == DefragEvent::Kind::kGone) return defrag.ImportGone(u.key);
  return defrag.Import(u.frame, u.key.zone, u.lifetime, now).kind ==
         DefragResult::Kind::kQueued;
}

}  // namespace ctsync::sync

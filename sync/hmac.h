// HMAC-SHA256 over sync datagrams. Every datagram a node sends carries a tag computed with
// the cluster's shared key; receivers verify it in constant time before parsing anything
// else. Stateless and thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "absl/types/span.h"

namespace ctsync::sync {

inline constexpr size_t kHmacSize = 32;
using HmacTag = std::array<uint8_t, kHmacSize>;

HmacTag ComputeHmac(absl::Span<const uint8_t> key, absl::Span<const uint8_t> data);

// Constant-time comparison of the tag over `data` with `tag`.
bool VerifyHmac(absl::Span<const uint8_t> key, absl::Span<const uint8_t> data,
                absl::Span<const uint8_t> tag);

}  // namespace ctsync::sync

// Small helpers shared by the core/io tests: hex <-> bytes and parsed addresses.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/types/span.h"
#include "core/net/ip_address.h"
#include "core/pipeline/topology.h"

namespace ctsync::io_test {

inline std::vector<uint8_t> Hex(std::string_view text) {
  std::vector<uint8_t> out;
  int hi = -1;
  for (char c : text) {
    int v = (c >= '0' && c <= '9')   ? c - '0'
            : (c >= 'a' && c <= 'f') ? c - 'a' + 10
            : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                     : -1;
    if (v < 0) continue;  // spaces and separators
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<uint8_t>(hi * 16 + v));
      hi = -1;
    }
  }
  return out;
}

inline std::string ToHex(absl::Span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : bytes) {
    s.push_back(kDigits[b >> 4]);
    s.push_back(kDigits[b & 15]);
  }
  return s;
}

// Recomputes the ICMPv6 checksum of an untagged IPv6 frame with no extension headers, with
// its own one's-complement sum (independent of core/packet/checksum).
inline void FixIcmpv6Checksum(std::vector<uint8_t>& f) {
  const size_t icmp = 14 + 40;
  const uint32_t len = (uint32_t{f[18]} << 8) | f[19];
  f[icmp + 2] = f[icmp + 3] = 0;
  uint32_t sum = len + 58;
  for (size_t i = 14 + 8; i < icmp; i += 2) sum += (f[i] << 8) | f[i + 1];
  for (size_t i = icmp; i < icmp + len; i += 2)
    sum += (f[i] << 8) | (i + 1 < icmp + len ? f[i + 1] : 0);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  f[icmp + 2] = static_cast<uint8_t>(~sum >> 8);
  f[icmp + 3] = static_cast<uint8_t>(~sum);
}

inline IpAddress Ip(std::string_view text) { return *IpAddress::Parse(text); }
inline MacAddress Mac(std::string_view text) { return *ParseMac(text); }

}  // namespace ctsync::io_test

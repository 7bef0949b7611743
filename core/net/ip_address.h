// IPv4/IPv6 addresses and the address family, as used in tuples, rules and listings.
// A plain value type: 16 bytes in network order, an IPv4 address in the first four with
// the rest zero. The family travels beside it (in the tuple), which keeps tuples small.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace ctsync {

// Numbers match the kernel's l3protonum as conntrack prints it (AF_INET, AF_INET6).
enum class Family : uint8_t { kNone = 0, kIpv4 = 2, kIpv6 = 10 };

struct IpAddress {
  std::array<uint8_t, 16> bytes{};

  static IpAddress FromV4(uint32_t host_order) {
    IpAddress a;
    a.bytes[0] = host_order >> 24;
    a.bytes[1] = host_order >> 16;
    a.bytes[2] = host_order >> 8;
    a.bytes[3] = host_order;
    return a;
  }
  static IpAddress FromV4Bytes(const uint8_t* p) {
    IpAddress a;
    std::memcpy(a.bytes.data(), p, 4);
    return a;
  }
  static IpAddress FromV6Bytes(const uint8_t* p) {
    IpAddress a;
    std::memcpy(a.bytes.data(), p, 16);
    return a;
  }
  // Parses dotted-quad or RFC 4291 text; sets *family when given.
  static std::optional<IpAddress> Parse(std::string_view text, Family* family = nullptr);

  uint32_t v4() const {
    return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) |
           bytes[3];
  }
  // Text as inet_ntop prints it (conntrack -L uses the same).
  std::string ToString(Family family) const;
  bool IsZero() const {
    for (uint8_t b : bytes)
      if (b) return false;
    return true;
  }

  friend bool operator==(const IpAddress&, const IpAddress&) = default;
  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const IpAddress& a) {
    return H::combine(std::move(h), a.bytes);
  }
};

// An address with a prefix length, e.g. 192.0.2.0/24; matching is by masked compare.
struct IpPrefix {
  Family family = Family::kNone;
  IpAddress address;
  int length = 0;

  static std::optional<IpPrefix> Parse(std::string_view text);
  // The network of `address`/`length` (host bits cleared).
  static IpPrefix Of(Family family, const IpAddress& address, int length);
  bool Contains(Family f, const IpAddress& a) const;
};

}  // namespace ctsync

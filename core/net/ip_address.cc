#include "core/net/ip_address.h"

#include <arpa/inet.h>

#include <charconv>

namespace ctsync {

std::optional<IpAddress> IpAddress::Parse(std::string_view text, Family* family) {
  std::string s(text);
  IpAddress a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    if (family) *family = Family::kIpv4;
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    if (family) *family = Family::kIpv6;
    return a;
  }
  return std::nullopt;
}

std::string IpAddress::ToString(Family family) const {
  char buf[INET6_ADDRSTRLEN];
  const int af = family == Family::kIpv6 ? AF_INET6 : AF_INET;
  if (inet_ntop(af, bytes.data(), buf, sizeof(buf)) == nullptr) return "?";
  return buf;
}

std::optional<IpPrefix> IpPrefix::Parse(std::string_view text) {
  IpPrefix p;
  const size_t slash = text.find('/');
  auto addr = IpAddress::Parse(text.substr(0, slash), &p.family);
  if (!addr) return std::nullopt;
  p.address = *addr;
  const int max = p.family == Family::kIpv4 ? 32 : 128;
  p.length = max;
  if (slash != std::string_view::npos) {
    std::string_view len = text.substr(slash + 1);
    int n = -1;
    auto [ptr, ec] = std::from_chars(len.data(), len.data() + len.size(), n);
    if (ec != std::errc() || ptr != len.data() + len.size()) {
      // iptables also accepts a dotted netmask for IPv4.
      Family mf;
      auto mask = IpAddress::Parse(len, &mf);
      if (!mask || mf != Family::kIpv4) return std::nullopt;
      uint32_t m = mask->v4();
      n = 0;
      while (n < 32 && (m & (0x80000000u >> n))) ++n;
      if ((m << n) != 0 && n < 32) return std::nullopt;
    }
    if (n < 0 || n > max) return std::nullopt;
    p.length = n;
  }
  return Of(p.family, p.address, p.length);
}

IpPrefix IpPrefix::Of(Family family, const IpAddress& address, int length) {
  IpPrefix p{family, address, length};
  // Keep only the network part so Contains() can compare directly.
  for (int i = 0; i < 16; ++i) {
    int bits = length - 8 * i;
    uint8_t m = bits >= 8 ? 0xff : bits <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits));
    p.address.bytes[i] &= m;
  }
  return p;
}

bool IpPrefix::Contains(Family f, const IpAddress& a) const {
  if (f != family) return false;
  for (int i = 0; i < 16; ++i) {
    int bits = length - 8 * i;
    if (bits <= 0) break;
    uint8_t m = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((a.bytes[i] & m) != address.bytes[i]) return false;
  }
  return true;
}

}  // namespace ctsync

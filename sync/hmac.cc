#include "sync/hmac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace ctsync::sync {

HmacTag ComputeHmac(absl::Span<const uint8_t> key, absl::Span<const uint8_t> data) {
  HmacTag tag{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data.data(), data.size(),
       tag.data(), &len);
  return tag;
}

bool VerifyHmac(absl::Span<const uint8_t> key, absl::Span<const uint8_t> data,
                absl::Span<const uint8_t> tag) {
  if (tag.size() != kHmacSize) return false;
  const HmacTag expected = ComputeHmac(key, data);
  return CRYPTO_memcmp(expected.data(), tag.data(), kHmacSize) == 0;
}

}  // namespace ctsync::sync

// Fuzz target: ctsyncd's configuration text (tools/ctsyncd/config.h ParseConfig), then the
// topology built from an accepted config. Configs whose interfaces ask for "mac auto" skip
// the topology step: it reads /sys, which is not what is under test here.
//
// Invariant: an accepted config builds a topology or returns an error; neither may crash.
#include <cstdint>
#include <string>
#include <string_view>

#include "tools/ctsyncd/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cfg = ctsync::daemon::ParseConfig(text, "fuzz.conf");
  if (!cfg.ok()) return 0;
  for (const ctsync::daemon::InterfaceConfig& i : cfg->interfaces) {
    if (!i.mac) return 0;
  }
  (void)ctsync::daemon::BuildTopology(*cfg);
  return 0;
}

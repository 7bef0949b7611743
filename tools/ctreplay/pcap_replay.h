// ctreplay's pcap mode: every frame of a capture (Ethernet link type) goes through the
// engine on the corpus topology, entering the interface its destination MAC belongs to, at
// the capture's timestamps; the result is the final table as `conntrack -L` prints it.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace ctsync::ctreplay {

absl::StatusOr<std::string> ReplayPcap(const std::string& pcap_path,
                                       const std::string& rules_v4_path,
                                       const std::string& rules_v6_path, uint64_t seed);

}  // namespace ctsync::ctreplay

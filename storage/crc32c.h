// CRC32C (Castagnoli), the per-record and per-file checksum of the flow store, snapshots
// and export files. Uses the SSE4.2 crc32 instruction when the CPU has it, a table
// otherwise; both give the same value. Pure functions, any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ctsync::storage {

// Extends `crc` (the value returned for the data so far; 0 to start) over `data`.
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);

inline uint32_t Crc32c(std::string_view data) { return Crc32cExtend(0, data.data(), data.size()); }

}  // namespace ctsync::storage

// CRC-32C (Castagnoli, the iSCSI polynomial 0x1EDC6F41, reflected), used to
// check every spool frame and header. Hardware CRC32 instructions (SSE 4.2)
// when the CPU has them, else a slicing-by-8 table. Thread-safe (pure).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mamori::telemetry::crc32c {

// Returns the CRC-32C of A ‖ data, where `crc` is the CRC-32C of A
// (0 for the empty string). Extend(Extend(0, a), b) == Value(a ‖ b).
uint32_t Extend(uint32_t crc, const void* data, size_t n);

// The same without the hardware path (the table-driven code every host runs
// when the CPU lacks SSE 4.2); tests compare the two.
uint32_t ExtendPortable(uint32_t crc, const void* data, size_t n);

inline uint32_t Value(const void* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(std::string_view s) { return Extend(0, s.data(), s.size()); }

}  // namespace mamori::telemetry::crc32c

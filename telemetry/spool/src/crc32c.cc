#include "crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace mamori::telemetry::crc32c {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // 0x1EDC6F41 reflected

using Tables = std::array<std::array<uint32_t, 256>, 8>;

constexpr Tables MakeTables() {
  Tables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i) {
    for (size_t s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  }
  return t;
}

constexpr Tables kTables = MakeTables();

uint32_t ExtendSoftware(uint32_t l, const uint8_t* p, size_t n) {
  while (n >= 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    lo ^= l;  // little-endian hosts only (the spool format is little-endian too)
    l = kTables[7][lo & 0xff] ^ kTables[6][(lo >> 8) & 0xff] ^ kTables[5][(lo >> 16) & 0xff] ^ kTables[4][lo >> 24] ^
        kTables[3][hi & 0xff] ^ kTables[2][(hi >> 8) & 0xff] ^ kTables[1][(hi >> 16) & 0xff] ^ kTables[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) l = (l >> 8) ^ kTables[0][(l ^ *p++) & 0xff];
  return l;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t ExtendHardware(uint32_t l, const uint8_t* p, size_t n) {
  uint64_t l64 = l;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    l64 = _mm_crc32_u64(l64, v);
    p += 8;
    n -= 8;
  }
  auto l32 = static_cast<uint32_t>(l64);
  while (n-- > 0) l32 = _mm_crc32_u8(l32, *p++);
  return l32;
}

bool HaveHardware() {
  static const bool have = __builtin_cpu_supports("sse4.2");
  return have;
}
#endif

}  // namespace

uint32_t Extend(uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t l = crc ^ 0xffffffffu;
#if defined(__x86_64__)
  if (HaveHardware()) return ExtendHardware(l, p, n) ^ 0xffffffffu;
#endif
  return ExtendSoftware(l, p, n) ^ 0xffffffffu;
}

uint32_t ExtendPortable(uint32_t crc, const void* data, size_t n) {
  return ExtendSoftware(crc ^ 0xffffffffu, static_cast<const uint8_t*>(data), n) ^ 0xffffffffu;
}

}  // namespace mamori::telemetry::crc32c

// On-disk layout of the spool, format version 1 (docs/telemetry-spool.md has
// the full description and the bump rules). Every integer is little-endian.
//
// Segment file "<first sequence, 20 decimal digits>.seg":
//   header (32 bytes)
//     0  8  magic "MAMSPOOL"
//     8  4  format version (kFormatVersion)
//    12  4  header size (32)
//    16  8  first sequence: the sequence the first frame of this file carries
//    24  4  zero
//    28  4  CRC-32C of bytes 0..27
//   frames, back to back, no padding
//     0  4  frame magic kFrameMagic
//     4  4  CRC-32C of (payload ‖ frame bytes 8..23)
//     8  8  sequence
//    16  4  payload length (<= kMaxPayloadBytes)
//    20  1  priority (0 low, 1 normal, 2 critical)
//    21  1  flags (kFlagDropReport; every other bit must be zero in version 1)
//    22  2  zero
//    24  n  payload
// The CRC covers the payload first so that appenders can checksum the payload
// outside the spool's lock and extend it with the header under the lock.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mamori::telemetry::spool_format {

inline constexpr uint32_t kFormatVersion = 1;
inline constexpr char kSegmentMagic[8] = {'M', 'A', 'M', 'S', 'P', 'O', 'O', 'L'};
inline constexpr size_t kSegmentHeaderSize = 32;
inline constexpr uint32_t kFrameMagic = 0x9E3CA7D1u;
inline constexpr size_t kFrameHeaderSize = 24;
inline constexpr uint32_t kMaxPayloadBytes = 4u << 20;
inline constexpr uint8_t kMaxPriority = 2;
inline constexpr uint8_t kFlagDropReport = 0x01;  // payload is a drop report made by Spool::AppendDropReport
inline constexpr uint8_t kKnownFlags = kFlagDropReport;

// "<dir>/<20-digit first_seq>.seg"
std::string SegmentPath(const std::string& dir, uint64_t first_seq);
// Parses a directory entry name "<20 digits>.seg"; nullopt for anything else.
std::optional<uint64_t> ParseSegmentName(std::string_view name);

// Writes the 32-byte header of a current-version segment into out[0..31].
void EncodeSegmentHeader(uint64_t first_seq, char* out);

struct SegmentHeader {
  uint32_t version = 0;
  uint64_t first_seq = 0;
};
enum class HeaderCheck {
  kOk,
  kTorn,     // shorter than a header, or all zero bytes: an interrupted creation
  kCorrupt,  // wrong magic, size or checksum
  kNewer,    // written by a newer format version this build cannot read
};
// `data` is the start of the file (up to kSegmentHeaderSize bytes).
HeaderCheck DecodeSegmentHeader(std::string_view data, SegmentHeader* out);

// Fills the 24-byte frame header. `payload_crc` is crc32c::Value(payload).
void EncodeFrameHeader(uint64_t seq, uint32_t payload_len, uint8_t priority, uint8_t flags, uint32_t payload_crc,
                       char* out);

struct FrameHeader {
  uint64_t seq = 0;
  uint32_t payload_len = 0;
  uint8_t priority = 0;
  uint8_t flags = 0;
  uint32_t crc = 0;
};
// Checks magic, length bound, priority, flags and reserved bytes of a header
// (not the CRC); false with `why` set when they are not plausible.
bool DecodeFrameHeader(const char* header, FrameHeader* out, const char** why);
// True when the CRC stored in `h` matches `payload` and the header bytes.
bool FrameChecksumMatches(const char* header, std::string_view payload, const FrameHeader& h);

inline void PutU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
inline void PutU64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
inline uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
inline uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace mamori::telemetry::spool_format

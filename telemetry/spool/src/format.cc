#include "format.h"

#include <cstdio>
#include <cstring>

#include "crc32c.h"

namespace mamori::telemetry::spool_format {

std::string SegmentPath(const std::string& dir, uint64_t first_seq) {
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.seg", static_cast<unsigned long long>(first_seq));
  return dir + "/" + name;
}

std::optional<uint64_t> ParseSegmentName(std::string_view name) {
  if (name.size() != 24 || name.substr(20) != ".seg") return std::nullopt;
  uint64_t v = 0;
  for (size_t i = 0; i < 20; ++i) {
    char c = name[i];
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

void EncodeSegmentHeader(uint64_t first_seq, char* out) {
  std::memcpy(out, kSegmentMagic, 8);
  PutU32(out + 8, kFormatVersion);
  PutU32(out + 12, static_cast<uint32_t>(kSegmentHeaderSize));
  PutU64(out + 16, first_seq);
  PutU32(out + 24, 0);
  PutU32(out + 28, crc32c::Value(out, 28));
}

HeaderCheck DecodeSegmentHeader(std::string_view data, SegmentHeader* out) {
  if (data.size() < kSegmentHeaderSize) return HeaderCheck::kTorn;
  const char* p = data.data();
  bool all_zero = true;
  for (size_t i = 0; i < kSegmentHeaderSize; ++i) all_zero = all_zero && p[i] == 0;
  if (all_zero) return HeaderCheck::kTorn;
  if (std::memcmp(p, kSegmentMagic, 8) != 0) return HeaderCheck::kCorrupt;
  if (GetU32(p + 28) != crc32c::Value(p, 28)) return HeaderCheck::kCorrupt;
  out->version = GetU32(p + 8);
  out->first_seq = GetU64(p + 16);
  if (out->version > kFormatVersion) return HeaderCheck::kNewer;
  if (out->version == 0 || GetU32(p + 12) != kSegmentHeaderSize) return HeaderCheck::kCorrupt;
  return HeaderCheck::kOk;
}

void EncodeFrameHeader(uint64_t seq, uint32_t payload_len, uint8_t priority, uint8_t flags, uint32_t payload_crc,
                       char* out) {
  PutU32(out, kFrameMagic);
  PutU64(out + 8, seq);
  PutU32(out + 16, payload_len);
  out[20] = static_cast<char>(priority);
  out[21] = static_cast<char>(flags);
  out[22] = 0;
  out[23] = 0;
  PutU32(out + 4, crc32c::Extend(payload_crc, out + 8, kFrameHeaderSize - 8));
}

bool DecodeFrameHeader(const char* header, FrameHeader* out, const char** why) {
  if (GetU32(header) != kFrameMagic) {
    *why = "bad frame magic";
    return false;
  }
  out->crc = GetU32(header + 4);
  out->seq = GetU64(header + 8);
  out->payload_len = GetU32(header + 16);
  out->priority = static_cast<uint8_t>(header[20]);
  out->flags = static_cast<uint8_t>(header[21]);
  if (out->payload_len > kMaxPayloadBytes) {
    *why = "frame length out of range";
    return false;
  }
  if (out->priority > kMaxPriority || (out->flags & ~kKnownFlags) != 0 || header[22] != 0 || header[23] != 0) {
    *why = "bad frame header fields";
    return false;
  }
  if (out->seq == 0) {
    *why = "frame sequence 0";
    return false;
  }
  return true;
}

bool FrameChecksumMatches(const char* header, std::string_view payload, const FrameHeader& h) {
  uint32_t crc = crc32c::Extend(crc32c::Value(payload), header + 8, kFrameHeaderSize - 8);
  return crc == h.crc;
}

}  // namespace mamori::telemetry::spool_format

#include "state_file.h"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>

#include "crc32c.h"

namespace mamori::telemetry {
namespace {

constexpr std::string_view kMagic = "mamori-spool-state ";

bool ParseU64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

}  // namespace

std::string EncodeState(const SpoolState& s) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "mamori-spool-state %u\nacked %" PRIu64 "\nfloor %" PRIu64 "\ndrops_low %" PRIu64
                "\ndrops_normal %" PRIu64 "\n",
                kStateVersion, s.acked, s.floor, s.drops_low, s.drops_normal);
  std::string out = buf;
  std::snprintf(buf, sizeof buf, "crc32c %08x\n", crc32c::Value(out));
  out += buf;
  return out;
}

Result<SpoolState> DecodeState(std::string_view text) {
  auto damaged = [](const std::string& why) { return DataLossError("spool state file damaged: " + why); };
  if (text.substr(0, kMagic.size()) != kMagic) return damaged("no header line");
  size_t crc_pos = text.rfind("crc32c ");
  if (crc_pos == std::string_view::npos || (crc_pos > 0 && text[crc_pos - 1] != '\n')) return damaged("no checksum");
  std::string_view crc_line = text.substr(crc_pos + 7);
  if (crc_line.size() < 8) return damaged("short checksum");
  uint32_t want = static_cast<uint32_t>(std::strtoul(std::string(crc_line.substr(0, 8)).c_str(), nullptr, 16));
  if (crc32c::Value(text.substr(0, crc_pos)) != want) return damaged("checksum mismatch");

  SpoolState s;
  std::string_view body = text.substr(0, crc_pos);
  bool first = true;
  while (!body.empty()) {
    size_t nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body = nl == std::string_view::npos ? std::string_view() : body.substr(nl + 1);
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos) return damaged("bad line");
    std::string_view key = line.substr(0, sp), value = line.substr(sp + 1);
    uint64_t v = 0;
    if (!ParseU64(value, &v)) return damaged("bad value for " + std::string(key));
    if (first) {
      first = false;
      if (v > kStateVersion) {
        return FailedPreconditionError("spool state file has format version " + std::to_string(v) +
                                       "; this build reads up to " + std::to_string(kStateVersion));
      }
      continue;
    }
    if (key == "acked")
      s.acked = v;
    else if (key == "floor")
      s.floor = v;
    else if (key == "drops_low")
      s.drops_low = v;
    else if (key == "drops_normal")
      s.drops_normal = v;
    // unknown keys: written by a newer minor revision, ignored
  }
  if (s.floor == 0) s.floor = 1;
  return s;
}

}  // namespace mamori::telemetry

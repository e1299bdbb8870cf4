// The spool's "state" file: what must survive a restart besides the records.
// Text, written whole and atomically (temporary file + rename), version 1:
//
//   mamori-spool-state 1
//   acked <sequence>          everything <= acked is stored by the server
//   floor <sequence>          every sequence < floor was committed when this was written
//   drops_low <count>         drops not yet reported
//   drops_normal <count>
//   crc32c <8 hex digits>     CRC-32C of all bytes before this line
//
// Unknown keys are ignored (adding one needs no version bump); a higher
// version is refused. Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "mamori/common/status.h"

namespace mamori::telemetry {

inline constexpr uint32_t kStateVersion = 1;
inline constexpr char kStateFileName[] = "state";

struct SpoolState {
  uint64_t acked = 0;
  uint64_t floor = 1;
  uint64_t drops_low = 0;
  uint64_t drops_normal = 0;
};

std::string EncodeState(const SpoolState& state);
// kDataLoss for a damaged file, kFailedPrecondition for a newer version.
Result<SpoolState> DecodeState(std::string_view text);

}  // namespace mamori::telemetry

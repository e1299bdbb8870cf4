// Internal: the per-top-level-file budget shared by every nesting level.
// Not thread-safe: one scan of one top-level object owns it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "mamori/scanner/limits.h"

namespace mamori::scanner::internal {

struct Budget {
  explicit Budget(const ScanLimits& l)
      : limits(l), deadline(std::chrono::steady_clock::now() + l.max_scan_time) {}

  const ScanLimits& limits;
  std::chrono::steady_clock::time_point deadline;
  uint64_t extracted_bytes = 0;
  uint64_t members = 0;
  // Set when a limit that ends the whole top-level scan was hit (time,
  // total-size, member-count): callers stop opening further objects.
  bool exhausted = false;
  std::vector<std::string> incomplete;  // "reason (object path)"

  bool TimeUp() const { return std::chrono::steady_clock::now() >= deadline; }
  std::chrono::milliseconds Remaining() const {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return left.count() > 0 ? left : std::chrono::milliseconds(0);
  }
  void Incomplete(const std::string& reason, const std::string& object) {
    incomplete.push_back(reason + " (" + object + ")");
  }
};

}  // namespace mamori::scanner::internal

// Scan limits. Hitting any of them makes the object "incomplete: <limit>" —
// never clean — and the scan goes on with the next object. Defaults follow
// ClamAV's (MaxRecursion, MaxFileSize, MaxScanSize, MaxFiles, MaxScanTime).
#pragma once

#include <chrono>
#include <cstdint>

namespace mamori::scanner {

struct ScanLimits {
  // Containers/mail nested deeper than this are not opened (top-level file = 0).
  int max_depth = 16;
  // A member larger than this is scanned only up to this many bytes.
  uint64_t max_member_size = 100ull << 20;
  // Total bytes decompressed out of one top-level file, all depths together.
  uint64_t max_total_extracted = 400ull << 20;
  // Members (archive entries, mail parts) per top-level file.
  uint64_t max_members = 10000;
  // Decompressed bytes / compressed bytes of one container; checked once a
  // container has produced more than `ratio_floor_bytes` (small files may
  // legitimately compress very well).
  uint64_t max_ratio = 250;
  uint64_t ratio_floor_bytes = 1ull << 20;
  // Wall time for one top-level file including everything inside it.
  std::chrono::milliseconds max_scan_time{120000};
  // Top-level files up to this size are read into memory in one pass; larger
  // ones are hashed while streaming and pattern-scanned through the file.
  uint64_t max_in_memory = 64ull << 20;
};

}  // namespace mamori::scanner

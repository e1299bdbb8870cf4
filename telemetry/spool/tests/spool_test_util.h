// Helpers shared by the spool tests.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mamori/telemetry/spool.h"

namespace mamori::telemetry::testing {

// Deterministic payload for (key, size): tests can check content by key.
std::string Payload(uint64_t key, size_t size);

// Options for a tiny spool in `dir` with manual commits (sync_interval 0).
SpoolOptions SmallOptions(const std::string& dir);

std::unique_ptr<Spool> OpenOrDie(const SpoolOptions& options);

// A record copied out of a SpoolBatch.
struct Owned {
  uint64_t sequence;
  Priority priority;
  std::string payload;
};
struct Drained {
  std::vector<Owned> records;
  std::vector<LostRange> lost;
  uint64_t last = 0;  // highest sequence covered
};
// Reads batches until an empty one; with `ack`, acknowledges each batch.
Drained Drain(Spool& spool, bool ack = false, size_t max_records = 1000);

// Sorted paths of the segment files in `dir`.
std::vector<std::string> SegmentFiles(const std::string& dir);
uint64_t FileSize(const std::string& path);
std::string ReadAll(const std::string& path);
void WriteAll(const std::string& path, const std::string& data);
void FlipBit(const std::string& path, uint64_t offset);

}  // namespace mamori::telemetry::testing

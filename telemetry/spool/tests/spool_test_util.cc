#include "spool_test_util.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace mamori::telemetry::testing {

std::string Payload(uint64_t key, size_t size) {
  std::string s = "event-" + std::to_string(key) + ":";
  uint64_t x = key * 0x9E3779B97F4A7C15ull + 1;
  while (s.size() < size) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s.push_back(static_cast<char>(x));
  }
  s.resize(size);
  return s;
}

SpoolOptions SmallOptions(const std::string& dir) {
  SpoolOptions o;
  o.dir = dir;
  o.max_bytes = 1 << 20;
  o.segment_bytes = 4096;
  o.sync_interval = std::chrono::milliseconds(0);
  return o;
}

std::unique_ptr<Spool> OpenOrDie(const SpoolOptions& options) {
  auto s = Spool::Open(options);
  INFO(s.status().ToString());
  REQUIRE(s.ok());
  return std::move(*s);
}

Drained Drain(Spool& spool, bool ack, size_t max_records) {
  Drained d;
  for (;;) {
    auto b = spool.ReadBatch(max_records, 1 << 20);
    INFO(b.status().ToString());
    REQUIRE(b.ok());
    if (b->empty()) break;
    for (size_t i = 0; i < b->size(); ++i) {
      auto r = (*b)[i];
      d.records.push_back({r.sequence, r.priority, std::string(r.payload)});
    }
    for (const LostRange& l : b->lost()) d.lost.push_back(l);
    d.last = b->last_sequence();
    if (ack) REQUIRE(spool.Ack(b->last_sequence()).ok());
  }
  return d;
}

std::vector<std::string> SegmentFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".seg") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t FileSize(const std::string& path) { return std::filesystem::file_size(path); }

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  REQUIRE(out.good());
}

void FlipBit(const std::string& path, uint64_t offset) {
  std::string data = ReadAll(path);
  REQUIRE(offset < data.size());
  data[offset] = static_cast<char>(data[offset] ^ 0x10);
  WriteAll(path, data);
}

}  // namespace mamori::telemetry::testing

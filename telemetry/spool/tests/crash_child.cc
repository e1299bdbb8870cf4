// mamori_spool_crash_child DIR: opens the spool in DIR and appends from two
// threads forever (group commit, wait_durable=false), writing
// "<sequence>\n" to stdout after each Append returns. The kill -9 test
// (crash_test.cc) runs it and kills it at a random moment. Payloads are
// Payload(key, 50 + key % 350) with key = thread << 40 | counter, so the test
// can check every byte.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "mamori/telemetry/spool.h"

namespace {

// Same as testing::Payload (spool_test_util.cc), kept free of Catch2 here.
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

}  // namespace

int main(int argc, char** argv) {
  using mamori::telemetry::Priority;
  using mamori::telemetry::Spool;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  mamori::telemetry::SpoolOptions options;
  options.dir = argv[1];
  options.max_bytes = 256 << 20;
  options.segment_bytes = 256 << 10;
  options.sync_interval = std::chrono::milliseconds(10);
  auto spool = Spool::Open(options);
  if (!spool.ok()) {
    std::fprintf(stderr, "open: %s\n", spool.status().ToString().c_str());
    return 3;
  }
  auto run = [&](uint64_t thread) {
    for (uint64_t counter = 0;; ++counter) {
      uint64_t key = thread << 40 | counter;
      auto seq = (*spool)->Append(static_cast<Priority>(counter % 3), Payload(key, 50 + key % 350));
      if (!seq.ok()) {
        std::fprintf(stderr, "append: %s\n", seq.status().ToString().c_str());
        std::_Exit(4);
      }
      if (*seq == Spool::kDropped) continue;
      std::string line = std::to_string(*seq) + "\n";
      if (::write(1, line.data(), line.size()) != static_cast<ssize_t>(line.size())) std::_Exit(5);
    }
  };
  std::thread a(run, 1);
  run(2);  // never returns
  a.join();
}

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "mamori/scanner/scanner.h"
#include "mamori/scanner/signature_holder.h"
#include "mamori/signatures/bundle.h"
#include "test_util.h"

namespace mamori::signatures {
namespace {

// Set N detects the marker "MARKER-N" by YARA and nothing else, so every scan
// result proves which whole set it ran on.
std::shared_ptr<const scanner::SignatureSet> MarkerSet(uint64_t n) {
  std::string rule = "rule Marker_" + std::to_string(n) + " { strings: $m = \"MARKER-" + std::to_string(n) +
                     "\" condition: $m }\n";
  auto set = scanner::BuildSignatureSet({{"yara/m.yar", rule}}, n, "test");
  REQUIRE(set.ok());
  return *set;
}

TEST_CASE("Hot swap while 4 threads scan: every scan sees one whole set, versions only go up") {
  scanner::SignatureHolder holder(MarkerSet(1));
  std::atomic<bool> stop{false};
  std::atomic<int> scans{0}, mismatches{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      std::shared_ptr<const scanner::SignatureSet> in_use;
      std::unique_ptr<scanner::Scanner> sc;
      while (!stop) {
        auto current = holder.Current();
        if (current != in_use) {  // a new set: a new per-thread context over it
          auto made = scanner::Scanner::Create(current);
          if (!made.ok()) {
            ++errors;
            continue;
          }
          sc = std::move(*made);
          in_use = current;
        }
        uint64_t v = in_use->bundle_version;
        auto r = sc->ScanBuffer("data MARKER-" + std::to_string(v) + " MARKER-" + std::to_string(v + 1), "x");
        // Exactly the rule of the set the scanner holds, never the next one's.
        if (r.findings.size() != 1 || r.findings[0].signature != "Marker_" + std::to_string(v)) ++mismatches;
        ++scans;
      }
    });
  }
  // The swaps must happen under scans: wait until the scanners are running (bounded).
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (scans < 4 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  for (uint64_t v = 2; v <= 30; ++v) {
    auto done = holder.InstallInBackground([v] { return Result<std::shared_ptr<const scanner::SignatureSet>>(MarkerSet(v)); });
    REQUIRE(done.get().ok());
  }
  // A downgrade and a replay are refused; the current set stays.
  CHECK(holder.Install(MarkerSet(10)).code() == StatusCode::kFailedPrecondition);
  CHECK(holder.Install(MarkerSet(30)).code() == StatusCode::kFailedPrecondition);
  CHECK(holder.version() == 30);
  stop = true;
  for (auto& t : threads) t.join();
  CHECK(scans > 0);
  CHECK(mismatches == 0);
  CHECK(errors == 0);
}

TEST_CASE("A refused background load keeps the set in use") {
  scanner::SignatureHolder holder(MarkerSet(5));
  auto failed = holder.InstallInBackground([] {
    return scanner::BuildSignatureSet({{"yara/bad.yar", "rule Bad { condition: nope }"}}, 6, "test");
  });
  Status s = failed.get();
  CHECK(!s.ok());
  CHECK(s.message().find("bad.yar") != std::string::npos);
  CHECK(holder.version() == 5);
}

}  // namespace
}  // namespace mamori::signatures

// Many appenders, the commit thread and the uplink thread at once (run these
// under -DMAMORI_TSAN=ON too).
#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "mamori/telemetry/spool.h"
#include "spool_test_util.h"
#include "test_util.h"

namespace mamori::telemetry {
namespace {

using mamori::testing::TempDir;
using testing::OpenOrDie;
using testing::Payload;

TEST_CASE("Concurrent appenders and an uplink that reads, acks and rewinds lose and duplicate nothing") {
  TempDir dir;
  SpoolOptions options;
  options.dir = dir.path();
  options.max_bytes = 64 << 20;
  options.segment_bytes = 16 << 10;  // many rolls and deletions
  options.sync_interval = std::chrono::milliseconds(2);
  auto spool = OpenOrDie(options);

  constexpr int kThreads = 4;
  constexpr uint64_t kPerThread = 3000;
  // Catch2 assertions are not thread-safe: the threads note failures here.
  std::mutex mu;
  std::map<uint64_t, uint64_t> key_of;  // sequence -> payload key, from the appenders
  std::vector<std::string> errors;
  auto fail = [&](const std::string& what) {
    std::lock_guard lk(mu);
    errors.push_back(what);
  };
  std::atomic<int> appenders_done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < kPerThread; ++i) {
        uint64_t key = static_cast<uint64_t>(t) << 32 | i;
        bool durable = i % 500 == 0;
        auto seq = spool->Append(static_cast<Priority>(i % 3), Payload(key, 20 + i % 200), durable);
        if (!seq.ok() || *seq == Spool::kDropped) {
          fail("append: " + seq.status().ToString());
          break;
        }
        if (durable && spool->GetStats().durable_sequence < *seq) fail("wait_durable returned early");
        std::lock_guard lk(mu);
        if (!key_of.emplace(*seq, key).second) errors.push_back("sequence given twice");
      }
      appenders_done++;
    });
  }
  std::thread syncer([&] {
    while (appenders_done.load() < kThreads) {
      if (Status st = spool->Sync(); !st.ok()) fail("sync: " + st.ToString());
      (void)spool->GetStats();
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
    }
  });

  // The uplink: batches in flight, acknowledges most, rewinds now and then.
  std::map<uint64_t, std::string> delivered;
  uint64_t deliveries = 0, rewinds = 0;
  const uint64_t total = kThreads * kPerThread;
  uint64_t in_flight_last = 0;
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (int step = 0; delivered.size() < total && std::chrono::steady_clock::now() < give_up; ++step) {
    auto b = spool->ReadBatch(300, 64 << 10, std::chrono::milliseconds(20));
    REQUIRE(b.ok());
    REQUIRE(b->lost().empty());
    for (size_t i = 0; i < b->size(); ++i) {
      auto r = (*b)[i];
      ++deliveries;
      auto [it, fresh] = delivered.emplace(r.sequence, std::string(r.payload));
      if (!fresh) CHECK(it->second == r.payload);  // a re-delivery carries the same bytes
    }
    if (!b->empty()) in_flight_last = b->last_sequence();
    if (step % 7 == 6) {
      spool->Rewind();
      ++rewinds;
    } else if (step % 3 == 0 && in_flight_last > 0) {
      REQUIRE(spool->Ack(in_flight_last).ok());
    }
  }
  for (auto& t : threads) t.join();
  syncer.join();
  if (!errors.empty()) FAIL(errors.front() << " (and " << errors.size() - 1 << " more)");

  REQUIRE(delivered.size() == total);
  CHECK(deliveries >= total);
  CHECK(rewinds > 0);
  std::lock_guard lk(mu);
  REQUIRE(key_of.size() == total);
  uint64_t expect = 1;
  for (const auto& [seq, key] : key_of) {
    CHECK(seq == expect++);
    const std::string& payload = delivered[seq];
    CHECK(payload == Payload(key, 20 + (key & 0xffffffffu) % 200));
  }
  REQUIRE(spool->Ack(total).ok());
  REQUIRE(spool->Sync().ok());
  CHECK(spool->GetStats().segments == 1u);
}

}  // namespace
}  // namespace mamori::telemetry

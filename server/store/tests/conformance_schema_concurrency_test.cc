// Store conformance: schema versions and concurrent stores (see conformance.h).
#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

#include "conformance.h"

namespace mamori::server::conformance {

// ---- schema --------------------------------------------------------------------

TEMPLATE_TEST_CASE("schema: reopening keeps the data and a newer schema is refused with a clear error",
                   "[conformance]", MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  {
    auto store = OpenOrFail(f);
    REQUIRE(store->UpsertAgent(Agent("a1")).ok());
    CHECK(Append(*store, "a1", Range(1, 3)) == 3);
  }
  {
    auto store = OpenOrFail(f);  // the current schema: opened as is
    CHECK(store->AckedSequence("a1").value() == 3);
  }
  REQUIRE(f.SetSchemaVersion(kStoreSchemaVersion + 1).ok());
  Result<std::unique_ptr<Store>> refused = f.Open();
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(refused.status().message(), Catch::Contains("schema version " + std::to_string(kStoreSchemaVersion + 1)));
  CHECK_THAT(refused.status().message(), Catch::Contains("newer"));
  CHECK_THAT(refused.status().message(), Catch::Contains("upgrade mamori-server"));
}

TEMPLATE_TEST_CASE("schema: a version 2 store migrates to the current schema and keeps its agents", "[conformance]",
                   MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  {
    auto store = OpenOrFail(f);
    REQUIRE(store->UpsertAgent(Agent("a1", "alpha")).ok());
    CHECK(Append(*store, "a1", Range(1, 3)) == 3);
  }
  // What a version 2 server left: no previous certificate column.
  REQUIRE(f.Exec("ALTER TABLE agents DROP COLUMN previous_cert_fingerprint").ok());
  REQUIRE(f.SetSchemaVersion(2).ok());
  auto store = OpenOrFail(f);
  Result<AgentRecord> a = store->GetAgent("a1");
  REQUIRE(a.ok());
  CHECK(a->hostname == "alpha");
  CHECK(a->cert_fingerprint == std::string(64, 'f'));
  CHECK(a->previous_cert_fingerprint.empty());
  CHECK(store->AckedSequence("a1").value() == 3);
  REQUIRE(store->RenewAgentCertificate("a1", std::string(64, 'f'), std::string(64, 'a')).ok());
  CHECK(store->GetAgent("a1")->previous_cert_fingerprint == std::string(64, 'f'));
}

// ---- concurrency ---------------------------------------------------------------

TEMPLATE_TEST_CASE("concurrency: two stores ingesting overlapping batches for one agent store each sequence once",
                   "[conformance]", MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  // Two Store objects on one database, as two server replicas would be, each
  // fed by its own thread: the agent reconnected to the other replica and
  // resent what the first had not acknowledged yet.
  auto replica_a = OpenOrFail(f);
  auto replica_b = OpenOrFail(f);
  REQUIRE(replica_a->UpsertAgent(Agent("a1")).ok());
  constexpr uint64_t kTotal = 5000;
  constexpr uint64_t kBatch = 500;
  std::vector<std::vector<EventRow>> batches_a, batches_b;
  for (uint64_t first = 1; first <= kTotal; first += kBatch) batches_a.push_back(Range(first, first + kBatch - 1));
  for (uint64_t first = 1; first <= kTotal; first += kBatch) {  // shifted by half a batch: every batch overlaps two
    const uint64_t shifted = first + kBatch / 2;
    batches_b.push_back(Range(first, std::min(kTotal, shifted + kBatch - 1)));
  }
  // No Catch assertion inside the threads: Catch is not thread-safe.
  std::atomic<int> errors{0};
  std::atomic<bool> acks_monotonic{true};
  std::mutex first_error_mu;
  std::string first_error;
  auto feed = [&](Store* s, const std::vector<std::vector<EventRow>>& batches) {
    uint64_t last = 0;
    for (const auto& b : batches) {
      Result<uint64_t> ack = s->AppendBatch("a1", b, {}, kT0);
      if (!ack.ok()) {
        ++errors;
        std::lock_guard<std::mutex> lock(first_error_mu);
        if (first_error.empty()) first_error = ack.status().ToString();
        continue;
      }
      if (*ack < last) acks_monotonic = false;
      last = *ack;
    }
  };
  std::thread ta(feed, replica_a.get(), std::cref(batches_a));
  std::thread tb(feed, replica_b.get(), std::cref(batches_b));
  ta.join();
  tb.join();
  INFO(first_error);
  CHECK(errors == 0);
  CHECK(acks_monotonic);
  std::vector<uint64_t> expected;
  for (uint64_t s = 1; s <= kTotal; ++s) expected.push_back(s);
  CHECK(AgentSequences(*replica_a, "a1") == expected);
  CHECK(replica_a->AckedSequence("a1").value() == kTotal);
  CHECK(replica_b->AckedSequence("a1").value() == kTotal);
}

TEMPLATE_TEST_CASE("concurrency: many agents ingest at once and a refused agent leaves the batches of the others in",
                   "[conformance]", MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  // One Store shared by one thread per agent (the server's streams); the
  // SQLite store commits concurrent batches together, so a refused batch
  // must not take the others down with it.
  auto store = OpenOrFail(f);
  constexpr int kAgents = 8;
  constexpr uint64_t kBatches = 20;
  constexpr uint64_t kBatch = 50;
  for (int a = 0; a < kAgents; ++a) REQUIRE(store->UpsertAgent(Agent("agent-" + std::to_string(a))).ok());
  REQUIRE(store->SetAgentRevoked("agent-3", true).ok());
  std::vector<std::vector<EventRow>> batches;  // built here: no Catch assertion inside the threads
  for (uint64_t b = 0; b < kBatches; ++b) batches.push_back(Range(b * kBatch + 1, (b + 1) * kBatch));
  std::atomic<int> unexpected{0}, refused{0};
  std::vector<std::thread> threads;
  for (int a = 0; a < kAgents; ++a) {
    threads.emplace_back([&, a] {
      const std::string id = "agent-" + std::to_string(a);
      for (uint64_t b = 0; b < kBatches; ++b) {
        const uint64_t first = b * kBatch + 1;
        Result<uint64_t> ack = store->AppendBatch(id, batches[b], {}, kT0);
        if (a == 3) {
          if (ack.status().code() == StatusCode::kPermissionDenied) {
            ++refused;
          } else {
            ++unexpected;
          }
        } else if (!ack.ok() || *ack != first + kBatch - 1) {
          ++unexpected;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(unexpected == 0);
  CHECK(refused == static_cast<int>(kBatches));
  for (int a = 0; a < kAgents; ++a) {
    const std::string id = "agent-" + std::to_string(a);
    INFO(id);
    CHECK(AgentSequences(*store, id).size() == (a == 3 ? 0 : kBatches * kBatch));
  }
}

}  // namespace mamori::server::conformance

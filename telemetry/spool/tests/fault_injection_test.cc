// Storage faults through FaultInjectionEnv: failed and short writes, failed
// undo, failed fdatasync, failed state writes and segment creation, and a
// simulated power cut. After each, a reopen finds a consistent log: no
// partial record, gapless sequences, nothing handed out lost or reused.
#include <catch2/catch.hpp>

#include "fault_injection_env.h"
#include "mamori/telemetry/spool.h"
#include "spool_test_util.h"
#include "test_util.h"

namespace mamori::telemetry {
namespace {

using mamori::testing::TempDir;
using testing::Drain;
using testing::FaultInjectionEnv;
using testing::OpenOrDie;
using testing::Payload;
using testing::SmallOptions;

// Reopens on the real file system and checks the log holds exactly
// Payload(1..n) (keys equal sequences) and that nothing was cut off.
void CheckReopened(const std::string& dir, uint64_t n, bool expect_truncation = false) {
  auto spool = OpenOrDie(SmallOptions(dir));
  CHECK((spool->GetStats().truncated_bytes > 0) == expect_truncation);
  auto d = Drain(*spool);
  CHECK(d.lost.empty());
  REQUIRE(d.records.size() == n);
  for (uint64_t i = 0; i < n; ++i) {
    CHECK(d.records[i].sequence == i + 1);
    CHECK(d.records[i].payload == Payload(i + 1, 80));
  }
  CHECK(spool->GetStats().next_sequence == n + 1);
}

TEST_CASE("A failed or short write fails the append, nothing of it stays and its sequence is given again") {
  TempDir dir;
  FaultInjectionEnv env;
  auto options = SmallOptions(dir.path());
  options.env = &env;
  auto spool = OpenOrDie(options);
  for (uint64_t i = 1; i <= 10; ++i) REQUIRE(*spool->Append(Priority::kNormal, Payload(i, 80)) == i);

  env.FailWrites(1, ENOSPC, /*partial=*/0);
  auto r = spool->Append(Priority::kCritical, Payload(11, 80));
  CHECK(r.status().code() == StatusCode::kResourceExhausted);  // ENOSPC: retrying may help
  env.FailWrites(1, EIO, /*partial=*/37);                      // half a frame reaches the file
  r = spool->Append(Priority::kCritical, Payload(11, 80));
  CHECK(r.status().code() == StatusCode::kDataLoss);

  for (uint64_t i = 11; i <= 20; ++i) REQUIRE(*spool->Append(Priority::kNormal, Payload(i, 80)) == i);
  auto stats = spool->GetStats();
  CHECK(stats.next_sequence == 21u);
  REQUIRE(spool->Close().ok());
  CheckReopened(dir.path(), 20);
}

TEST_CASE("A short write whose undo fails stops appends until reopen, which cuts the partial record") {
  TempDir dir;
  FaultInjectionEnv env;
  auto options = SmallOptions(dir.path());
  options.env = &env;
  auto spool = OpenOrDie(options);
  for (uint64_t i = 1; i <= 10; ++i) REQUIRE(spool->Append(Priority::kNormal, Payload(i, 80)).ok());
  env.FailWrites(1, EIO, /*partial=*/50);
  env.FailTruncates(1);
  CHECK(!spool->Append(Priority::kNormal, Payload(11, 80)).ok());
  auto next = spool->Append(Priority::kNormal, Payload(11, 80));
  CHECK(next.status().code() == StatusCode::kUnavailable);
  spool.reset();
  CheckReopened(dir.path(), 10, /*expect_truncation=*/true);
}

TEST_CASE("A failed fdatasync fails wait_durable, stops the spool, and a reopen finds a consistent log") {
  TempDir dir;
  FaultInjectionEnv env;
  auto options = SmallOptions(dir.path());
  options.env = &env;
  auto spool = OpenOrDie(options);
  for (uint64_t i = 1; i <= 10; ++i) REQUIRE(spool->Append(Priority::kNormal, Payload(i, 80)).ok());
  REQUIRE(spool->Sync().ok());
  REQUIRE(spool->Append(Priority::kNormal, Payload(11, 80)).ok());
  env.FailSyncs(1);
  auto r = spool->Append(Priority::kCritical, Payload(12, 80), /*wait_durable=*/true);
  CHECK(r.status().code() == StatusCode::kUnavailable);
  CHECK(spool->Append(Priority::kCritical, Payload(13, 80)).status().code() == StatusCode::kUnavailable);
  CHECK(spool->GetStats().durable_sequence == 10u);
  // What was committed before still goes out; nothing newer does.
  auto d = Drain(*spool, /*ack=*/true);
  CHECK(d.records.size() == 10);
  CHECK(!spool->Close().ok());
  // 11 and 12 reached the page cache and the file (the fault hid nothing here).
  auto reopened = OpenOrDie(SmallOptions(dir.path()));
  CHECK(reopened->GetStats().acked_sequence == 10u);
  auto rest = Drain(*reopened);
  REQUIRE(rest.records.size() == 2);
  CHECK(rest.records[0].sequence == 11u);
  CHECK(rest.records[1].payload == Payload(12, 80));
}

TEST_CASE("A failed state write keeps the acknowledgement in memory and saves it at the next commit") {
  TempDir dir;
  FaultInjectionEnv env;
  auto options = SmallOptions(dir.path());
  options.env = &env;
  auto spool = OpenOrDie(options);
  for (uint64_t i = 1; i <= 10; ++i) REQUIRE(spool->Append(Priority::kNormal, Payload(i, 80)).ok());
  REQUIRE(spool->Sync().ok());
  auto b = spool->ReadBatch(5, 1 << 20);
  REQUIRE(b.ok());
  REQUIRE(spool->Ack(5).ok());
  env.FailStateWrites(1);
  CHECK(spool->Sync().code() == StatusCode::kDataLoss);           // EIO on the state file
  CHECK(spool->Append(Priority::kNormal, Payload(11, 80)).ok());  // not sticky
  spool->Rewind();
  auto d = Drain(*spool);
  REQUIRE(!d.records.empty());
  CHECK(d.records.front().sequence == 6u);
  REQUIRE(spool->Sync().ok());
  spool.reset();
  auto reopened = OpenOrDie(SmallOptions(dir.path()));
  CHECK(reopened->GetStats().acked_sequence == 5u);
}

TEST_CASE("A failed segment creation fails that append and the next one rolls over") {
  TempDir dir;
  FaultInjectionEnv env;
  auto options = SmallOptions(dir.path());
  options.env = &env;
  auto spool = OpenOrDie(options);
  uint64_t i = 1;
  for (; i <= 39; ++i) REQUIRE(spool->Append(Priority::kNormal, Payload(i, 80)).ok());  // 39 frames of 104 fill 4 KiB
  env.FailCreates(1);
  CHECK(spool->Append(Priority::kNormal, Payload(i, 80)).status().code() == StatusCode::kResourceExhausted);
  for (; i <= 60; ++i) REQUIRE(*spool->Append(Priority::kNormal, Payload(i, 80)) == i);
  REQUIRE(spool->Close().ok());
  CheckReopened(dir.path(), 60);
}

TEST_CASE(
    "Power cut: every committed record survives, and uncommitted ones were never handed out, so no sequence is "
    "reused") {
  TempDir dir;
  FaultInjectionEnv env;
  auto options = SmallOptions(dir.path());
  options.env = &env;
  uint64_t handed_out = 0;
  {
    auto spool = OpenOrDie(options);
    for (uint64_t i = 1; i <= 100; ++i) REQUIRE(spool->Append(Priority::kNormal, Payload(i, 80)).ok());
    REQUIRE(spool->Sync().ok());
    for (uint64_t i = 101; i <= 130; ++i) REQUIRE(spool->Append(Priority::kNormal, Payload(i, 80)).ok());
    auto d = Drain(*spool);  // the uplink sends what it may
    handed_out = d.last;
    CHECK(handed_out == 100u);
    env.Crash();
  }
  env.PowerCut();
  auto spool = OpenOrDie(SmallOptions(dir.path()));
  auto d = Drain(*spool);
  REQUIRE(d.records.size() >= 100);
  for (size_t i = 0; i < d.records.size(); ++i) {
    CHECK(d.records[i].sequence == i + 1);
    CHECK(d.records[i].payload == Payload(i + 1, 80));
  }
  CHECK(d.lost.empty());
  auto seq = spool->Append(Priority::kNormal, "new");
  REQUIRE(seq.ok());
  CHECK(*seq > handed_out);  // the server's copy of 1..100 is never contradicted
}

TEST_CASE("Power cut at every commit point of a busy spool leaves a consistent log") {
  // Crash after k commits for several k; each reopen must see a gapless
  // prefix that contains everything committed.
  for (int crash_after = 1; crash_after <= 6; ++crash_after) {
    INFO("crash after commit " << crash_after);
    TempDir dir;
    FaultInjectionEnv env;
    auto options = SmallOptions(dir.path());
    options.env = &env;
    uint64_t durable = 0;
    {
      auto spool = OpenOrDie(options);
      uint64_t key = 1;
      for (int c = 0; c < crash_after; ++c) {
        for (int j = 0; j < 25; ++j, ++key) REQUIRE(spool->Append(Priority::kNormal, Payload(key, 80)).ok());
        REQUIRE(spool->Sync().ok());
      }
      for (int j = 0; j < 25; ++j, ++key) REQUIRE(spool->Append(Priority::kNormal, Payload(key, 80)).ok());
      durable = spool->GetStats().durable_sequence;
      env.Crash();
    }
    env.PowerCut();
    auto spool = OpenOrDie(SmallOptions(dir.path()));
    auto d = Drain(*spool);
    CHECK(d.lost.empty());
    REQUIRE(d.records.size() >= durable);
    for (size_t i = 0; i < d.records.size(); ++i) CHECK(d.records[i].sequence == i + 1);
  }
}

}  // namespace
}  // namespace mamori::telemetry

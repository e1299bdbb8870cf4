// Append, read, acknowledge, rewind, reopen.
#include "mamori/telemetry/spool.h"

#include <catch2/catch.hpp>
#include <thread>

#include "spool_test_util.h"
#include "test_util.h"

namespace mamori::telemetry {
namespace {

using mamori::testing::TempDir;
using testing::Drain;
using testing::OpenOrDie;
using testing::Payload;
using testing::SegmentFiles;
using testing::SmallOptions;

Priority PriorityOf(uint64_t i) { return static_cast<Priority>(i % 3); }

TEST_CASE("Appended records come back in order with sequence, priority and payload") {
  TempDir dir;
  auto spool = OpenOrDie(SmallOptions(dir.path() + "/spool"));
  for (uint64_t i = 1; i <= 200; ++i) {
    auto seq = spool->Append(PriorityOf(i), Payload(i, 10 + i % 90));
    REQUIRE(seq.ok());
    CHECK(*seq == i);
  }
  REQUIRE(spool->Sync().ok());
  auto d = Drain(*spool, false, 64);
  REQUIRE(d.records.size() == 200);
  CHECK(d.lost.empty());
  for (uint64_t i = 1; i <= 200; ++i) {
    CHECK(d.records[i - 1].sequence == i);
    CHECK(d.records[i - 1].priority == PriorityOf(i));
    CHECK(d.records[i - 1].payload == Payload(i, 10 + i % 90));
  }
  CHECK(SegmentFiles(dir.path() + "/spool").size() > 3);  // 4 KiB segments rolled
}

TEST_CASE("ReadBatch hands out only committed records") {
  TempDir dir;
  auto spool = OpenOrDie(SmallOptions(dir.path()));
  REQUIRE(spool->Append(Priority::kNormal, "a").ok());
  auto b = spool->ReadBatch(10, 1 << 20);
  REQUIRE(b.ok());
  CHECK(b->empty());
  REQUIRE(spool->Sync().ok());
  b = spool->ReadBatch(10, 1 << 20);
  REQUIRE(b.ok());
  REQUIRE(b->size() == 1);
  CHECK((*b)[0].payload == "a");
  auto seq = spool->Append(Priority::kCritical, "b", /*wait_durable=*/true);
  REQUIRE(seq.ok());
  CHECK(spool->GetStats().durable_sequence >= *seq);
  b = spool->ReadBatch(10, 1 << 20);
  REQUIRE(b.ok());
  REQUIRE(b->size() == 1);
  CHECK((*b)[0].sequence == 2u);
}

TEST_CASE("ReadBatch respects max_records and max_bytes and returns at least one record") {
  TempDir dir;
  auto spool = OpenOrDie(SmallOptions(dir.path()));
  for (int i = 0; i < 10; ++i) REQUIRE(spool->Append(Priority::kLow, std::string(100, 'x')).ok());
  REQUIRE(spool->Append(Priority::kLow, std::string(1000, 'y')).ok());
  REQUIRE(spool->Sync().ok());
  auto b = spool->ReadBatch(3, 1 << 20);
  REQUIRE(b.ok());
  CHECK(b->size() == 3);
  CHECK(b->last_sequence() == 3u);
  b = spool->ReadBatch(100, 250);
  REQUIRE(b.ok());
  CHECK(b->size() == 2);  // 200 bytes; a third would exceed 250
  CHECK(b->last_sequence() == 5u);
  b = spool->ReadBatch(100, 10);
  REQUIRE(b.ok());
  CHECK(b->size() == 1);  // larger than max_bytes, still one
  b = spool->ReadBatch(100, 500);
  REQUIRE(b.ok());
  CHECK(b->size() == 4);  // 6..9; the 1000-byte record waits
  b = spool->ReadBatch(100, 500);
  REQUIRE(b.ok());
  REQUIRE(b->size() == 1);
  CHECK((*b)[0].payload.size() == 1000);
}

TEST_CASE("Ack persists and deletes wholly acknowledged segments, giving the space back") {
  TempDir dir;
  auto options = SmallOptions(dir.path());
  auto spool = OpenOrDie(options);
  for (uint64_t i = 1; i <= 300; ++i) REQUIRE(spool->Append(Priority::kNormal, Payload(i, 100)).ok());
  REQUIRE(spool->Sync().ok());
  const size_t segments_before = SegmentFiles(dir.path()).size();
  const uint64_t bytes_before = spool->GetStats().bytes;
  REQUIRE(segments_before > 5);

  auto b = spool->ReadBatch(150, 1 << 20);
  REQUIRE(b.ok());
  REQUIRE(b->size() == 150);
  REQUIRE(spool->Ack(b->last_sequence()).ok());
  REQUIRE(spool->Sync().ok());
  CHECK(SegmentFiles(dir.path()).size() < segments_before);
  CHECK(spool->GetStats().bytes < bytes_before);
  CHECK(spool->GetStats().acked_sequence == 150u);

  // Nothing at or below the acknowledgement comes back, even after a rewind or a reopen.
  spool->Rewind();
  auto d = Drain(*spool);
  REQUIRE(!d.records.empty());
  CHECK(d.records.front().sequence == 151u);
  CHECK(d.records.back().sequence == 300u);
  spool.reset();
  spool = OpenOrDie(options);
  d = Drain(*spool, /*ack=*/true);
  REQUIRE(d.records.size() == 150);
  CHECK(d.records.front().sequence == 151u);
  REQUIRE(spool->Sync().ok());
  CHECK(SegmentFiles(dir.path()).size() == 1);  // the active segment stays
}

TEST_CASE("Sequences continue across reopen, also after everything was acknowledged and deleted") {
  TempDir dir;
  auto options = SmallOptions(dir.path());
  {
    auto spool = OpenOrDie(options);
    for (int i = 0; i < 100; ++i) REQUIRE(spool->Append(Priority::kLow, std::string(200, 'a')).ok());
  }
  {
    auto spool = OpenOrDie(options);
    CHECK(spool->GetStats().next_sequence == 101u);
    auto d = Drain(*spool, /*ack=*/true);
    CHECK(d.records.size() == 100);
    auto seq = spool->Append(Priority::kLow, "x");
    REQUIRE(seq.ok());
    CHECK(*seq == 101u);
    REQUIRE(spool->Sync().ok());
    Drain(*spool, /*ack=*/true);
  }
  {
    auto spool = OpenOrDie(options);
    auto seq = spool->Append(Priority::kLow, "y");
    REQUIRE(seq.ok());
    CHECK(*seq == 102u);
    CHECK(Drain(*spool).records.size() == 0);  // not committed yet: nothing handed out
  }
  auto spool = OpenOrDie(options);
  auto d = Drain(*spool);
  REQUIRE(d.records.size() == 1);
  CHECK(d.records[0].sequence == 102u);
  CHECK(d.records[0].payload == "y");
}

TEST_CASE("Rewind re-delivers exactly the unacknowledged records") {
  TempDir dir;
  auto spool = OpenOrDie(SmallOptions(dir.path()));
  for (uint64_t i = 1; i <= 90; ++i) REQUIRE(spool->Append(PriorityOf(i), Payload(i, 50)).ok());
  REQUIRE(spool->Sync().ok());
  // Three batches in flight; the server acknowledges only the first.
  std::vector<uint64_t> first_pass;
  for (int k = 0; k < 3; ++k) {
    auto b = spool->ReadBatch(20, 1 << 20);
    REQUIRE(b.ok());
    for (size_t i = 0; i < b->size(); ++i) first_pass.push_back((*b)[i].sequence);
    if (k == 0) REQUIRE(spool->Ack(b->last_sequence()).ok());
  }
  REQUIRE(first_pass.size() == 60);
  spool->Rewind();
  auto d = Drain(*spool, false, 20);
  REQUIRE(d.records.size() == 70);
  for (size_t i = 0; i < d.records.size(); ++i) {
    CHECK(d.records[i].sequence == 21 + i);
    CHECK(d.records[i].payload == Payload(21 + i, 50));
  }
  // A second rewind after acking part of it.
  REQUIRE(spool->Ack(55).ok());
  spool->Rewind();
  d = Drain(*spool);
  REQUIRE(d.records.size() == 35);
  CHECK(d.records.front().sequence == 56u);
}

TEST_CASE("After a restart reading resumes at the first unacknowledged record") {
  TempDir dir;
  auto options = SmallOptions(dir.path());
  {
    auto spool = OpenOrDie(options);
    for (uint64_t i = 1; i <= 80; ++i) REQUIRE(spool->Append(Priority::kNormal, Payload(i, 60)).ok());
    REQUIRE(spool->Sync().ok());
    auto b = spool->ReadBatch(50, 1 << 20);  // 1..50 handed out
    REQUIRE(b.ok());
    REQUIRE(spool->Ack(33).ok());  // the server stored 1..33
  }
  auto spool = OpenOrDie(options);
  CHECK(spool->GetStats().acked_sequence == 33u);
  auto d = Drain(*spool);
  REQUIRE(d.records.size() == 47);
  CHECK(d.records.front().sequence == 34u);
  CHECK(d.records.back().sequence == 80u);
}

TEST_CASE("Ack above the committed end is refused, at or below the current one is a no-op, ahead of the cursor skips") {
  TempDir dir;
  auto spool = OpenOrDie(SmallOptions(dir.path()));
  for (int i = 0; i < 20; ++i) REQUIRE(spool->Append(Priority::kLow, "r").ok());
  CHECK(spool->Ack(1).code() == StatusCode::kOutOfRange);  // nothing committed yet
  REQUIRE(spool->Sync().ok());
  CHECK(spool->Ack(21).code() == StatusCode::kOutOfRange);
  // After a reconnect the server says it already holds 1..12 (Welcome.acked_sequence).
  REQUIRE(spool->Ack(12).ok());
  REQUIRE(spool->Ack(5).ok());
  CHECK(spool->GetStats().acked_sequence == 12u);
  auto b = spool->ReadBatch(100, 1 << 20);
  REQUIRE(b.ok());
  REQUIRE(b->size() == 8);
  CHECK((*b)[0].sequence == 13u);
}

TEST_CASE("ReadBatch waits for a committed record up to the timeout") {
  TempDir dir;
  auto options = SmallOptions(dir.path());
  options.sync_interval = std::chrono::milliseconds(5);
  auto spool = OpenOrDie(options);
  auto start = std::chrono::steady_clock::now();
  auto b = spool->ReadBatch(10, 1 << 20, std::chrono::milliseconds(30));
  REQUIRE(b.ok());
  CHECK(b->empty());
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(25));

  Status appended;
  std::thread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    appended = spool->Append(Priority::kNormal, "late").status();  // committed by the commit thread
  });
  b = spool->ReadBatch(10, 1 << 20, std::chrono::seconds(10));
  producer.join();
  REQUIRE(appended.ok());
  REQUIRE(b.ok());
  REQUIRE(b->size() == 1);
  CHECK((*b)[0].payload == "late");
}

TEST_CASE("The folder is locked while open, records too large are refused, calls after Close fail") {
  TempDir dir;
  auto options = SmallOptions(dir.path());
  auto spool = OpenOrDie(options);
  CHECK(Spool::Open(options).status().code() == StatusCode::kUnavailable);
  CHECK(spool->Append(Priority::kLow, std::string((4u << 20) + 1, 'x')).status().code() ==
        StatusCode::kInvalidArgument);
  auto empty = spool->Append(Priority::kLow, "");
  REQUIRE(empty.ok());
  REQUIRE(spool->Close().ok());
  CHECK(spool->Append(Priority::kLow, "x").status().code() == StatusCode::kFailedPrecondition);
  CHECK(spool->ReadBatch(1, 1).status().code() == StatusCode::kFailedPrecondition);
  CHECK(spool->Sync().code() == StatusCode::kFailedPrecondition);
  CHECK(spool->Close().ok());
  auto again = OpenOrDie(options);  // the lock went with Close
  auto d = Drain(*again);
  REQUIRE(d.records.size() == 1);
  CHECK(d.records[0].payload.empty());

  SpoolOptions bad = options;
  bad.max_bytes = 1000;
  CHECK(Spool::Open(bad).status().code() == StatusCode::kInvalidArgument);
  bad = options;
  bad.dir = "";
  CHECK(Spool::Open(bad).status().code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mamori::telemetry

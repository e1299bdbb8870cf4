// The size bound: kLow refused first, then kNormal; kCritical kept up to the
// hard ceiling; every drop counted, the counts persisted and reported.
#include <catch2/catch.hpp>

#include "fault_injection_env.h"
#include "mamori/telemetry/spool.h"
#include "spool_test_util.h"
#include "test_util.h"

namespace mamori::telemetry {
namespace {

using mamori::testing::TempDir;
using testing::Drain;
using testing::OpenOrDie;
using testing::Payload;
using testing::SmallOptions;

// 64 KiB bound, 8 KiB segments: kLow until 80% (52,428 bytes), kNormal until
// 65,536, kCritical until 72,086.
SpoolOptions BoundOptions(const std::string& dir) {
  SpoolOptions o = SmallOptions(dir);
  o.max_bytes = 64 << 10;
  o.segment_bytes = 8 << 10;
  return o;
}

TEST_CASE("When full, kLow is dropped and counted first, kNormal next, and kCritical is kept") {
  TempDir dir;
  auto options = BoundOptions(dir.path());
  auto spool = OpenOrDie(options);
  const std::string payload(276, 'p');  // 300-byte frames

  uint64_t low_kept = 0, low_dropped = 0;
  for (int i = 0; i < 400; ++i) {
    auto r = spool->Append(Priority::kLow, payload);
    REQUIRE(r.ok());
    (*r == Spool::kDropped ? low_dropped : low_kept)++;
  }
  CHECK(low_dropped > 0);
  CHECK(spool->GetStats().bytes <= options.max_bytes * 80 / 100);

  // kNormal still fits above the kLow limit, up to the bound.
  uint64_t normal_kept = 0, normal_dropped = 0;
  for (int i = 0; i < 100; ++i) {
    auto r = spool->Append(Priority::kNormal, payload);
    REQUIRE(r.ok());
    (*r == Spool::kDropped ? normal_dropped : normal_kept)++;
  }
  CHECK(normal_kept > 0);
  CHECK(normal_dropped > 0);
  CHECK(spool->GetStats().bytes <= options.max_bytes);

  // kCritical goes above the bound, never dropped.
  std::vector<uint64_t> critical;
  for (uint64_t i = 0; i < 15; ++i) {
    auto r = spool->Append(Priority::kCritical, Payload(i, 276));
    REQUIRE(r.ok());
    REQUIRE(*r != Spool::kDropped);
    critical.push_back(*r);
  }
  CHECK(spool->GetStats().bytes > options.max_bytes);

  auto stats = spool->GetStats();
  CHECK(stats.dropped[0] == low_dropped);
  CHECK(stats.dropped[1] == normal_dropped);
  CHECK(stats.dropped[2] == 0u);
  DropCounts counts = spool->TakeDropCounts();
  CHECK(counts.low == low_dropped);
  CHECK(counts.normal == normal_dropped);
  CHECK(spool->TakeDropCounts().empty());  // taken once

  REQUIRE(spool->Sync().ok());
  auto d = Drain(*spool);
  CHECK(d.records.size() == low_kept + normal_kept + critical.size());
  std::vector<uint64_t> got_critical;
  for (const auto& r : d.records) {
    if (r.priority == Priority::kCritical) {
      got_critical.push_back(r.sequence);
      CHECK(r.payload == Payload(got_critical.size() - 1, 276));
    }
  }
  CHECK(got_critical == critical);
  // No sequence was spent on a dropped record: the log is gapless.
  for (size_t i = 0; i < d.records.size(); ++i) CHECK(d.records[i].sequence == i + 1);
}

TEST_CASE("kCritical above the hard ceiling gets kResourceExhausted and fits again once delivered") {
  TempDir dir;
  auto options = BoundOptions(dir.path());
  auto spool = OpenOrDie(options);
  const std::string payload(976, 'c');  // 1000-byte frames
  uint64_t kept = 0;
  Status refused;
  for (int i = 0; i < 200; ++i) {
    auto r = spool->Append(Priority::kCritical, payload);
    if (!r.ok()) {
      refused = r.status();
      break;
    }
    ++kept;
  }
  REQUIRE(refused.code() == StatusCode::kResourceExhausted);
  const uint64_t ceiling = options.max_bytes + options.max_bytes / 100 * options.critical_overflow_percent;
  CHECK(spool->GetStats().bytes <= ceiling);
  CHECK(spool->GetStats().bytes + 1000 > ceiling);
  CHECK(spool->GetStats().critical_rejected == 1u);
  CHECK(spool->TakeDropCounts().empty());  // a refusal is not a drop: the caller still has the record
  CHECK(spool->Append(Priority::kLow, "x").value() == Spool::kDropped);

  // The uplink delivers; acknowledged segments go away; the caller retries.
  REQUIRE(spool->Sync().ok());
  auto d = Drain(*spool, /*ack=*/true);
  CHECK(d.records.size() == kept);
  REQUIRE(spool->Sync().ok());
  auto retry = spool->Append(Priority::kCritical, payload);
  REQUIRE(retry.ok());
  CHECK(*retry == kept + 1);
  CHECK(spool->Append(Priority::kLow, "x").value() != Spool::kDropped);
}

TEST_CASE("Drop counts survive a reopen, and AppendDropReport stores them and resets them") {
  TempDir dir;
  auto options = BoundOptions(dir.path());
  uint64_t dropped = 0;
  {
    auto spool = OpenOrDie(options);
    for (int i = 0; i < 300; ++i) {
      if (*spool->Append(Priority::kLow, std::string(276, 'l')) == Spool::kDropped) ++dropped;
    }
    REQUIRE(dropped > 0);
  }
  {
    auto spool = OpenOrDie(options);
    DropCounts seen;
    auto seq = spool->AppendDropReport([&](const DropCounts& c) {
      seen = c;
      return "drops low=" + std::to_string(c.low);
    });
    REQUIRE(seq.ok());
    CHECK(*seq != Spool::kDropped);
    CHECK(seen.low == dropped);
    CHECK(spool->GetStats().durable_sequence >= *seq);  // stored before returning
    auto again = spool->AppendDropReport([](const DropCounts&) { return std::string("never"); });
    REQUIRE(again.ok());
    CHECK(*again == Spool::kDropped);  // nothing pending
    auto d = Drain(*spool);
    REQUIRE(!d.records.empty());
    CHECK(d.records.back().priority == Priority::kCritical);
    CHECK(d.records.back().payload == "drops low=" + std::to_string(dropped));
  }
  auto spool = OpenOrDie(options);
  CHECK(spool->TakeDropCounts().empty());
}

TEST_CASE("A drop report that reached the log is not reported again after a crash before the state was saved") {
  TempDir dir;
  testing::FaultInjectionEnv env;
  auto options = BoundOptions(dir.path());
  options.env = &env;
  uint64_t report_seq = 0;
  {
    auto spool = OpenOrDie(options);
    for (int i = 0; i < 300; ++i) REQUIRE(spool->Append(Priority::kLow, std::string(276, 'l')).ok());
    REQUIRE(spool->Sync().ok());  // the state file now holds the counts
    env.FailStateWrites(100);     // and will not learn about the report
    auto seq = spool->AppendDropReport([](const DropCounts& c) { return "drops " + std::to_string(c.low); });
    REQUIRE(seq.ok());
    report_seq = *seq;
    env.Crash();
  }
  env.PowerCut();
  SpoolOptions plain = options;
  plain.env = nullptr;
  auto spool = OpenOrDie(plain);
  CHECK(spool->TakeDropCounts().empty());
  auto d = Drain(*spool);
  REQUIRE(!d.records.empty());
  CHECK(d.records.back().sequence == report_seq);
}

}  // namespace
}  // namespace mamori::telemetry

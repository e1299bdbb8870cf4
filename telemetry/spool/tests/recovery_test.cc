// Recovery at Open: torn tails, damaged records and headers, damaged state,
// newer formats.
#include <catch2/catch.hpp>
#include <filesystem>

#include "crc32c.h"
#include "format.h"
#include "mamori/telemetry/spool.h"
#include "spool_test_util.h"
#include "test_util.h"

namespace mamori::telemetry {
namespace {

using mamori::testing::TempDir;
using testing::Drain;
using testing::FileSize;
using testing::FlipBit;
using testing::OpenOrDie;
using testing::Payload;
using testing::ReadAll;
using testing::SegmentFiles;
using testing::SmallOptions;
using testing::WriteAll;
namespace fs = std::filesystem;

constexpr uint64_t kHeader = spool_format::kSegmentHeaderSize;
constexpr uint64_t kFrame = spool_format::kFrameHeaderSize;

// 100 records of 100 payload bytes (124-byte frames) in 4 KiB segments: 32 per segment.
void FillUniform(const SpoolOptions& options, uint64_t n = 100) {
  auto spool = OpenOrDie(options);
  for (uint64_t i = 1; i <= n; ++i) REQUIRE(spool->Append(Priority::kNormal, Payload(i, 100)).ok());
}
uint64_t FrameOffset(uint64_t index_in_segment) { return kHeader + index_in_segment * (kFrame + 100); }

void CheckRecords(const testing::Drained& d, uint64_t from, uint64_t to, std::vector<uint64_t> missing = {}) {
  std::vector<uint64_t> want;
  for (uint64_t s = from; s <= to; ++s) {
    if (std::find(missing.begin(), missing.end(), s) == missing.end()) want.push_back(s);
  }
  std::vector<uint64_t> got;
  for (const auto& r : d.records) {
    got.push_back(r.sequence);
    CHECK(r.payload == Payload(r.sequence, r.payload.size()));
  }
  CHECK(got == want);
}

TEST_CASE("Torn tail: cutting the last record at every byte keeps every complete record") {
  const uint64_t n = 20;
  auto Size = [&](uint64_t i) -> size_t { return i == n ? 16 : 30 + i * 3; };
  TempDir dir;
  auto options = SmallOptions(dir.path() + "/src");
  options.segment_bytes = 64 << 10;
  {
    auto spool = OpenOrDie(options);
    // The last record is short so that the loop below stays quick; every
    // byte of its header and payload is still a cut point.
    for (uint64_t i = 1; i <= n; ++i) REQUIRE(spool->Append(Priority::kLow, Payload(i, Size(i))).ok());
  }
  auto files = SegmentFiles(options.dir);
  REQUIRE(files.size() == 1);
  const std::string whole = ReadAll(files[0]);
  const uint64_t last_start = whole.size() - (kFrame + Size(n));

  for (uint64_t cut = last_start; cut < whole.size(); ++cut) {
    INFO("cut at " << cut);
    // Without the state file: a crash before the last record was ever committed.
    auto copy = SmallOptions(dir.path() + "/cut" + std::to_string(cut));
    fs::create_directories(copy.dir);
    WriteAll(spool_format::SegmentPath(copy.dir, 1), whole.substr(0, cut));
    auto spool = OpenOrDie(copy);
    auto stats = spool->GetStats();
    CHECK(stats.truncated_bytes == cut - last_start);
    CHECK(stats.next_sequence == n);
    auto d = Drain(*spool);
    CHECK(d.lost.empty());
    CheckRecords(d, 1, n - 1);
    auto seq = spool->Append(Priority::kLow, "after");
    REQUIRE(seq.ok());
    CHECK(*seq == n);
    spool.reset();
    CHECK(FileSize(spool_format::SegmentPath(copy.dir, 1)) == last_start + kFrame + 5);
    fs::remove_all(copy.dir);
  }

  // With the state file, which says record n was committed: it is reported lost, never reused.
  auto copy = SmallOptions(dir.path() + "/with-state");
  fs::create_directories(copy.dir);
  WriteAll(spool_format::SegmentPath(copy.dir, 1), whole.substr(0, last_start + 7));
  fs::copy_file(options.dir + "/state", copy.dir + "/state");
  auto spool = OpenOrDie(copy);
  auto d = Drain(*spool);
  CheckRecords(d, 1, n - 1);
  REQUIRE(d.lost.size() == 1);
  CHECK(d.lost[0].first == n);
  CHECK(d.lost[0].last == n);
  CHECK(d.lost[0].reason.code() == StatusCode::kDataLoss);
  CHECK(*spool->Append(Priority::kLow, "x") == n + 1);
}

TEST_CASE("A torn header of the last segment is written again and earlier records stay") {
  TempDir dir;
  auto options = SmallOptions(dir.path());
  FillUniform(options, 40);  // segment 1: 1..32, segment 33: 33..40
  auto files = SegmentFiles(dir.path());
  REQUIRE(files.size() == 2);
  fs::remove(dir.path() + "/state");  // the crash came before anything of segment 33 was committed
  WriteAll(files[1], std::string(10, 'M'));
  auto spool = OpenOrDie(options);
  auto d = Drain(*spool);
  CHECK(d.lost.empty());
  CheckRecords(d, 1, 32);
  CHECK(*spool->Append(Priority::kNormal, "x") == 33u);
}

TEST_CASE("A flipped bit in a closed segment: reported lost with file and offset, skipped, counted") {
  TempDir dir;
  auto options = SmallOptions(dir.path());
  FillUniform(options);
  const std::string first = spool_format::SegmentPath(dir.path(), 1);

  SECTION("in a payload") {
    FlipBit(first, FrameOffset(5) + kFrame + 50);  // record 6
    auto spool = OpenOrDie(options);
    auto d = Drain(*spool, /*ack=*/true);
    CheckRecords(d, 1, 100, {6});
    REQUIRE(d.lost.size() == 1);
    CHECK(d.lost[0].first == 6u);
    CHECK(d.lost[0].last == 6u);
    CHECK(d.lost[0].reason.code() == StatusCode::kDataLoss);
    CHECK_THAT(d.lost[0].reason.message(),
               Catch::Contains("00000000000000000001.seg:" + std::to_string(FrameOffset(5)) + ": checksum mismatch"));
    CHECK(spool->GetStats().corrupt_records == 1u);
    CHECK(spool->GetStats().lost_sequences == 1u);
    CHECK(spool->GetStats().acked_sequence == 100u);  // acknowledged past the hole
    // A rewind reads the damage again without counting it twice.
    spool->Rewind();
    CHECK(spool->GetStats().corrupt_records == 1u);
  }
  SECTION("in a length field: the next frame is found again") {
    FlipBit(first, FrameOffset(9) + 18);  // record 10's length
    auto spool = OpenOrDie(options);
    auto d = Drain(*spool);
    CheckRecords(d, 1, 100, {10});
    REQUIRE(d.lost.size() == 1);
    CHECK(d.lost[0].first == 10u);
    CHECK(d.lost[0].last == 10u);
  }
  SECTION("in two neighbours and in the last frame of the segment") {
    FlipBit(first, FrameOffset(3) + 30);
    FlipBit(first, FrameOffset(4) + 9);   // record 5's sequence
    FlipBit(first, FrameOffset(31) + 2);  // record 32's magic
    auto spool = OpenOrDie(options);
    auto d = Drain(*spool);
    CheckRecords(d, 1, 100, {4, 5, 32});
    REQUIRE(d.lost.size() == 2);
    CHECK(d.lost[0].first == 4u);
    CHECK(d.lost[0].last == 5u);
    CHECK(d.lost[1].first == 32u);
    CHECK(d.lost[1].last == 32u);
    CHECK(spool->GetStats().corrupt_records == 2u);
  }
  SECTION("in a segment header: the whole segment is lost, the others arrive") {
    const std::string second = spool_format::SegmentPath(dir.path(), 33);
    FlipBit(second, 20);
    auto spool = OpenOrDie(options);
    auto d = Drain(*spool);
    CheckRecords(d, 1, 100, [] {
      std::vector<uint64_t> v;
      for (uint64_t s = 33; s <= 64; ++s) v.push_back(s);
      return v;
    }());
    REQUIRE(d.lost.size() == 1);
    CHECK(d.lost[0].first == 33u);
    CHECK(d.lost[0].last == 64u);
    CHECK_THAT(d.lost[0].reason.message(), Catch::Contains("00000000000000000033.seg:0"));
  }
}

TEST_CASE("A flipped bit in the middle of the last segment is skipped, not cut off") {
  TempDir dir;
  auto options = SmallOptions(dir.path());
  FillUniform(options);  // last segment: 97..100
  const std::string last = spool_format::SegmentPath(dir.path(), 97);
  FlipBit(last, FrameOffset(1) + kFrame + 3);  // record 98
  auto spool = OpenOrDie(options);
  CHECK(spool->GetStats().truncated_bytes == 0u);
  CHECK(spool->GetStats().corrupt_records == 1u);
  CHECK(*spool->Append(Priority::kNormal, Payload(101, 100)) == 101u);
  REQUIRE(spool->Sync().ok());
  auto d = Drain(*spool);
  CheckRecords(d, 1, 101, {98});
  REQUIRE(d.lost.size() == 1);
  CHECK(d.lost[0].first == 98u);
  CHECK(spool->GetStats().corrupt_records == 1u);  // found at Open, not counted again
}

TEST_CASE("A damaged header of the last segment: its committed sequences are lost, new ones follow") {
  TempDir dir;
  auto options = SmallOptions(dir.path());
  FillUniform(options);
  FlipBit(spool_format::SegmentPath(dir.path(), 97), 3);
  auto spool = OpenOrDie(options);
  CHECK(*spool->Append(Priority::kNormal, Payload(101, 100)) == 101u);  // the state file's floor
  REQUIRE(spool->Sync().ok());
  auto d = Drain(*spool);
  CheckRecords(d, 1, 101, {97, 98, 99, 100});
  REQUIRE(d.lost.size() == 1);
  CHECK(d.lost[0].first == 97u);
  CHECK(d.lost[0].last == 100u);
}

TEST_CASE("A zeroed header in front of data is damage: kept aside, never truncated") {
  TempDir dir;
  auto options = SmallOptions(dir.path());
  FillUniform(options);
  const std::string last = spool_format::SegmentPath(dir.path(), 97);
  std::string data = ReadAll(last);
  std::fill(data.begin(), data.begin() + kHeader, '\0');
  WriteAll(last, data);
  SECTION("with the state file: the committed sequences are reported lost") {
    auto spool = OpenOrDie(options);
    auto d = Drain(*spool);
    CheckRecords(d, 1, 96);
    REQUIRE(d.lost.size() == 1);
    CHECK(d.lost[0].first == 97u);
    CHECK(d.lost[0].last == 100u);
    CHECK(ReadAll(last) == data);
  }
  SECTION("without it nothing says they were committed: the file is moved aside and the numbers go on") {
    fs::remove(dir.path() + "/state");
    auto spool = OpenOrDie(options);
    CHECK(ReadAll(last + ".damaged") == data);
    CHECK(*spool->Append(Priority::kNormal, Payload(97, 100)) == 97u);
    REQUIRE(spool->Sync().ok());
    auto d = Drain(*spool);
    CHECK(d.lost.empty());
    CheckRecords(d, 1, 97);
  }
}

TEST_CASE("A damaged state file: unacknowledged records come again, deleted ones are not called lost") {
  TempDir dir;
  auto options = SmallOptions(dir.path());
  FillUniform(options);
  {
    auto spool = OpenOrDie(options);
    auto b = spool->ReadBatch(70, 1 << 20);
    REQUIRE(b.ok());
    REQUIRE(spool->Ack(70).ok());
    REQUIRE(spool->Sync().ok());  // segments 1 and 33 deleted
  }
  REQUIRE(SegmentFiles(dir.path()).front() == spool_format::SegmentPath(dir.path(), 65));
  std::string state = ReadAll(dir.path() + "/state");
  state[state.find("acked") + 6] = '9';
  WriteAll(dir.path() + "/state", state);
  auto spool = OpenOrDie(options);
  CHECK(spool->GetStats().corrupt_records == 1u);
  auto d = Drain(*spool);
  CHECK(d.lost.empty());
  CheckRecords(d, 65, 100);
  CHECK(*spool->Append(Priority::kNormal, "x") == 101u);
}

TEST_CASE("A spool written by a newer format version is refused, not touched") {
  TempDir dir;
  auto options = SmallOptions(dir.path());
  FillUniform(options, 10);
  SECTION("segment") {
    const std::string path = spool_format::SegmentPath(dir.path(), 1);
    std::string data = ReadAll(path);
    spool_format::PutU32(data.data() + 8, spool_format::kFormatVersion + 1);
    spool_format::PutU32(data.data() + 28, crc32c::Value(data.data(), 28));
    WriteAll(path, data);
    auto r = Spool::Open(options);
    CHECK(r.status().code() == StatusCode::kFailedPrecondition);
    CHECK_THAT(r.status().message(), Catch::Contains("00000000000000000001.seg"));
    CHECK(ReadAll(path) == data);
  }
  SECTION("state file") {
    std::string body = "mamori-spool-state 9\nacked 3\n";
    char crc[32];
    std::snprintf(crc, sizeof crc, "crc32c %08x\n", crc32c::Value(body));
    WriteAll(dir.path() + "/state", body + crc);
    CHECK(Spool::Open(options).status().code() == StatusCode::kFailedPrecondition);
  }
}

}  // namespace
}  // namespace mamori::telemetry

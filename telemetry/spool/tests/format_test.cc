// The on-disk pieces: CRC-32C, segment names and headers, frames, state file.
#include "format.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <random>
#include <string>

#include "crc32c.h"
#include "state_file.h"

namespace mamori::telemetry {
namespace {

namespace f = spool_format;

TEST_CASE("CRC-32C matches the published check values, in hardware and in the table code") {
  std::string digits = "123456789";
  CHECK(crc32c::Value(digits) == 0xE3069283u);
  CHECK(crc32c::ExtendPortable(0, digits.data(), digits.size()) == 0xE3069283u);
  std::string zeros(32, '\0'), ones(32, '\xff');
  CHECK(crc32c::Value(zeros) == 0x8A9136AAu);  // RFC 3720 B.4
  CHECK(crc32c::Value(ones) == 0x62A8AB43u);
  std::string inc(32, '\0');
  for (int i = 0; i < 32; ++i) inc[i] = static_cast<char>(i);
  CHECK(crc32c::Value(inc) == 0x46DD794Eu);

  std::mt19937_64 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::string data(rng() % 1000, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    size_t cut = data.empty() ? 0 : rng() % data.size();
    uint32_t whole = crc32c::Value(data);
    CHECK(crc32c::ExtendPortable(0, data.data(), data.size()) == whole);
    CHECK(crc32c::Extend(crc32c::Value(data.data(), cut), data.data() + cut, data.size() - cut) == whole);
  }
}

TEST_CASE("Segment names are 20-digit first sequences and nothing else parses") {
  CHECK(f::SegmentPath("/d", 1) == "/d/00000000000000000001.seg");
  CHECK(f::ParseSegmentName("00000000000000000001.seg") == 1u);
  CHECK(f::ParseSegmentName("18446744073709551615.seg") == UINT64_MAX);
  CHECK_FALSE(f::ParseSegmentName("18446744073709551616.seg").has_value());
  CHECK_FALSE(f::ParseSegmentName("0000000000000000001.seg").has_value());
  CHECK_FALSE(f::ParseSegmentName("00000000000000000001.seg.damaged").has_value());
  CHECK_FALSE(f::ParseSegmentName("0000000000000000000x.seg").has_value());
  CHECK_FALSE(f::ParseSegmentName("state").has_value());
}

TEST_CASE("Segment header round trip, and torn, damaged and newer headers are told apart") {
  char h[f::kSegmentHeaderSize];
  f::EncodeSegmentHeader(42, h);
  f::SegmentHeader out;
  REQUIRE(f::DecodeSegmentHeader(std::string_view(h, sizeof h), &out) == f::HeaderCheck::kOk);
  CHECK(out.version == f::kFormatVersion);
  CHECK(out.first_seq == 42u);

  CHECK(f::DecodeSegmentHeader(std::string_view(h, 31), &out) == f::HeaderCheck::kTorn);
  std::string zeros(f::kSegmentHeaderSize, '\0');
  CHECK(f::DecodeSegmentHeader(zeros, &out) == f::HeaderCheck::kTorn);

  std::string bad(h, sizeof h);
  bad[17] ^= 1;
  CHECK(f::DecodeSegmentHeader(bad, &out) == f::HeaderCheck::kCorrupt);

  std::string newer(h, sizeof h);
  f::PutU32(newer.data() + 8, f::kFormatVersion + 1);
  f::PutU32(newer.data() + 28, crc32c::Value(newer.data(), 28));
  CHECK(f::DecodeSegmentHeader(newer, &out) == f::HeaderCheck::kNewer);
}

TEST_CASE("Frame header checks magic, length, priority, flags and checksum") {
  std::string payload = "hello";
  char h[f::kFrameHeaderSize];
  f::EncodeFrameHeader(7, 5, 2, f::kFlagDropReport, crc32c::Value(payload), h);
  f::FrameHeader fh;
  const char* why = nullptr;
  REQUIRE(f::DecodeFrameHeader(h, &fh, &why));
  CHECK(fh.seq == 7u);
  CHECK(fh.payload_len == 5u);
  CHECK(fh.priority == 2);
  CHECK(fh.flags == f::kFlagDropReport);
  CHECK(f::FrameChecksumMatches(h, payload, fh));
  CHECK_FALSE(f::FrameChecksumMatches(h, "hellO", fh));

  auto mutated = [&](size_t at, char v) {
    std::string m(h, sizeof h);
    m[at] = v;
    return m;
  };
  CHECK_FALSE(f::DecodeFrameHeader(mutated(0, 'x').data(), &fh, &why));    // magic
  CHECK_FALSE(f::DecodeFrameHeader(mutated(19, 0x7f).data(), &fh, &why));  // length > 4 MiB
  CHECK_FALSE(f::DecodeFrameHeader(mutated(20, 3).data(), &fh, &why));     // priority
  CHECK_FALSE(f::DecodeFrameHeader(mutated(21, 0x02).data(), &fh, &why));  // unknown flag
  CHECK_FALSE(f::DecodeFrameHeader(mutated(22, 1).data(), &fh, &why));     // reserved
  std::string seq_changed = mutated(8, 8);
  REQUIRE(f::DecodeFrameHeader(seq_changed.data(), &fh, &why));
  CHECK_FALSE(f::FrameChecksumMatches(seq_changed.data(), payload, fh));  // the CRC covers the header
}

TEST_CASE("State file round trip, damage, newer versions and unknown keys") {
  SpoolState s{123, 456, 7, 8};
  std::string text = EncodeState(s);
  auto back = DecodeState(text);
  REQUIRE(back.ok());
  CHECK(back->acked == 123u);
  CHECK(back->floor == 456u);
  CHECK(back->drops_low == 7u);
  CHECK(back->drops_normal == 8u);

  std::string damaged = text;
  damaged[damaged.find("123")] = '9';
  CHECK(DecodeState(damaged).status().code() == StatusCode::kDataLoss);
  CHECK(DecodeState("").status().code() == StatusCode::kDataLoss);
  CHECK(DecodeState(text.substr(0, text.size() / 2)).status().code() == StatusCode::kDataLoss);

  auto with_crc = [](std::string body) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "crc32c %08x\n", crc32c::Value(body));
    return body + buf;
  };
  auto newer = DecodeState(with_crc("mamori-spool-state 2\nacked 1\n"));
  CHECK(newer.status().code() == StatusCode::kFailedPrecondition);
  auto extra = DecodeState(with_crc("mamori-spool-state 1\nacked 5\nsomething_new 9\nfloor 6\n"));
  REQUIRE(extra.ok());
  CHECK(extra->acked == 5u);
  CHECK(extra->floor == 6u);
}

}  // namespace
}  // namespace mamori::telemetry

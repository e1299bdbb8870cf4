#include <catch2/catch.hpp>

#include <chrono>

#include "mamori/common/file_util.h"
#include "mamori/scanner/hash_db.h"

namespace mamori::scanner {
namespace {

std::string Bytes(const std::string& hex) {
  std::string b;
  REQUIRE(HexDecode(hex, &b));
  return b;
}

const std::string kSha = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";
const std::string kMd5 = "44d88612fea8a8f36de82e1278abb02f";
const std::string kSha1 = "3395856ce81f2b7382dee72602f798b642f14140";

TEST_CASE("HashDb loads ClamAV-style lines and plain digest lists") {
  HashDb db;
  REQUIRE(db.LoadText("# comment\n\n" + kSha + ":68:Sig.A\n" + kMd5 + ":68:Sig.B\r\n" + kSha1 + "\n", "t.hsb").ok());
  db.Finalize();
  CHECK(db.size() == 3);
  CHECK(db.Lookup(DigestKind::kSha256, Bytes(kSha), 68) == std::optional<std::string>("Sig.A"));
  CHECK(db.Lookup(DigestKind::kMd5, Bytes(kMd5), 68) == std::optional<std::string>("Sig.B"));
  CHECK(db.Lookup(DigestKind::kSha1, Bytes(kSha1), 1234).value() == "Mamori.Hash.3395856ce81f");
  CHECK(db.kinds() == (DigestBit(DigestKind::kMd5) | DigestBit(DigestKind::kSha1) | DigestBit(DigestKind::kSha256)));
}

TEST_CASE("HashDb honors the size of a sized signature and '*' for any size") {
  HashDb db;
  REQUIRE(db.LoadText(kSha + ":68:Sized\n" + kMd5 + ":*:AnySize\n", "t").ok());
  db.Finalize();
  CHECK(db.Lookup(DigestKind::kSha256, Bytes(kSha), 68).has_value());
  CHECK(!db.Lookup(DigestKind::kSha256, Bytes(kSha), 69).has_value());
  CHECK(db.Lookup(DigestKind::kMd5, Bytes(kMd5), 12345).has_value());
  CHECK(!db.all_sized());
  CHECK(db.MaySizeMatch(1));
}

TEST_CASE("HashDb size prefilter: only sizes of signatures may match when all are sized") {
  HashDb db;
  REQUIRE(db.LoadText(kSha + ":68:A\n" + kSha1 + ":4096:B\n", "t").ok());
  db.Finalize();
  CHECK(db.all_sized());
  CHECK(db.MaySizeMatch(68));
  CHECK(db.MaySizeMatch(4096));
  CHECK(!db.MaySizeMatch(69));
}

TEST_CASE("HashDb refuses a bad line whole, naming file and line") {
  HashDb db;
  Status s = db.LoadText(kSha + ":68:Good\nnot-a-hash:1:Bad\n", "feeds/x.hsb");
  REQUIRE(!s.ok());
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message().rfind("feeds/x.hsb:2: ", 0) == 0);
  db.Finalize();
  CHECK(db.size() == 0);  // nothing half-loaded
  CHECK(!db.LoadText(kSha + ":12x:Bad\n", "y").ok());
  CHECK(!db.LoadText(kSha.substr(0, 63) + "g:1:Bad\n", "y").ok());
}

TEST_CASE("HashDb holds 1,000,000 SHA-256 entries in under 48 MB and finds them") {
  std::string text;
  text.reserve(65u * 1000000);
  uint64_t x = 0x9E3779B97F4A7C15ull;
  std::string probe;
  for (int i = 0; i < 1000000; ++i) {
    std::string hex;
    for (int w = 0; w < 4; ++w) {
      x ^= x << 13; x ^= x >> 7; x ^= x << 17;
      char buf[17];
      std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(x));
      hex += buf;
    }
    if (i == 777777) probe = hex;
    text += hex;
    text += '\n';
  }
  HashDb db;
  auto start = std::chrono::steady_clock::now();
  REQUIRE(db.LoadText(text, "million").ok());
  db.Finalize();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  INFO("load of 1M lines took " << ms << " ms");  // timing is reported by bench/, not asserted here
  CHECK(db.size() == 1000000);
  CHECK(db.MemoryBytes() <= 48u << 20);
  CHECK(db.Lookup(DigestKind::kSha256, Bytes(probe), 1).has_value());
  CHECK(!db.Lookup(DigestKind::kSha256, Bytes(kSha), 68).has_value());
}

}  // namespace
}  // namespace mamori::scanner

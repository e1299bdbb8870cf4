// Hostile inputs: what an attacker would hand a scanner running as root.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>

#include "mamori/scanner/scanner.h"
#include "test_util.h"

namespace mamori::scanner {
namespace {

using testing::Eicar;
using testing::MakeArchive;

std::unique_ptr<Scanner> Make(ScanOptions o = {}) {
  auto s = Scanner::Create(testing::TestSignatures(), o);
  REQUIRE(s.ok());
  return std::move(*s);
}

bool HasIncomplete(const ScanReport& r, const std::string& prefix) {
  for (const auto& i : r.incomplete) {
    if (i.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

TEST_CASE("A 10 GB sparse file ends incomplete at the time limit, in bounded time and memory") {
  testing::TempDir dir;
  std::string p = dir.path() + "/sparse.img";
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::ftruncate(fd, 10ll << 30) == 0);  // holes only: no disk space used
  ::close(fd);
  ScanOptions o;
  o.limits.max_scan_time = std::chrono::seconds(2);
  auto start = std::chrono::steady_clock::now();
  auto r = Make(o)->ScanFile(p);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(15));
  CHECK(r.verdict == Verdict::kIncomplete);
  CHECK(HasIncomplete(r, "time"));
}

TEST_CASE("42.zip-style recursion stops at the member-count or size limits in bounded time") {
  std::string level = MakeArchive("zip", {{"zeros.bin", std::string(1u << 20, '\0')}});
  for (int depth = 0; depth < 4; ++depth) {
    testing::Members copies;
    for (int i = 0; i < 16; ++i) copies.push_back({"l" + std::to_string(depth) + "-" + std::to_string(i) + ".zip", level});
    level = MakeArchive("zip", copies);
  }
  INFO("outer size " << level.size());  // 16^4 = 65,536 leaves of 1 MiB: 64 GiB if fully expanded
  auto start = std::chrono::steady_clock::now();
  auto r = Make()->ScanBuffer(level, "42.zip");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(60));
  CHECK(r.verdict == Verdict::kIncomplete);
  CHECK((HasIncomplete(r, "member-count") || HasIncomplete(r, "total-size") || HasIncomplete(r, "ratio")));
}

TEST_CASE("Member names with ../, absolute paths and control characters are only names: nothing is written") {
  testing::TempDir dir;
  std::string zip = MakeArchive("zip", {{"../../escape.com", Eicar()}, {"/abs/olute.com", Eicar()},
                                        {"new\nline\x01.com", Eicar()}});
  auto r = Make()->ScanBuffer(zip, dir.path() + "/names.zip");
  CHECK(r.verdict == Verdict::kFound);
  bool traversal = false, absolute = false, control = false;
  for (const auto& f : r.findings) {
    traversal = traversal || f.object.find("!../../escape.com") != std::string::npos;
    absolute = absolute || f.object.find("!/abs/olute.com") != std::string::npos;
    control = control || f.object.find("new\nline") != std::string::npos;
  }
  CHECK(traversal);
  CHECK(absolute);
  CHECK(control);
  CHECK(::access((dir.path() + "/../escape.com").c_str(), F_OK) != 0);  // never extracted anywhere
}

TEST_CASE("A YARA rule built to be slow is stopped by the per-file time limit and reported") {
  testing::TempDir dir;
  dir.Write("r/slow.yar",
            "rule Slow { condition: for all i in (0..filesize) : "
            "(for all j in (0..filesize) : (uint8(i) != 0x41 or uint8(j) != 0x42)) }\n");
  auto sigs = LoadSignatureDir(dir.path() + "/r");
  REQUIRE(sigs.ok());
  ScanOptions o;
  o.limits.max_scan_time = std::chrono::seconds(1);
  auto s = Scanner::Create(*sigs, o);
  REQUIRE(s.ok());
  auto start = std::chrono::steady_clock::now();
  auto r = (*s)->ScanBuffer(std::string(8u << 20, 'z'), "slow-bait");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
  CHECK(r.verdict == Verdict::kIncomplete);
  CHECK(HasIncomplete(r, "time"));
}

}  // namespace
}  // namespace mamori::scanner

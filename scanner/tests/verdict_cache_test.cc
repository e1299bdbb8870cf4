#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "mamori/common/file_util.h"
#include "mamori/scanner/verdict_cache.h"
#include "mamori/scanner/scanner.h"
#include "test_util.h"

namespace mamori::scanner {
namespace {

ScanReport Clean(const std::string& path) {
  ScanReport r;
  r.path = path;
  return r;
}

bool IsKnownClean(const VerdictCache& c, const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  auto v = c.Lookup(FileKey::FromStat(st), path);
  return v.has_value() && v->findings.empty();
}

FileKey KeyOf(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return FileKey::FromStat(st);
}

TEST_CASE("VerdictCache hit survives a restart, through the cache file") {
  testing::TempDir dir;
  std::string f = dir.Write("a.txt", "clean");
  std::string cache_file = dir.path() + "/cache/verdicts.bin";
  {
    VerdictCache c(cache_file, "v1");
    CHECK(!IsKnownClean(c, f));
    c.Record(KeyOf(f), Clean(f));
    REQUIRE(c.Save().ok());
  }
  VerdictCache reloaded(cache_file, "v1");
  CHECK(IsKnownClean(reloaded, f));
  CHECK(reloaded.size() == 1);
}

TEST_CASE("VerdictCache misses after a signature change") {
  testing::TempDir dir;
  std::string f = dir.Write("a.txt", "clean");
  std::string cache_file = dir.path() + "/verdicts.bin";
  {
    VerdictCache c(cache_file, "v1");
    c.Record(KeyOf(f), Clean(f));
    REQUIRE(c.Save().ok());
  }
  VerdictCache other(cache_file, "v2");
  CHECK(!IsKnownClean(other, f));
  CHECK(other.load_note().find("signatures changed") != std::string::npos);
}

TEST_CASE("VerdictCache misses after the file is touched or rewritten") {
  testing::TempDir dir;
  std::string f = dir.Write("a.txt", "clean");
  VerdictCache c("", "v1");
  FileKey before = KeyOf(f);
  c.Record(before, Clean(f));
  usleep(20000);
  {
    std::ofstream out(f, std::ios::app);
    out << "more";
  }
  CHECK(!IsKnownClean(c, f));
  // chmod changes only ctime: still a miss.
  std::string g = dir.Write("b.txt", "clean");
  c.Record(KeyOf(g), Clean(g));
  usleep(20000);
  REQUIRE(::chmod(g.c_str(), 0600) == 0);
  CHECK(!IsKnownClean(c, g));
}

TEST_CASE("A damaged cache file is ignored, not trusted") {
  testing::TempDir dir;
  std::string f = dir.Write("a.txt", "clean");
  std::string cache_file = dir.path() + "/verdicts.bin";
  {
    VerdictCache c(cache_file, "v1");
    c.Record(KeyOf(f), Clean(f));
    REQUIRE(c.Save().ok());
  }
  auto data = ReadFileToString(cache_file);
  REQUIRE(data.ok());
  std::string bad = *data;
  bad[bad.size() - 40] ^= 1;
  REQUIRE(WriteFileAtomically(cache_file, bad).ok());
  VerdictCache c(cache_file, "v1");
  CHECK(c.size() == 0);
  CHECK(c.load_note().find("checksum") != std::string::npos);
  REQUIRE(WriteFileAtomically(cache_file, data->substr(0, 50)).ok());
  VerdictCache d(cache_file, "v1");
  CHECK(d.size() == 0);
}

}  // namespace
}  // namespace mamori::scanner

namespace mamori::scanner {
namespace {

TEST_CASE("VerdictCache keeps findings across a restart, rebuilt on the path asked, and never caches incomplete scans") {
  testing::TempDir dir;
  std::string f = dir.Write("bad.bin", "x");
  std::string cache_file = dir.path() + "/verdicts.bin";
  ScanReport found;
  found.path = f;
  found.verdict = Verdict::kFound;
  Finding fd;
  fd.object = f + "!inner.txt";
  fd.signature = "Rule_X";
  fd.kind = FindingKind::kYara;
  fd.name_space = "ns";
  fd.tags = {"t1", "t2"};
  fd.meta = {{"author", "me"}};
  fd.sha256 = "ab";
  found.findings.push_back(fd);
  found.sha256 = std::string(64, 'c');
  std::string g = dir.Write("partial.bin", "y");
  ScanReport partial;
  partial.path = g;
  partial.verdict = Verdict::kIncomplete;
  partial.incomplete = {"encrypted (partial.bin!x)"};
  {
    VerdictCache c(cache_file, "v1");
    c.Record(KeyOf(f), found);
    c.Record(KeyOf(g), partial);
    CHECK(c.size() == 1);
    REQUIRE(c.Save().ok());
  }
  VerdictCache c(cache_file, "v1");
  // Same inode seen under another name (a bind mount, another root): objects follow the name asked.
  std::string renamed = "/elsewhere/renamed.bin";
  auto hit = c.Lookup(KeyOf(f), renamed);
  REQUIRE(hit.has_value());
  REQUIRE(hit->findings.size() == 1);
  CHECK(hit->sha256 == std::string(64, 'c'));
  CHECK(hit->findings[0].object == renamed + "!inner.txt");
  CHECK(hit->findings[0].signature == "Rule_X");
  CHECK(hit->findings[0].kind == FindingKind::kYara);
  CHECK(hit->findings[0].tags == std::vector<std::string>{"t1", "t2"});
  CHECK(hit->findings[0].meta.at(0).second == "me");
  CHECK(!c.Lookup(KeyOf(g), g).has_value());
}

}  // namespace
}  // namespace mamori::scanner

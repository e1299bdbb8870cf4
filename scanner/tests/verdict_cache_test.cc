#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "mamori/common/file_util.h"
#include "mamori/scanner/verdict_cache.h"
#include "test_util.h"

namespace mamori::scanner {
namespace {

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
    CHECK(!c.IsKnownClean(KeyOf(f)));
    c.RecordClean(KeyOf(f));
    REQUIRE(c.Save().ok());
  }
  VerdictCache reloaded(cache_file, "v1");
  CHECK(reloaded.IsKnownClean(KeyOf(f)));
  CHECK(reloaded.size() == 1);
}

TEST_CASE("VerdictCache misses after a signature change") {
  testing::TempDir dir;
  std::string f = dir.Write("a.txt", "clean");
  std::string cache_file = dir.path() + "/verdicts.bin";
  {
    VerdictCache c(cache_file, "v1");
    c.RecordClean(KeyOf(f));
    REQUIRE(c.Save().ok());
  }
  VerdictCache other(cache_file, "v2");
  CHECK(!other.IsKnownClean(KeyOf(f)));
  CHECK(other.load_note().find("signatures changed") != std::string::npos);
}

TEST_CASE("VerdictCache misses after the file is touched or rewritten") {
  testing::TempDir dir;
  std::string f = dir.Write("a.txt", "clean");
  VerdictCache c("", "v1");
  FileKey before = KeyOf(f);
  c.RecordClean(before);
  usleep(20000);
  {
    std::ofstream out(f, std::ios::app);
    out << "more";
  }
  CHECK(!c.IsKnownClean(KeyOf(f)));
  // chmod changes only ctime: still a miss.
  std::string g = dir.Write("b.txt", "clean");
  c.RecordClean(KeyOf(g));
  usleep(20000);
  REQUIRE(::chmod(g.c_str(), 0600) == 0);
  CHECK(!c.IsKnownClean(KeyOf(g)));
}

TEST_CASE("A damaged cache file is ignored, not trusted") {
  testing::TempDir dir;
  std::string f = dir.Write("a.txt", "clean");
  std::string cache_file = dir.path() + "/verdicts.bin";
  {
    VerdictCache c(cache_file, "v1");
    c.RecordClean(KeyOf(f));
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

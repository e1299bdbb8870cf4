#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <thread>

#include "mamori/scanner/tree_scan.h"
#include "test_util.h"

namespace mamori::scanner {
namespace {

using testing::Eicar;
using testing::TempDir;

struct Collected {
  std::map<std::string, ScanReport> by_path;
  void operator()(const ScanReport& r) { by_path[r.path] = r; }
};

TEST_CASE("ScanTree finds detections across a tree with several workers") {
  TempDir dir;
  for (int i = 0; i < 50; ++i) dir.Write("d" + std::to_string(i % 5) + "/f" + std::to_string(i), "clean " + std::to_string(i));
  std::string bad = dir.Write("d3/deeper/eicar.com", Eicar());
  Collected c;
  TreeScanOptions o;
  o.threads = 3;
  TreeScanProgress p;
  REQUIRE(ScanTree(testing::TestSignatures(), {dir.path()}, o, std::ref(c), &p).ok());
  CHECK(p.files == 51);
  CHECK(p.found == 1);
  CHECK(p.errors == 0);
  REQUIRE(c.by_path.count(bad) == 1);
  CHECK(c.by_path[bad].verdict == Verdict::kFound);
}

TEST_CASE("ScanTree skips FIFOs and sockets without blocking and reports unreadable files") {
  TempDir dir;
  dir.Write("ok.txt", "fine");
  REQUIRE(::mkfifo((dir.path() + "/pipe").c_str(), 0600) == 0);
  std::string locked = dir.Write("locked.txt", "secret");
  REQUIRE(::chmod(locked.c_str(), 0) == 0);
  Collected c;
  TreeScanProgress p;
  REQUIRE(ScanTree(testing::TestSignatures(), {dir.path()}, {}, std::ref(c), &p).ok());
  CHECK(p.skipped >= 1);
  if (::geteuid() == 0) {
    // root reads mode-000 files; the permission path is covered by the non-root run.
    CHECK(p.files == 2);
  } else {
    CHECK(p.errors == 1);
    REQUIRE(c.by_path.count(locked) == 1);
    CHECK(c.by_path[locked].error.find("Permission denied") != std::string::npos);
  }
}

TEST_CASE("ScanTree reports a directory and a file it may not read and goes on") {
  if (::geteuid() == 0) {
    // Drop to nobody in a child so that permissions apply even when tests run as root.
    TempDir dir;
    dir.Write("open/a.txt", "x");
    dir.Write("closed/b.txt", "x");
    std::string locked = dir.Write("open/locked.txt", "secret");
    REQUIRE(::chmod(locked.c_str(), 0) == 0);
    REQUIRE(::chmod((dir.path() + "/closed").c_str(), 0) == 0);
    REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
    REQUIRE(::chmod((dir.path() + "/open").c_str(), 0755) == 0);
    REQUIRE(::chmod((dir.path() + "/open/a.txt").c_str(), 0644) == 0);
    auto sigs = testing::TestSignatures();
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      if (setgid(65534) != 0 || setuid(65534) != 0) _exit(10);
      TreeScanProgress p;
      Collected c;
      TreeScanOptions o;
      o.threads = 1;
      if (!ScanTree(sigs, {dir.path()}, o, std::ref(c), &p).ok()) _exit(11);
      bool ok = p.files == 1 && p.errors == 2 && c.by_path.count(dir.path() + "/closed") == 1 &&
                c.by_path.count(locked) == 1 &&
                c.by_path[locked].error.find("Permission denied") != std::string::npos;
      _exit(ok ? 0 : 12);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  } else {
    TempDir dir;
    dir.Write("open/a.txt", "x");
    dir.Write("closed/b.txt", "x");
    REQUIRE(::chmod((dir.path() + "/closed").c_str(), 0) == 0);
    TreeScanProgress p;
    REQUIRE(ScanTree(testing::TestSignatures(), {dir.path()}, {}, [](const ScanReport&) {}, &p).ok());
    CHECK(p.files == 1);
    CHECK(p.errors == 1);
  }
}

TEST_CASE("ScanTree does not follow symlinks by default and survives symlink loops when following") {
  TempDir dir;
  TempDir outside;
  outside.Write("eicar.com", Eicar());
  dir.Write("sub/a.txt", "x");
  std::filesystem::create_directory_symlink(outside.path(), dir.path() + "/to-outside");
  std::filesystem::create_directory_symlink(dir.path(), dir.path() + "/sub/loop");
  std::filesystem::create_symlink(dir.path() + "/sub/loop", dir.path() + "/sub/loop2");
  {
    TreeScanProgress p;
    REQUIRE(ScanTree(testing::TestSignatures(), {dir.path()}, {}, [](const ScanReport&) {}, &p).ok());
    CHECK(p.files == 1);
    CHECK(p.found == 0);
  }
  {
    TreeScanOptions o;
    o.follow_symlinks = true;
    TreeScanProgress p;
    REQUIRE(ScanTree(testing::TestSignatures(), {dir.path()}, o, [](const ScanReport&) {}, &p).ok());
    CHECK(p.found == 1);
    CHECK(p.files == 2);  // each directory entered once despite the loops
  }
}

TEST_CASE("ScanTree excludes globs by base name and by path") {
  TempDir dir;
  dir.Write("keep/a.txt", "x");
  dir.Write("keep/b.log", Eicar());
  dir.Write("skipme/c.txt", Eicar());
  TreeScanOptions o;
  o.exclude = {"*.log", dir.path() + "/skip*"};
  TreeScanProgress p;
  REQUIRE(ScanTree(testing::TestSignatures(), {dir.path()}, o, [](const ScanReport&) {}, &p).ok());
  CHECK(p.files == 1);
  CHECK(p.found == 0);
}

TEST_CASE("Files deleted while the tree is scanned are skipped, not errors") {
  TempDir dir;
  for (int i = 0; i < 2000; ++i) dir.Write("f/" + std::to_string(i), std::string(2000, 'a'));
  TreeScanProgress p;
  std::thread deleter([&] {
    for (int i = 1999; i >= 0; i -= 2) ::unlink((dir.path() + "/f/" + std::to_string(i)).c_str());
  });
  TreeScanOptions o;
  o.threads = 2;
  REQUIRE(ScanTree(testing::TestSignatures(), {dir.path()}, o, [](const ScanReport&) {}, &p).ok());
  deleter.join();
  CHECK(p.errors == 0);
  CHECK(p.files + p.skipped <= 2000);
  CHECK(p.files >= 1000);
}

TEST_CASE("ScanTree with a verdict cache answers unchanged files from it") {
  TempDir dir;
  for (int i = 0; i < 20; ++i) dir.Write("f" + std::to_string(i), "clean " + std::to_string(i));
  dir.Write("eicar.com", Eicar());
  VerdictCache cache("", "v");
  TreeScanOptions o;
  o.cache = &cache;
  TreeScanProgress first, second;
  REQUIRE(ScanTree(testing::TestSignatures(), {dir.path()}, o, [](const ScanReport&) {}, &first).ok());
  REQUIRE(ScanTree(testing::TestSignatures(), {dir.path()}, o, [](const ScanReport&) {}, &second).ok());
  CHECK(first.cached == 0);
  CHECK(second.cached == 21);
  CHECK(second.found == 1);  // the finding comes back from the cache
}

}  // namespace
}  // namespace mamori::scanner

#include "mamori/platform/file_walk.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <vector>

#include "test_util.h"

namespace mamori::platform {
namespace {

using testing::TempDir;
using testing::WriteTestFile;

struct Walked {
  std::map<std::string, EntryKind> entries;
  std::map<std::string, uint64_t> sizes;
  std::vector<std::pair<std::string, Status>> errors;
};

Status Walk(const std::string& root, Walked* w, const WalkOptions& options = {},
            const std::function<WalkAction(const WalkEntry&)>& also = nullptr) {
  return WalkTree(
      root, options,
      [&](const WalkEntry& e) {
        w->entries[e.path] = e.kind;
        if (e.kind == EntryKind::kFile) w->sizes[e.path] = e.size;
        return also ? also(e) : WalkAction::kContinue;
      },
      [&](const std::string& path, const Status& why) { w->errors.emplace_back(path, why); });
}

TEST_CASE("walk reports files and directories and never follows a symlink out of the tree", "[platform]") {
  TempDir tree, outside;
  REQUIRE(::mkdir((tree / "a").c_str(), 0755) == 0);
  REQUIRE(::mkdir((tree / "a/b").c_str(), 0755) == 0);
  WriteTestFile(tree / "a/b/f.txt", "hello");
  WriteTestFile(outside / "secret.txt", "outside");
  REQUIRE(::symlink(outside.path().c_str(), (tree / "a/link-dir").c_str()) == 0);
  REQUIRE(::symlink((outside / "secret.txt").c_str(), (tree / "link-file").c_str()) == 0);
  ::mkfifo((tree / "fifo").c_str(), 0600);

  Walked w;
  REQUIRE(Walk(tree.path(), &w).ok());
  CHECK(w.errors.empty());
  CHECK(w.entries.size() == 6);
  CHECK(w.entries[tree / "a"] == EntryKind::kDirectory);
  CHECK(w.entries[tree / "a/b"] == EntryKind::kDirectory);
  CHECK(w.entries[tree / "a/b/f.txt"] == EntryKind::kFile);
  CHECK(w.sizes[tree / "a/b/f.txt"] == 5);
  CHECK(w.entries[tree / "a/link-dir"] == EntryKind::kLink);
  CHECK(w.entries[tree / "link-file"] == EntryKind::kLink);
  CHECK(w.entries[tree / "fifo"] == EntryKind::kOther);
  CHECK(w.entries.count(tree / "a/link-dir/secret.txt") == 0);
}

TEST_CASE("walk reports a directory it cannot list and goes on with its siblings", "[platform]") {
  TempDir tree;
  REQUIRE(::mkdir((tree / "gone").c_str(), 0755) == 0);
  REQUIRE(::mkdir((tree / "kept").c_str(), 0755) == 0);
  WriteTestFile(tree / "kept/f", "x");
  Walked w;
  // The directory disappears between being listed and being opened.
  REQUIRE(Walk(tree.path(), &w, {}, [&](const WalkEntry& e) {
            if (e.path == tree / "gone") ::rmdir(e.path.c_str());
            return WalkAction::kContinue;
          }).ok());
  REQUIRE(w.errors.size() == 1);
  CHECK(w.errors[0].first == tree / "gone");
  CHECK(w.errors[0].second.code() == StatusCode::kNotFound);
  CHECK(w.errors[0].second.message().find(tree / "gone") != std::string::npos);
  CHECK(w.entries.count(tree / "kept/f") == 1);
}

TEST_CASE("a directory whose path exceeds PATH_MAX is reported and the walk goes on", "[platform]") {
  TempDir tree;
  WriteTestFile(tree / "sibling", "x");
  // Build the chain with directory fds: every path handed to the kernel by
  // this test stays short, while the walk's full paths pass 4096 bytes.
  const std::string segment(200, 'd');
  int fd = ::open(tree.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  size_t length = tree.path().size();
  int levels = 0;
  while (length <= 4096 + 200) {
    REQUIRE(::mkdirat(fd, segment.c_str(), 0755) == 0);
    int next = ::openat(fd, segment.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ::close(fd);
    REQUIRE(next >= 0);
    fd = next;
    length += 1 + segment.size();
    ++levels;
  }
  ::close(fd);
  Walked w;
  REQUIRE(Walk(tree.path(), &w).ok());
  CHECK(w.entries.count(tree / "sibling") == 1);
  REQUIRE(w.errors.size() == 1);
  CHECK(w.errors[0].first.size() > 4096);
  CHECK(w.errors[0].second.code() == StatusCode::kInvalidArgument);  // ENAMETOOLONG
  // Every directory up to the limit was listed.
  CHECK(w.entries.size() >= static_cast<size_t>(levels - 1));
  // TempDir's remove_all cannot delete paths this long either: remove bottom-up with fds.
  std::function<void(int, int)> remove_chain = [&](int dirfd, int depth) {
    if (depth == levels) return;
    int child = ::openat(dirfd, segment.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (child >= 0) {
      remove_chain(child, depth + 1);
      ::close(child);
    }
    ::unlinkat(dirfd, segment.c_str(), AT_REMOVEDIR);
  };
  int root = ::open(tree.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(root >= 0);
  remove_chain(root, 0);
  ::close(root);
}

TEST_CASE("walk honours skip-subtree and stop and max_depth", "[platform]") {
  TempDir tree;
  REQUIRE(::mkdir((tree / "skip").c_str(), 0755) == 0);
  WriteTestFile(tree / "skip/hidden", "x");
  REQUIRE(::mkdir((tree / "d1").c_str(), 0755) == 0);
  REQUIRE(::mkdir((tree / "d1/d2").c_str(), 0755) == 0);
  WriteTestFile(tree / "d1/d2/deep", "x");

  Walked skipped;
  REQUIRE(Walk(tree.path(), &skipped, {}, [&](const WalkEntry& e) {
            return e.path == tree / "skip" ? WalkAction::kSkipSubtree : WalkAction::kContinue;
          }).ok());
  CHECK(skipped.entries.count(tree / "skip") == 1);
  CHECK(skipped.entries.count(tree / "skip/hidden") == 0);
  CHECK(skipped.entries.count(tree / "d1/d2/deep") == 1);

  Walked stopped;
  REQUIRE(Walk(tree.path(), &stopped, {}, [](const WalkEntry&) { return WalkAction::kStop; }).ok());
  CHECK(stopped.entries.size() == 1);

  Walked shallow;
  WalkOptions o;
  o.max_depth = 1;
  REQUIRE(Walk(tree.path(), &shallow, o).ok());
  CHECK(shallow.entries.count(tree / "d1") == 1);
  CHECK(shallow.entries.count(tree / "d1/d2") == 0);
  CHECK(shallow.errors.size() == 2);  // "skip" and "d1" not entered
  CHECK(shallow.errors[0].second.code() == StatusCode::kOutOfRange);
}

TEST_CASE("walk of a missing root or a file root fails naming it", "[platform]") {
  TempDir tree;
  WriteTestFile(tree / "file", "x");
  Walked w;
  Status missing = Walk(tree / "nope", &w);
  CHECK(missing.code() == StatusCode::kNotFound);
  CHECK(missing.message().find(tree / "nope") != std::string::npos);
  Status file = Walk(tree / "file", &w);
  CHECK(file.code() == StatusCode::kInvalidArgument);
  CHECK(w.entries.empty());
}

}  // namespace
}  // namespace mamori::platform

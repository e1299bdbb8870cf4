#include "mamori/platform/file_walk.h"

#include <windows.h>
#include <winioctl.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <map>
#include <vector>

#include "../../windows/walk_kind.h"
#include "../../windows/win_util.h"
#include "test_util.h"

namespace mamori::platform {
namespace {

using testing::MakeDir;
using testing::TempDir;
using testing::WriteTestFile;

struct Walked {
  std::map<std::string, EntryKind> entries;
  std::map<std::string, uint64_t> sizes;
  std::vector<std::pair<std::string, Status>> errors;
};

Status Walk(const std::string& root, Walked* w, const std::function<WalkAction(const WalkEntry&)>& also = nullptr) {
  return WalkTree(
      root, WalkOptions{},
      [&](const WalkEntry& e) {
        w->entries[e.path] = e.kind;
        if (e.kind == EntryKind::kFile) w->sizes[e.path] = e.size;
        return also ? also(e) : WalkAction::kContinue;
      },
      [&](const std::string& path, const Status& why) { w->errors.emplace_back(path, why); });
}

// A junction (IO_REPARSE_TAG_MOUNT_POINT) at `link` pointing to `target`, made
// the way mklink /J does. False (with the Win32 error) when the file system
// or wine does not support it.
bool MakeJunction(const std::string& link, const std::string& target, DWORD* err) {
  if (!::CreateDirectoryW(win::LongPath(link).c_str(), nullptr)) {
    *err = ::GetLastError();
    return false;
  }
  win::Handle h(::CreateFileW(win::LongPath(link).c_str(), GENERIC_WRITE, 0, nullptr, OPEN_EXISTING,
                              FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT, nullptr));
  if (!h) {
    *err = ::GetLastError();
    return false;
  }
  std::wstring print = win::Wide(target);
  std::wstring sub = L"\\??\\" + print;
  const size_t sub_bytes = sub.size() * sizeof(wchar_t), print_bytes = print.size() * sizeof(wchar_t);
  std::vector<BYTE> buf(8 + 8 + sub_bytes + 2 + print_bytes + 2, 0);
  auto put32 = [&](size_t at, DWORD v) { std::memcpy(&buf[at], &v, 4); };
  auto put16 = [&](size_t at, WORD v) { std::memcpy(&buf[at], &v, 2); };
  put32(0, IO_REPARSE_TAG_MOUNT_POINT);
  put16(4, static_cast<WORD>(buf.size() - 8));  // ReparseDataLength
  put16(8, 0);                                  // SubstituteNameOffset
  put16(10, static_cast<WORD>(sub_bytes));
  put16(12, static_cast<WORD>(sub_bytes + 2));  // PrintNameOffset
  put16(14, static_cast<WORD>(print_bytes));
  std::memcpy(&buf[16], sub.data(), sub_bytes);
  std::memcpy(&buf[16 + sub_bytes + 2], print.data(), print_bytes);
  DWORD ret = 0;
  if (!::DeviceIoControl(h.get(), FSCTL_SET_REPARSE_POINT, buf.data(), static_cast<DWORD>(buf.size()), nullptr, 0,
                         &ret, nullptr)) {
    *err = ::GetLastError();
    return false;
  }
  return true;
}

TEST_CASE("walk finds a file below a path longer than MAX_PATH", "[walk]") {
  TempDir tree;
  std::string dir = tree.path();
  const std::string segment(60, 'd');
  for (int i = 0; i < 6; ++i) {
    dir += "\\" + segment + std::to_string(i);
    MakeDir(dir);
  }
  std::string file = dir + "\\deep-file.bin";
  WriteTestFile(file, "12345678");
  REQUIRE(file.size() > MAX_PATH);

  Walked w;
  REQUIRE(Walk(tree.path(), &w).ok());
  CHECK(w.errors.empty());
  REQUIRE(w.entries.count(file) == 1);
  CHECK(w.entries[file] == EntryKind::kFile);
  CHECK(w.sizes[file] == 8);
  CHECK(w.entries.size() == 7);
  for (const auto& [path, kind] : w.entries) CHECK(path.rfind("\\\\?\\", 0) == std::string::npos);
}

TEST_CASE("walk reports a junction and does not enter it", "[walk]") {
  TempDir tree, outside;
  WriteTestFile(outside / "secret.txt", "outside");
  MakeDir(tree / "real");
  WriteTestFile(tree / "real\\f.txt", "x");
  DWORD err = 0;
  if (!MakeJunction(tree / "junction", outside.path(), &err)) {
    WARN("junctions cannot be created here (Win32 error " << err << "): junction walk untested");
    return;
  }
  Walked w;
  REQUIRE(Walk(tree.path(), &w).ok());
  CHECK(w.entries[tree / "junction"] == EntryKind::kLink);
  CHECK(w.entries.count(tree / "junction\\secret.txt") == 0);
  CHECK(w.entries[tree / "real\\f.txt"] == EntryKind::kFile);
}

TEST_CASE("walk reports a directory symlink and does not enter it", "[walk]") {
  TempDir tree, outside;
  WriteTestFile(outside / "secret.txt", "outside");
  constexpr DWORD kAllowUnprivileged = 0x2;  // SYMBOLIC_LINK_FLAG_ALLOW_UNPRIVILEGED_CREATE
  if (!::CreateSymbolicLinkW(win::LongPath(tree / "link").c_str(), win::LongPath(outside.path()).c_str(),
                             SYMBOLIC_LINK_FLAG_DIRECTORY | kAllowUnprivileged) ||
      !testing::Exists(tree / "link")) {
    // Wine 8 answers success and creates nothing.
    WARN("symlinks cannot be created here (Win32 error " << ::GetLastError() << "): symlink walk untested");
    return;
  }
  Walked w;
  REQUIRE(Walk(tree.path(), &w).ok());
  CHECK(w.entries[tree / "link"] == EntryKind::kLink);
  CHECK(w.entries.count(tree / "link\\secret.txt") == 0);
}

TEST_CASE("directory reparse points and file symlinks are links and other file reparse tags are files", "[walk]") {
  using win::KindOfFindData;
  constexpr DWORD kDir = FILE_ATTRIBUTE_DIRECTORY, kReparse = FILE_ATTRIBUTE_REPARSE_POINT;
  CHECK(KindOfFindData(kDir | kReparse, IO_REPARSE_TAG_MOUNT_POINT) == EntryKind::kLink);  // junction
  CHECK(KindOfFindData(kDir | kReparse, IO_REPARSE_TAG_SYMLINK) == EntryKind::kLink);
  CHECK(KindOfFindData(kDir | kReparse, 0x9000001Au) == EntryKind::kLink);  // a cloud-files directory
  CHECK(KindOfFindData(kReparse | FILE_ATTRIBUTE_ARCHIVE, IO_REPARSE_TAG_SYMLINK) == EntryKind::kLink);
  CHECK(KindOfFindData(kReparse | FILE_ATTRIBUTE_ARCHIVE, IO_REPARSE_TAG_DEDUP) == EntryKind::kFile);
  CHECK(KindOfFindData(kDir, 0) == EntryKind::kDirectory);
  CHECK(KindOfFindData(FILE_ATTRIBUTE_ARCHIVE | FILE_ATTRIBUTE_READONLY, 0) == EntryKind::kFile);
  CHECK(KindOfFindData(FILE_ATTRIBUTE_NORMAL, 0) == EntryKind::kFile);
  CHECK(KindOfFindData(FILE_ATTRIBUTE_DEVICE, 0) == EntryKind::kOther);
}

TEST_CASE("walk reports a directory it cannot list and goes on with its siblings", "[walk]") {
  TempDir tree;
  MakeDir(tree / "gone");
  MakeDir(tree / "kept");
  WriteTestFile(tree / "kept\\f", "x");
  Walked w;
  REQUIRE(Walk(tree.path(), &w, [&](const WalkEntry& e) {
            if (e.path == tree / "gone") ::RemoveDirectoryW(win::LongPath(e.path).c_str());
            return WalkAction::kContinue;
          }).ok());
  REQUIRE(w.errors.size() == 1);
  CHECK(w.errors[0].first == tree / "gone");
  CHECK(w.errors[0].second.code() == StatusCode::kNotFound);
  CHECK(w.entries.count(tree / "kept\\f") == 1);
}

TEST_CASE("walk of a missing root or a file root fails naming it", "[walk]") {
  TempDir tree;
  WriteTestFile(tree / "file", "x");
  Walked w;
  Status missing = Walk(tree / "nope", &w);
  CHECK(missing.code() == StatusCode::kNotFound);
  CHECK(missing.message().find(tree / "nope") != std::string::npos);
  CHECK(Walk(tree / "file", &w).code() == StatusCode::kInvalidArgument);
  Walked slashes;  // '/' separators are accepted and reported as '\'
  std::string forward = tree.path();
  for (auto& c : forward) c = c == '\\' ? '/' : c;
  REQUIRE(Walk(forward, &slashes).ok());
  CHECK(slashes.entries.count(tree / "file") == 1);
}

}  // namespace
}  // namespace mamori::platform

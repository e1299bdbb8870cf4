// Windows: FindFirstFileExW on `\\?\` paths (no MAX_PATH limit). Reparse
// points are reported as kLink and never entered: directory symlinks,
// junctions and mount points always; on files, symlinks (other file reparse
// tags — dedup, cloud placeholders, WOF — are data files and reported kFile).
#include "mamori/platform/file_walk.h"

#include <windows.h>

#include <utility>
#include <vector>

#include "walk_kind.h"
#include "win_util.h"

namespace mamori::platform {
namespace {

struct Dir {
  std::string path;    // as reported: UTF-8, '\\'
  std::wstring wpath;  // `\\?\` form for the API
  int depth;
};

}  // namespace

Status WalkTree(const std::string& root_in, const WalkOptions& options,
                const std::function<WalkAction(const WalkEntry&)>& on_entry,
                const std::function<void(const std::string&, const Status&)>& on_error) {
  std::string root = root_in;
  for (auto& c : root) {
    if (c == '/') c = '\\';
  }
  // Keep "C:\" and "\\" intact; drop other trailing separators.
  while (root.size() > 3 && root.back() == '\\') root.pop_back();
  std::wstring wroot = win::LongPath(root);
  while (wroot.size() > 7 && wroot.back() == L'\\') wroot.pop_back();
  DWORD attrs = ::GetFileAttributesW(wroot.c_str());
  if (attrs == INVALID_FILE_ATTRIBUTES) return win::LastError("walk: " + root);
  if ((attrs & FILE_ATTRIBUTE_DIRECTORY) == 0) return InvalidArgumentError("walk: " + root + " is not a directory");

  std::vector<Dir> stack{{root, wroot, 0}};
  while (!stack.empty()) {
    Dir dir = std::move(stack.back());
    stack.pop_back();
    std::wstring pattern = dir.wpath;
    if (pattern.back() != L'\\') pattern += L'\\';
    pattern += L'*';
    WIN32_FIND_DATAW fd;
    HANDLE find = ::FindFirstFileExW(pattern.c_str(), FindExInfoBasic, &fd, FindExSearchNameMatch, nullptr,
                                     FIND_FIRST_EX_LARGE_FETCH);
    if (find == INVALID_HANDLE_VALUE) {
      DWORD err = ::GetLastError();
      if (err == ERROR_FILE_NOT_FOUND || err == ERROR_NO_MORE_FILES) continue;  // empty (a drive root)
      if (dir.depth == 0) return win::Win32Error(err, "walk: list " + dir.path);
      on_error(dir.path, win::Win32Error(err, "list " + dir.path));
      continue;
    }
    std::vector<Dir> subdirs;
    bool stop = false;
    do {
      const wchar_t* name = fd.cFileName;
      if ((name[0] == L'.' && name[1] == L'\0') || (name[0] == L'.' && name[1] == L'.' && name[2] == L'\0')) continue;
      WalkEntry entry;
      std::string leaf = win::Utf8(name);
      entry.path = dir.path.back() == '\\' ? dir.path + leaf : dir.path + "\\" + leaf;
      entry.depth = dir.depth + 1;
      // dwReserved0 holds the reparse tag when FILE_ATTRIBUTE_REPARSE_POINT is set.
      entry.kind = win::KindOfFindData(fd.dwFileAttributes, fd.dwReserved0);
      if (entry.kind == EntryKind::kFile) entry.size = (static_cast<uint64_t>(fd.nFileSizeHigh) << 32) | fd.nFileSizeLow;
      WalkAction action = on_entry(entry);
      if (action == WalkAction::kStop) {
        stop = true;
        break;
      }
      if (entry.kind == EntryKind::kDirectory && action == WalkAction::kContinue) {
        if (entry.depth >= options.max_depth) {
          on_error(entry.path, OutOfRangeError("walk: " + entry.path + " is deeper than max_depth " +
                                               std::to_string(options.max_depth) + ": not entered"));
        } else {
          std::wstring wchild = dir.wpath;
          if (wchild.back() != L'\\') wchild += L'\\';
          wchild += name;
          subdirs.push_back(Dir{std::move(entry.path), std::move(wchild), entry.depth});
        }
      }
    } while (::FindNextFileW(find, &fd));
    DWORD err = stop ? ERROR_NO_MORE_FILES : ::GetLastError();
    ::FindClose(find);
    if (err != ERROR_NO_MORE_FILES) on_error(dir.path, win::Win32Error(err, "list " + dir.path));
    if (stop) break;
    for (auto it = subdirs.rbegin(); it != subdirs.rend(); ++it) stack.push_back(std::move(*it));
  }
  return Status::Ok();
}

}  // namespace mamori::platform

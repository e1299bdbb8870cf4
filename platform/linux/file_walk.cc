// Linux: opendir/readdir with d_type, lstat only when d_type is unknown —
// the same walk as scanner/src/tree_scan.cc with symlinks never followed.
#include "mamori/platform/file_walk.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

namespace mamori::platform {
namespace {

EntryKind KindOfMode(mode_t mode) {
  if (S_ISREG(mode)) return EntryKind::kFile;
  if (S_ISDIR(mode)) return EntryKind::kDirectory;
  if (S_ISLNK(mode)) return EntryKind::kLink;
  return EntryKind::kOther;
}

}  // namespace

Status WalkTree(const std::string& root_in, const WalkOptions& options,
                const std::function<WalkAction(const WalkEntry&)>& on_entry,
                const std::function<void(const std::string&, const Status&)>& on_error) {
  std::string root = root_in;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  struct stat st {};
  if (::stat(root.c_str(), &st) != 0) return ErrnoError(errno, "walk: stat " + root);
  if (!S_ISDIR(st.st_mode)) return InvalidArgumentError("walk: " + root + " is not a directory");

  std::vector<std::pair<std::string, int>> stack{{root, 0}};
  while (!stack.empty()) {
    auto [dir, depth] = std::move(stack.back());
    stack.pop_back();
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      if (depth == 0) return ErrnoError(errno, "walk: opendir " + dir);
      on_error(dir, ErrnoError(errno, "opendir " + dir));
      continue;
    }
    std::vector<std::pair<std::string, int>> subdirs;
    bool stop = false;
    while (dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      WalkEntry entry;
      entry.path = dir == "/" ? "/" + std::string(e->d_name) : dir + "/" + e->d_name;
      entry.depth = depth + 1;
      struct stat est {};
      bool need_stat = e->d_type == DT_UNKNOWN || e->d_type == DT_REG;
      if (need_stat) {
        if (::lstat(entry.path.c_str(), &est) != 0) {
          if (errno != ENOENT) on_error(entry.path, ErrnoError(errno, "lstat " + entry.path));
          continue;  // ENOENT: vanished since readdir
        }
        entry.kind = KindOfMode(est.st_mode);
      } else {
        entry.kind = e->d_type == DT_DIR ? EntryKind::kDirectory : e->d_type == DT_LNK ? EntryKind::kLink : EntryKind::kOther;
      }
      if (entry.kind == EntryKind::kFile) entry.size = static_cast<uint64_t>(est.st_size);
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
          subdirs.emplace_back(std::move(entry.path), entry.depth);
        }
      }
    }
    ::closedir(d);
    if (stop) break;
    for (auto it = subdirs.rbegin(); it != subdirs.rend(); ++it) stack.push_back(std::move(*it));
  }
  return Status::Ok();
}

}  // namespace mamori::platform

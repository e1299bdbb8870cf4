// Directory-tree walk that never leaves the tree through a link.
//
// Symlinks (Linux) and reparse points — symlinks, junctions, mount points —
// (Windows) are reported as kLink and never followed or descended into. A
// directory that cannot be read is reported through `on_error` and the walk
// goes on with its siblings: one bad entry never ends the walk.
//
// Windows: paths longer than MAX_PATH (260) work; the walk adds the `\\?\`
// prefix internally and reports paths without it, in UTF-8, with '\\'.
// Linux: paths are reported as given, joined with '/'.
//
// Iterative (no recursion): depth is limited only by `max_depth`.
// Thread-safety: WalkTree is reentrant; callbacks run on the calling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "mamori/common/status.h"

namespace mamori::platform {

enum class EntryKind { kFile, kDirectory, kLink, kOther };

struct WalkEntry {
  std::string path;
  EntryKind kind = EntryKind::kOther;
  uint64_t size = 0;  // files only
  int depth = 0;      // 1 for the root's children
};

enum class WalkAction { kContinue, kSkipSubtree, kStop };

struct WalkOptions {
  int max_depth = 64;  // directories deeper than this are reported, not entered
};

// Calls `on_entry` for every entry below `root` (not for root itself) and
// `on_error` for every entry that could not be listed (the path and why).
// Returns NOT_FOUND / PERMISSION_DENIED / INVALID_ARGUMENT (root not a
// directory) for the root itself; OK otherwise, also when some entries failed.
Status WalkTree(const std::string& root, const WalkOptions& options,
                const std::function<WalkAction(const WalkEntry&)>& on_entry,
                const std::function<void(const std::string& path, const Status& why)>& on_error);

}  // namespace mamori::platform

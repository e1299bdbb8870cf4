// AllowList: what is never reported — SHA-256 digests of objects (a file, or
// a member at any depth) and path globs of top-level files. This is how a
// false positive gets fixed fast, without touching the rule that caused it.
//
// Text format, one entry a line, '#' comments:
//     sha256:<64 hex digits>[  # optional comment]
//     path:<fnmatch(3) glob on the full path; "*" also matches "/", so
//           /opt/vendor/* covers the whole tree below /opt/vendor>
//
// Thread safety: build single-threaded, then read-only (share with the set).
#pragma once

#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::scanner {

class AllowList {
 public:
  // Adds every line of `text`; on error nothing from `text` is added and the
  // message names "source:line".
  Status LoadText(std::string_view text, std::string_view source);
  void AddSha256(std::string_view raw_digest);
  void AddPathGlob(std::string glob);

  bool AllowsSha256(std::string_view raw_digest) const;
  bool AllowsPath(const std::string& path) const;
  size_t sha256_count() const { return sha256_.size(); }
  size_t glob_count() const { return globs_.size(); }
  bool empty() const { return sha256_.empty() && globs_.empty(); }

 private:
  std::unordered_set<std::string> sha256_;  // raw 32-byte digests
  std::vector<std::string> globs_;
};

}  // namespace mamori::scanner

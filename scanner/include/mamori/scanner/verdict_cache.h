// VerdictCache: remembers the verdict of complete scans, keyed by (device,
// inode, size, mtime_ns, ctime_ns) under one signature-set version, so that a
// rescan of an unchanged tree only stats files. Clean files and files with
// findings are cached (the findings themselves are kept, so a rescan reports
// them again); incomplete and failed scans never are — their outcome may differ
// next time. Persisted to a compact file, written atomically; a cache file
// from another signature version, or damaged, is discarded (it is a cache).
//
// ctime cannot be set by unprivileged users, so a file rewritten with its old
// mtime restored still misses the cache.
//
// Thread safety: all methods are thread-safe.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <optional>
#include <unordered_map>
#include <vector>

#include "mamori/common/status.h"
#include "mamori/scanner/scanner.h"

namespace mamori::scanner {

struct FileKey {
  uint64_t dev = 0, ino = 0, size = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;

  static FileKey FromStat(const struct stat& st);
  friend bool operator==(const FileKey&, const FileKey&) = default;
};

class VerdictCache {
 public:
  // `path` empty = memory only. Loading problems are not errors: the cache
  // starts empty and load_note() says why.
  VerdictCache(std::string path, std::string signature_version, size_t max_entries = 4u << 20);

  struct Cached {
    std::vector<Finding> findings;  // empty = clean
    std::string sha256;             // hex, kept for files with findings (exclusions match on it)
  };
  // The cached verdict of the file with `key`, finding object paths rebuilt
  // on `path` (the same inode may be reached by another name); nullopt on a miss.
  std::optional<Cached> Lookup(const FileKey& key, const std::string& path) const;
  // Caches `report` if it is complete (clean, or found with nothing incomplete).
  void Record(const FileKey& key, const ScanReport& report);
  void Forget(const FileKey& key);
  size_t size() const;
  // Writes the cache file atomically (no-op when memory only or unchanged).
  Status Save();
  const std::string& load_note() const { return load_note_; }

 private:
  struct KeyHash {
    size_t operator()(const FileKey& k) const;
  };
  void Load();

  // Constant after construction.
  const std::string path_;
  const std::string version_;
  const size_t max_entries_;
  std::string load_note_;

  mutable std::mutex mu_;
  // Serialized findings with object paths relative to the file; "" = clean.
  std::unordered_map<FileKey, std::string, KeyHash> entries_;  // guarded by mu_
  bool dirty_ = false;                          // guarded by mu_
};

}  // namespace mamori::scanner

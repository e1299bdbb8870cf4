// Process context for behavior events: who ran what, from where, under whom.
//
// Seeded from a /proc snapshot at start, then maintained from the sensor's
// exec/fork/exit events, so every event can carry its process and parent
// (Sigma's Image, CommandLine, ParentImage, ParentCommandLine, User,
// CurrentDirectory) even after the process is gone from /proc.
//
// Memory is bounded: at most Options::max_processes entries. Exited processes
// stay for Options::exited_ttl (late events, ancestry of children) and are
// evicted first; when only live ones remain, the oldest-started is evicted and
// counted. A pid seen in an event but missing from the table is looked up in
// /proc once (it may have started before the sensor attached).
//
// Thread safety: all methods are thread-safe (one mutex). The pipeline thread
// calls Apply; responses and status read concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "mamori/behavior/event.h"
#include "mamori/common/status.h"

namespace mamori::behavior {

// Computes the hex SHA-256 of an executable, cached by (dev, inode, size,
// mtime) so an exec storm of one binary hashes it once. Files larger than
// max_bytes are not hashed (""). Thread-safe.
class ImageHasher {
 public:
  explicit ImageHasher(uint64_t max_bytes = 64ull << 20, size_t max_entries = 4096);
  ~ImageHasher();
  std::string Sha256(const std::string& path);
  uint64_t hashed() const;  // files actually read (cache misses)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class ProcessTable {
 public:
  struct Options {
    size_t max_processes = 32768;
    std::chrono::seconds exited_ttl{60};
    std::string proc_root = "/proc";  // tests point this at a fake tree
    bool hash_images = true;
  };
  struct Stats {
    size_t size = 0;
    uint64_t evicted_live = 0;    // live processes dropped because the table was full
    uint64_t proc_lookups = 0;    // pids resolved from /proc on demand
    uint64_t unknown_pids = 0;    // pids neither in the table nor in /proc
  };

  // `hasher` may be null (no sha256). Not owned; must outlive the table.
  ProcessTable(Options options, ImageHasher* hasher);
  ~ProcessTable();

  // Reads every /proc/<pid> (image, argv, cwd, uids, ppid, start time, tty).
  // Returns the number of processes seen.
  Result<size_t> Snapshot();

  // Updates the table from `e` (exec replaces the image and argv; fork copies
  // the parent; exit marks the entry exited) and completes e->process and
  // e->parent from the table. Sensor-supplied fields win over remembered ones.
  void Apply(Event* e);

  std::optional<ProcessContext> Get(int32_t pid) const;
  // The chain from `pid` upwards: [process, parent, grandparent, ...], at most
  // max_depth entries, stopping at pid 1 or an unknown pid.
  std::vector<ProcessContext> Ancestry(int32_t pid, size_t max_depth = 16) const;
  // Live descendants of `pid` (children first-level first), bounded by max.
  std::vector<int32_t> Descendants(int32_t pid, size_t max = 4096) const;
  Stats stats() const;

 private:
  struct Entry {
    ProcessContext ctx;
    bool exited = false;
    uint64_t exited_at_ns = 0;
    uint64_t seq = 0;  // insertion order for eviction
  };

  // REQUIRES: mu_ held.
  Entry* FindOrLoad(int32_t pid, uint64_t now_ns);
  Entry* Insert(ProcessContext ctx);
  void Expire(uint64_t now_ns);
  std::optional<ProcessContext> ReadProc(int32_t pid);
  void FillUser(ProcessContext* p);

  const Options options_;
  ImageHasher* const hasher_;

  mutable std::mutex mu_;
  std::unordered_map<int32_t, Entry> entries_;           // guarded by mu_
  std::unordered_map<uint32_t, std::string> user_names_;  // guarded by mu_
  uint64_t next_seq_ = 0;                                // guarded by mu_
  uint64_t last_expire_ns_ = 0;                          // guarded by mu_
  Stats stats_;                                          // guarded by mu_
};

}  // namespace mamori::behavior

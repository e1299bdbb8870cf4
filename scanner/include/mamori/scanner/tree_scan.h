// Tree scan: a walker enumerates files under the given roots while a pool of
// workers (one Scanner each, sharing one SignatureSet) scans them.
//
// Walk rules: symlinks met inside a tree are not followed (unless
// follow_symlinks; then each directory is entered once, which also breaks
// loops); roots named explicitly are followed. FIFOs, sockets and devices are
// skipped without being opened for reading in a blocking way. Files that vanish
// mid-walk are skipped; permission errors are reported and the walk goes on.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mamori/common/status.h"
#include "mamori/scanner/scanner.h"
#include "mamori/scanner/verdict_cache.h"

namespace mamori::scanner {

struct TreeScanOptions {
  ScanOptions scan;
  unsigned threads = 0;             // 0 = number of cores
  bool one_file_system = false;     // do not cross into other mounts below a root
  bool follow_symlinks = false;
  // fnmatch(3) patterns; a pattern with '/' matches the whole path, otherwise the base name.
  std::vector<std::string> exclude;
  VerdictCache* cache = nullptr;    // optional, not owned; must outlive the scan
  bool report_clean = false;        // also call on_report for clean files
  // Run at the start of each worker thread (e.g. to lower its CPU and I/O priority).
  std::function<void()> worker_init;
};

// Live counters, readable from any thread while the scan runs.
struct TreeScanProgress {
  std::atomic<uint64_t> files{0};       // scanned or answered from cache
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> found{0};
  std::atomic<uint64_t> incomplete{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<uint64_t> cached{0};      // answered by the verdict cache
  std::atomic<uint64_t> skipped{0};     // special files, vanished files, excluded paths
  std::atomic<bool> cancel{false};      // set to stop early

  std::string current_path() const;
  void set_current_path(const std::string& p);

 private:
  mutable std::mutex mu_;
  std::string current_;  // guarded by mu_
};

// Scans every root. `on_report` is called for each report that is not clean
// (and clean ones when report_clean), one call at a time (serialized), from
// worker threads. Returns an error only when nothing could be started.
Status ScanTree(std::shared_ptr<const SignatureSet> signatures, const std::vector<std::string>& roots,
                const TreeScanOptions& options, const std::function<void(const ScanReport&)>& on_report,
                TreeScanProgress* progress);

}  // namespace mamori::scanner

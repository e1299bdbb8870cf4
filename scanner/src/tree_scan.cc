#include "mamori/scanner/tree_scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <set>
#include <thread>
#include <utility>

namespace mamori::scanner {

std::string TreeScanProgress::current_path() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

void TreeScanProgress::set_current_path(const std::string& p) {
  std::lock_guard<std::mutex> lock(mu_);
  current_ = p;
}

namespace {

// Bounded multi-producer/multi-consumer queue of paths.
class PathQueue {
 public:
  explicit PathQueue(size_t capacity) : capacity_(capacity) {}

  void Push(std::string path) {
    std::unique_lock<std::mutex> lock(mu_);
    not_full_.wait(lock, [&] { return items_.size() < capacity_; });
    items_.push_back(std::move(path));
    not_empty_.notify_one();
  }
  // False when closed and drained.
  bool Pop(std::string* out) {
    std::unique_lock<std::mutex> lock(mu_);
    not_empty_.wait(lock, [&] { return !items_.empty() || closed_; });
    if (items_.empty()) return false;
    *out = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return true;
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<std::string> items_;  // guarded by mu_
  bool closed_ = false;            // guarded by mu_
};

class TreeScan {
 public:
  TreeScan(std::shared_ptr<const SignatureSet> sigs, const TreeScanOptions& options,
           const std::function<void(const ScanReport&)>& on_report, TreeScanProgress* progress)
      : sigs_(std::move(sigs)), options_(options), on_report_(on_report), progress_(progress), queue_(4096) {}

  Status Run(const std::vector<std::string>& roots) {
    unsigned n = options_.threads != 0 ? options_.threads : std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::unique_ptr<Scanner>> scanners;
    for (unsigned i = 0; i < n; ++i) {
      auto s = Scanner::Create(sigs_, options_.scan);
      if (!s.ok()) return s.status();
      scanners.push_back(std::move(*s));
    }
    std::vector<std::thread> workers;
    for (unsigned i = 0; i < n; ++i) workers.emplace_back([this, sc = scanners[i].get()] { Work(*sc); });
    for (const std::string& root : roots) {
      if (progress_->cancel) break;
      WalkRoot(root);
    }
    queue_.Close();
    for (auto& t : workers) t.join();
    return Status::Ok();
  }

 private:
  bool Excluded(const std::string& path) const {
    for (const std::string& pat : options_.exclude) {
      if (pat.find('/') != std::string::npos) {
        if (fnmatch(pat.c_str(), path.c_str(), 0) == 0) return true;
      } else {
        std::string base = path.substr(path.rfind('/') + 1);
        if (fnmatch(pat.c_str(), base.c_str(), 0) == 0) return true;
      }
    }
    return false;
  }

  void Report(const ScanReport& r) {
    switch (r.verdict) {
      case Verdict::kFound: ++progress_->found; break;
      case Verdict::kIncomplete: ++progress_->incomplete; break;
      case Verdict::kError: ++progress_->errors; break;
      case Verdict::kClean: if (!options_.report_clean) return; break;
    }
    std::lock_guard<std::mutex> lock(report_mu_);
    on_report_(r);
  }

  void ReportError(const std::string& path, const std::string& what, int err) {
    ScanReport r;
    r.path = path;
    r.verdict = Verdict::kError;
    r.error = what + " " + path + ": " + std::strerror(err);
    Report(r);
  }

  void WalkRoot(const std::string& root_in) {
    std::string root = root_in;
    while (root.size() > 1 && root.back() == '/') root.pop_back();
    struct stat st {};
    if (::stat(root.c_str(), &st) != 0) {
      ReportError(root, "stat", errno);
      return;
    }
    if (S_ISREG(st.st_mode)) {
      queue_.Push(root);
      return;
    }
    if (!S_ISDIR(st.st_mode)) {
      ++progress_->skipped;
      return;
    }
    root_dev_ = st.st_dev;
    visited_.clear();
    WalkDir(root, st);
  }

  // Iterative depth-first walk; no recursion so deep trees cannot exhaust the stack.
  void WalkDir(const std::string& root, const struct stat& root_st) {
    std::vector<std::string> stack{root};
    if (options_.follow_symlinks) visited_.insert({root_st.st_dev, root_st.st_ino});
    while (!stack.empty() && !progress_->cancel) {
      std::string dir = std::move(stack.back());
      stack.pop_back();
      DIR* d = ::opendir(dir.c_str());
      if (d == nullptr) {
        if (errno != ENOENT) ReportError(dir, "opendir", errno);
        continue;
      }
      std::vector<std::string> subdirs;
      while (dirent* e = ::readdir(d)) {
        if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
        std::string path = dir == "/" ? "/" + std::string(e->d_name) : dir + "/" + e->d_name;
        if (!options_.exclude.empty() && Excluded(path)) {
          ++progress_->skipped;
          continue;
        }
        unsigned char type = e->d_type;
        if (type == DT_REG) {
          queue_.Push(std::move(path));
          continue;
        }
        if (type != DT_DIR && type != DT_LNK && type != DT_UNKNOWN) {
          ++progress_->skipped;  // FIFO, socket, device: never opened
          continue;
        }
        struct stat st {};
        if (::lstat(path.c_str(), &st) != 0) continue;  // vanished
        if (S_ISLNK(st.st_mode)) {
          if (!options_.follow_symlinks || ::stat(path.c_str(), &st) != 0) {
            ++progress_->skipped;
            continue;
          }
        }
        if (S_ISREG(st.st_mode)) {
          queue_.Push(std::move(path));
        } else if (S_ISDIR(st.st_mode)) {
          if (options_.one_file_system && st.st_dev != root_dev_) {
            ++progress_->skipped;
            continue;
          }
          if (options_.follow_symlinks && !visited_.insert({st.st_dev, st.st_ino}).second) continue;
          subdirs.push_back(std::move(path));
        } else {
          ++progress_->skipped;
        }
      }
      ::closedir(d);
      // Reverse so that the walk visits subdirectories in readdir order.
      for (auto it = subdirs.rbegin(); it != subdirs.rend(); ++it) stack.push_back(std::move(*it));
    }
  }

  void Work(Scanner& scanner) {
    if (options_.worker_init) options_.worker_init();
    std::string path;
    while (queue_.Pop(&path)) {
      if (progress_->cancel) continue;
      ScanOne(scanner, path);
    }
  }

  void ScanOne(Scanner& scanner, const std::string& path) {
    // O_NONBLOCK: a file replaced by a FIFO after the walk must not block us.
    // O_NOFOLLOW: a file replaced by a symlink is not followed out of the tree.
    int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW;
    int fd = ::open(path.c_str(), flags | O_NOATIME);
    if (fd < 0 && errno == EPERM) fd = ::open(path.c_str(), flags);
    if (fd < 0) {
      if (errno == ENOENT || errno == ELOOP) {
        ++progress_->skipped;  // vanished, or swapped for a symlink, since the walk saw it
      } else {
        ReportError(path, "open", errno);
      }
      return;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      ++progress_->skipped;
      return;
    }
    progress_->set_current_path(path);
    FileKey key = FileKey::FromStat(st);
    if (options_.cache != nullptr) {
      if (auto cached = options_.cache->Lookup(key, path)) {
        ::close(fd);
        ++progress_->files;
        ++progress_->cached;
        progress_->bytes += static_cast<uint64_t>(st.st_size);
        ScanReport r;
        r.path = path;
        r.size = static_cast<uint64_t>(st.st_size);
        r.from_cache = true;
        r.findings = std::move(cached->findings);
        r.sha256 = std::move(cached->sha256);
        r.verdict = r.findings.empty() ? Verdict::kClean : Verdict::kFound;
        Report(r);
        return;
      }
    }
    ScanReport r = scanner.ScanFd(fd, st, path);
    // Cache only when the file did not change while we read it.
    struct stat after {};
    if (options_.cache != nullptr && ::fstat(fd, &after) == 0 && FileKey::FromStat(after) == key) {
      options_.cache->Record(key, r);
    }
    ::close(fd);
    ++progress_->files;
    progress_->bytes += r.size;
    Report(r);
  }

  std::shared_ptr<const SignatureSet> sigs_;
  const TreeScanOptions& options_;
  const std::function<void(const ScanReport&)>& on_report_;
  TreeScanProgress* progress_;
  PathQueue queue_;
  std::mutex report_mu_;
  // Walker-thread state.
  dev_t root_dev_ = 0;
  std::set<std::pair<dev_t, ino_t>> visited_;
};

}  // namespace

Status ScanTree(std::shared_ptr<const SignatureSet> signatures, const std::vector<std::string>& roots,
                const TreeScanOptions& options, const std::function<void(const ScanReport&)>& on_report,
                TreeScanProgress* progress) {
  if (signatures == nullptr) return InvalidArgumentError("ScanTree needs a signature set");
  TreeScanProgress local;
  TreeScan scan(std::move(signatures), options, on_report, progress != nullptr ? progress : &local);
  return scan.Run(roots);
}

}  // namespace mamori::scanner

#include "mamori/behavior/process_table.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <tuple>

#include "mamori/common/file_util.h"
#include "mamori/scanner/hasher.h"

namespace mamori::behavior {
namespace {

uint64_t RealtimeNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Wall-clock time of boot, for converting /proc/<pid>/stat start times.
uint64_t BootRealtimeNs() {
  timespec rt{}, bt{};
  clock_gettime(CLOCK_REALTIME, &rt);
  clock_gettime(CLOCK_BOOTTIME, &bt);
  auto ns = [](const timespec& t) {
    return static_cast<uint64_t>(t.tv_sec) * 1000000000ull + static_cast<uint64_t>(t.tv_nsec);
  };
  return ns(rt) - ns(bt);
}

bool ReadSmallFile(const std::string& path, std::string* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out->clear();
  char buf[4096];
  while (out->size() < (1u << 20)) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

std::string ReadLink(const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

std::string TtyName(unsigned long tty_nr) {
  if (tty_nr == 0) return "";
  unsigned major = gnu_dev_major(tty_nr);
  unsigned minor = gnu_dev_minor(tty_nr);
  if (major >= 136 && major <= 143) return "pts/" + std::to_string((major - 136) * 256 + minor);
  if (major == 4 && minor < 64) return "tty" + std::to_string(minor);
  if (major == 4) return "ttyS" + std::to_string(minor - 64);
  return std::to_string(major) + ":" + std::to_string(minor);
}

// Fills the empty fields of `dst` from `src` (the sensor's own values win).
void Complete(ProcessContext* dst, const ProcessContext& src) {
  if (dst->ppid == 0) dst->ppid = src.ppid;
  if (dst->image.empty()) dst->image = src.image;
  if (dst->argv.empty()) dst->argv = src.argv;
  if (dst->command_line.empty()) dst->command_line = src.command_line;
  if (dst->cwd.empty()) dst->cwd = src.cwd;
  if (dst->tty.empty()) dst->tty = src.tty;
  if (dst->cgroup.empty()) dst->cgroup = src.cgroup;
  if (dst->start_time_ns == 0) dst->start_time_ns = src.start_time_ns;
  if (dst->sha256.empty()) dst->sha256 = src.sha256;
}

}  // namespace

// ---------------------------------------------------------------- ImageHasher

struct ImageHasher::Impl {
  uint64_t max_bytes;
  size_t max_entries;
  std::mutex mu;
  // (dev, ino, size, mtime ns) -> hex digest. Cleared wholesale when full:
  // simple, and an exec storm refills the few hot entries at once.
  std::map<std::tuple<uint64_t, uint64_t, uint64_t, int64_t>, std::string> cache;  // guarded by mu
  uint64_t hashed = 0;                                                             // guarded by mu
};

ImageHasher::ImageHasher(uint64_t max_bytes, size_t max_entries) : impl_(std::make_unique<Impl>()) {
  impl_->max_bytes = max_bytes;
  impl_->max_entries = max_entries;
}
ImageHasher::~ImageHasher() = default;

std::string ImageHasher::Sha256(const std::string& path) {
  if (path.empty() || path[0] != '/') return "";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return "";
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) > impl_->max_bytes) {
    ::close(fd);
    return "";
  }
  auto key = std::make_tuple(static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                             static_cast<uint64_t>(st.st_size),
                             static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec);
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto it = impl_->cache.find(key);
    if (it != impl_->cache.end()) {
      ::close(fd);
      return it->second;
    }
  }
  scanner::Hasher hasher;
  std::string buf(256 * 1024, '\0');
  bool ok = true;
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ok = false;
    if (n <= 0) break;
    hasher.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  ::close(fd);
  if (!ok) return "";
  std::string hex = hasher.Finish().hex(scanner::DigestKind::kSha256);
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->cache.size() >= impl_->max_entries) impl_->cache.clear();
  impl_->cache.emplace(key, hex);
  ++impl_->hashed;
  return hex;
}

uint64_t ImageHasher::hashed() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->hashed;
}

// --------------------------------------------------------------- ProcessTable

ProcessTable::ProcessTable(Options options, ImageHasher* hasher)
    : options_(std::move(options)), hasher_(hasher) {}
ProcessTable::~ProcessTable() = default;

std::optional<ProcessContext> ProcessTable::ReadProc(int32_t pid) {
  if (options_.proc_root.empty() || pid <= 0) return std::nullopt;
  const std::string dir = options_.proc_root + "/" + std::to_string(pid);
  std::string stat;
  if (!ReadSmallFile(dir + "/stat", &stat)) return std::nullopt;
  ProcessContext p;
  p.pid = pid;
  p.tid = pid;
  // "pid (comm) state ppid pgrp session tty_nr ..." — comm may hold spaces and
  // parentheses, so parse from the last ')'.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::vector<std::string> fields;
  {
    size_t i = close + 2;
    while (i < stat.size()) {
      size_t j = stat.find(' ', i);
      if (j == std::string::npos) j = stat.size();
      fields.push_back(stat.substr(i, j - i));
      i = j + 1;
    }
  }
  // fields[0] = state (field 3), so field N is fields[N - 3].
  if (fields.size() >= 20) {
    p.ppid = static_cast<int32_t>(std::strtol(fields[1].c_str(), nullptr, 10));
    p.tty = TtyName(std::strtoul(fields[4].c_str(), nullptr, 10));
    uint64_t ticks = std::strtoull(fields[19].c_str(), nullptr, 10);
    static const uint64_t boot = BootRealtimeNs();
    static const long hz = sysconf(_SC_CLK_TCK);
    p.start_time_ns = boot + ticks * (1000000000ull / static_cast<uint64_t>(hz > 0 ? hz : 100));
  }
  std::string status;
  if (ReadSmallFile(dir + "/status", &status)) {
    auto ids = [&](const char* key, uint32_t* real, uint32_t* eff) {
      size_t at = status.find(key);
      if (at == std::string::npos) return;
      char* end = nullptr;
      const char* s = status.c_str() + at + std::strlen(key);
      *real = static_cast<uint32_t>(std::strtoul(s, &end, 10));
      *eff = static_cast<uint32_t>(std::strtoul(end, nullptr, 10));
    };
    ids("\nUid:", &p.uid, &p.euid);
    ids("\nGid:", &p.gid, &p.egid);
  }
  p.image = ReadLink(dir + "/exe");
  std::string cmdline;
  if (ReadSmallFile(dir + "/cmdline", &cmdline)) {
    size_t i = 0;
    while (i < cmdline.size()) {
      size_t j = cmdline.find('\0', i);
      if (j == std::string::npos) j = cmdline.size();
      p.argv.push_back(cmdline.substr(i, j - i));
      i = j + 1;
    }
    p.command_line = JoinArgv(p.argv);
  }
  p.cwd = ReadLink(dir + "/cwd");
  std::string cgroup;
  if (ReadSmallFile(dir + "/cgroup", &cgroup) && cgroup.rfind("0::", 0) == 0) {
    size_t nl = cgroup.find('\n');
    p.cgroup = cgroup.substr(3, nl == std::string::npos ? std::string::npos : nl - 3);
  }
  if (options_.hash_images && hasher_ != nullptr && !p.image.empty()) {
    // "/usr/bin/x (deleted)": the file is gone; hash through the live mapping.
    p.sha256 = hasher_->Sha256(p.image.ends_with(" (deleted)") ? dir + "/exe" : p.image);
  }
  return p;
}

void ProcessTable::FillUser(ProcessContext* p) {
  if (!p->user.empty() || !p->known()) return;
  auto it = user_names_.find(p->uid);
  if (it == user_names_.end()) {
    std::string name;
    passwd pw{};
    passwd* result = nullptr;
    char buf[2048];
    if (getpwuid_r(p->uid, &pw, buf, sizeof buf, &result) == 0 && result != nullptr) {
      name = result->pw_name;
    } else {
      name = std::to_string(p->uid);
    }
    if (user_names_.size() > 4096) user_names_.clear();
    it = user_names_.emplace(p->uid, std::move(name)).first;
  }
  p->user = it->second;
}

ProcessTable::Entry* ProcessTable::Insert(ProcessContext ctx) {
  if (entries_.size() >= options_.max_processes && entries_.find(ctx.pid) == entries_.end()) {
    // Evict a sixteenth at once so a full table does not scan on every insert:
    // exited entries first (oldest exit first), then the oldest live ones.
    size_t want = std::max<size_t>(1, options_.max_processes / 16);
    std::vector<std::pair<uint64_t, int32_t>> exited, live;
    for (const auto& [pid, en] : entries_) {
      (en.exited ? exited : live).emplace_back(en.exited ? en.exited_at_ns : en.seq, pid);
    }
    std::sort(exited.begin(), exited.end());
    std::sort(live.begin(), live.end());
    for (size_t i = 0; i < exited.size() && want > 0; ++i, --want) entries_.erase(exited[i].second);
    for (size_t i = 0; i < live.size() && want > 0; ++i, --want) {
      entries_.erase(live[i].second);
      ++stats_.evicted_live;
    }
  }
  FillUser(&ctx);
  Entry& en = entries_[ctx.pid];
  en.ctx = std::move(ctx);
  en.exited = false;
  en.exited_at_ns = 0;
  en.seq = next_seq_++;
  return &en;
}

ProcessTable::Entry* ProcessTable::FindOrLoad(int32_t pid, uint64_t) {
  if (pid <= 0) return nullptr;
  auto it = entries_.find(pid);
  if (it != entries_.end()) return &it->second;
  auto ctx = ReadProc(pid);
  if (!ctx) {
    ++stats_.unknown_pids;
    return nullptr;
  }
  ++stats_.proc_lookups;
  return Insert(std::move(*ctx));
}

void ProcessTable::Expire(uint64_t now_ns) {
  const uint64_t ttl = static_cast<uint64_t>(options_.exited_ttl.count()) * 1000000000ull;
  if (now_ns < last_expire_ns_ + 1000000000ull && now_ns >= last_expire_ns_) return;
  last_expire_ns_ = now_ns;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.exited && it->second.exited_at_ns + ttl < now_ns) {
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

Result<size_t> ProcessTable::Snapshot() {
  if (options_.proc_root.empty()) return size_t{0};
  std::vector<int32_t> pids;
  {
    auto dir = std::unique_ptr<DIR, int (*)(DIR*)>(opendir(options_.proc_root.c_str()), closedir);
    if (!dir) {
      return Status(StatusCode::kUnavailable,
                    "cannot read " + options_.proc_root + ": " + std::strerror(errno));
    }
    while (dirent* d = readdir(dir.get())) {
      char* end = nullptr;
      long pid = std::strtol(d->d_name, &end, 10);
      if (*end == '\0' && pid > 0) pids.push_back(static_cast<int32_t>(pid));
    }
  }
  size_t seen = 0;
  for (int32_t pid : pids) {
    auto ctx = ReadProc(pid);  // outside the lock: hashing may read files
    if (!ctx) continue;
    std::lock_guard<std::mutex> lock(mu_);
    Insert(std::move(*ctx));
    ++seen;
  }
  return seen;
}

void ProcessTable::Apply(Event* e) {
  const uint64_t now = e->timestamp_ns != 0 ? e->timestamp_ns : RealtimeNs();
  ProcessContext& p = e->process;
  std::string sha;
  if (e->type == EventType::kExec && options_.hash_images && hasher_ != nullptr && !p.image.empty() &&
      p.sha256.empty()) {
    sha = hasher_->Sha256(p.image);  // outside the lock: may read a file
  }
  std::lock_guard<std::mutex> lock(mu_);
  Expire(now);
  switch (e->type) {
    case EventType::kFork: {
      Entry* parent = FindOrLoad(p.ppid, now);
      ProcessContext child = parent != nullptr ? parent->ctx : ProcessContext{};
      child.pid = p.pid;
      child.tid = p.tid != 0 ? p.tid : p.pid;
      child.ppid = p.ppid;
      child.uid = p.uid;
      child.euid = p.euid;
      child.gid = p.gid;
      child.egid = p.egid;
      child.user.clear();
      child.start_time_ns = p.start_time_ns != 0 ? p.start_time_ns : now;
      Complete(&p, child);
      Insert(child);
      break;
    }
    case EventType::kExec: {
      Entry* en = FindOrLoad(p.pid, now);
      ProcessContext ctx = p;
      if (ctx.command_line.empty() && !ctx.argv.empty()) ctx.command_line = JoinArgv(ctx.argv);
      if (!sha.empty()) ctx.sha256 = sha;
      if (en != nullptr) {
        // An exec keeps the process: ancestry, start time and cwd carry over.
        if (ctx.ppid == 0) ctx.ppid = en->ctx.ppid;
        if (ctx.cwd.empty()) ctx.cwd = en->ctx.cwd;
        if (ctx.tty.empty()) ctx.tty = en->ctx.tty;
        if (ctx.cgroup.empty()) ctx.cgroup = en->ctx.cgroup;
        if (ctx.start_time_ns == 0) ctx.start_time_ns = en->ctx.start_time_ns;
      }
      // Unknown stays 0: an exec's own time is not the process's start, and a
      // wrong start time would make responses refuse the process as recycled.
      ctx.user.clear();
      Entry* stored = Insert(ctx);
      Complete(&p, stored->ctx);
      p.user = stored->ctx.user;
      break;
    }
    case EventType::kExit: {
      Entry* en = FindOrLoad(p.pid, now);
      if (en != nullptr) {
        Complete(&p, en->ctx);
        en->exited = true;
        en->exited_at_ns = now;
      }
      break;
    }
    default: {
      Entry* en = FindOrLoad(p.pid, now);
      if (en != nullptr) Complete(&p, en->ctx);
      break;
    }
  }
  FillUser(&p);
  if (p.ppid > 0 && !e->parent.known()) {
    Entry* parent = FindOrLoad(p.ppid, now);
    if (parent != nullptr) e->parent = parent->ctx;
  } else if (e->parent.known()) {
    FillUser(&e->parent);
  }
}

std::optional<ProcessContext> ProcessTable::Get(int32_t pid) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(pid);
  if (it == entries_.end()) return std::nullopt;
  return it->second.ctx;
}

std::vector<ProcessContext> ProcessTable::Ancestry(int32_t pid, size_t max_depth) const {
  std::vector<ProcessContext> chain;
  std::lock_guard<std::mutex> lock(mu_);
  while (pid > 0 && chain.size() < max_depth) {
    auto it = entries_.find(pid);
    if (it == entries_.end()) break;
    chain.push_back(it->second.ctx);
    if (pid == 1 || it->second.ctx.ppid == pid) break;
    pid = it->second.ctx.ppid;
  }
  return chain;
}

std::vector<int32_t> ProcessTable::Descendants(int32_t pid, size_t max) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::unordered_map<int32_t, std::vector<int32_t>> children;
  for (const auto& [child, en] : entries_) {
    if (!en.exited && child != en.ctx.ppid) children[en.ctx.ppid].push_back(child);
  }
  std::vector<int32_t> out;
  std::deque<int32_t> todo{pid};
  while (!todo.empty() && out.size() < max) {
    int32_t cur = todo.front();
    todo.pop_front();
    auto it = children.find(cur);
    if (it == children.end()) continue;
    for (int32_t c : it->second) {
      if (out.size() >= max) break;
      out.push_back(c);
      todo.push_back(c);
    }
  }
  return out;
}

ProcessTable::Stats ProcessTable::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.size = entries_.size();
  return s;
}

}  // namespace mamori::behavior

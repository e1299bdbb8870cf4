#include "mamori/behavior/responder.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>

namespace mamori::behavior {
namespace {

struct ProcStat {
  pid_t ppid = 0;
  uint64_t start_ticks = 0;
  bool kernel_thread = false;
};

bool ReadProcStat(const std::string& proc_root, pid_t pid, ProcStat* out) {
  std::string path = proc_root + "/" + std::to_string(pid) + "/stat";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char* close = std::strrchr(buf, ')');
  if (close == nullptr) return false;
  // Fields after "(comm)": 3 state, 4 ppid, ..., 9 flags, ..., 22 starttime.
  const char* p = close + 2;
  unsigned long long fields[21] = {};
  int field = 3;
  while (*p != '\0' && field <= 22) {
    char* end = nullptr;
    if (field == 3) {
      end = const_cast<char*>(p) + 1;
    } else {
      fields[field - 3] = std::strtoull(p, &end, 10);
    }
    p = end;
    while (*p == ' ') ++p;
    ++field;
  }
  if (field <= 22) return false;
  out->ppid = static_cast<pid_t>(fields[4 - 3]);
  out->start_ticks = fields[22 - 3];
  constexpr unsigned long long kPfKthread = 0x00200000;
  out->kernel_thread = (fields[9 - 3] & kPfKthread) != 0;
  return true;
}

uint64_t TicksToRealtimeNs(uint64_t ticks) {
  static const long hz = sysconf(_SC_CLK_TCK);
  timespec rt{}, bt{};
  clock_gettime(CLOCK_REALTIME, &rt);
  clock_gettime(CLOCK_BOOTTIME, &bt);
  uint64_t boot = (static_cast<uint64_t>(rt.tv_sec) - static_cast<uint64_t>(bt.tv_sec)) * 1000000000ull +
                  static_cast<uint64_t>(rt.tv_nsec) - static_cast<uint64_t>(bt.tv_nsec);
  return boot + ticks * (1000000000ull / static_cast<uint64_t>(hz > 0 ? hz : 100));
}

// glibc 2.36's <sys/pidfd.h> lacks extern "C" for C++; call the kernel directly.
int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }
int PidfdSignal(int fd, int sig) { return static_cast<int>(syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0)); }

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

Responder::Responder(Options options, const ProcessTable* table, QuarantineFn quarantine)
    : options_(std::move(options)), table_(table), quarantine_(std::move(quarantine)) {
  protected_pids_ = {0, 1, 2};
  agent_pid_ = getpid();
  struct stat self {};
  if (::stat("/proc/self/exe", &self) == 0) {
    agent_exe_dev_ = self.st_dev;
    agent_exe_ino_ = self.st_ino;
  }
  // The agent and its ancestors (systemd, or the test harness that started it).
  pid_t pid = getpid();
  for (int depth = 0; pid > 0 && depth < 64; ++depth) {
    protected_pids_.insert(pid);
    ProcStat st;
    if (!ReadProcStat(options_.proc_root, pid, &st) || st.ppid == pid) break;
    pid = st.ppid;
  }
}

bool Responder::Protected(pid_t pid) const {
  if (pid <= 2 || protected_pids_.count(pid) != 0) return true;
  ProcStat st;
  if (!ReadProcStat(options_.proc_root, pid, &st)) return false;
  if (st.kernel_thread || st.ppid == 2) return true;
  // The agent's own parser workers: its children running its own binary as
  // "mamori-parser-worker" (scanner/parser_pool.h). A rule that matches their
  // exec (say, an agent installed under /tmp) must not kill them in a loop
  // with their replacements. (argv[0] as well as the binary: a child forked
  // but not yet exec'd runs the agent's binary too.)
  if (st.ppid == agent_pid_ && agent_exe_ino_ != 0) {
    const std::string dir = options_.proc_root + "/" + std::to_string(pid);
    struct stat exe {};
    if (::stat((dir + "/exe").c_str(), &exe) != 0 || exe.st_dev != agent_exe_dev_ || exe.st_ino != agent_exe_ino_) {
      return false;
    }
    char argv0[64] = {};
    int fd = ::open((dir + "/cmdline").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = ::read(fd, argv0, sizeof argv0 - 1);
    ::close(fd);
    return n > 0 && std::strcmp(argv0, "mamori-parser-worker") == 0;
  }
  return false;
}

int Responder::OpenVerified(pid_t pid, uint64_t start_time_ns, std::string* why) const {
  if (Protected(pid)) {
    *why = "protected process " + std::to_string(pid);
    return -1;
  }
  int fd = PidfdOpen(pid);
  if (fd < 0) {
    *why = errno == ESRCH ? "process " + std::to_string(pid) + " already exited"
                          : "pidfd_open(" + std::to_string(pid) + "): " + std::strerror(errno);
    return -1;
  }
  // Signals through the pidfd reach only the process it was opened on; the
  // start time read after opening tells whether that is the event's process.
  ProcStat st;
  if (!ReadProcStat(options_.proc_root, pid, &st)) {
    ::close(fd);
    *why = "process " + std::to_string(pid) + " already exited";
    return -1;
  }
  if (start_time_ns != 0) {
    uint64_t now_start = TicksToRealtimeNs(st.start_ticks);
    uint64_t diff = now_start > start_time_ns ? now_start - start_time_ns : start_time_ns - now_start;
    if (diff > options_.start_time_tolerance_ns) {
      ::close(fd);
      *why = "pid " + std::to_string(pid) + " now names another process (start time differs)";
      return -1;
    }
  }
  return fd;
}

ResponseOutcome Responder::KillProcess(pid_t pid, uint64_t start_time_ns) {
  ResponseOutcome out{"kill_process", std::to_string(pid), false, ""};
  Fd fd(OpenVerified(pid, start_time_ns, &out.detail));
  if (fd.get() < 0) return out;
  if (PidfdSignal(fd.get(), SIGKILL) != 0) {
    out.detail = std::string("SIGKILL: ") + std::strerror(errno);
    return out;
  }
  out.done = true;
  out.detail = "killed";
  return out;
}

std::vector<pid_t> Responder::LiveChildren(pid_t pid) const {
  std::vector<pid_t> out;
  auto dir = std::unique_ptr<DIR, int (*)(DIR*)>(opendir(options_.proc_root.c_str()), closedir);
  if (!dir) return out;
  while (dirent* d = readdir(dir.get())) {
    char* end = nullptr;
    long p = std::strtol(d->d_name, &end, 10);
    if (*end != '\0' || p <= 0) continue;
    ProcStat st;
    if (ReadProcStat(options_.proc_root, static_cast<pid_t>(p), &st) && st.ppid == pid) {
      out.push_back(static_cast<pid_t>(p));
    }
  }
  return out;
}

ResponseOutcome Responder::KillTree(pid_t pid, uint64_t start_time_ns) {
  ResponseOutcome out{"kill_tree", std::to_string(pid), false, ""};
  std::vector<Fd> stopped;
  std::vector<pid_t> pids;
  {
    Fd root(OpenVerified(pid, start_time_ns, &out.detail));
    if (root.get() < 0) return out;
    if (PidfdSignal(root.get(), SIGSTOP) != 0) {
      out.detail = std::string("SIGSTOP: ") + std::strerror(errno);
      return out;
    }
    stopped.push_back(std::move(root));
    pids.push_back(pid);
  }
  // Breadth-first over /proc (the truth) and the table (children that are
  // between fork and their first event): each stopped process can no longer
  // fork, so the walk converges.
  std::set<pid_t> seen{pid};
  for (size_t i = 0; i < pids.size() && pids.size() < 4096; ++i) {
    std::vector<pid_t> kids = LiveChildren(pids[i]);
    if (table_ != nullptr) {
      for (int32_t k : table_->Descendants(pids[i], 64)) kids.push_back(k);
    }
    for (pid_t k : kids) {
      if (!seen.insert(k).second || Protected(k)) continue;
      std::string why;
      Fd fd(OpenVerified(k, 0, &why));
      ProcStat st;
      // Re-check parenthood under the pidfd: the table may be stale.
      if (fd.get() < 0 || !ReadProcStat(options_.proc_root, k, &st) || seen.count(st.ppid) == 0) continue;
      if (PidfdSignal(fd.get(), SIGSTOP) == 0) {
        stopped.push_back(std::move(fd));
        pids.push_back(k);
      }
    }
  }
  size_t killed = 0;
  for (const Fd& fd : stopped) {
    if (PidfdSignal(fd.get(), SIGKILL) == 0) ++killed;
  }
  out.done = killed > 0;
  out.detail = "killed " + std::to_string(killed) + " process" + (killed == 1 ? "" : "es");
  std::string list;
  for (size_t i = 0; i < pids.size() && i < 32; ++i) list += (i ? "," : "") + std::to_string(pids[i]);
  out.target = list;
  return out;
}

ResponseOutcome Responder::QuarantineFile(const std::string& action, const std::string& path,
                                          const std::string& detection) {
  ResponseOutcome out{action, path, false, ""};
  if (path.empty() || path[0] != '/') {
    out.detail = "no absolute path to quarantine";
    return out;
  }
  if (path.find("/../") != std::string::npos || path.ends_with("/..")) {
    out.detail = "refused: path with '..'";
    return out;
  }
  // Check the resolved path too: /tmp/x -> /usr/bin/bash must not pass.
  std::string resolved = path;
  if (char* real = realpath(path.c_str(), nullptr)) {
    resolved = real;
    std::free(real);
  }
  for (const std::string& prefix : options_.protected_paths) {
    if (path.rfind(prefix, 0) == 0 || resolved.rfind(prefix, 0) == 0) {
      out.detail = "refused: protected path " + prefix;
      return out;
    }
  }
  if (!quarantine_) {
    out.detail = "no quarantine vault";
    return out;
  }
  auto id = quarantine_(path, detection);
  if (!id.ok()) {
    out.detail = id.status().ToString();
    return out;
  }
  out.done = true;
  out.detail = "quarantined as " + *id;
  return out;
}

}  // namespace mamori::behavior

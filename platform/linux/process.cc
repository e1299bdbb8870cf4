// Linux: /proc for listing and start times, pidfd for the kill (the same
// start-time guard as agent/behavior/src/responder.cc).
#include "mamori/platform/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace mamori::platform {
namespace {

struct Stat {
  Pid ppid = 0;
  uint64_t start_ticks = 0;
  std::string comm;
};

// /proc/PID/stat: "pid (comm) state ppid ... starttime(22) ..."; comm may
// hold spaces and parentheses, so parse from the last ')'.
bool ReadStat(Pid pid, Stat* out) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char* open = std::strchr(buf, '(');
  const char* close = std::strrchr(buf, ')');
  if (open == nullptr || close == nullptr || close < open || close[1] != ' ') return false;
  out->comm.assign(open + 1, close);
  const char* p = close + 2;
  for (int field = 3; field <= 22; ++field) {
    while (*p == ' ') ++p;
    if (*p == '\0') return false;
    char* end = nullptr;
    unsigned long long v = field == 3 ? 0 : std::strtoull(p, &end, 10);
    if (field == 3) {
      end = const_cast<char*>(p) + 1;
    } else if (end == p) {
      return false;
    }
    if (field == 4) out->ppid = static_cast<Pid>(v);
    if (field == 22) out->start_ticks = v;
    p = end;
  }
  return true;
}

uint64_t TicksToRealtimeNs(uint64_t ticks) {
  static const long hz = sysconf(_SC_CLK_TCK);
  timespec rt{}, bt{};
  clock_gettime(CLOCK_REALTIME, &rt);
  clock_gettime(CLOCK_BOOTTIME, &bt);
  int64_t boot = (static_cast<int64_t>(rt.tv_sec) - bt.tv_sec) * 1'000'000'000 + (rt.tv_nsec - bt.tv_nsec);
  return static_cast<uint64_t>(boot) + ticks * (1'000'000'000ull / static_cast<uint64_t>(hz > 0 ? hz : 100));
}

// glibc 2.36's <sys/pidfd.h> lacks extern "C" for C++; call the kernel directly.
int PidfdOpen(Pid pid) { return static_cast<int>(syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0)); }
int PidfdSignal(int fd, int sig) { return static_cast<int>(syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0)); }

}  // namespace

Pid CurrentPid() { return static_cast<Pid>(::getpid()); }

Result<std::vector<ProcessInfo>> ListProcesses() {
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return ErrnoError(errno, "list processes: opendir /proc");
  std::vector<ProcessInfo> out;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    unsigned long pid = std::strtoul(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || pid == 0) continue;
    Stat st;
    if (!ReadStat(static_cast<Pid>(pid), &st)) continue;  // exited meanwhile
    out.push_back(ProcessInfo{static_cast<Pid>(pid), st.ppid, std::move(st.comm), TicksToRealtimeNs(st.start_ticks)});
  }
  ::closedir(d);
  return out;
}

Result<uint64_t> ProcessStartTime(Pid pid) {
  Stat st;
  if (pid == 0 || !ReadStat(pid, &st)) return NotFoundError("process " + std::to_string(pid) + " not found");
  return TicksToRealtimeNs(st.start_ticks);
}

Status KillProcess(Pid pid, uint64_t expected_start_time_ns, uint64_t tolerance_ns) {
  const std::string who = "kill process " + std::to_string(pid);
  if (pid == 0) return InvalidArgumentError(who + ": pid 0");
  if (pid == CurrentPid()) return InvalidArgumentError(who + ": refusing to kill this process");
  if (expected_start_time_ns == 0) return InvalidArgumentError(who + ": no start time to check the pid against");
  int fd = PidfdOpen(pid);
  if (fd < 0) {
    if (errno == ESRCH) return NotFoundError(who + ": no such process");
    return ErrnoError(errno, who + ": pidfd_open");
  }
  // The pidfd names one process for good; the start time read after opening
  // tells whether it is the one the caller means.
  Stat st;
  Status result;
  if (!ReadStat(pid, &st)) {
    result = NotFoundError(who + ": exited");
  } else {
    uint64_t now = TicksToRealtimeNs(st.start_ticks);
    uint64_t diff = now > expected_start_time_ns ? now - expected_start_time_ns : expected_start_time_ns - now;
    if (diff > tolerance_ns) {
      result = FailedPreconditionError(who + ": the pid now names another process (start time differs by " +
                                       std::to_string(diff / 1'000'000) + " ms)");
    } else if (PidfdSignal(fd, SIGKILL) != 0) {
      result = errno == ESRCH ? NotFoundError(who + ": exited") : ErrnoError(errno, who + ": pidfd_send_signal");
    }
  }
  ::close(fd);
  return result;
}

}  // namespace mamori::platform

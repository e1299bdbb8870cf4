#include "privileges.h"

#include <dirent.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

namespace mamori::agent {
namespace {

// What every thread is reduced to; written before any signal is sent and
// read by the handler (lock-free atomics are async-signal-safe).
std::atomic<uint64_t> g_keep{0};
std::atomic<bool> g_drop_bounding{false};
std::atomic<int> g_last_cap{CAP_LAST_CAP};

// Applies the sets to the calling thread with raw system calls only, so it
// can run in a signal handler.
void ApplyToThisThread() {
  const uint64_t keep = g_keep.load();
  if (g_drop_bounding.load()) {  // needs CAP_SETPCAP, so before capset drops it
    for (int c = 0; c <= g_last_cap.load(); ++c) {
      if (((keep >> c) & 1) == 0) ::syscall(SYS_prctl, PR_CAPBSET_DROP, c, 0, 0, 0);
    }
  }
  ::syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  data[0].effective = data[0].permitted = static_cast<uint32_t>(keep);
  data[1].effective = data[1].permitted = static_cast<uint32_t>(keep >> 32);
  ::syscall(SYS_capset, &header, data);
  ::syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

void OnDropSignal(int) {
  const int saved = errno;
  ApplyToThisThread();
  errno = saved;
}

int LastCap() {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int n = CAP_LAST_CAP;
  if (!(in >> n) || n < 0 || n > 63) n = CAP_LAST_CAP;
  return n;
}

struct ThreadCaps {
  bool present = false;
  uint64_t eff = 0, prm = 0, inh = 0, bnd = 0, amb = 0;
  std::string name;
};

ThreadCaps ReadThreadCaps(const std::string& status_path) {
  ThreadCaps t;
  std::ifstream in(status_path);
  std::string line;
  while (std::getline(in, line)) {
    t.present = true;
    auto hex = [&](const char* key, uint64_t* out) {
      const std::string k = std::string(key) + ":";
      if (line.rfind(k, 0) == 0) *out = std::stoull(line.substr(k.size()), nullptr, 16);
    };
    if (line.rfind("Name:", 0) == 0) t.name = line.substr(line.find_first_not_of(" \t", 5));
    hex("CapEff", &t.eff), hex("CapPrm", &t.prm), hex("CapInh", &t.inh), hex("CapBnd", &t.bnd), hex("CapAmb", &t.amb);
  }
  return t;
}

bool Reduced(const ThreadCaps& t, uint64_t keep, bool bounding) {
  return !t.present || (t.eff == keep && t.prm == keep && t.inh == 0 && t.amb == 0 && (!bounding || t.bnd == keep));
}

std::string Hex(uint64_t v) {
  std::ostringstream s;
  s << "0x" << std::hex << v;
  return s.str();
}

}  // namespace

std::vector<int> RuntimeCapabilities() {
  return {
      CAP_CHOWN,            // quarantine restore: give the file back to its owner
      CAP_DAC_OVERRIDE,     // quarantine/restore: move files out of and into directories of any user
      CAP_DAC_READ_SEARCH,  // scan any file; fanotify ignore marks need read access; open_by_handle_at
      CAP_FOWNER,           // unlink in sticky directories (/tmp), restore modes and times, O_NOATIME
      CAP_KILL,             // kill_process / kill_tree responses and the kill command
      CAP_SYS_PTRACE,       // /proc/<pid>/exe, cwd and fd of other users' processes (process context)
  };
}

uint64_t CapabilityMask(const std::vector<int>& caps) {
  uint64_t m = 0;
  for (int c : caps) m |= uint64_t{1} << c;
  return m;
}

Status DropCapabilities(const std::vector<int>& keep_caps) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return ErrnoError(errno, "capget");
  const uint64_t permitted = data[0].permitted | (uint64_t{data[1].permitted} << 32);
  const uint64_t keep = CapabilityMask(keep_caps) & permitted;
  const bool bounding = (permitted >> CAP_SETPCAP) & 1;  // dropping from the bounding set needs it
  g_keep = keep;
  g_drop_bounding = bounding;
  g_last_cap = LastCap();

  // Installed for good: a signal still pending after we return must not take
  // the default action of a real-time signal (terminate).
  const int sig = SIGRTMIN + 5;
  struct sigaction sa = {};
  sa.sa_handler = OnDropSignal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (::sigaction(sig, &sa, nullptr) != 0) return ErrnoError(errno, "sigaction");
  ApplyToThisThread();

  const pid_t pid = ::getpid();
  const auto self = static_cast<pid_t>(::syscall(SYS_gettid));
  // A thread answers the signal when it is next scheduled; on a saturated
  // machine that can take a while, and a thread that blocks the signal never does.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    std::string laggard;
    DIR* d = ::opendir("/proc/self/task");
    if (d == nullptr) return ErrnoError(errno, "/proc/self/task");
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      const auto tid = static_cast<pid_t>(std::atoi(e->d_name));
      const ThreadCaps t = ReadThreadCaps(std::string("/proc/self/task/") + e->d_name + "/status");
      if (Reduced(t, keep, bounding)) continue;
      laggard = std::string(e->d_name) + " (" + t.name + ")";
      if (tid == self) {
        ApplyToThisThread();
      } else {
        ::syscall(SYS_tgkill, pid, tid, sig);  // ESRCH: it exited meanwhile, fine
      }
    }
    ::closedir(d);
    if (laggard.empty()) return Status::Ok();
    if (std::chrono::steady_clock::now() > deadline) {
      return InternalError("thread " + laggard + " kept capabilities beyond " + Hex(keep) +
                           " (does it block real-time signal " + std::to_string(sig) + "?)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace mamori::agent

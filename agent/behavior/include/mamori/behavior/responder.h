// Response actions a behavior rule may opt into: kill a process or its whole
// tree, quarantine a file (through the agent's vault). Every action returns an
// outcome that the monitor records as an event, whether it acted or refused.
//
// Safety contract (this runs as root on a user's machine):
//   - never signals the agent itself, its ancestors, PID 1 or kernel threads
//     (kthreadd and its children);
//   - a pid is signalled through a pidfd, after checking that the pid still
//     names the process the event was about (start time), so a recycled pid is
//     never hit;
//   - never quarantines a file under a protected prefix (system directories by
//     default): a rule that fires on /usr/bin/bash must not remove bash.
//
// Thread safety: all methods are thread-safe.
#pragma once

#include <sys/types.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "mamori/behavior/process_table.h"
#include "mamori/common/status.h"

namespace mamori::behavior {

struct ResponseOutcome {
  std::string action;  // "kill_process", "kill_tree", "quarantine_image", "quarantine_target", "isolate"
  std::string target;  // pid(s) or path
  bool done = false;   // false: refused or failed; `detail` says why
  std::string detail;  // e.g. "killed 3 processes", "quarantined as <id>", "protected: PID 1"
};

class Responder {
 public:
  struct Options {
    // Files under these prefixes are never quarantined by a behavior rule.
    std::vector<std::string> protected_paths = {"/bin/",  "/sbin/",  "/usr/",  "/lib/", "/lib32/",
                                                "/lib64/", "/libx32/", "/etc/", "/boot/"};
    std::string proc_root = "/proc";
    // Start times from the sensor and from /proc may differ by the kernel's
    // clock-tick rounding; larger differences mean the pid was reused.
    uint64_t start_time_tolerance_ns = 50'000'000;
  };
  // Moves `path` into quarantine; returns the vault id. Provided by the agent.
  using QuarantineFn = std::function<Result<std::string>(const std::string& path, const std::string& detection)>;

  // `table` (not owned, may be null) supplies descendants and start times.
  Responder(Options options, const ProcessTable* table, QuarantineFn quarantine);

  // Kills `pid` if it still is the process that started at `start_time_ns`
  // (0 = unknown: the check is skipped).
  ResponseOutcome KillProcess(pid_t pid, uint64_t start_time_ns);
  // Stops `pid` and every descendant (SIGSTOP, so none can fork away), then
  // kills them all with SIGKILL.
  ResponseOutcome KillTree(pid_t pid, uint64_t start_time_ns);
  ResponseOutcome QuarantineFile(const std::string& action, const std::string& path,
                                 const std::string& detection);

  // True for pids no response may touch (self, ancestors, PID 1, kernel
  // threads, and the agent's children running the agent's own binary: its
  // parser workers).
  bool Protected(pid_t pid) const;

 private:
  std::vector<pid_t> LiveChildren(pid_t pid) const;
  // Opens a pidfd for `pid` if it is the expected process; -1 with *why set otherwise.
  int OpenVerified(pid_t pid, uint64_t start_time_ns, std::string* why) const;

  const Options options_;
  const ProcessTable* const table_;
  const QuarantineFn quarantine_;
  std::set<pid_t> protected_pids_;  // constant after construction
  pid_t agent_pid_ = 0;
  dev_t agent_exe_dev_ = 0;
  ino_t agent_exe_ino_ = 0;
};

}  // namespace mamori::behavior

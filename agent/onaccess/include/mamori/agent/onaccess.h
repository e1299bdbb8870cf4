// On-access protection: the kernel asks before a file is opened or executed,
// the agent scans and answers allow or deny.
//
// Contract that keeps the machine alive:
//   - the agent's own process is always allowed, without scanning;
//   - every permission event is answered within `deadline` — if no decision
//     arrived by then it is allowed (fail open) and counted as a timeout;
//   - a kernel queue overflow is detected and counted;
//   - Stop() answers every pending permission event (allow) before returning;
//   - if the agent dies, the kernel releases waiters when the fanotify
//     descriptor closes (verified by the on-access tests).
//
// Thread safety: Start/Stop from one thread; MarkClean and stats from any.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::agent {

struct AccessEvent {
  enum class Kind { kExec, kOpen, kCloseWrite };
  Kind kind = Kind::kOpen;
  int fd = -1;           // the file, opened by the kernel for us; valid during the call only
  pid_t pid = 0;         // the process asking
  std::string path;      // resolved from fd (may be "(deleted)")
  bool permission() const { return kind != Kind::kCloseWrite; }
};

enum class AccessVerdict { kAllow, kDeny };

// Decides one access. Called on worker threads, concurrently. For
// notifications (close-write) the verdict is ignored: the decider acts itself.
using AccessDecider = std::function<AccessVerdict(const AccessEvent&)>;

struct OnAccessOptions {
  std::vector<std::string> exec_paths;  // FAN_OPEN_EXEC_PERM on the mounts holding these
  std::vector<std::string> open_paths;  // FAN_OPEN_PERM on the mounts holding these
  bool close_write = true;              // FAN_CLOSE_WRITE on both sets of mounts
  std::chrono::milliseconds deadline{2000};
  unsigned workers = 2;
};

struct OnAccessStats {
  std::atomic<uint64_t> permission_events{0};
  std::atomic<uint64_t> notifications{0};
  std::atomic<uint64_t> allowed{0};
  std::atomic<uint64_t> denied{0};
  std::atomic<uint64_t> own_process{0};   // our own I/O, allowed unseen
  std::atomic<uint64_t> timeouts{0};      // answered allow at the deadline
  std::atomic<uint64_t> overflows{0};     // kernel queue overflowed
  std::atomic<uint64_t> ignore_marks{0};  // clean files the kernel will skip until modified
};

class OnAccessMonitor {
 public:
  virtual ~OnAccessMonitor() = default;
  virtual Status Start() = 0;
  virtual void Stop() = 0;
  // After a clean verdict on `fd`'s file: the kernel stops asking about it
  // until the file is modified (an ignore mark the kernel clears on write).
  virtual void MarkClean(int fd) = 0;
  // Drops every clean mark (new signatures: yesterday's clean may be today's detection).
  virtual void ClearCleanMarks() = 0;
  // Liveness of the loops that keep the machine alive: the older of the last
  // turns of the event reader and of the deadline watcher. Both turn at
  // least once a second while running, idle or not; an old value means one
  // is wedged and permission events may go unanswered (the agent's watchdog
  // then stops pinging systemd). Any thread.
  virtual std::chrono::steady_clock::time_point LastHeartbeat() const = 0;
  virtual const OnAccessStats& stats() const = 0;
};

// Called for timeouts and overflows, so they become events.
using OnAccessReporter = std::function<void(const std::string& what, const AccessEvent* event)>;

// The platform implementation (Linux: fanotify). UNIMPLEMENTED elsewhere.
Result<std::unique_ptr<OnAccessMonitor>> MakeOnAccessMonitor(OnAccessOptions options, AccessDecider decide,
                                                             OnAccessReporter report);

}  // namespace mamori::agent

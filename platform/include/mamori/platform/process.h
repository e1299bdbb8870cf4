// Process listing and a kill that cannot hit a recycled pid.
//
// Start times are creation times in nanoseconds since the Unix epoch:
//   Linux:   /proc/PID/stat starttime (clock ticks after boot) + boot time;
//            resolution one tick (10 ms), so compare with a tolerance.
//   Windows: GetProcessTimes creation time (100 ns resolution).
//
// KillProcess opens the process first (Linux pidfd_open, Windows OpenProcess)
// and reads its start time through that reference, so the process checked is
// the process killed even if the pid is reused in between — the same guard
// as agent/behavior/src/responder.cc.
//
// Thread-safe: no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::platform {

using Pid = uint32_t;

struct ProcessInfo {
  Pid pid = 0;
  Pid ppid = 0;
  std::string name;            // Linux: comm (15 chars at most); Windows: image name ("cmd.exe")
  uint64_t start_time_ns = 0;  // 0 when it could not be read (access denied, exited)
};

// Every process visible to the caller. Processes that exit while listing are
// left out, not errors.
Result<std::vector<ProcessInfo>> ListProcesses();

// NOT_FOUND when no process has this pid.
Result<uint64_t> ProcessStartTime(Pid pid);

// 50 ms, as the behavior responder: wider than one Linux clock tick plus the
// boot-time estimate's jitter, far narrower than pid reuse takes.
inline constexpr uint64_t kStartTimeToleranceNs = 50'000'000;

// Kills `pid` (SIGKILL / TerminateProcess with exit code 1) if its start time
// is within `tolerance_ns` of `expected_start_time_ns`.
// Errors: INVALID_ARGUMENT for expected_start_time_ns == 0 (the guard is not
// optional), for pid 0 and the caller itself; NOT_FOUND when the process is
// gone; FAILED_PRECONDITION "now names another process" when the start time
// differs; PERMISSION_DENIED.
Status KillProcess(Pid pid, uint64_t expected_start_time_ns, uint64_t tolerance_ns = kStartTimeToleranceNs);

// The caller's own pid.
Pid CurrentPid();

}  // namespace mamori::platform

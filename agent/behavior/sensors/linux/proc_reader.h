// What /proc/<pid> says about a process, for the procconn sensor (which gets
// only pids from the kernel). Racy by nature: the process may have exited
// (or exec'd again) by the time we read; callers count what was missing.
//
// Thread safety: stateless functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "mamori/behavior/event.h"

namespace mamori::behavior::linux_sensors {

// Fills pid, ppid, uid/euid/gid/egid and start_time_ns from status and stat;
// with `exec_details` also image, argv, command_line, cwd, tty and cgroup.
// Returns false when some requested field could not be read (the process
// was gone or a zombie): the fields read so far stay filled.
bool ReadProcess(int32_t pid, bool exec_details, int64_t boot_to_realtime_ns, ProcessContext* p);

// tty_nr of /proc/<pid>/stat to "pts/3", "tty1", "ttyS0"; "" when none or unknown.
std::string TtyName(uint32_t tty_nr);

}  // namespace mamori::behavior::linux_sensors

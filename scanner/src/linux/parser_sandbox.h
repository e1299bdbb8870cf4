// Internal (Linux): confinement of a parser worker process.
#pragma once

#include "mamori/common/status.h"

namespace mamori::scanner::internal {

// Drops every capability (bounding set too when still allowed), clears the
// ambient set, forbids core dumps and ptrace by other same-uid processes, and
// caps file size (0: no file writes) and, outside sanitizer builds, the address
// space. Called first thing in the worker.
Status DropWorkerPrivileges();

// Sets no_new_privs and installs the worker's seccomp filter (x86-64 only):
// reading, writing and mapping memory on descriptors it already holds,
// receiving a descriptor, futexes, signals to itself, time, exit. Opening a
// path fails with EACCES (libraries that probe files degrade gracefully);
// every other system call — socket, connect, clone/fork, execve, kill,
// ptrace, file creation — kills the process (SIGSYS). Irreversible.
Status InstallWorkerSeccompFilter();

}  // namespace mamori::scanner::internal

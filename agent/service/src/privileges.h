// Least privilege for mamori-agent: after start-up (fanotify initialized and
// marked, eBPF programs loaded and attached, proc connector bound), every
// capability the running agent does not use is dropped from the effective,
// permitted, inheritable, ambient and bounding sets of EVERY thread of the
// process, and no_new_privs is set. What is kept, and why, is written in
// docs/least-privilege.md.
//
// Linux capabilities are per thread, and the agent has started its worker,
// sensor and gRPC threads by then: DropCapabilities signals each thread
// (/proc/self/task) with a real-time signal whose handler applies the same
// sets (raw capset/prctl, async-signal-safe), then checks every thread's
// /proc/self/task/<tid>/status until all match.
//
// Thread safety: call once, from one thread (main), after start-up.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::agent {

// Capability numbers (linux/capability.h) the running agent keeps.
std::vector<int> RuntimeCapabilities();

// The mask of `caps` (bit n = capability n), as /proc/<pid>/status prints it.
uint64_t CapabilityMask(const std::vector<int>& caps);

// Reduces every thread to `keep` intersected with what the process holds
// (an unprivileged agent, in tests, holds nothing and stays so). Returns
// kInternal naming the thread when a thread could not be reduced within 2 s
// (it blocks the signal); the threads that were reduced stay reduced.
Status DropCapabilities(const std::vector<int>& keep);

}  // namespace mamori::agent

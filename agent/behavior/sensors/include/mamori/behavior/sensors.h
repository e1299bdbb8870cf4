// Linux behavior sensors: the eBPF sensor (full fidelity) and the proc
// connector + fanotify fallback ("procconn"), behind the Sensor interface.
//
//   auto best = MakeBestSensor(options);       // tries eBPF, then procconn
//   if (!best.ok()) ...                        // neither could start
//   Sensor& sensor = *best->sensor;            // already started
//   while (sensor.Next(100ms, &event) != Sensor::NextResult::kEnd) ...
//
// Both sensors fill, for the actor: pid, tid, ppid, uid/euid/gid/egid and
// start_time_ns; exec events also image, argv, command_line, cwd, tty and
// cgroup. user, parent and sha256 are left to the process table.
// docs/behavior-sensors.md compares their fidelity.
//
// Lifetime and threading: as Sensor (sensor.h). Next after Stop returns kEnd
// at once: buffered events are discarded. counters() and probes() are
// thread-safe snapshots.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mamori/behavior/sensor.h"
#include "mamori/common/status.h"

namespace mamori::behavior {

// Event groups a sensor can be asked for (LinuxSensorOptions::groups).
enum SensorGroup : uint32_t {
  kGroupProcess = 1u << 0,      // exec, fork, exit
  kGroupFile = 1u << 1,         // open for write, create, rename, unlink, chmod, chown
  kGroupNetwork = 1u << 2,      // connect, accept, bind (TCP, UDP; IPv4, IPv6)
  kGroupCredentials = 1u << 3,  // setuid, setgid families
  kGroupModule = 1u << 4,       // kernel module load
  kGroupPtrace = 1u << 5,       // ptrace attach / write requests
};
inline constexpr uint32_t kAllSensorGroups = 0x3f;

struct LinuxSensorOptions {
  // eBPF ring buffer size in bytes; rounded up to a power of two, at least
  // one page. A full ring buffer loses events (counted, reported as
  // kSensorDrops). The largest exec record is ~42 KiB.
  size_t ring_buffer_bytes = 8u << 20;
  // File events are reported for these absolute paths and everything under
  // them ("/etc" covers "/etc/passwd", not "/etcetera"). A trailing '/' is
  // ignored. Empty: every path (eBPF), the root filesystem (procconn).
  // At most 16 prefixes of at most 248 bytes each.
  std::vector<std::string> file_prefixes;
  // A chmod that sets S_ISUID or S_ISGID is reported wherever the file is
  // (eBPF only: procconn cannot see outside the watched filesystems).
  bool report_setid_chmod_anywhere = true;
  uint32_t groups = kAllSensorGroups;  // SensorGroup bits
  // Events whose actor is this process are not reported, so the agent does
  // not watch itself: -1 = the calling process, 0 = none, else that pid.
  int32_t ignore_pid = -1;
  // argv bytes captured per exec (eBPF: at most 32767; longer argv is cut
  // and counted in LinuxSensorCounters::argv_truncated).
  uint32_t max_argv_bytes = 32767;
  // How often the kernel drop counters are read and turned into
  // kSensorDrops events (only when something was lost).
  std::chrono::milliseconds drop_report_interval{1000};
  // eBPF: the kernel wakes the reader only once 1/8 of the ring buffer (at
  // most 256 KiB) is queued; otherwise Next looks every max_delivery_delay.
  // An event thus waits at most this long; 0 wakes the reader per event
  // (lowest latency, one context switch per event).
  std::chrono::milliseconds max_delivery_delay{20};
};

struct LinuxSensorCounters {
  uint64_t delivered = 0;        // events returned by Next (kSensorDrops included)
  uint64_t dropped = 0;          // events lost, the sum of the kSensorDrops events delivered
  uint64_t argv_truncated = 0;   // exec events whose argv exceeded max_argv_bytes
  uint64_t incomplete_exec = 0;  // procconn: exec events whose process was gone before /proc was read
  uint64_t filtered = 0;         // file events the user-space prefix check discarded
};

// One kernel attachment and what became of it at Start.
struct ProbeStatus {
  std::string name;  // "exec", "file:unlink", "module_load", ...
  bool attached = false;
  std::string reason;  // why not attached ("group disabled", "kernel has no ...")
};

class LinuxSensor : public Sensor {
 public:
  virtual LinuxSensorCounters counters() const = 0;
  // Empty before Start.
  virtual std::vector<ProbeStatus> probes() const = 0;
};

// The eBPF sensor, name "ebpf". Start errors: kPermissionDenied (not root),
// kUnavailable (no BTF, BPF refused or unsupported: use the fallback),
// kInvalidArgument (options).
std::unique_ptr<LinuxSensor> MakeEbpfSensor(LinuxSensorOptions options);

// The fallback, name "procconn": netlink proc connector for process events,
// fanotify (FID mode) for file events, /proc for exec details. No network
// events. Start errors: kPermissionDenied, kUnavailable, kInvalidArgument.
std::unique_ptr<LinuxSensor> MakeProcConnSensor(LinuxSensorOptions options);

struct BestSensor {
  std::unique_ptr<LinuxSensor> sensor;  // started
  Status ebpf_status;                   // OK if sensor is eBPF, else why eBPF did not start
};

// Starts the eBPF sensor; if that fails with kUnavailable, starts procconn.
// Any other eBPF error (kPermissionDenied, kInvalidArgument) is returned as
// is, as is the procconn error when the fallback fails too.
Result<BestSensor> MakeBestSensor(const LinuxSensorOptions& options);

}  // namespace mamori::behavior

// Kernel clocks to CLOCK_REALTIME. The kernel stamps events and process
// starts with CLOCK_BOOTTIME (BPF: bpf_ktime_get_boot_ns; task start_boottime;
// /proc/<pid>/stat starttime); Event wants CLOCK_REALTIME.
//
// Thread safety: stateless functions.
#pragma once

#include <time.h>

#include <cstdint>

namespace mamori::behavior::linux_sensors {

inline int64_t ClockNs(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// realtime - boottime, now. Add it to a CLOCK_BOOTTIME stamp. Changes when
// the wall clock is set or slewed: sample it again from time to time.
inline int64_t BootToRealtimeOffsetNs() {
  int64_t boot = ClockNs(CLOCK_BOOTTIME);
  int64_t real = ClockNs(CLOCK_REALTIME);
  return real - boot;
}

}  // namespace mamori::behavior::linux_sensors

// Helpers for the sensor tests: a watchdog, root/BPF checks, spawning
// processes, and waiting for the event a test caused among everything else
// the machine does.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "mamori/behavior/sensors.h"

namespace mamori::behavior::testing {

// alarm(seconds) for the lifetime of the object: a hung test is killed by
// SIGALRM instead of blocking the suite.
class Watchdog {
 public:
  explicit Watchdog(unsigned seconds);
  ~Watchdog();
};

// Empty when the eBPF sensor can run here (root, BTF); else why not.
std::string EbpfUnusableReason();
// Empty when procconn can run here (root).
std::string ProcConnUnusableReason();

// fork + execv(path, argv); returns the child's pid (not waited for).
pid_t Spawn(const std::string& path, const std::vector<std::string>& argv);
// waitpid; returns the raw status.
int Wait(pid_t pid);
// Copies `from` to `to` with mode 0755.
void CopyExecutable(const std::string& from, const std::string& to);

// Reads events from a started sensor, keeping every one it saw.
class EventLog {
 public:
  explicit EventLog(Sensor& sensor) : sensor_(sensor) {}
  // The first event (seen before or now) for which `match` holds, reading
  // for at most `timeout`.
  std::optional<Event> WaitFor(const std::function<bool(const Event&)>& match,
                               std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Reads for `duration`, then returns every event seen so far.
  const std::vector<Event>& ReadFor(std::chrono::milliseconds duration);
  const std::vector<Event>& events() const { return events_; }

 private:
  Sensor& sensor_;
  std::vector<Event> events_;
};

// Default options for tests: nothing ignored, quick drop reports.
LinuxSensorOptions TestOptions(std::vector<std::string> prefixes);

}  // namespace mamori::behavior::testing

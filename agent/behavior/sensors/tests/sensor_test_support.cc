#include "sensor_test_support.h"

#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace mamori::behavior::testing {

Watchdog::Watchdog(unsigned seconds) { alarm(seconds); }
Watchdog::~Watchdog() { alarm(0); }

std::string EbpfUnusableReason() {
  if (geteuid() != 0) return "not root";
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) return "no /sys/kernel/btf/vmlinux";
  // The kernel must accept BPF at all (lockdown or a policy may refuse it);
  // past this point the sensor is expected to start, and a failure is a bug.
  if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_RAW_TRACEPOINT, nullptr) != 1) {
    return "the kernel refuses raw tracepoint BPF programs";
  }
  return "";
}

std::string ProcConnUnusableReason() { return geteuid() != 0 ? "not root" : ""; }

pid_t Spawn(const std::string& path, const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    execv(path.c_str(), args.data());
    _exit(127);
  }
  return pid;
}

int Wait(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

void CopyExecutable(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  std::ofstream out(to, std::ios::binary);
  out << in.rdbuf();
  out.close();
  chmod(to.c_str(), 0755);
}

std::optional<Event> EventLog::WaitFor(const std::function<bool(const Event&)>& match,
                                       std::chrono::milliseconds timeout) {
  for (const Event& e : events_) {
    if (match(e)) return e;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    Event e;
    auto r = sensor_.Next(std::chrono::milliseconds(50), &e);
    if (r == Sensor::NextResult::kEnd) return std::nullopt;
    if (r != Sensor::NextResult::kEvent) continue;
    events_.push_back(e);
    if (match(e)) return e;
  }
  return std::nullopt;
}

const std::vector<Event>& EventLog::ReadFor(std::chrono::milliseconds duration) {
  auto deadline = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < deadline) {
    Event e;
    auto r = sensor_.Next(std::chrono::milliseconds(20), &e);
    if (r == Sensor::NextResult::kEnd) break;
    if (r == Sensor::NextResult::kEvent) events_.push_back(std::move(e));
  }
  return events_;
}

LinuxSensorOptions TestOptions(std::vector<std::string> prefixes) {
  LinuxSensorOptions o;
  o.file_prefixes = std::move(prefixes);
  o.ignore_pid = 0;
  o.drop_report_interval = std::chrono::milliseconds(100);
  o.ring_buffer_bytes = 16u << 20;
  return o;
}

}  // namespace mamori::behavior::testing

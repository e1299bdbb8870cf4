// Catch2 runner for the Windows platform tests, plus the child modes the
// tests start this same executable in:
//   --sleep-child   sleeps 30 s (a process of our own to list and kill)
//   --watch-service NAME FILE
//                   polls the service's state every 10 ms for at most 30 s
//                   and appends each change to FILE, until it has seen the
//                   service stop after running (a second SCM client; wine's
//                   SCM calls are not safe from two threads of one process)
#define CATCH_CONFIG_RUNNER
#include <windows.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <string>

#include "mamori/platform/service_control.h"

namespace {

int WatchService(const std::string& name, const std::string& file) {
  using mamori::platform::ServiceState;
  std::string last;
  bool ran = false;
  for (int i = 0; i < 3000; ++i) {
    auto s = mamori::platform::QueryServiceState(name);
    std::string now = s.ok() ? mamori::platform::ServiceStateName(s->state) : "error";
    if (now != last) {
      std::ofstream(file, std::ios::app) << now << "\n";
      last = now;
    }
    if (s.ok() && s->state != ServiceState::kStopped) ran = true;
    if (ran && s.ok() && s->state == ServiceState::kStopped) return 0;
    ::Sleep(10);
  }
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--sleep-child") == 0) {
    ::Sleep(30'000);
    return 0;
  }
  if (argc == 4 && std::strcmp(argv[1], "--watch-service") == 0) return WatchService(argv[2], argv[3]);
  return Catch::Session().run(argc, argv);
}

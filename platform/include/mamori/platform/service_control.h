// Query, start and stop an installed OS service; install/remove on Windows.
//
//   Linux:   systemd through `systemctl` (no libsystemd dependency). When
//            systemd is not the init system (containers, CI) every call
//            returns UNAVAILABLE naming that.
//   Windows: the Service Control Manager (OpenSCManager/OpenService,
//            QueryServiceStatusEx, StartService, ControlService(STOP),
//            CreateService/DeleteService). Needs administrator rights except
//            for queries.
//
// Function names avoid the Win32 macros StartService/CreateService.
// Thread-safe: no shared state. Calls block for at most `wait`.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::platform {

enum class ServiceState { kStopped, kStartPending, kStopPending, kRunning, kContinuePending, kPausePending, kPaused };

// "stopped", "start_pending", "running", ...
const char* ServiceStateName(ServiceState state);

struct ServiceStatus {
  ServiceState state = ServiceState::kStopped;
  uint32_t pid = 0;        // 0 when not running
  uint32_t exit_code = 0;  // the last run's exit code (Win32 or service-specific; Linux: ExecMainStatus)
};

// NOT_FOUND for a service that is not installed.
Result<ServiceStatus> QueryServiceState(const std::string& name);

// Starts the service and waits until it reports running (or `wait` passes:
// DEADLINE_EXCEEDED). Already running is OK.
Status StartSystemService(const std::string& name, std::chrono::milliseconds wait);

// Asks the service to stop and waits until it reports stopped (or `wait`
// passes: DEADLINE_EXCEEDED). Already stopped is OK.
Status StopSystemService(const std::string& name, std::chrono::milliseconds wait);

struct ServiceInstall {
  std::string name;          // key name, e.g. "MamoriAgent"
  std::string display_name;  // shown in services.msc
  std::string binary_path;   // absolute path of the executable
  std::vector<std::string> args;  // appended to the command line, quoted as needed
  bool auto_start = false;   // SERVICE_AUTO_START instead of SERVICE_DEMAND_START
};

// Windows: registers an own-process service running as LocalSystem.
// Linux: UNIMPLEMENTED (the .deb/.rpm installs the systemd unit).
Status InstallSystemService(const ServiceInstall& spec);
// Windows: marks the service for deletion. Linux: UNIMPLEMENTED.
Status RemoveSystemService(const std::string& name);

}  // namespace mamori::platform

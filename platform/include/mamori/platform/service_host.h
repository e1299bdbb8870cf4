// Runs a long-lived program as an OS service, or in a console.
//
// Windows, service mode: StartServiceCtrlDispatcher -> ServiceMain ->
//   RegisterServiceCtrlHandlerEx, then SetServiceStatus: START_PENDING (wait
//   hint `start_wait_hint`, checkpoint bumped by each progress() call) ->
//   RUNNING (accepting STOP, SHUTDOWN and PRESHUTDOWN) -> STOP_PENDING (when a
//   stop control arrives or Run returns) -> STOPPED with the exit code
//   (ERROR_SERVICE_SPECIFIC_ERROR + the code when non-zero).
// Windows, console mode: Ctrl+C, Ctrl+Break, closing the console, logoff
//   and shutdown request a stop.
// Linux, service mode: systemd Type=notify — READY=1 after Start, STOPPING=1
//   when stopping; SIGTERM and SIGINT request a stop. Console mode: the same
//   signals, no notifications.
//
// Threads: Start and Run run on the host's service thread (in service mode a
// thread the SCM created); RequestStop runs on another thread (the SCM's
// control handler, the console handler or the signal thread) and must only
// signal Run to return. RequestStop may arrive before Run starts or during
// Start: the app must then return from Run promptly.
//
// Linux: call RunAsService/RunInConsole from the main thread before starting
// other threads. SIGTERM/SIGINT are blocked in the calling thread (and so in
// every thread it starts afterwards) and taken by the host's signal thread; a
// thread started earlier without them blocked could receive them instead.
// One host per process at a time (Windows: the SCM's ServiceMain takes no
// context).
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "mamori/common/status.h"

namespace mamori::platform {

enum class StopReason { kStop, kShutdown, kPreshutdown, kConsole, kSignal };

// "stop", "shutdown", "preshutdown", "console", "signal".
const char* StopReasonName(StopReason reason);

class ServiceApp {
 public:
  virtual ~ServiceApp() = default;
  // Start-up. Call `progress` at least once per start_wait_hint while work
  // goes on. A non-OK status ends the service (STOPPED, exit code 1).
  virtual Status Start(const std::function<void()>& progress) = 0;
  // Blocks until RequestStop; returns the exit code (0 = clean stop).
  virtual int Run() = 0;
  // Thread-safe, idempotent, returns quickly.
  virtual void RequestStop(StopReason reason) = 0;
};

struct ServiceHostOptions {
  std::string name;  // the installed service's key name
  std::chrono::milliseconds start_wait_hint{30'000};
  std::chrono::milliseconds stop_wait_hint{30'000};
};

// Runs `app` under the service manager and returns its exit code when it has
// stopped. FAILED_PRECONDITION when the process was not started by the SCM
// (Windows) — run in console mode then.
Result<int> RunAsService(const ServiceHostOptions& options, ServiceApp& app);

// Runs `app` in the foreground of a console/terminal.
Result<int> RunInConsole(const ServiceHostOptions& options, ServiceApp& app);

}  // namespace mamori::platform

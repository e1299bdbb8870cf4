// Windows: the SCM service wrapper and the console mode (see service_host.h).
// The SCM's ServiceMain takes no context, so one host per process: the state
// lives in g_host for the duration of RunAsService/RunInConsole.
#include "mamori/platform/service_host.h"

#include <windows.h>

#include <mutex>

#include "win_util.h"

namespace mamori::platform {
namespace {

struct Host {
  const ServiceHostOptions* options = nullptr;
  ServiceApp* app = nullptr;
  std::wstring name;
  SERVICE_STATUS_HANDLE handle = nullptr;
  std::mutex mu;  // guards status and stopping
  SERVICE_STATUS status{};
  bool stopping = false;
  int exit_code = 1;
  Status start_status;
};

Host* g_host = nullptr;
// Console mode: the console handler runs on a thread of its own and may run
// while RunInConsole returns; it reads g_host under this lock only.
std::mutex g_console_mu;

// Set when the console-mode Run has returned. Created once and never closed,
// so a console handler still waiting on it can never wait on a closed handle.
HANDLE ConsoleRunDone() {
  static HANDLE event = ::CreateEventW(nullptr, TRUE, FALSE, nullptr);
  return event;
}

// Reports `state` to the SCM. Pending states bump the checkpoint so the SCM
// sees progress; RUNNING accepts the stop controls, other states none.
void Report(DWORD state, DWORD wait_hint_ms, int exit_code = 0) {
  Host& h = *g_host;
  std::lock_guard<std::mutex> lock(h.mu);
  h.status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
  h.status.dwCurrentState = state;
  h.status.dwControlsAccepted =
      state == SERVICE_RUNNING ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN | SERVICE_ACCEPT_PRESHUTDOWN : 0;
  const bool pending = state == SERVICE_START_PENDING || state == SERVICE_STOP_PENDING;
  h.status.dwCheckPoint = pending ? h.status.dwCheckPoint + 1 : 0;
  h.status.dwWaitHint = pending ? wait_hint_ms : 0;
  if (state == SERVICE_STOPPED && exit_code != 0) {
    h.status.dwWin32ExitCode = ERROR_SERVICE_SPECIFIC_ERROR;
    h.status.dwServiceSpecificExitCode = static_cast<DWORD>(exit_code);
  } else {
    h.status.dwWin32ExitCode = NO_ERROR;
    h.status.dwServiceSpecificExitCode = 0;
  }
  ::SetServiceStatus(h.handle, &h.status);
}

DWORD Ms(std::chrono::milliseconds d) { return static_cast<DWORD>(d.count()); }

DWORD WINAPI ControlHandler(DWORD control, DWORD /*event_type*/, LPVOID /*event_data*/, LPVOID /*context*/) {
  Host& h = *g_host;
  StopReason reason;
  switch (control) {
    case SERVICE_CONTROL_INTERROGATE: return NO_ERROR;
    case SERVICE_CONTROL_STOP: reason = StopReason::kStop; break;
    case SERVICE_CONTROL_SHUTDOWN: reason = StopReason::kShutdown; break;
    case SERVICE_CONTROL_PRESHUTDOWN: reason = StopReason::kPreshutdown; break;
    default: return ERROR_CALL_NOT_IMPLEMENTED;
  }
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(h.mu);
    first = !h.stopping;
    h.stopping = true;
  }
  if (first) Report(SERVICE_STOP_PENDING, Ms(h.options->stop_wait_hint));
  h.app->RequestStop(reason);
  return NO_ERROR;
}

void WINAPI ServiceMain(DWORD /*argc*/, LPWSTR* /*argv*/) {
  Host& h = *g_host;
  h.handle = ::RegisterServiceCtrlHandlerExW(h.name.c_str(), ControlHandler, nullptr);
  if (h.handle == nullptr) {
    h.start_status = win::LastError("RegisterServiceCtrlHandlerEx");
    return;
  }
  const DWORD start_hint = Ms(h.options->start_wait_hint);
  Report(SERVICE_START_PENDING, start_hint);
  h.start_status = h.app->Start([&h, start_hint] {
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(h.mu);
      stopping = h.stopping;
    }
    if (!stopping) Report(SERVICE_START_PENDING, start_hint);
  });
  if (!h.start_status.ok()) {
    h.exit_code = 1;
    Report(SERVICE_STOPPED, 0, 1);
    return;
  }
  bool stopping;
  {
    std::lock_guard<std::mutex> lock(h.mu);
    stopping = h.stopping;
  }
  if (!stopping) Report(SERVICE_RUNNING, 0);  // a stop during Start already said STOP_PENDING
  h.exit_code = h.app->Run();
  {
    std::lock_guard<std::mutex> lock(h.mu);
    stopping = h.stopping;
    h.stopping = true;
  }
  if (!stopping) Report(SERVICE_STOP_PENDING, Ms(h.options->stop_wait_hint));
  Report(SERVICE_STOPPED, 0, h.exit_code);
}

BOOL WINAPI ConsoleHandler(DWORD event) {
  const bool closing = event == CTRL_CLOSE_EVENT || event == CTRL_LOGOFF_EVENT || event == CTRL_SHUTDOWN_EVENT;
  if (!closing && event != CTRL_C_EVENT && event != CTRL_BREAK_EVENT) return FALSE;
  DWORD wait_ms = 0;
  {
    std::lock_guard<std::mutex> lock(g_console_mu);
    if (g_host == nullptr) return FALSE;
    g_host->app->RequestStop(event == CTRL_SHUTDOWN_EVENT ? StopReason::kShutdown : StopReason::kConsole);
    wait_ms = Ms(g_host->options->stop_wait_hint);
  }
  // Returning from a close/logoff/shutdown event ends the process: wait
  // (bounded) for Run to finish first.
  if (closing) ::WaitForSingleObject(ConsoleRunDone(), wait_ms);
  return TRUE;
}

}  // namespace

Result<int> RunAsService(const ServiceHostOptions& options, ServiceApp& app) {
  if (g_host != nullptr) return FailedPreconditionError("service host: already running in this process");
  Host h;
  h.options = &options;
  h.app = &app;
  h.name = win::Wide(options.name);
  g_host = &h;
  SERVICE_TABLE_ENTRYW table[] = {{h.name.data(), ServiceMain}, {nullptr, nullptr}};
  BOOL ok = ::StartServiceCtrlDispatcherW(table);
  DWORD err = ok ? 0 : ::GetLastError();
  g_host = nullptr;
  if (!ok) {
    if (err == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
      return FailedPreconditionError("service " + options.name +
                                     ": not started by the Service Control Manager (run in console mode)");
    }
    return win::Win32Error(err, "service " + options.name + ": StartServiceCtrlDispatcher");
  }
  if (!h.start_status.ok()) return h.start_status.WithContext("service start");
  return h.exit_code;
}

Result<int> RunInConsole(const ServiceHostOptions& options, ServiceApp& app) {
  Host h;
  h.options = &options;
  h.app = &app;
  h.name = win::Wide(options.name);
  HANDLE run_done = ConsoleRunDone();
  if (run_done == nullptr) return FailedPreconditionError("service host: no event for console mode");
  {
    std::lock_guard<std::mutex> lock(g_console_mu);
    if (g_host != nullptr) return FailedPreconditionError("service host: already running in this process");
    g_host = &h;
  }
  ::ResetEvent(run_done);
  if (!::SetConsoleCtrlHandler(ConsoleHandler, TRUE)) {
    Status s = win::LastError("service host: SetConsoleCtrlHandler");
    std::lock_guard<std::mutex> lock(g_console_mu);
    g_host = nullptr;
    return s;
  }
  Status started = app.Start([] {});
  int code = started.ok() ? app.Run() : 1;
  ::SetEvent(run_done);
  ::SetConsoleCtrlHandler(ConsoleHandler, FALSE);
  {
    std::lock_guard<std::mutex> lock(g_console_mu);
    g_host = nullptr;
  }
  if (!started.ok()) return started.WithContext("service start");
  return code;
}

}  // namespace mamori::platform

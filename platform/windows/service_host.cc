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
  HANDLE run_done = nullptr;  // console mode: set when Run has returned
};

Host* g_host = nullptr;

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
  Host* h = g_host;
  if (h == nullptr) return FALSE;
  switch (event) {
    case CTRL_C_EVENT:
    case CTRL_BREAK_EVENT:
      h->app->RequestStop(StopReason::kConsole);
      return TRUE;
    case CTRL_CLOSE_EVENT:
    case CTRL_LOGOFF_EVENT:
    case CTRL_SHUTDOWN_EVENT:
      // Returning ends the process: wait (bounded) for Run to finish first.
      h->app->RequestStop(event == CTRL_SHUTDOWN_EVENT ? StopReason::kShutdown : StopReason::kConsole);
      ::WaitForSingleObject(h->run_done, Ms(h->options->stop_wait_hint));
      return TRUE;
    default:
      return FALSE;
  }
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
  if (g_host != nullptr) return FailedPreconditionError("service host: already running in this process");
  Host h;
  h.options = &options;
  h.app = &app;
  h.name = win::Wide(options.name);
  h.run_done = ::CreateEventW(nullptr, TRUE, FALSE, nullptr);
  if (h.run_done == nullptr) return win::LastError("service host: CreateEvent");
  g_host = &h;
  if (!::SetConsoleCtrlHandler(ConsoleHandler, TRUE)) {
    g_host = nullptr;
    ::CloseHandle(h.run_done);
    return win::LastError("service host: SetConsoleCtrlHandler");
  }
  Status started = app.Start([] {});
  int code = started.ok() ? app.Run() : 1;
  ::SetEvent(h.run_done);
  ::SetConsoleCtrlHandler(ConsoleHandler, FALSE);
  g_host = nullptr;
  ::CloseHandle(h.run_done);
  if (!started.ok()) return started.WithContext("service start");
  return code;
}

}  // namespace mamori::platform

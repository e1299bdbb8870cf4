// Windows: the Service Control Manager.
#include "mamori/platform/service_control.h"

#include <windows.h>

#include <memory>
#include <thread>

#include "win_util.h"

namespace mamori::platform {
namespace {

struct ScDeleter {
  void operator()(SC_HANDLE h) const { ::CloseServiceHandle(h); }
};
using ScHandle = std::unique_ptr<std::remove_pointer_t<SC_HANDLE>, ScDeleter>;

Result<ScHandle> OpenManager(DWORD access) {
  SC_HANDLE m = ::OpenSCManagerW(nullptr, nullptr, access);
  if (m == nullptr) return win::LastError("OpenSCManager");
  return ScHandle(m);
}

// The service handle with the manager handle it was opened through (kept
// open for as long as the service handle is used).
struct ServiceHandles {
  ScHandle manager;
  ScHandle service;
  SC_HANDLE get() const { return service.get(); }
};

Result<ServiceHandles> Open(const std::string& name, DWORD access) {
  auto m = OpenManager(SC_MANAGER_CONNECT);
  if (!m.ok()) return m.status();
  SC_HANDLE s = ::OpenServiceW(m->get(), win::Wide(name).c_str(), access);
  if (s == nullptr) {
    DWORD err = ::GetLastError();
    if (err == ERROR_SERVICE_DOES_NOT_EXIST) return NotFoundError("service " + name + " is not installed");
    return win::Win32Error(err, "open service " + name);
  }
  return ServiceHandles{std::move(*m), ScHandle(s)};
}

ServiceState StateOf(DWORD s) {
  switch (s) {
    case SERVICE_START_PENDING: return ServiceState::kStartPending;
    case SERVICE_STOP_PENDING: return ServiceState::kStopPending;
    case SERVICE_RUNNING: return ServiceState::kRunning;
    case SERVICE_CONTINUE_PENDING: return ServiceState::kContinuePending;
    case SERVICE_PAUSE_PENDING: return ServiceState::kPausePending;
    case SERVICE_PAUSED: return ServiceState::kPaused;
    default: return ServiceState::kStopped;
  }
}

Result<ServiceStatus> Query(SC_HANDLE s, const std::string& name) {
  SERVICE_STATUS_PROCESS sp{};
  DWORD needed = 0;
  if (!::QueryServiceStatusEx(s, SC_STATUS_PROCESS_INFO, reinterpret_cast<BYTE*>(&sp), sizeof sp, &needed)) {
    return win::LastError("query service " + name);
  }
  ServiceStatus out;
  out.state = StateOf(sp.dwCurrentState);
  out.pid = sp.dwProcessId;
  out.exit_code = sp.dwWin32ExitCode == ERROR_SERVICE_SPECIFIC_ERROR ? sp.dwServiceSpecificExitCode : sp.dwWin32ExitCode;
  return out;
}

Status WaitFor(SC_HANDLE s, const std::string& name, ServiceState want, std::chrono::milliseconds wait) {
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    auto q = Query(s, name);
    if (!q.ok()) return q.status();
    if (q->state == want) return Status::Ok();
    if (want == ServiceState::kRunning && q->state == ServiceState::kStopped) {
      return Status(StatusCode::kAborted, "service " + name + " stopped while starting (exit code " +
                                              std::to_string(q->exit_code) + ")");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return DeadlineExceededError("service " + name + " is " + ServiceStateName(q->state) + ", not " +
                                   ServiceStateName(want) + ", after " + std::to_string(wait.count()) + " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// CommandLineToArgvW's rules: backslashes are literal unless they precede a
// quote; quote an argument holding spaces, tabs or quotes.
std::wstring Quote(const std::wstring& arg) {
  if (!arg.empty() && arg.find_first_of(L" \t\"") == std::wstring::npos) return arg;
  std::wstring out = L"\"";
  size_t backslashes = 0;
  for (wchar_t c : arg) {
    if (c == L'\\') {
      ++backslashes;
      continue;
    }
    if (c == L'"') out.append(backslashes * 2 + 1, L'\\');
    else out.append(backslashes, L'\\');
    backslashes = 0;
    out += c;
  }
  out.append(backslashes * 2, L'\\');
  out += L'"';
  return out;
}

}  // namespace

Result<ServiceStatus> QueryServiceState(const std::string& name) {
  auto s = Open(name, SERVICE_QUERY_STATUS);
  if (!s.ok()) return s.status();
  return Query(s->get(), name);
}

Status StartSystemService(const std::string& name, std::chrono::milliseconds wait) {
  auto s = Open(name, SERVICE_QUERY_STATUS | SERVICE_START);
  if (!s.ok()) return s.status();
  if (!::StartServiceW(s->get(), 0, nullptr) && ::GetLastError() != ERROR_SERVICE_ALREADY_RUNNING) {
    return win::LastError("start service " + name);
  }
  return WaitFor(s->get(), name, ServiceState::kRunning, wait);
}

Status StopSystemService(const std::string& name, std::chrono::milliseconds wait) {
  auto s = Open(name, SERVICE_QUERY_STATUS | SERVICE_STOP);
  if (!s.ok()) return s.status();
  SERVICE_STATUS st{};
  if (!::ControlService(s->get(), SERVICE_CONTROL_STOP, &st) && ::GetLastError() != ERROR_SERVICE_NOT_ACTIVE) {
    return win::LastError("stop service " + name);
  }
  return WaitFor(s->get(), name, ServiceState::kStopped, wait);
}

Status InstallSystemService(const ServiceInstall& spec) {
  auto m = OpenManager(SC_MANAGER_CONNECT | SC_MANAGER_CREATE_SERVICE);
  if (!m.ok()) return m.status();
  std::wstring cmd = Quote(win::Wide(spec.binary_path));
  for (const auto& a : spec.args) cmd += L" " + Quote(win::Wide(a));
  std::wstring display = win::Wide(spec.display_name.empty() ? spec.name : spec.display_name);
  SC_HANDLE s = ::CreateServiceW(m->get(), win::Wide(spec.name).c_str(), display.c_str(), SERVICE_ALL_ACCESS,
                                 SERVICE_WIN32_OWN_PROCESS, spec.auto_start ? SERVICE_AUTO_START : SERVICE_DEMAND_START,
                                 SERVICE_ERROR_NORMAL, cmd.c_str(), nullptr, nullptr, nullptr,
                                 nullptr /* LocalSystem */, nullptr);
  if (s == nullptr) return win::LastError("install service " + spec.name);
  ::CloseServiceHandle(s);
  return Status::Ok();
}

Status RemoveSystemService(const std::string& name) {
  auto s = Open(name, DELETE);
  if (!s.ok()) return s.status();
  if (!::DeleteService(s->get()) && ::GetLastError() != ERROR_SERVICE_MARKED_FOR_DELETE) {
    return win::LastError("remove service " + name);
  }
  return Status::Ok();
}

}  // namespace mamori::platform

// Windows: ToolHelp32 snapshot for the list, GetProcessTimes for creation
// times, and OpenProcess + TerminateProcess for the kill. The creation time
// is read through the same handle that terminates, and a process handle pins
// its process object, so a reused pid can never be the one killed.
#include "mamori/platform/process.h"

#include <windows.h>
#include <tlhelp32.h>

#include "win_util.h"

namespace mamori::platform {
namespace {

using win::Handle;

Result<uint64_t> CreationTime(HANDLE h, const std::string& who) {
  FILETIME created, exited, kernel, user;
  if (!::GetProcessTimes(h, &created, &exited, &kernel, &user)) return win::LastError(who + ": GetProcessTimes");
  return win::FileTimeToUnixNs(created);
}

Status OpenError(Pid pid, const std::string& who) {
  DWORD err = ::GetLastError();
  // OpenProcess says ERROR_INVALID_PARAMETER for a pid no process has.
  if (err == ERROR_INVALID_PARAMETER) return NotFoundError(who + ": no such process");
  (void)pid;
  return win::Win32Error(err, who + ": OpenProcess");
}

}  // namespace

Pid CurrentPid() { return static_cast<Pid>(::GetCurrentProcessId()); }

Result<std::vector<ProcessInfo>> ListProcesses() {
  Handle snap(::CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0));
  if (!snap) return win::LastError("list processes: CreateToolhelp32Snapshot");
  PROCESSENTRY32W pe;
  pe.dwSize = sizeof pe;
  std::vector<ProcessInfo> out;
  if (!::Process32FirstW(snap.get(), &pe)) {
    if (::GetLastError() == ERROR_NO_MORE_FILES) return out;
    return win::LastError("list processes: Process32First");
  }
  do {
    ProcessInfo p;
    p.pid = pe.th32ProcessID;
    p.ppid = pe.th32ParentProcessID;
    p.name = win::Utf8(pe.szExeFile);
    if (p.pid != 0) {
      Handle h(::OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, p.pid));
      if (h) {
        auto t = CreationTime(h.get(), "");
        if (t.ok()) p.start_time_ns = *t;
      }
    }
    out.push_back(std::move(p));
  } while (::Process32NextW(snap.get(), &pe));
  return out;
}

Result<uint64_t> ProcessStartTime(Pid pid) {
  const std::string who = "process " + std::to_string(pid);
  if (pid == 0) return NotFoundError(who + " not found");
  Handle h(::OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, FALSE, pid));
  if (!h) return OpenError(pid, who);
  if (::WaitForSingleObject(h.get(), 0) == WAIT_OBJECT_0) return NotFoundError(who + " has exited");
  return CreationTime(h.get(), who);
}

Status KillProcess(Pid pid, uint64_t expected_start_time_ns, uint64_t tolerance_ns) {
  const std::string who = "kill process " + std::to_string(pid);
  if (pid == 0) return InvalidArgumentError(who + ": pid 0");
  if (pid == CurrentPid()) return InvalidArgumentError(who + ": refusing to kill this process");
  if (expected_start_time_ns == 0) return InvalidArgumentError(who + ": no start time to check the pid against");
  Handle h(::OpenProcess(PROCESS_TERMINATE | PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, FALSE, pid));
  if (!h) return OpenError(pid, who);
  // An exited process stays openable while anyone holds a handle to it.
  if (::WaitForSingleObject(h.get(), 0) == WAIT_OBJECT_0) return NotFoundError(who + ": exited");
  auto now = CreationTime(h.get(), who);
  if (!now.ok()) return now.status();
  uint64_t diff = *now > expected_start_time_ns ? *now - expected_start_time_ns : expected_start_time_ns - *now;
  if (diff > tolerance_ns) {
    return FailedPreconditionError(who + ": the pid now names another process (start time differs by " +
                                   std::to_string(diff / 1'000'000) + " ms)");
  }
  if (!::TerminateProcess(h.get(), 1)) return win::LastError(who + ": TerminateProcess");
  return Status::Ok();
}

}  // namespace mamori::platform

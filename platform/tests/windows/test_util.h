// Helpers for the Windows platform tests: temp dirs (long-path aware, removed
// without following reparse points), child processes of our own, files.
#pragma once

#include <windows.h>

#include <string>
#include <vector>

namespace mamori::platform::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }  // UTF-8, '\\', no `\\?\`
  std::string operator/(const std::string& leaf) const { return path_ + "\\" + leaf; }

 private:
  std::string path_;
};

// Creates a directory or file at a (possibly long) path; REQUIREs success.
void MakeDir(const std::string& path);
void WriteTestFile(const std::string& path, const std::string& data);
bool Exists(const std::string& path);

// The directory holding the running test executable.
std::string SelfDir();

// A child process of this test (this executable with `args`); terminated
// and closed at scope exit.
class Child {
 public:
  Child(const std::string& exe, const std::vector<std::string>& args, DWORD flags = 0);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  DWORD pid() const { return pi_.dwProcessId; }
  HANDLE handle() const { return pi_.hProcess; }
  // Waits up to `ms`; true when it exited, with its exit code.
  bool Wait(DWORD ms, DWORD* exit_code);

 private:
  PROCESS_INFORMATION pi_{};
};

std::string SleeperExe();  // this test executable (argv: --sleep-child)

// True under wine (ntdll exports wine_get_version): some Windows behavior is
// absent there (docs/windows.md lists it) and the tests check what wine has.
bool RunningUnderWine();

}  // namespace mamori::platform::testing

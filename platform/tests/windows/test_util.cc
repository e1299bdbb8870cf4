#include "test_util.h"

#include <catch2/catch.hpp>
#include <string_view>

#include "../../windows/win_util.h"

namespace mamori::platform::testing {
namespace {

void RemoveTree(const std::wstring& path) {
  DWORD attrs = ::GetFileAttributesW(path.c_str());
  if (attrs == INVALID_FILE_ATTRIBUTES) return;
  if ((attrs & FILE_ATTRIBUTE_DIRECTORY) != 0 && (attrs & FILE_ATTRIBUTE_REPARSE_POINT) == 0) {
    WIN32_FIND_DATAW fd;
    HANDLE h = ::FindFirstFileW((path + L"\\*").c_str(), &fd);
    if (h != INVALID_HANDLE_VALUE) {
      do {
        std::wstring name = fd.cFileName;
        if (name != L"." && name != L"..") RemoveTree(path + L"\\" + name);
      } while (::FindNextFileW(h, &fd));
      ::FindClose(h);
    }
  }
  ::SetFileAttributesW(path.c_str(), FILE_ATTRIBUTE_NORMAL);
  // A junction or directory symlink is removed as a directory, its target untouched.
  if ((attrs & FILE_ATTRIBUTE_DIRECTORY) != 0) ::RemoveDirectoryW(path.c_str());
  else ::DeleteFileW(path.c_str());
}

}  // namespace

TempDir::TempDir() {
  static int counter = 0;
  wchar_t tmp[MAX_PATH + 1];
  DWORD n = ::GetTempPathW(MAX_PATH + 1, tmp);
  REQUIRE(n > 0);
  std::string base = win::Utf8(std::wstring_view(tmp, n));
  while (!base.empty() && base.back() == '\\') base.pop_back();
  path_ = base + "\\mamori-platform-" + std::to_string(::GetCurrentProcessId()) + "-" + std::to_string(++counter);
  REQUIRE(::CreateDirectoryW(win::LongPath(path_).c_str(), nullptr));
}

TempDir::~TempDir() { RemoveTree(win::LongPath(path_)); }

void MakeDir(const std::string& path) {
  INFO("create directory " << path);
  REQUIRE(::CreateDirectoryW(win::LongPath(path).c_str(), nullptr));
}

void WriteTestFile(const std::string& path, const std::string& data) {
  INFO("write " << path);
  win::Handle h(::CreateFileW(win::LongPath(path).c_str(), GENERIC_WRITE, 0, nullptr, CREATE_ALWAYS,
                              FILE_ATTRIBUTE_NORMAL, nullptr));
  REQUIRE(h);
  DWORD written = 0;
  REQUIRE(::WriteFile(h.get(), data.data(), static_cast<DWORD>(data.size()), &written, nullptr));
  REQUIRE(written == data.size());
}

bool Exists(const std::string& path) {
  return ::GetFileAttributesW(win::LongPath(path).c_str()) != INVALID_FILE_ATTRIBUTES;
}

std::string SelfDir() {
  std::string self = SleeperExe();
  return self.substr(0, self.find_last_of('\\'));
}

std::string SleeperExe() {
  wchar_t buf[32768];
  DWORD n = ::GetModuleFileNameW(nullptr, buf, 32768);
  REQUIRE(n > 0);
  return win::Utf8(std::wstring_view(buf, n));
}

bool RunningUnderWine() {
  HMODULE ntdll = ::GetModuleHandleW(L"ntdll.dll");
  return ntdll != nullptr && ::GetProcAddress(ntdll, "wine_get_version") != nullptr;
}

Child::Child(const std::string& exe, const std::vector<std::string>& args, DWORD flags) {
  std::wstring cmd = L"\"" + win::Wide(exe) + L"\"";
  for (const auto& a : args) cmd += L" \"" + win::Wide(a) + L"\"";
  STARTUPINFOW si{};
  si.cb = sizeof si;
  INFO("start " << exe);
  REQUIRE(::CreateProcessW(win::Wide(exe).c_str(), cmd.data(), nullptr, nullptr, FALSE, flags, nullptr, nullptr, &si,
                           &pi_));
}

Child::~Child() {
  if (pi_.hProcess != nullptr) {
    if (::WaitForSingleObject(pi_.hProcess, 0) != WAIT_OBJECT_0) {
      ::TerminateProcess(pi_.hProcess, 99);
      ::WaitForSingleObject(pi_.hProcess, 5000);
    }
    ::CloseHandle(pi_.hProcess);
    ::CloseHandle(pi_.hThread);
  }
}

bool Child::Wait(DWORD ms, DWORD* exit_code) {
  if (::WaitForSingleObject(pi_.hProcess, ms) != WAIT_OBJECT_0) return false;
  ::GetExitCodeProcess(pi_.hProcess, exit_code);
  return true;
}

}  // namespace mamori::platform::testing

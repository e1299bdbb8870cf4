#include "win_util.h"

namespace mamori::platform::win {

std::wstring Wide(std::string_view utf8) {
  if (utf8.empty()) return {};
  int n = ::MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), nullptr, 0);
  std::wstring out(static_cast<size_t>(n > 0 ? n : 0), L'\0');
  if (n > 0) ::MultiByteToWideChar(CP_UTF8, 0, utf8.data(), static_cast<int>(utf8.size()), out.data(), n);
  return out;
}

std::string Utf8(std::wstring_view wide) {
  if (wide.empty()) return {};
  int n = ::WideCharToMultiByte(CP_UTF8, 0, wide.data(), static_cast<int>(wide.size()), nullptr, 0, nullptr, nullptr);
  std::string out(static_cast<size_t>(n > 0 ? n : 0), '\0');
  if (n > 0) {
    ::WideCharToMultiByte(CP_UTF8, 0, wide.data(), static_cast<int>(wide.size()), out.data(), n, nullptr, nullptr);
  }
  return out;
}

Status Win32Error(DWORD err, std::string_view what) {
  StatusCode code = StatusCode::kUnknown;
  switch (err) {
    case ERROR_FILE_NOT_FOUND: case ERROR_PATH_NOT_FOUND:
    case ERROR_SERVICE_DOES_NOT_EXIST: case ERROR_NOT_FOUND:
      code = StatusCode::kNotFound; break;
    case ERROR_ACCESS_DENIED: case ERROR_PRIVILEGE_NOT_HELD: case ERROR_SHARING_VIOLATION:
      code = StatusCode::kPermissionDenied; break;
    case ERROR_ALREADY_EXISTS: case ERROR_FILE_EXISTS: case ERROR_SERVICE_EXISTS:
      code = StatusCode::kAlreadyExists; break;
    case ERROR_INVALID_PARAMETER: case ERROR_INVALID_NAME: case ERROR_FILENAME_EXCED_RANGE: case ERROR_DIRECTORY:
      code = StatusCode::kInvalidArgument; break;
    case ERROR_NOT_ENOUGH_MEMORY: case ERROR_OUTOFMEMORY: case ERROR_DISK_FULL: case ERROR_HANDLE_DISK_FULL:
      code = StatusCode::kResourceExhausted; break;
    case ERROR_SERVICE_REQUEST_TIMEOUT: case WAIT_TIMEOUT:
      code = StatusCode::kDeadlineExceeded; break;
    case ERROR_SERVICE_NOT_ACTIVE: case ERROR_SERVICE_CANNOT_ACCEPT_CTRL: case ERROR_SERVICE_DISABLED:
    case ERROR_FAILED_SERVICE_CONTROLLER_CONNECT:
      code = StatusCode::kFailedPrecondition; break;
    case ERROR_NOT_SUPPORTED: case ERROR_CALL_NOT_IMPLEMENTED:
      code = StatusCode::kUnimplemented; break;
    default: break;
  }
  wchar_t* text = nullptr;
  DWORD n = ::FormatMessageW(FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
                             nullptr, err, 0, reinterpret_cast<wchar_t*>(&text), 0, nullptr);
  std::string m(what);
  m += ": ";
  if (n > 0 && text != nullptr) {
    std::string t = Utf8(std::wstring_view(text, n));
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ' || t.back() == '.')) t.pop_back();
    m += t;
    m += " ";
  }
  if (text != nullptr) ::LocalFree(text);
  m += "(error " + std::to_string(err) + ")";
  return Status(code, std::move(m));
}

uint64_t FileTimeToUnixNs(const FILETIME& ft) {
  uint64_t t = (static_cast<uint64_t>(ft.dwHighDateTime) << 32) | ft.dwLowDateTime;
  constexpr uint64_t kEpochDiff = 116444736000000000ull;  // 1601 -> 1970 in 100 ns
  if (t < kEpochDiff) return 0;
  return (t - kEpochDiff) * 100;
}

std::wstring LongPath(std::string_view utf8_path) {
  std::wstring p = Wide(utf8_path);
  for (auto& c : p) {
    if (c == L'/') c = L'\\';
  }
  if (p.rfind(L"\\\\?\\", 0) == 0) return p;
  // GetFullPathNameW handles relative paths and "." / ".." components; it
  // accepts paths longer than MAX_PATH when asked for the needed size.
  DWORD n = ::GetFullPathNameW(p.c_str(), 0, nullptr, nullptr);
  if (n > 0) {
    std::wstring full(n, L'\0');
    DWORD m = ::GetFullPathNameW(p.c_str(), n, full.data(), nullptr);
    if (m > 0 && m < n) {
      full.resize(m);
      p = std::move(full);
    }
  }
  if (p.rfind(L"\\\\", 0) == 0) return L"\\\\?\\UNC\\" + p.substr(2);
  return L"\\\\?\\" + p;
}

}  // namespace mamori::platform::win

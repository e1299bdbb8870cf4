// Helpers shared by the Windows implementations (not a public header).
// UTF-8 <-> UTF-16 at the API edge, Win32 errors as Status, FILETIME as Unix
// nanoseconds, `\\?\` long paths, and an owning HANDLE.
#pragma once

#include <windows.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "mamori/common/status.h"

namespace mamori::platform::win {

std::wstring Wide(std::string_view utf8);
std::string Utf8(std::wstring_view wide);

// Maps a Win32 error code to the closest StatusCode; message
// "what: <FormatMessage text> (error N)".
Status Win32Error(DWORD err, std::string_view what);
inline Status LastError(std::string_view what) { return Win32Error(::GetLastError(), what); }

// 100 ns intervals since 1601-01-01 -> ns since 1970-01-01.
uint64_t FileTimeToUnixNs(const FILETIME& ft);

// An absolute path in the `\\?\` form (UNC: `\\?\UNC\server\share`), '/'
// turned into '\\'; a relative path is made absolute first. Paths already in
// that form are returned unchanged.
std::wstring LongPath(std::string_view utf8_path);

class Handle {
 public:
  Handle() = default;
  explicit Handle(HANDLE h) : h_(h == INVALID_HANDLE_VALUE ? nullptr : h) {}
  ~Handle() {
    if (h_ != nullptr) ::CloseHandle(h_);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& o) noexcept : h_(o.h_) { o.h_ = nullptr; }
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      if (h_ != nullptr) ::CloseHandle(h_);
      h_ = o.h_;
      o.h_ = nullptr;
    }
    return *this;
  }
  HANDLE get() const { return h_; }
  explicit operator bool() const { return h_ != nullptr; }

 private:
  HANDLE h_ = nullptr;
};

}  // namespace mamori::platform::win

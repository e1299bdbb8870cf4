#include "mamori/platform/paths.h"

#include <windows.h>

#include <catch2/catch.hpp>

#include "../../windows/win_util.h"

namespace mamori::platform {
namespace {

bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

TEST_CASE("Windows default paths live under ProgramData Mamori", "[paths]") {
  DefaultPaths p = AgentDefaultPaths();
  wchar_t env[MAX_PATH];
  DWORD n = ::GetEnvironmentVariableW(L"ProgramData", env, MAX_PATH);
  REQUIRE(n > 0);
  std::string program_data = win::Utf8(std::wstring_view(env, n));
  CHECK(p.data_dir == program_data + "\\Mamori\\data");
  CHECK(p.config_dir == program_data + "\\Mamori\\config");
  CHECK(EndsWith(p.config_file, "\\Mamori\\config\\agent.yaml"));
  CHECK(PathSeparator() == '\\');
}

TEST_CASE("JoinPath uses backslashes and never doubles a separator", "[paths]") {
  CHECK(JoinPath("C:\\ProgramData", "Mamori") == "C:\\ProgramData\\Mamori");
  CHECK(JoinPath("C:\\ProgramData\\", "Mamori") == "C:\\ProgramData\\Mamori");
  CHECK(JoinPath("C:/ProgramData/", "Mamori") == "C:/ProgramData/Mamori");
}

TEST_CASE("long-path form of drive and UNC and relative paths", "[paths]") {
  CHECK(win::LongPath("C:\\x\\y") == L"\\\\?\\C:\\x\\y");
  CHECK(win::LongPath("C:/x/y") == L"\\\\?\\C:\\x\\y");
  CHECK(win::LongPath("\\\\server\\share\\x") == L"\\\\?\\UNC\\server\\share\\x");
  CHECK(win::LongPath("\\\\?\\C:\\already") == L"\\\\?\\C:\\already");
  std::wstring rel = win::LongPath("relative\\name");
  CHECK(rel.rfind(L"\\\\?\\", 0) == 0);
  CHECK(rel.size() > std::wstring(L"\\\\?\\relative\\name").size());
}

TEST_CASE("UTF-8 and UTF-16 round trip and FILETIME converts to Unix time", "[paths]") {
  std::string s = "C:\\Daten\\\xc3\xa4\xe6\x97\xa5";  // a-umlaut, CJK "day"
  CHECK(win::Utf8(win::Wide(s)) == s);
  FILETIME ft;
  uint64_t t = 116444736000000000ull + 10'000'000ull;  // 1970-01-01 00:00:01
  ft.dwLowDateTime = static_cast<DWORD>(t);
  ft.dwHighDateTime = static_cast<DWORD>(t >> 32);
  CHECK(win::FileTimeToUnixNs(ft) == 1'000'000'000ull);
}

TEST_CASE("Win32 errors map to status codes with the system's text", "[paths]") {
  Status s = win::Win32Error(ERROR_FILE_NOT_FOUND, "open C:\\x");
  CHECK(s.code() == StatusCode::kNotFound);
  CHECK(s.message().rfind("open C:\\x: ", 0) == 0);
  CHECK(s.message().find("(error 2)") != std::string::npos);
  CHECK(win::Win32Error(ERROR_ACCESS_DENIED, "x").code() == StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace mamori::platform

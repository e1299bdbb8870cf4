// Windows: a protected DACL granting FILE_ALL_ACCESS (inherited by files and
// subdirectories) to SYSTEM and BUILTIN\Administrators only (acl.h). The
// directory is created with that security descriptor (no window with
// inherited ACEs) and the DACL is set again through a handle opened without
// following a reparse point, so an existing directory is re-restricted and a
// junction planted in its place is refused.
#include "mamori/platform/secure_dir.h"

#include <windows.h>
#include <aclapi.h>

#include "acl.h"
#include "win_util.h"

namespace mamori::platform {
namespace {

using win::Handle;
using win::LastError;
using win::LongPath;

// Creates every missing parent of `path` (a `\\?\` path) with default security.
Status MakeParents(const std::wstring& path) {
  size_t start;
  if (path.compare(4, 4, L"UNC\\") == 0) {
    start = path.find(L'\\', 8);                                                // after server
    if (start != std::wstring::npos) start = path.find(L'\\', start + 1);      // after share
  } else {
    start = path.find(L'\\', 4);  // after "X:"
  }
  if (start == std::wstring::npos) return Status::Ok();
  for (size_t pos = path.find(L'\\', start + 1); pos != std::wstring::npos; pos = path.find(L'\\', pos + 1)) {
    std::wstring prefix = path.substr(0, pos);
    if (!::CreateDirectoryW(prefix.c_str(), nullptr) && ::GetLastError() != ERROR_ALREADY_EXISTS) {
      return LastError("create directory " + win::Utf8(prefix.substr(4)));
    }
  }
  return Status::Ok();
}

Handle OpenNoFollow(const std::wstring& path, DWORD access) {
  return Handle(::CreateFileW(path.c_str(), access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
                              OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT, nullptr));
}

}  // namespace

Status CreateRestrictedDir(const std::string& path) {
  if (path.empty()) return InvalidArgumentError("restricted dir: empty path");
  std::wstring wpath = LongPath(path);
  while (wpath.size() > 7 && wpath.back() == L'\\') wpath.pop_back();
  const std::string where = "restricted dir " + path;
  win::RestrictedSd rsd;
  MAMORI_RETURN_IF_ERROR(win::InitRestrictedSd(&rsd).WithContext(where));
  MAMORI_RETURN_IF_ERROR(MakeParents(wpath).WithContext(where));
  SECURITY_ATTRIBUTES sa{sizeof sa, &rsd.sd, FALSE};
  if (!::CreateDirectoryW(wpath.c_str(), &sa) && ::GetLastError() != ERROR_ALREADY_EXISTS) {
    return LastError(where + ": create");
  }
  DWORD attrs = ::GetFileAttributesW(wpath.c_str());
  if (attrs == INVALID_FILE_ATTRIBUTES) return LastError(where + ": attributes");
  if ((attrs & FILE_ATTRIBUTE_REPARSE_POINT) != 0 || (attrs & FILE_ATTRIBUTE_DIRECTORY) == 0) {
    return FailedPreconditionError(where + ": not a plain directory (a reparse point or file is in its place)");
  }
  // WRITE_OWNER needs administrator rights; without it the DACL alone restricts.
  Handle h = OpenNoFollow(wpath, READ_CONTROL | WRITE_DAC | WRITE_OWNER);
  if (!h) h = OpenNoFollow(wpath, READ_CONTROL | WRITE_DAC);
  if (!h) return LastError(where + ": open");
  const SECURITY_INFORMATION dacl_info = DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION;
  DWORD rc = ::SetSecurityInfo(h.get(), SE_FILE_OBJECT, dacl_info | OWNER_SECURITY_INFORMATION, rsd.admins_sid,
                               nullptr, rsd.dacl.get(), nullptr);
  if (rc != ERROR_SUCCESS) rc = ::SetSecurityInfo(h.get(), SE_FILE_OBJECT, dacl_info, nullptr, nullptr, rsd.dacl.get(), nullptr);
  if (rc != ERROR_SUCCESS) return win::Win32Error(rc, where + ": set DACL");
  return Status::Ok();
}

Result<DirAccess> ReadDirAccess(const std::string& path) {
  std::wstring wpath = LongPath(path);
  DWORD attrs = ::GetFileAttributesW(wpath.c_str());
  if (attrs == INVALID_FILE_ATTRIBUTES) return LastError("dir access " + path);
  if ((attrs & FILE_ATTRIBUTE_DIRECTORY) == 0) return FailedPreconditionError(path + ": not a directory");
  Handle h = OpenNoFollow(wpath, READ_CONTROL);
  if (!h) return LastError("dir access " + path + ": open");
  PACL dacl = nullptr;
  PSECURITY_DESCRIPTOR sd = nullptr;
  DWORD rc = ::GetSecurityInfo(h.get(), SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, nullptr, nullptr, &dacl, nullptr, &sd);
  if (rc != ERROR_SUCCESS) return win::Win32Error(rc, "dir access " + path + ": read DACL");
  std::unique_ptr<void, win::LocalFreeDeleter> sd_owner(sd);
  SECURITY_DESCRIPTOR_CONTROL control = 0;
  DWORD revision = 0;
  if (!::GetSecurityDescriptorControl(sd, &control, &revision)) return LastError("dir access " + path + ": control");
  auto a = win::DescribeDacl(dacl, (control & SE_DACL_PROTECTED) != 0);
  if (!a.ok()) return a.status().WithContext("dir access " + path);
  return a;
}

}  // namespace mamori::platform

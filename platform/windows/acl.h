// The data-dir DACL, built and described in memory (not a public header).
// secure_dir.cc applies it to a directory; the tests check it directly too,
// since wine accepts but does not keep file ACLs.
#pragma once

#include <windows.h>

#include <memory>

#include "mamori/common/status.h"
#include "mamori/platform/secure_dir.h"

namespace mamori::platform::win {

struct LocalFreeDeleter {
  void operator()(void* p) const { ::LocalFree(p); }
};

// A protected security descriptor whose DACL grants FILE_ALL_ACCESS,
// inherited by subdirectories and files, to SYSTEM and Administrators only.
struct RestrictedSd {
  BYTE system_sid[SECURITY_MAX_SID_SIZE];
  BYTE admins_sid[SECURITY_MAX_SID_SIZE];
  std::unique_ptr<ACL, LocalFreeDeleter> dacl;
  SECURITY_DESCRIPTOR sd;  // points into dacl: do not copy or move the struct
};
Status InitRestrictedSd(RestrictedSd* out);

// Describes a DACL as DirAccess (entries, inheritance_off, restricted).
// `dacl` may be null (a NULL DACL: everyone has full access).
Result<DirAccess> DescribeDacl(const ACL* dacl, bool protected_dacl);

}  // namespace mamori::platform::win

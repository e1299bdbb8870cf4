// A data directory only the service account and administrators can use.
//
//   Linux:   mode 0700, owned by the effective user (root for the agent);
//            a symlink in place of the directory is refused.
//   Windows: a protected DACL (inheritance from the parent OFF) granting full
//            control, inherited by children, to SYSTEM and Administrators only;
//            owner Administrators when the process may set it.
//
// Thread-safe: no shared state. Callers own the directory; nothing is deleted.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::platform {

// Creates `path` (and missing parents, with default permissions) and then
// restricts `path` itself as above. An existing directory is re-restricted
// (an installer upgrading an old layout). Errors name the path and the step.
Status CreateRestrictedDir(const std::string& path);

// What the OS reports for a directory's access control, for checks and status.
struct DirAccess {
  // Linux: permission bits (e.g. 0700) and owner uid. Windows: 0.
  uint32_t mode = 0;
  uint32_t owner_uid = 0;
  // Windows: the DACL is protected (does not inherit from the parent).
  bool inheritance_off = false;
  // Windows: one entry per ACE, "ALLOW S-1-5-18 0x1f01ff" (type, SID, mask).
  // Linux: empty.
  std::vector<std::string> entries;
  // True when the directory is restricted exactly as CreateRestrictedDir leaves it.
  bool restricted = false;
};

// Reads the directory's access control back. NOT_FOUND when missing.
Result<DirAccess> ReadDirAccess(const std::string& path);

}  // namespace mamori::platform

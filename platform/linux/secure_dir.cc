// Linux: 0700, owned by the effective user. Mirrors what the agent does today
// with MakeDirs(data_dir, 0700) and adds the checks MakeDirs leaves out: an
// existing directory is chmod-ed back to 0700, and a symlink is refused.
#include "mamori/platform/secure_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "mamori/common/file_util.h"

namespace mamori::platform {

Status CreateRestrictedDir(const std::string& path) {
  if (path.empty()) return InvalidArgumentError("restricted dir: empty path");
  MAMORI_RETURN_IF_ERROR(MakeDirs(path, 0700));
  // Open without following a link so that the fchmod lands on the directory
  // itself, never on what a planted symlink points to.
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ELOOP || errno == ENOTDIR) {
      return FailedPreconditionError("restricted dir " + path + ": not a directory (a symlink or file is in its place)");
    }
    return ErrnoError(errno, "restricted dir: open " + path);
  }
  struct stat st {};
  Status result;
  if (::fstat(fd, &st) != 0) {
    result = ErrnoError(errno, "restricted dir: stat " + path);
  } else if (st.st_uid != ::geteuid()) {
    result = FailedPreconditionError("restricted dir " + path + ": owned by uid " + std::to_string(st.st_uid) +
                                     ", not by this process's uid " + std::to_string(::geteuid()));
  } else if ((st.st_mode & 07777) != 0700 && ::fchmod(fd, 0700) != 0) {
    result = ErrnoError(errno, "restricted dir: chmod 0700 " + path);
  }
  ::close(fd);
  return result;
}

Result<DirAccess> ReadDirAccess(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return ErrnoError(errno, "stat " + path);
  if (!S_ISDIR(st.st_mode)) return FailedPreconditionError(path + ": not a directory");
  DirAccess a;
  a.mode = st.st_mode & 07777;
  a.owner_uid = st.st_uid;
  a.restricted = a.mode == 0700 && st.st_uid == ::geteuid();
  return a;
}

}  // namespace mamori::platform

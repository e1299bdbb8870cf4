// How the Windows walk classifies a directory entry (not a public header;
// separate so that the tests check the table where wine cannot create the
// reparse points themselves).
#pragma once

#include <windows.h>

#include "mamori/platform/file_walk.h"

namespace mamori::platform::win {

// `attributes` and `reparse_tag` as FindFirstFileEx reports them
// (WIN32_FIND_DATAW::dwFileAttributes and, for reparse points, dwReserved0).
// Every directory reparse point (junction, mount point, directory symlink,
// anything else) is a link: never entered. A file reparse point is a link
// when it is a symlink or mount point; other file tags (dedup, cloud
// placeholders, WOF-compressed) hold the file's data and are files.
inline EntryKind KindOfFindData(DWORD attributes, DWORD reparse_tag) {
  const bool is_dir = (attributes & FILE_ATTRIBUTE_DIRECTORY) != 0;
  if ((attributes & FILE_ATTRIBUTE_REPARSE_POINT) != 0 &&
      (is_dir || reparse_tag == IO_REPARSE_TAG_SYMLINK || reparse_tag == IO_REPARSE_TAG_MOUNT_POINT)) {
    return EntryKind::kLink;
  }
  if (is_dir) return EntryKind::kDirectory;
  if ((attributes & FILE_ATTRIBUTE_DEVICE) != 0) return EntryKind::kOther;
  return EntryKind::kFile;
}

}  // namespace mamori::platform::win

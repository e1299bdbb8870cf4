// File events for the procconn sensor: fanotify in FID mode
// (FAN_REPORT_DFID_NAME) with filesystem marks on the filesystems that hold
// the watched prefixes, filtered to the prefixes here in user space.
//
// Event mapping (and its limits, see docs/behavior-sensors.md):
//   FAN_CREATE      -> kFileCreate
//   FAN_CLOSE_WRITE -> kFileOpenWrite (reported at close, not at open)
//   FAN_DELETE      -> kFileUnlink
//   FAN_RENAME      -> kFileRename (source and target)
//   FAN_ATTRIB      -> kFileChmod / kFileChown, told apart by comparing with
//                      the last mode/owner seen for the path (unknown: chmod)
//
// Thread safety: not thread-safe; one reader thread.
#pragma once

#include <fcntl.h>

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "mamori/behavior/event.h"
#include "mamori/common/status.h"
#include "path_filter.h"

namespace mamori::behavior::linux_sensors {

class FanotifyFiles {
 public:
  FanotifyFiles() = default;
  ~FanotifyFiles();
  FanotifyFiles(const FanotifyFiles&) = delete;
  FanotifyFiles& operator=(const FanotifyFiles&) = delete;

  // Marks the filesystems holding the filter's prefixes ("/" when none).
  // Errors: kPermissionDenied, kUnavailable (no FID-mode fanotify),
  // kInvalidArgument (a prefix that does not exist).
  Status Start(const PrefixFilter& filter, int32_t ignore_tgid);
  int fd() const { return fd_; }

  struct Counters {
    uint64_t overflows = 0;  // the kernel queue overflowed (events lost, count unknown)
    uint64_t filtered = 0;   // outside the prefixes
  };
  // Reads every queued event; calls `emit` for each one under the prefixes.
  void Drain(int64_t boot_to_realtime_ns, const std::function<void(Event)>& emit, Counters* counters);

 private:
  struct Attr {
    uint32_t mode = 0, uid = 0, gid = 0;
  };
  std::string ResolveDir(uint64_t fsid, file_handle* handle) const;
  void Remember(const std::string& path);

  int fd_ = -1;
  int32_t ignore_tgid_ = 0;
  PrefixFilter filter_;
  std::unordered_map<uint64_t, int> mount_fds_;  // fsid -> an fd on that filesystem
  std::unordered_map<std::string, Attr> attrs_;  // last mode/owner seen, bounded
};

}  // namespace mamori::behavior::linux_sensors

#include "fanotify_files.h"

#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "clock.h"
#include "proc_reader.h"

namespace mamori::behavior::linux_sensors {
namespace {

constexpr size_t kMaxRememberedAttrs = 65536;
constexpr uint64_t kDirentMask = FAN_CREATE | FAN_DELETE | FAN_CLOSE_WRITE | FAN_ATTRIB;

uint64_t FsidKey(const __kernel_fsid_t& fsid) {
  uint64_t a = static_cast<uint32_t>(fsid.val[0]);
  uint64_t b = static_cast<uint32_t>(fsid.val[1]);
  return (a << 32) | b;
}

}  // namespace

FanotifyFiles::~FanotifyFiles() {
  if (fd_ >= 0) close(fd_);
  for (auto& [fsid, fd] : mount_fds_) close(fd);
}

Status FanotifyFiles::Start(const PrefixFilter& filter, int32_t ignore_tgid) {
  filter_ = filter;
  ignore_tgid_ = ignore_tgid;
  fd_ = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME,
                      O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (fd_ < 0) {
    if (errno == EPERM) return PermissionDeniedError("fanotify_init: file events need CAP_SYS_ADMIN");
    return UnavailableError(std::string("fanotify in FID mode (Linux 5.9+): ") + std::strerror(errno));
  }
  std::vector<std::string> paths = filter_.prefixes();
  if (paths.empty()) paths.push_back("/");
  for (const std::string& p : paths) {
    struct statfs sfs {};
    if (statfs(p.c_str(), &sfs) != 0) {
      return InvalidArgumentError("watched path prefix " + p + ": " + std::strerror(errno));
    }
    __kernel_fsid_t fsid;
    std::memcpy(&fsid, &sfs.f_fsid, sizeof fsid);
    uint64_t key = FsidKey(fsid);
    if (mount_fds_.count(key) != 0) continue;
    uint64_t mask = kDirentMask | FAN_RENAME;
    if (fanotify_mark(fd_, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, AT_FDCWD, p.c_str()) != 0) {
      // Before 5.17 there is no FAN_RENAME: renames then show as the new name only.
      mask = kDirentMask | FAN_MOVED_TO;
      if (fanotify_mark(fd_, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, AT_FDCWD, p.c_str()) != 0) {
        if (errno == EPERM) return PermissionDeniedError("fanotify_mark " + p + ": needs CAP_SYS_ADMIN");
        return UnavailableError("fanotify_mark " + p + " (filesystem mark, FID mode): " + std::strerror(errno));
      }
    }
    int mfd = open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (mfd < 0) return InvalidArgumentError("watched path prefix " + p + ": " + std::strerror(errno));
    mount_fds_[key] = mfd;
  }
  return Status::Ok();
}

// The directory a FID record names, as a path ("" when it is gone).
std::string FanotifyFiles::ResolveDir(uint64_t fsid, file_handle* handle) const {
  auto it = mount_fds_.find(fsid);
  if (it == mount_fds_.end()) return "";
  int dfd = open_by_handle_at(it->second, handle, O_PATH | O_CLOEXEC);
  if (dfd < 0) return "";
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", dfd);
  char buf[4096];
  ssize_t n = readlink(link, buf, sizeof buf);
  close(dfd);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

void FanotifyFiles::Remember(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return;
  if (attrs_.size() >= kMaxRememberedAttrs) attrs_.clear();
  attrs_[path] = Attr{static_cast<uint32_t>(st.st_mode & 07777), st.st_uid, st.st_gid};
}

void FanotifyFiles::Drain(int64_t boot_to_realtime_ns, const std::function<void(Event)>& emit, Counters* counters) {
  // Records in the buffer are not always 8-byte aligned: each is copied
  // into a local before use.
  char buf[65536];
  while (true) {
    ssize_t got = read(fd_, buf, sizeof buf);
    if (got <= 0) return;  // EAGAIN: drained
    const size_t len = static_cast<size_t>(got);
    for (size_t at = 0; at + sizeof(fanotify_event_metadata) <= len;) {
      fanotify_event_metadata md;
      std::memcpy(&md, buf + at, sizeof md);
      if (md.vers != FANOTIFY_METADATA_VERSION || md.event_len < sizeof md || at + md.event_len > len) return;
      const char* ev = buf + at;
      at += md.event_len;
      if (md.mask & FAN_Q_OVERFLOW) {
        ++counters->overflows;
        continue;
      }
      if (ignore_tgid_ != 0 && md.pid == ignore_tgid_) continue;
      // Info records: the directory + name of the object (old and new for FAN_RENAME).
      std::string path, old_path, new_path;
      for (size_t p = md.metadata_len; p + sizeof(fanotify_event_info_fid) + sizeof(file_handle) <= md.event_len;) {
        fanotify_event_info_fid fid;
        std::memcpy(&fid, ev + p, sizeof fid);
        const size_t rec_len = fid.hdr.len;
        if (rec_len == 0 || p + rec_len > md.event_len) break;
        const uint8_t type = fid.hdr.info_type;
        if (type == FAN_EVENT_INFO_TYPE_DFID_NAME || type == FAN_EVENT_INFO_TYPE_OLD_DFID_NAME ||
            type == FAN_EVENT_INFO_TYPE_NEW_DFID_NAME) {
          file_handle fh_head;
          std::memcpy(&fh_head, ev + p + sizeof fid, sizeof fh_head);
          const size_t fh_size = sizeof(file_handle) + fh_head.handle_bytes;
          if (sizeof fid + fh_size >= rec_len) break;
          std::vector<uint64_t> fh_storage((fh_size + 7) / 8);  // 8-byte aligned for open_by_handle_at
          std::memcpy(fh_storage.data(), ev + p + sizeof fid, fh_size);
          const char* name = ev + p + sizeof fid + fh_size;
          std::string dir = ResolveDir(FsidKey(fid.fsid), reinterpret_cast<file_handle*>(fh_storage.data()));
          std::string full;
          if (!dir.empty())
            full = (dir == "/" ? "" : dir) + "/" + std::string(name, strnlen(name, rec_len - sizeof fid - fh_size));
          if (type == FAN_EVENT_INFO_TYPE_OLD_DFID_NAME) {
            old_path = std::move(full);
          } else if (type == FAN_EVENT_INFO_TYPE_NEW_DFID_NAME) {
            new_path = std::move(full);
          } else {
            path = std::move(full);
          }
        }
        p += rec_len;
      }

      // The marks cover whole filesystems: most events are outside the
      // prefixes and cost nothing more than this check.
      auto watched = [&](const std::string& p) { return !p.empty() && filter_.Matches(p); };
      if (!watched(path) && !watched(old_path) && !watched(new_path)) {
        ++counters->filtered;
        continue;
      }
      Event base;
      base.timestamp_ns = ClockNs(CLOCK_REALTIME);
      ReadProcess(md.pid, false, boot_to_realtime_ns, &base.process);
      auto send = [&](EventType type, const std::string& target, const std::string& source) {
        if (!watched(target) && !watched(source)) return;
        Event e = base;
        e.type = type;
        e.target_filename = target;
        e.source_filename = source;
        if (type == EventType::kFileCreate || type == EventType::kFileChmod || type == EventType::kFileChown) {
          auto it = attrs_.find(target);
          if (it != attrs_.end()) {
            e.mode = it->second.mode;
            e.owner_uid = it->second.uid;
            e.owner_gid = it->second.gid;
          }
        }
        emit(std::move(e));
      };
      // Merged masks are handled in the order the operations must have happened.
      if (md.mask & FAN_CREATE) {
        Remember(path);
        send(EventType::kFileCreate, path, "");
      }
      if (md.mask & FAN_CLOSE_WRITE) {
        Remember(path);
        send(EventType::kFileOpenWrite, path, "");
      }
      if (md.mask & FAN_ATTRIB) {
        std::optional<Attr> before;
        if (auto old = attrs_.find(path); old != attrs_.end()) before = old->second;
        attrs_.erase(path);
        Remember(path);
        auto now = attrs_.find(path);
        if (now == attrs_.end()) {
          send(EventType::kFileChmod, path, "");  // gone already: the new mode is unknown (0)
        } else {
          bool owner_changed = before && (before->uid != now->second.uid || before->gid != now->second.gid);
          bool mode_changed = !before || before->mode != now->second.mode;
          if (owner_changed) send(EventType::kFileChown, path, "");
          if (mode_changed) send(EventType::kFileChmod, path, "");
        }
      }
      if (md.mask & FAN_RENAME) {
        auto it = attrs_.find(old_path);
        if (it != attrs_.end()) {
          Attr a = it->second;
          attrs_.erase(it);
          attrs_[new_path] = a;
        }
        send(EventType::kFileRename, new_path, old_path);
      }
      if (md.mask & FAN_MOVED_TO) send(EventType::kFileRename, path, "");
      if (md.mask & FAN_DELETE) {
        attrs_.erase(path);
        send(EventType::kFileUnlink, path, "");
      }
    }
  }
}

}  // namespace mamori::behavior::linux_sensors

// Linux on-access monitor over fanotify (FAN_CLASS_CONTENT).
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <thread>

#include "mamori/agent/onaccess.h"
#include "mamori/common/log.h"

namespace mamori::agent {
namespace {

using Clock = std::chrono::steady_clock;

// One event from the kernel. Permission events are answered exactly once,
// by whoever comes first: the worker with its verdict, or the deadline
// watcher with "allow". The event fd is closed when both are done with it.
struct Pending {
  AccessEvent event;
  Clock::time_point deadline;
  std::atomic<bool> answered{false};
  ~Pending() {
    if (event.fd >= 0) ::close(event.fd);
  }
};

std::string PathOf(int fd) {
  char buf[4096];
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("?");
}

class FanotifyMonitor final : public OnAccessMonitor {
 public:
  FanotifyMonitor(OnAccessOptions o, AccessDecider d, OnAccessReporter r)
      : options_(std::move(o)), decide_(std::move(d)), report_(std::move(r)) {}
  ~FanotifyMonitor() override { Stop(); }

  Status Start() override {
    fan_fd_ = ::fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK,
                              O_RDONLY | O_LARGEFILE | O_CLOEXEC | O_NOATIME);
    if (fan_fd_ < 0 && errno == EPERM) {
      return PermissionDeniedError("fanotify_init: on-access protection needs CAP_SYS_ADMIN");
    }
    if (fan_fd_ < 0) {
      // O_NOATIME needs ownership or CAP_FOWNER; retry without it.
      fan_fd_ = ::fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
    }
    if (fan_fd_ < 0) return ErrnoError(errno, "fanotify_init");
    const uint64_t cw = options_.close_write ? FAN_CLOSE_WRITE : 0;
    for (const auto& p : options_.exec_paths) MAMORI_RETURN_IF_ERROR(Mark(p, FAN_OPEN_EXEC_PERM | cw));
    for (const auto& p : options_.open_paths) MAMORI_RETURN_IF_ERROR(Mark(p, FAN_OPEN_PERM | cw));
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd_ < 0) return ErrnoError(errno, "eventfd");
    running_ = true;
    reader_beat_ = watcher_beat_ = Clock::now().time_since_epoch().count();
    reader_ = std::thread([this] { ReadLoop(); });
    watcher_ = std::thread([this] { WatchDeadlines(); });
    for (unsigned i = 0; i < std::max(1u, options_.workers); ++i) workers_.emplace_back([this] { Work(); });
    return Status::Ok();
  }

  void Stop() override {
    if (!running_.exchange(false)) return;
    uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof one);
    if (reader_.joinable()) reader_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
    // Whatever is still waiting is allowed before the descriptor goes.
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& p : perm_queue_) Answer(*p, AccessVerdict::kAllow);
      for (auto& p : inflight_) Answer(*p, AccessVerdict::kAllow);
      perm_queue_.clear();
      notify_queue_.clear();
      inflight_.clear();
    }
    watcher_cv_.notify_all();
    if (watcher_.joinable()) watcher_.join();
    ::close(fan_fd_);
    ::close(stop_fd_);
    fan_fd_ = stop_fd_ = -1;
  }

  void MarkClean(int fd) override {
    if (fan_fd_ < 0) return;
    // Without FAN_MARK_IGNORED_SURV_MODIFY the kernel drops this ignore mask
    // at the first modification of the file: modified files are asked about again.
    if (::fanotify_mark(fan_fd_, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK, FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM, fd,
                        nullptr) == 0) {
      ++stats_.ignore_marks;
    }
  }

  void ClearCleanMarks() override {
    // Without FAN_MARK_MOUNT/FILESYSTEM, a flush removes the inode marks only:
    // the ignore masks go, the mount marks that watch stay.
    if (fan_fd_ >= 0) ::fanotify_mark(fan_fd_, FAN_MARK_FLUSH, 0, AT_FDCWD, nullptr);
  }

  const OnAccessStats& stats() const override { return stats_; }

  Clock::time_point LastHeartbeat() const override {
    return Clock::time_point(Clock::duration(std::min(reader_beat_.load(), watcher_beat_.load())));
  }

 private:
  Status Mark(const std::string& path, uint64_t mask) {
    if (::fanotify_mark(fan_fd_, FAN_MARK_ADD | FAN_MARK_MOUNT, mask, AT_FDCWD, path.c_str()) != 0) {
      return ErrnoError(errno, "fanotify_mark " + path);
    }
    return Status::Ok();
  }

  // True for exactly one caller per permission event: the one that answers it.
  static bool Claim(Pending& p) { return p.event.permission() && !p.answered.exchange(true); }

  void Respond(Pending& p, AccessVerdict v) {
    struct fanotify_response r {};
    r.fd = p.event.fd;
    r.response = v == AccessVerdict::kAllow ? FAN_ALLOW : FAN_DENY;
    // Counted before the answer is written: once the accessing process sees
    // the verdict, the stats already include it.
    ++(v == AccessVerdict::kAllow ? stats_.allowed : stats_.denied);
    if (::write(fan_fd_, &r, sizeof r) != static_cast<ssize_t>(sizeof r)) {
      MAMORI_LOG(kError, "fanotify response failed for " << p.event.path << ": " << std::strerror(errno));
    }
  }

  void Answer(Pending& p, AccessVerdict v) {
    if (Claim(p)) Respond(p, v);
  }

  void ReadLoop() {
    alignas(fanotify_event_metadata) char buf[64 * 1024];
    const pid_t self = ::getpid();
    pollfd fds[2] = {{fan_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    while (running_) {
      reader_beat_ = Clock::now().time_since_epoch().count();
      const int ready = ::poll(fds, 2, kBeatMs);
      if (ready == 0) continue;
      if (ready < 0) {
        if (errno == EINTR) continue;
        MAMORI_LOG(kError, "fanotify poll: " << std::strerror(errno));
        return;
      }
      if (fds[1].revents != 0) return;
      ssize_t len = ::read(fan_fd_, buf, sizeof buf);
      if (len <= 0) continue;
      auto* m = reinterpret_cast<fanotify_event_metadata*>(buf);
      for (; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
        if (m->vers != FANOTIFY_METADATA_VERSION) {
          MAMORI_LOG(kError, "fanotify metadata version " << int(m->vers) << " not understood");
          if (m->fd >= 0) ::close(m->fd);
          continue;
        }
        if (m->mask & FAN_Q_OVERFLOW) {
          ++stats_.overflows;
          if (report_) report_("overflow", nullptr);
          continue;
        }
        if (m->fd < 0) continue;
        auto p = std::make_shared<Pending>();
        p->event.fd = m->fd;
        p->event.pid = m->pid;
        // Resolved here, before any other thread sees the event: from now on
        // the event is read-only (workers and the deadline watcher share it).
        if (m->pid != self) p->event.path = PathOf(m->fd);
        const bool perm = (m->mask & (FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM)) != 0;
        p->event.kind = (m->mask & FAN_OPEN_EXEC_PERM) ? AccessEvent::Kind::kExec
                        : (m->mask & FAN_OPEN_PERM)    ? AccessEvent::Kind::kOpen
                                                       : AccessEvent::Kind::kCloseWrite;
        if (m->pid == self) {
          // Our own I/O (scans, quarantine copies) is never held up by ourselves.
          ++stats_.own_process;
          if (perm) Answer(*p, AccessVerdict::kAllow);
          continue;
        }
        p->deadline = Clock::now() + options_.deadline;
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (perm) {
            ++stats_.permission_events;
            perm_queue_.push_back(p);
            inflight_.push_back(p);
          } else {
            ++stats_.notifications;
            notify_queue_.push_back(p);
          }
        }
        cv_.notify_one();
        if (perm) watcher_cv_.notify_one();
      }
    }
  }

  // Permission events first: a process is waiting on each of them.
  void Work() {
    for (;;) {
      std::shared_ptr<Pending> p;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !perm_queue_.empty() || !notify_queue_.empty(); });
        if (stopping_) return;
        if (!perm_queue_.empty()) {
          p = std::move(perm_queue_.front());
          perm_queue_.pop_front();
        } else {
          p = std::move(notify_queue_.front());
          notify_queue_.pop_front();
        }
      }
      if (p->event.permission() && p->answered) continue;  // the deadline passed while queued
      AccessVerdict v = decide_ ? decide_(p->event) : AccessVerdict::kAllow;
      Answer(*p, v);
      Forget(p);
    }
  }

  void Forget(const std::shared_ptr<Pending>& p) {
    std::lock_guard<std::mutex> lock(mu_);
    inflight_.remove(p);
  }

  // Answers "allow" for every permission event whose deadline passed.
  void WatchDeadlines() {
    std::unique_lock<std::mutex> lock(mu_);
    while (running_) {
      watcher_beat_ = Clock::now().time_since_epoch().count();
      auto next = Clock::now() + std::chrono::milliseconds(kBeatMs);
      for (auto it = inflight_.begin(); it != inflight_.end();) {
        auto& p = *it;
        if (p->answered) {
          it = inflight_.erase(it);
          continue;
        }
        if (Clock::now() >= p->deadline) {
          if (Claim(*p)) {
            // Counted before the answer: whoever sees the waiter released sees the count.
            ++stats_.timeouts;
            Respond(*p, AccessVerdict::kAllow);
          }
          std::shared_ptr<Pending> keep = p;
          it = inflight_.erase(it);
          if (report_) {
            lock.unlock();
            report_("timeout", &keep->event);
            lock.lock();
            it = inflight_.begin();  // the list may have changed while unlocked
          }
          continue;
        }
        next = std::min(next, p->deadline);
        ++it;
      }
      watcher_cv_.wait_until(lock, next);
    }
  }

  // Both loops turn at least this often (LastHeartbeat).
  static constexpr int kBeatMs = 1000;

  const OnAccessOptions options_;
  const AccessDecider decide_;
  const OnAccessReporter report_;
  OnAccessStats stats_;
  int fan_fd_ = -1;
  int stop_fd_ = -1;
  std::atomic<bool> running_{false};
  std::atomic<Clock::rep> reader_beat_{0}, watcher_beat_{0};  // steady_clock ticks of the last turn
  std::thread reader_, watcher_;
  std::vector<std::thread> workers_;

  std::mutex mu_;
  std::condition_variable cv_, watcher_cv_;
  std::deque<std::shared_ptr<Pending>> perm_queue_;    // guarded by mu_
  std::deque<std::shared_ptr<Pending>> notify_queue_;  // guarded by mu_
  std::list<std::shared_ptr<Pending>> inflight_;       // guarded by mu_: unanswered permission events
  bool stopping_ = false;                              // guarded by mu_
};

}  // namespace

Result<std::unique_ptr<OnAccessMonitor>> MakeOnAccessMonitor(OnAccessOptions options, AccessDecider decide,
                                                             OnAccessReporter report) {
  return std::unique_ptr<OnAccessMonitor>(
      new FanotifyMonitor(std::move(options), std::move(decide), std::move(report)));
}

}  // namespace mamori::agent

// The scanner's side of the parser sandbox: spawning, leasing and replacing
// worker processes, and the request/response loop of one expand request.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "../parser_client.h"
#include "../parser_wire.h"
#include "mamori/common/log.h"
#include "mamori/scanner/parser_pool.h"

extern char** environ;

namespace mamori::scanner {
namespace {

using Clock = std::chrono::steady_clock;

struct WorkerProc {
  pid_t pid = -1;
  int fd = -1;
};

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    std::string name = sig == SIGSYS ? "SIGSYS: a system call its seccomp filter forbids" : strsignal(sig);
    return "killed by signal " + std::to_string(sig) + " (" + name + ")";
  }
  return "ended (status " + std::to_string(status) + ")";
}

// An idle worker never has anything to say: a readable or hung-up socket
// means it died (or broke the protocol) while waiting.
bool HungUp(const WorkerProc& w) {
  pollfd p{w.fd, POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;
}

// Reads exactly `n` bytes unless `deadline` passes (false, *timed_out set) or
// the peer closes or errs (false).
bool ReadUntil(int fd, char* out, size_t n, Clock::time_point deadline, bool* timed_out) {
  while (n > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      *timed_out = true;
      return false;
    }
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 60000)));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return false;
    if (r == 0) continue;
    ssize_t got = ::read(fd, out, n);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got <= 0) return false;
    out += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

}  // namespace

class ParserPool::Impl {
 public:
  explicit Impl(ParserPoolOptions options) : options_(std::move(options)) {}

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (spawner_.joinable()) spawner_.join();
    std::unique_lock<std::mutex> lock(mu_);
    // Leased workers come back (or are discarded) before the pool can go: the
    // Scanners using it hold a shared_ptr, so none is left at this point.
    for (WorkerProc& w : idle_) Kill(w, nullptr);
    idle_.clear();
  }

  Status StartAll() {
    for (int i = 0; i < options_.workers; ++i) {
      auto w = Spawn();
      if (!w.ok()) return w.status();
      std::lock_guard<std::mutex> lock(mu_);
      idle_.push_back(*w);
      ++live_;
    }
    spawner_ = std::thread([this] { SpawnerLoop(); });
    return Status::Ok();
  }

  // A free, live worker, or nothing after acquire_timeout. A worker that died
  // while idle (its socket hung up) is replaced here, before any object is
  // handed to it.
  std::optional<WorkerProc> Acquire() {
    const auto until = Clock::now() + options_.acquire_timeout;
    std::unique_lock<std::mutex> lock(mu_);
    ++stats_.requests;
    for (;;) {
      if (!cv_.wait_until(lock, until, [&] { return !idle_.empty() || stopping_; }) || stopping_) {
        ++stats_.unavailable;
        return std::nullopt;
      }
      WorkerProc w = idle_.back();
      idle_.pop_back();
      if (!HungUp(w)) return w;
      lock.unlock();
      Discard(w, "died while idle", "");
      lock.lock();
    }
  }

  void Release(WorkerProc w) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      idle_.push_back(w);
    }
    cv_.notify_all();
  }

  // Kills and reaps `w`; the spawner starts a replacement. `why` (when set) is
  // logged with how the process ended, and counts as a lost worker.
  void Discard(WorkerProc w, const char* why, const std::string& object) {
    Kill(w, why, object);
    {
      std::lock_guard<std::mutex> lock(mu_);
      --live_;
      if (why != nullptr) ++stats_.workers_lost;
    }
    cv_.notify_all();
  }

  ParserPoolStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }
  std::vector<pid_t> pids() const {
    std::lock_guard<std::mutex> lock(pids_mu_);
    return pids_;
  }

 private:
  void Kill(WorkerProc& w, const char* why, const std::string& object = {}) {
    if (w.fd >= 0) ::close(w.fd);
    int status = 0;
    if (w.pid > 0) {
      // A worker that crashed by itself is already gone; this only ends one
      // that is still running (time-out, protocol breach, abandoned request).
      ::kill(w.pid, SIGKILL);
      while (::waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    if (why != nullptr) {
      MAMORI_LOG(kWarning, "parser worker " << w.pid << " " << why
                                            << (object.empty() ? std::string() : " while parsing " + object) << "; "
                                            << DescribeExit(status) << "; replacing it");
    }
    RemovePid(w.pid);
    w = WorkerProc{};
  }
  void RemovePid(pid_t pid) {
    std::lock_guard<std::mutex> lock(pids_mu_);
    pids_.erase(std::remove(pids_.begin(), pids_.end(), pid), pids_.end());
  }

  Result<WorkerProc> Spawn() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return ErrnoError(errno, "socketpair");
    // The child gets its end as descriptor 3 (dup2 clears close-on-exec; a
    // descriptor already numbered 3 would keep it, so move it first).
    if (sv[1] == 3) {
      int moved = ::fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
      ::close(sv[1]);
      sv[1] = moved;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, sv[1], 3);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::string flag = "--mamori-parser-worker=3:" + std::to_string(::getpid());
    char name[] = "mamori-parser-worker";
    char* argv[] = {name, flag.data(), nullptr};
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, options_.executable.c_str(), &actions, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(sv[1]);
    if (rc != 0) {
      ::close(sv[0]);
      return ErrnoError(rc, "start parser worker " + options_.executable);
    }
    WorkerProc w{pid, sv[0]};
    {
      std::lock_guard<std::mutex> lock(pids_mu_);
      pids_.push_back(pid);
    }
    char hello[kHeader];
    bool timed_out = false;
    if (!ReadUntil(w.fd, hello, sizeof hello, Clock::now() + options_.start_timeout, &timed_out) ||
        hello[0] != internal::kFrameHello || internal::GetU64(hello + 1) != 0) {
      ::close(w.fd);
      w.fd = -1;
      int status = 0;
      if (timed_out) ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      RemovePid(pid);
      return UnavailableError("parser worker " + options_.executable + " did not start: " +
                              (timed_out ? std::string("no hello within the start timeout") : DescribeExit(status)));
    }
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.workers_started;
    return w;
  }

  // Keeps `workers` processes alive: replaces the ones discarded, checks the
  // idle ones every second (a worker that died idle is replaced before a scan
  // needs it), with a growing pause while starting keeps failing.
  void SpawnerLoop() {
    auto pause = std::chrono::milliseconds(200);
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_ || live_ < options_.workers; });
      if (stopping_) return;
      std::vector<WorkerProc> dead;
      for (auto it = idle_.begin(); it != idle_.end();) {
        if (HungUp(*it)) {
          dead.push_back(*it);
          it = idle_.erase(it);
        } else {
          ++it;
        }
      }
      if (!dead.empty()) {
        lock.unlock();
        for (WorkerProc& w : dead) Discard(w, "died while idle", "");
        lock.lock();
      }
      if (live_ >= options_.workers) continue;
      lock.unlock();
      auto w = Spawn();
      lock.lock();
      if (w.ok()) {
        idle_.push_back(*w);
        ++live_;
        pause = std::chrono::milliseconds(200);
        cv_.notify_all();
        continue;
      }
      MAMORI_LOG(kError, "parser sandbox: " << w.status().message() << "; retrying in " << pause.count() << " ms");
      cv_.wait_for(lock, pause, [&] { return stopping_; });
      pause = std::min<std::chrono::milliseconds>(pause * 2, std::chrono::seconds(30));
    }
  }

  static constexpr size_t kHeader = internal::kFrameHeaderSize;
  ParserPoolOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<WorkerProc> idle_;
  int live_ = 0;
  bool stopping_ = false;
  ParserPoolStats stats_;
  mutable std::mutex pids_mu_;
  std::vector<pid_t> pids_;
  std::thread spawner_;
};

ParserPool::ParserPool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ParserPool::~ParserPool() = default;

Result<std::shared_ptr<ParserPool>> ParserPool::Start(ParserPoolOptions options) {
  if (options.workers < 1 || options.workers > 64) {
    return InvalidArgumentError("parser pool: workers must be between 1 and 64, not " +
                                std::to_string(options.workers));
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  MAMORI_RETURN_IF_ERROR(impl->StartAll());
  return std::shared_ptr<ParserPool>(new ParserPool(std::move(impl)));
}

ParserPoolStats ParserPool::stats() const { return impl_->stats(); }
std::vector<pid_t> ParserPool::worker_pids() const { return impl_->pids(); }

namespace internal {

ExchangeOutcome ExpandOverSocket(int fd, const RemoteSource& source, const std::string& object,
                                 const ExpandOptions& options, Budget& budget,
                                 const std::function<bool(const RemoteMember&)>& on_member) {
  const ScanLimits& limits = budget.limits;
  ExpandRequest req;
  req.fd_source = source.fd >= 0 ? 1 : 0;
  req.container_kind = static_cast<uint8_t>(source.kind);
  req.open_containers = options.open_containers ? 1 : 0;
  req.open_mail = options.open_mail ? 1 : 0;
  req.limits = limits;
  req.limits.max_scan_time = budget.Remaining();
  req.fd_size = source.fd_size;
  req.object_length = static_cast<uint32_t>(object.size());
  const uint64_t inline_bytes = req.fd_source ? 0 : source.data.size();
  std::string head = FrameHeader(kFrameExpand, sizeof req + object.size() + inline_bytes);
  head.append(reinterpret_cast<const char*>(&req), sizeof req);
  head += object;

  bool sent;
  if (req.fd_source) {
    iovec iov{head.data(), head.size()};
    char control[CMSG_SPACE(sizeof(int))]{};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &source.fd, sizeof(int));
    ssize_t n;
    do {
      n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    sent = n > 0 && (static_cast<size_t>(n) == head.size() ||
                     SendAll(fd, std::string_view(head).substr(static_cast<size_t>(n))));
  } else {
    sent = SendAll(fd, head) && SendAll(fd, source.data);
  }
  if (!sent) return {ExchangeOutcome::kSendFailed, "stopped reading its requests"};

  // The worker keeps the same time budget; the grace covers its last frames.
  const auto deadline = budget.deadline + std::chrono::seconds(2);
  // What a worker may legitimately send back, by the request's own limits.
  const uint64_t max_total = limits.max_total_extracted + (1u << 20);
  uint64_t total = 0;
  uint64_t members = 0;
  std::string path;
  std::string data;
  auto breach = [](const char* what) { return ExchangeOutcome{ExchangeOutcome::kBreach, what}; };
  for (;;) {
    char header[kFrameHeaderSize];
    bool timed_out = false;
    if (!ReadUntil(fd, header, sizeof header, deadline, &timed_out)) {
      if (timed_out) return {ExchangeOutcome::kTimedOut, "overran the scan time"};
      return {ExchangeOutcome::kDied, "died"};
    }
    const uint64_t length = GetU64(header + 1);
    switch (header[0]) {
      case kFrameIncomplete: {
        if (length > kMaxIncompleteLine) return breach("sent an oversized incomplete line");
        std::string line(length, '\0');
        if (!ReadUntil(fd, line.data(), line.size(), deadline, &timed_out)) return breach("cut a frame short");
        budget.incomplete.push_back(std::move(line));
        break;
      }
      case kFrameMember: {
        char fixed[8];
        if (length < sizeof fixed || !ReadUntil(fd, fixed, sizeof fixed, deadline, &timed_out)) {
          return breach("sent a malformed member frame");
        }
        const uint32_t depth = GetU32(fixed);
        const uint32_t path_length = GetU32(fixed + 4);
        if (depth < 1 || depth > static_cast<uint32_t>(std::max(limits.max_depth, 0)) ||
            path_length > kMaxMemberPath || path_length > length - sizeof fixed) {
          return breach("sent a member frame outside its limits");
        }
        const uint64_t data_length = length - sizeof fixed - path_length;
        total += data_length;
        if (data_length > limits.max_member_size || total > max_total || ++members > limits.max_members + 1) {
          return breach("sent more than the scan limits allow");
        }
        path.resize(path_length);
        data.resize(data_length);
        if (!ReadUntil(fd, path.data(), path.size(), deadline, &timed_out) ||
            !ReadUntil(fd, data.data(), data.size(), deadline, &timed_out)) {
          return breach("cut a frame short");
        }
        if (path.size() <= object.size() + 1 || path.compare(0, object.size(), object) != 0 ||
            path[object.size()] != '!') {
          return breach("named a member outside the object");
        }
        if (!on_member(RemoteMember{static_cast<int>(depth), path, data})) {
          return {ExchangeOutcome::kAbandoned, ""};
        }
        break;
      }
      case kFrameDone: {
        char exhausted = 0;
        if (length != 1 || !ReadUntil(fd, &exhausted, 1, deadline, &timed_out)) {
          return breach("sent a malformed done frame");
        }
        if (exhausted != 0) budget.exhausted = true;
        return {ExchangeOutcome::kDone, ""};
      }
      default:
        return breach("sent an unknown frame");
    }
  }
}

void RemoteExpand(ParserPool& pool, const RemoteSource& source, const std::string& object,
                  const ExpandOptions& options, Budget& budget,
                  const std::function<bool(const RemoteMember&)>& on_member) {
  ParserPool::Impl& impl = pool.impl();
  auto leased = impl.Acquire();
  if (!leased) {
    budget.Incomplete("parser-worker-unavailable", object);
    return;
  }
  WorkerProc w = *leased;
  const ExchangeOutcome out = ExpandOverSocket(w.fd, source, object, options, budget, on_member);
  switch (out.kind) {
    case ExchangeOutcome::kDone:
      impl.Release(w);
      return;
    case ExchangeOutcome::kAbandoned:  // the scan's own budget ran out: not the worker's fault
      impl.Discard(w, nullptr, object);
      return;
    case ExchangeOutcome::kTimedOut:
      impl.Discard(w, out.what, object);
      budget.Incomplete("time", object);
      budget.exhausted = true;
      return;
    case ExchangeOutcome::kSendFailed:
    case ExchangeOutcome::kDied:
      impl.Discard(w, out.what, object);
      budget.Incomplete("parser-worker-crashed", object);
      return;
    case ExchangeOutcome::kBreach:
      impl.Discard(w, out.what, object);
      budget.Incomplete("parser-worker-protocol", object);
      return;
  }
}

}  // namespace internal
}  // namespace mamori::scanner

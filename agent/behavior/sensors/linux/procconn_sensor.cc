// The fallback sensor: process events from the netlink proc connector
// (pids only; details read from /proc right away), file events from
// fanotify (fanotify_files.cc). A reader thread takes kernel messages as soon
// as they arrive, so that /proc is read while short-lived processes still
// exist; Next takes from its queue.
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "clock.h"
#include "ebpf/abi/mamori_bpf_abi.h"
#include "fanotify_files.h"
#include "mamori/behavior/sensors.h"
#include "mamori/common/log.h"
#include "path_filter.h"
#include "proc_reader.h"
#include "record_decoder.h"

namespace mamori::behavior {
namespace {

using linux_sensors::FanotifyFiles;
using linux_sensors::PrefixFilter;
using Clock = std::chrono::steady_clock;

constexpr size_t kQueueLimit = 65536;
constexpr int kPtraceAttach = 16;  // PTRACE_ATTACH: the connector cannot tell ATTACH from SEIZE

// Drop sources, in the order of Drops::counts.
constexpr const char* kDropSources[] = {"netlink", "fanotify", "queue"};

// Thread safety: Next from one consumer thread; the reader thread produces;
// Stop, status, stats, counters and probes from any thread.
class ProcConnSensor final : public LinuxSensor {
 public:
  explicit ProcConnSensor(LinuxSensorOptions o) : options_(std::move(o)) {}
  ~ProcConnSensor() override {
    Stop();
    if (reader_.joinable()) reader_.join();
    for (int fd : {netlink_fd_, epoll_fd_, stop_fd_}) {
      if (fd >= 0) close(fd);
    }
  }

  std::string_view name() const override { return "procconn"; }

  Status Start() override {
    if (geteuid() != 0) return PermissionDeniedError("the procconn sensor needs root (proc connector, fanotify)");
    auto filter = PrefixFilter::Create(options_.file_prefixes, MAMORI_BPF_MAX_PREFIXES, MAMORI_BPF_PREFIX_CHARS);
    if (!filter.ok()) return filter.status();
    ignore_tgid_ = options_.ignore_pid < 0 ? static_cast<int32_t>(getpid()) : options_.ignore_pid;
    boot_to_realtime_ns_ = linux_sensors::BootToRealtimeOffsetNs();
    std::vector<ProbeStatus> probes;

    const uint32_t proc_groups = kGroupProcess | kGroupCredentials | kGroupPtrace;
    if (options_.groups & proc_groups) {
      MAMORI_RETURN_IF_ERROR(OpenConnector());
      probes.push_back({"proc_connector", true, ""});
    } else {
      probes.push_back({"proc_connector", false, "event groups disabled"});
    }
    if (options_.groups & kGroupFile) {
      MAMORI_RETURN_IF_ERROR(files_.Start(*filter, ignore_tgid_));
      probes.push_back({"fanotify", true, ""});
    } else {
      probes.push_back({"fanotify", false, "event group disabled"});
    }
    probes.push_back({"network", false, "procconn has no network source"});
    probes.push_back({"module_load", false, "procconn has no module source"});

    stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (stop_fd_ < 0 || epoll_fd_ < 0) return ErrnoError(errno, "eventfd/epoll_create1");
    for (int fd : {netlink_fd_, files_.fd(), stop_fd_}) {
      if (fd < 0) continue;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) return ErrnoError(errno, "epoll_ctl");
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      probes_ = std::move(probes);
    }
    next_drop_check_ = Clock::now() + options_.drop_report_interval;
    started_ = true;
    reader_ = std::thread([this] { ReadLoop(); });
    MAMORI_LOG(kInfo, "behavior sensor procconn: started");
    return Status::Ok();
  }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    if (stop_fd_ >= 0) {
      uint64_t one = 1;
      (void)!write(stop_fd_, &one, sizeof one);
    }
    cv_.notify_all();
  }

  NextResult Next(std::chrono::milliseconds timeout, Event* out) override {
    const Clock::time_point deadline = Clock::now() + timeout;
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      if (stopped_.load() || !started_) return NextResult::kEnd;
      if (Clock::now() >= next_drop_check_) ReportDrops();
      if (!queue_.empty()) {
        *out = std::move(queue_.front());
        queue_.pop_front();
        delivered_.fetch_add(1, std::memory_order_relaxed);
        // Counted when delivered, so stats().dropped is what the consumer was told.
        if (out->type == EventType::kSensorDrops) dropped_.fetch_add(out->dropped, std::memory_order_relaxed);
        return NextResult::kEvent;
      }
      if (Clock::now() >= deadline) return NextResult::kTimeout;
      cv_.wait_until(lock, std::min(deadline, next_drop_check_));
    }
  }

  Status status() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }

  SensorStats stats() const override {
    SensorStats s;
    s.delivered = delivered_.load(std::memory_order_relaxed);
    s.dropped = dropped_.load(std::memory_order_relaxed);
    return s;
  }

  LinuxSensorCounters counters() const override {
    LinuxSensorCounters c;
    c.delivered = delivered_.load(std::memory_order_relaxed);
    c.dropped = dropped_.load(std::memory_order_relaxed);
    c.incomplete_exec = incomplete_exec_.load(std::memory_order_relaxed);
    c.argv_truncated = argv_truncated_.load(std::memory_order_relaxed);
    c.filtered = filtered_.load(std::memory_order_relaxed);
    return c;
  }

  std::vector<ProbeStatus> probes() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return probes_;
  }

 private:
  Status OpenConnector() {
    netlink_fd_ = socket(PF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_CONNECTOR);
    if (netlink_fd_ < 0) return UnavailableError(std::string("netlink connector: ") + std::strerror(errno));
    int rcvbuf = 8 << 20;
    setsockopt(netlink_fd_, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
    sockaddr_nl addr{};
    addr.nl_family = AF_NETLINK;
    addr.nl_groups = CN_IDX_PROC;
    addr.nl_pid = 0;
    if (bind(netlink_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      if (errno == EPERM) return PermissionDeniedError("proc connector: needs CAP_NET_ADMIN");
      return UnavailableError(std::string("proc connector bind: ") + std::strerror(errno));
    }
    alignas(nlmsghdr) char msg[NLMSG_SPACE(sizeof(cn_msg) + sizeof(proc_cn_mcast_op))] = {};
    auto* nl = reinterpret_cast<nlmsghdr*>(msg);
    nl->nlmsg_len = NLMSG_LENGTH(sizeof(cn_msg) + sizeof(proc_cn_mcast_op));
    nl->nlmsg_type = NLMSG_DONE;
    nl->nlmsg_pid = static_cast<uint32_t>(getpid());
    auto* cn = static_cast<cn_msg*>(NLMSG_DATA(nl));
    cn->id.idx = CN_IDX_PROC;
    cn->id.val = CN_VAL_PROC;
    cn->len = sizeof(proc_cn_mcast_op);
    const proc_cn_mcast_op op = PROC_CN_MCAST_LISTEN;
    std::memcpy(cn->data, &op, sizeof op);
    if (send(netlink_fd_, msg, nl->nlmsg_len, 0) < 0) {
      if (errno == EPERM) return PermissionDeniedError("proc connector: needs CAP_NET_ADMIN");
      return UnavailableError(std::string("proc connector subscribe: ") + std::strerror(errno));
    }
    return Status::Ok();
  }

  void ReadLoop() {
    while (!stopped_.load()) {
      epoll_event ev[3];
      int n = epoll_wait(epoll_fd_, ev, 3, 1000);
      if (n < 0 && errno != EINTR) {
        Fail(ErrnoError(errno, "epoll_wait"));
        return;
      }
      for (int i = 0; i < n; ++i) {
        if (ev[i].data.fd == netlink_fd_) DrainConnector();
        if (ev[i].data.fd == files_.fd()) DrainFiles();
      }
    }
  }

  void DrainFiles() {
    FanotifyFiles::Counters c;
    files_.Drain(
        boot_to_realtime_ns_, [this](Event e) { Push(std::move(e)); }, &c);
    filtered_.fetch_add(c.filtered, std::memory_order_relaxed);
    if (c.overflows) lost_[1].fetch_add(c.overflows, std::memory_order_relaxed);
  }

  void DrainConnector() {
    alignas(nlmsghdr) char buf[16384];
    while (true) {
      ssize_t len = recv(netlink_fd_, buf, sizeof buf, 0);
      if (len < 0) {
        if (errno == ENOBUFS) {  // the socket overflowed: messages lost, at least one
          lost_[0].fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        return;  // EAGAIN: drained
      }
      for (auto* nl = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(nl, static_cast<unsigned>(len));
           nl = NLMSG_NEXT(nl, len)) {
        if (nl->nlmsg_type == NLMSG_ERROR || nl->nlmsg_type == NLMSG_NOOP) continue;
        cn_msg cn;
        std::memcpy(&cn, NLMSG_DATA(nl), sizeof cn);
        if (cn.id.idx != CN_IDX_PROC || cn.id.val != CN_VAL_PROC) continue;
        // The payload sits 4 bytes past 8-byte alignment: copy it out.
        proc_event pe{};
        std::memcpy(&pe, static_cast<const char*>(NLMSG_DATA(nl)) + sizeof(cn_msg),
                    std::min<size_t>(cn.len, sizeof pe));
        Handle(pe);
      }
    }
  }

  void Handle(const proc_event& pe) {
    Event e;
    e.timestamp_ns = linux_sensors::ClockNs(CLOCK_REALTIME);  // pe.timestamp_ns is CLOCK_MONOTONIC
    const int64_t off = boot_to_realtime_ns_;
    switch (pe.what) {
      case proc_event::PROC_EVENT_FORK: {
        const auto& f = pe.event_data.fork;
        if (f.child_pid != f.child_tgid || !Wants(kGroupProcess) || f.parent_tgid == ignore_tgid_) return;
        e.type = EventType::kFork;
        e.process.tid = f.child_pid;
        linux_sensors::ReadProcess(f.child_tgid, false, off, &e.process);
        e.process.ppid = f.parent_tgid;
        break;
      }
      case proc_event::PROC_EVENT_EXEC: {
        const auto& x = pe.event_data.exec;
        if (!Wants(kGroupProcess) || x.process_tgid == ignore_tgid_) return;
        e.type = EventType::kExec;
        e.process.tid = x.process_pid;
        if (!linux_sensors::ReadProcess(x.process_tgid, true, off, &e.process)) {
          incomplete_exec_.fetch_add(1, std::memory_order_relaxed);
        }
        CapArgv(&e.process);
        break;
      }
      case proc_event::PROC_EVENT_EXIT: {
        const auto& x = pe.event_data.exit;
        if (x.process_pid != x.process_tgid || !Wants(kGroupProcess) || x.process_tgid == ignore_tgid_) return;
        e.type = EventType::kExit;
        e.process.pid = x.process_tgid;
        e.process.tid = x.process_pid;
        e.process.ppid = x.parent_tgid;
        linux_sensors::ReadProcess(x.process_tgid, false, off, &e.process);  // a zombie still has its ids
        e.process.ppid = x.parent_tgid;
        e.exit_code = linux_sensors::DecodeExitStatus(static_cast<int32_t>(x.exit_code));
        break;
      }
      case proc_event::PROC_EVENT_UID:
      case proc_event::PROC_EVENT_GID: {
        const auto& x = pe.event_data.id;
        if (!Wants(kGroupCredentials) || x.process_tgid == ignore_tgid_) return;
        bool uid = pe.what == proc_event::PROC_EVENT_UID;
        e.type = uid ? EventType::kSetUid : EventType::kSetGid;
        e.process.tid = x.process_pid;
        linux_sensors::ReadProcess(x.process_tgid, false, off, &e.process);
        e.new_id = uid ? x.e.euid : x.e.egid;
        break;
      }
      case proc_event::PROC_EVENT_PTRACE: {
        const auto& x = pe.event_data.ptrace;
        if (x.tracer_pid == 0) return;  // detach
        if (!Wants(kGroupPtrace) || x.tracer_tgid == ignore_tgid_) return;
        e.type = EventType::kPtrace;
        e.process.tid = x.tracer_pid;
        linux_sensors::ReadProcess(x.tracer_tgid, false, off, &e.process);
        e.target_pid = x.process_tgid;
        e.ptrace_request = kPtraceAttach;
        break;
      }
      default:
        return;
    }
    Push(std::move(e));
  }

  // The eBPF sensor's cap, applied to what /proc gave: argv bytes
  // (NUL-separated) beyond max_argv_bytes are cut.
  void CapArgv(ProcessContext* p) {
    size_t bytes = 0;
    for (size_t i = 0; i < p->argv.size(); ++i) {
      bytes += p->argv[i].size() + 1;
      if (bytes > options_.max_argv_bytes) {
        size_t over = bytes - options_.max_argv_bytes;
        p->argv[i].resize(p->argv[i].size() + 1 > over ? p->argv[i].size() + 1 - over : 0);
        p->argv.resize(i + 1);
        p->command_line.clear();
        for (const std::string& a : p->argv) p->command_line += (p->command_line.empty() ? "" : " ") + a;
        argv_truncated_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
  }

  bool Wants(uint32_t group) const { return (options_.groups & group) != 0; }

  void Push(Event e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_.size() >= kQueueLimit) {
        lost_[2].fetch_add(1, std::memory_order_relaxed);
        return;
      }
      queue_.push_back(std::move(e));
    }
    cv_.notify_one();
  }

  // REQUIRES: mu_ held. Each increase of a loss counter becomes one event.
  void ReportDrops() {
    next_drop_check_ = Clock::now() + options_.drop_report_interval;
    for (size_t i = 0; i < 3; ++i) {
      uint64_t now = lost_[i].load(std::memory_order_relaxed);
      uint64_t delta = now - reported_[i];
      if (delta == 0) continue;
      reported_[i] = now;
      Event e;
      e.type = EventType::kSensorDrops;
      e.timestamp_ns = linux_sensors::ClockNs(CLOCK_REALTIME);
      e.dropped = delta;
      e.drop_source = kDropSources[i];
      queue_.push_front(std::move(e));
    }
  }

  void Fail(Status s) {
    MAMORI_LOG(kError, "behavior sensor procconn: " << s.ToString());
    {
      std::lock_guard<std::mutex> lock(mu_);
      status_ = std::move(s);
    }
    stopped_.store(true);
    cv_.notify_all();
  }

  // Constant after Start.
  const LinuxSensorOptions options_;
  int32_t ignore_tgid_ = 0;
  int64_t boot_to_realtime_ns_ = 0;
  bool started_ = false;
  int netlink_fd_ = -1;
  int epoll_fd_ = -1;
  int stop_fd_ = -1;
  // Reader thread only.
  FanotifyFiles files_;
  std::thread reader_;
  // Any thread.
  std::atomic<bool> stopped_{false};
  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> incomplete_exec_{0};
  std::atomic<uint64_t> argv_truncated_{0};
  std::atomic<uint64_t> filtered_{0};
  std::atomic<uint64_t> lost_[3] = {};  // per kDropSources, monotonic
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> queue_;              // guarded by mu_
  uint64_t reported_[3] = {};            // guarded by mu_
  Clock::time_point next_drop_check_{};  // guarded by mu_
  Status status_;                        // guarded by mu_
  std::vector<ProbeStatus> probes_;      // guarded by mu_
};

}  // namespace

std::unique_ptr<LinuxSensor> MakeProcConnSensor(LinuxSensorOptions options) {
  return std::make_unique<ProcConnSensor>(std::move(options));
}

}  // namespace mamori::behavior

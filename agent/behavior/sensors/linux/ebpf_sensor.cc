// The eBPF sensor: BpfLoader loads the programs; this file consumes the ring
// buffer on the consumer's thread (inside Next), turns records into Events
// and the kernel's drop counters into kSensorDrops events.
#include <bpf/libbpf.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>

#include "clock.h"
#include "ebpf/abi/mamori_bpf_abi.h"
#include "ebpf_loader.h"
#include "mamori/behavior/sensors.h"
#include "mamori/common/log.h"
#include "path_filter.h"
#include "record_decoder.h"

namespace mamori::behavior {
namespace {

using linux_sensors::BpfConfig;
using linux_sensors::BpfLoader;
using linux_sensors::DecodedRecord;
using linux_sensors::PrefixFilter;
using Clock = std::chrono::steady_clock;

// Records taken from the ring buffer per refill; bounds the queue.
constexpr size_t kBatch = 4096;

// ring_buffer__consume stops when the callback returns this.
constexpr int kBatchFull = -EAGAIN;

size_t RoundRingSize(size_t bytes) {
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t size = page;
  while (size < bytes && size < (size_t{1} << 31)) size <<= 1;
  return size;
}

// Thread safety: Next from one consumer thread; Stop, status, stats,
// counters and probes from any thread.
class EbpfSensor final : public LinuxSensor {
 public:
  explicit EbpfSensor(LinuxSensorOptions o) : options_(std::move(o)) {}
  ~EbpfSensor() override {
    Stop();
    if (ring_ != nullptr) ring_buffer__free(ring_);
    if (epoll_fd_ >= 0) close(epoll_fd_);
    if (stop_fd_ >= 0) close(stop_fd_);
  }

  std::string_view name() const override { return "ebpf"; }

  Status Start() override {
    if (geteuid() != 0) return PermissionDeniedError("the eBPF sensor needs root (CAP_BPF and CAP_PERFMON)");
    auto filter = PrefixFilter::Create(options_.file_prefixes, MAMORI_BPF_MAX_PREFIXES, MAMORI_BPF_PREFIX_CHARS);
    if (!filter.ok()) return filter.status();
    filter_ = std::move(*filter);
    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
      return UnavailableError("the kernel exposes no BTF (/sys/kernel/btf/vmlinux): CO-RE programs cannot load");
    }

    BpfConfig config;
    config.ring_buffer_bytes = RoundRingSize(options_.ring_buffer_bytes);
    config.prefixes = filter_.prefixes();
    config.groups = options_.groups;
    config.ignore_tgid = options_.ignore_pid < 0 ? static_cast<int32_t>(getpid()) : options_.ignore_pid;
    config.max_argv_bytes = options_.max_argv_bytes;
    config.setid_chmod_anywhere = options_.report_setid_chmod_anywhere;
    if (options_.max_delivery_delay.count() > 0) {
      config.wakeup_bytes = static_cast<uint32_t>(std::min<size_t>(config.ring_buffer_bytes / 8, 256u << 10));
    }
    auto loader = BpfLoader::Load(config);
    if (!loader.ok()) return loader.status();
    loader_ = std::move(*loader);
    {
      std::lock_guard<std::mutex> lock(mu_);
      probes_ = loader_->probes();
    }

    ring_ = ring_buffer__new(loader_->ring_buffer_fd(), &EbpfSensor::OnRecord, this, nullptr);
    if (ring_ == nullptr) return ErrnoError(errno, "ring_buffer__new");
    stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (stop_fd_ < 0 || epoll_fd_ < 0) return ErrnoError(errno, "eventfd/epoll_create1");
    for (int fd : {ring_buffer__epoll_fd(ring_), stop_fd_}) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) return ErrnoError(errno, "epoll_ctl");
    }
    boot_to_realtime_ns_ = linux_sensors::BootToRealtimeOffsetNs();
    next_drop_check_ = Clock::now() + options_.drop_report_interval;
    started_ = true;
    MAMORI_LOG(kInfo, "behavior sensor ebpf: started, ring buffer " << config.ring_buffer_bytes << " bytes, "
                                                                    << config.prefixes.size() << " watched prefixes");
    return Status::Ok();
  }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    if (stop_fd_ >= 0) {
      uint64_t one = 1;
      (void)!write(stop_fd_, &one, sizeof one);
    }
  }

  NextResult Next(std::chrono::milliseconds timeout, Event* out) override {
    const Clock::time_point deadline = Clock::now() + timeout;
    while (true) {
      if (stopped_.load() || !started_) return NextResult::kEnd;
      if (Clock::now() >= next_drop_check_) CheckDrops();
      if (queue_.empty()) Refill();
      if (!queue_.empty()) {
        *out = std::move(queue_.front());
        queue_.pop_front();
        delivered_.fetch_add(1, std::memory_order_relaxed);
        // Counted when delivered, so stats().dropped is what the consumer was told.
        if (out->type == EventType::kSensorDrops) dropped_.fetch_add(out->dropped, std::memory_order_relaxed);
        return NextResult::kEvent;
      }
      Clock::time_point now = Clock::now();
      if (now >= deadline) return NextResult::kTimeout;
      Clock::time_point wake = std::min(deadline, next_drop_check_);
      if (options_.max_delivery_delay.count() > 0) wake = std::min(wake, now + options_.max_delivery_delay);
      auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(wake - now).count();
      epoll_event ev[2];
      int n = epoll_wait(epoll_fd_, ev, 2, static_cast<int>(std::max<int64_t>(wait_ms, 0)));
      if (n < 0 && errno != EINTR) {
        Fail(ErrnoError(errno, "epoll_wait"));
        return NextResult::kEnd;
      }
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
    c.argv_truncated = argv_truncated_.load(std::memory_order_relaxed);
    c.filtered = filtered_.load(std::memory_order_relaxed);
    return c;
  }

  std::vector<ProbeStatus> probes() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return probes_;
  }

 private:
  static int OnRecord(void* ctx, void* data, size_t size) {
    auto* self = static_cast<EbpfSensor*>(ctx);
    self->Decode(data, size);
    return self->queue_.size() >= kBatch ? kBatchFull : 0;
  }

  void Decode(const void* data, size_t size) {
    DecodedRecord r;
    Status s = linux_sensors::DecodeRecord(data, size, boot_to_realtime_ns_, &r);
    if (!s.ok()) {
      if (s.code() != StatusCode::kUnimplemented) MAMORI_LOG(kWarning, "behavior sensor ebpf: " << s.ToString());
      return;
    }
    Event& e = r.event;
    if (r.flags & MAMORI_BPF_F_ARGV_TRUNCATED) argv_truncated_.fetch_add(1, std::memory_order_relaxed);
    if (r.syscall_path) {
      e.target_filename = linux_sensors::NormalizePath(e.target_filename);
      if (!e.source_filename.empty()) e.source_filename = linux_sensors::NormalizePath(e.source_filename);
    }
    if (!e.target_filename.empty() && !FileEventWatched(e)) {
      filtered_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queue_.push_back(std::move(e));
  }

  // The exact prefix decision (the kernel only pre-filters syscall paths).
  bool FileEventWatched(const Event& e) const {
    if (filter_.Matches(e.target_filename)) return true;
    if (!e.source_filename.empty() && filter_.Matches(e.source_filename)) return true;
    return e.type == EventType::kFileChmod && options_.report_setid_chmod_anywhere && (e.mode & 06000) != 0;
  }

  void Refill() {
    int n = ring_buffer__consume(ring_);
    if (n < 0 && n != kBatchFull) Fail(ErrnoError(-n, "ring_buffer__consume"));
  }

  // Reads the kernel counters; each increase becomes one kSensorDrops event.
  void CheckDrops() {
    next_drop_check_ = Clock::now() + options_.drop_report_interval;
    boot_to_realtime_ns_ = linux_sensors::BootToRealtimeOffsetNs();
    auto drops = loader_->ReadDrops();
    if (!drops.ok()) {
      MAMORI_LOG(kWarning, "behavior sensor ebpf: " << drops.status().ToString());
      return;
    }
    uint64_t delta = *drops - reported_drops_;
    if (delta == 0) return;
    reported_drops_ = *drops;
    Event e;
    e.type = EventType::kSensorDrops;
    e.timestamp_ns = linux_sensors::ClockNs(CLOCK_REALTIME);
    e.dropped = delta;
    e.drop_source = "ringbuf";
    queue_.push_front(std::move(e));  // before the backlog: the loss is news
  }

  void Fail(Status s) {
    MAMORI_LOG(kError, "behavior sensor ebpf: " << s.ToString());
    std::lock_guard<std::mutex> lock(mu_);
    status_ = std::move(s);
    stopped_.store(true);
  }

  // Constant after construction.
  const LinuxSensorOptions options_;
  // Set in Start, then used by the consumer thread only.
  PrefixFilter filter_;
  std::unique_ptr<BpfLoader> loader_;
  ring_buffer* ring_ = nullptr;
  int epoll_fd_ = -1;
  int stop_fd_ = -1;
  bool started_ = false;
  // Consumer thread only.
  std::deque<Event> queue_;
  int64_t boot_to_realtime_ns_ = 0;
  Clock::time_point next_drop_check_{};
  uint64_t reported_drops_ = 0;
  // Any thread.
  std::atomic<bool> stopped_{false};
  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> argv_truncated_{0};
  std::atomic<uint64_t> filtered_{0};
  mutable std::mutex mu_;
  Status status_;                    // guarded by mu_
  std::vector<ProbeStatus> probes_;  // guarded by mu_
};

}  // namespace

std::unique_ptr<LinuxSensor> MakeEbpfSensor(LinuxSensorOptions options) {
  return std::make_unique<EbpfSensor>(std::move(options));
}

}  // namespace mamori::behavior

// Replay and null sensors: the pipeline's test inputs (STYLE.md §5).
#include <atomic>
#include <condition_variable>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "mamori/behavior/sensor.h"

namespace mamori::behavior {
namespace {

// Reads one event per line; blank lines and lines starting with '#' are
// skipped so fixtures can carry comments. Not thread-safe except Stop/stats.
class ReplaySensor final : public Sensor {
 public:
  explicit ReplaySensor(std::string path) : path_(std::move(path)) {}
  ~ReplaySensor() override {
    if (file_ != nullptr) std::fclose(file_);
    std::free(line_);
  }

  std::string_view name() const override { return "replay"; }

  Status Start() override {
    file_ = std::fopen(path_.c_str(), "re");
    if (file_ == nullptr) {
      return Status(errno == ENOENT ? StatusCode::kNotFound : StatusCode::kInvalidArgument,
                    "cannot open replay file " + path_ + ": " + std::strerror(errno));
    }
    return Status::Ok();
  }

  void Stop() override { stopped_.store(true); }

  NextResult Next(std::chrono::milliseconds, Event* out) override {
    if (stopped_.load() || file_ == nullptr || !status_.ok()) return NextResult::kEnd;
    while (true) {
      ssize_t n = getline(&line_, &cap_, file_);
      if (n < 0) return NextResult::kEnd;
      ++line_number_;
      std::string_view line(line_, static_cast<size_t>(n));
      while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
      size_t first = line.find_first_not_of(" \t");
      if (first == std::string_view::npos || line[first] == '#') continue;
      auto e = EventFromJson(line);
      if (!e.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        status_ = e.status().WithContext(path_ + ":" + std::to_string(line_number_));
        return NextResult::kEnd;
      }
      *out = std::move(*e);
      delivered_.fetch_add(1, std::memory_order_relaxed);
      return NextResult::kEvent;
    }
  }

  Status status() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }

  SensorStats stats() const override {
    SensorStats s;
    s.delivered = delivered_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  const std::string path_;
  std::FILE* file_ = nullptr;
  char* line_ = nullptr;
  size_t cap_ = 0;
  uint64_t line_number_ = 0;
  std::atomic<bool> stopped_{false};
  std::atomic<uint64_t> delivered_{0};
  mutable std::mutex mu_;
  Status status_;  // guarded by mu_
};

class NullSensor final : public Sensor {
 public:
  std::string_view name() const override { return "null"; }
  Status Start() override { return Status::Ok(); }
  void Stop() override {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    cv_.notify_all();
  }
  NextResult Next(std::chrono::milliseconds timeout, Event*) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, timeout, [&] { return stopped_; })) return NextResult::kEnd;
    return NextResult::kTimeout;
  }
  Status status() const override { return Status::Ok(); }
  SensorStats stats() const override { return {}; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;  // guarded by mu_
};

}  // namespace

std::unique_ptr<Sensor> MakeReplaySensor(std::string path) {
  return std::make_unique<ReplaySensor>(std::move(path));
}

std::unique_ptr<Sensor> MakeNullSensor() { return std::make_unique<NullSensor>(); }

}  // namespace mamori::behavior

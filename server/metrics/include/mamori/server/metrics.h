// Server metrics: counters and a store-append latency histogram, written as
// a Prometheus text-format file (node_exporter's textfile collector reads it)
// every interval and summarized in the log at a slower interval.
//
// The numbers are this process's (one replica); sum them across replicas.
//
// Thread safety: ServerMetrics is lock-free and may be updated from any
// thread; MetricsReporter owns one thread (Start/Stop from one thread).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "mamori/common/status.h"

namespace mamori::server {

class ServerMetrics {
 public:
  // A batch reached the store: `events` in it (resends included), its
  // serialized size, and how long AppendBatch took.
  void RecordBatch(uint64_t events, uint64_t bytes, std::chrono::nanoseconds append_latency);
  void RecordStreamOpened() { streams_.fetch_add(1, std::memory_order_relaxed); }
  void RecordStreamClosed() { streams_.fetch_sub(1, std::memory_order_relaxed); }
  void RecordAgentConnected() { agents_.fetch_add(1, std::memory_order_relaxed); }
  void RecordAgentDisconnected() { agents_.fetch_sub(1, std::memory_order_relaxed); }
  // A stream ended with this gRPC status code (0..16).
  void RecordStreamEnd(int code);
  void RecordEnrollment(bool ok) { (ok ? enroll_ok_ : enroll_refused_).fetch_add(1, std::memory_order_relaxed); }
  void RecordCommandsSent(uint64_t n) { commands_sent_.fetch_add(n, std::memory_order_relaxed); }

  // Latency histogram: bucket i holds latencies below kBucketBaseNs * 2^(i/4)
  // (quarter octaves, about 9% resolution), from 1 µs up to about 30 s.
  static constexpr int kBuckets = 100;
  static constexpr double kBucketBaseNs = 1000.0;

  struct Snapshot {
    int64_t at_ns = 0;  // wall clock of the snapshot
    uint64_t events = 0, batches = 0, bytes = 0;
    int64_t streams = 0, agents = 0;
    uint64_t enroll_ok = 0, enroll_refused = 0, commands_sent = 0;
    std::array<uint64_t, 17> stream_ends{};
    std::array<uint64_t, kBuckets> latency{};  // cumulative counts per bucket
    uint64_t latency_sum_ns = 0;
  };
  Snapshot Take() const;

 private:
  std::atomic<uint64_t> events_{0}, batches_{0}, bytes_{0};
  std::atomic<int64_t> streams_{0}, agents_{0};
  std::atomic<uint64_t> enroll_ok_{0}, enroll_refused_{0}, commands_sent_{0};
  std::array<std::atomic<uint64_t>, 17> stream_ends_{};
  std::array<std::atomic<uint64_t>, kBuckets> latency_{};
  std::atomic<uint64_t> latency_sum_ns_{0};
};

// Quantile q (0..1) of the latencies recorded between two snapshots, in
// seconds (the upper bound of the bucket holding it); 0 when none.
double LatencyQuantile(const ServerMetrics::Snapshot& from, const ServerMetrics::Snapshot& to, double q);

// Extra lines the reporter appends (e.g. the SIEM counters), in Prometheus text format.
using ExtraMetrics = std::function<std::string()>;

// The Prometheus text for `now` (rates and quantiles over [prev, now]).
std::string FormatPrometheus(const ServerMetrics::Snapshot& prev, const ServerMetrics::Snapshot& now,
                             const std::string& extra);

class MetricsReporter {
 public:
  struct Options {
    std::string file;  // empty: no file
    std::chrono::milliseconds interval{10000};
    std::chrono::milliseconds log_interval{60000};
  };
  MetricsReporter(const ServerMetrics* metrics, Options options, ExtraMetrics extra = nullptr);
  ~MetricsReporter();  // Stop()
  MetricsReporter(const MetricsReporter&) = delete;
  MetricsReporter& operator=(const MetricsReporter&) = delete;

  void Start();
  // Writes a last file and joins the thread. Idempotent.
  void Stop();

 private:
  void Run();
  void WriteFile(const ServerMetrics::Snapshot& prev, const ServerMetrics::Snapshot& now);

  const ServerMetrics* const metrics_;
  const Options options_;
  const ExtraMetrics extra_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace mamori::server

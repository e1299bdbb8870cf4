#include "mamori/server/metrics.h"

#include <cmath>
#include <cstdio>

#include "mamori/common/file_util.h"
#include "mamori/common/log.h"

namespace mamori::server {
namespace {

int64_t WallNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double BucketUpperSeconds(int i) { return ServerMetrics::kBucketBaseNs * std::exp2(i / 4.0) / 1e9; }

const char* CodeName(int code) {
  static const char* const kNames[] = {
      "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
      "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
      "DATA_LOSS", "UNAUTHENTICATED"};
  return code >= 0 && code <= 16 ? kNames[code] : "UNKNOWN";
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

void ServerMetrics::RecordBatch(uint64_t events, uint64_t bytes, std::chrono::nanoseconds latency) {
  events_.fetch_add(events, std::memory_order_relaxed);
  batches_.fetch_add(1, std::memory_order_relaxed);
  bytes_.fetch_add(bytes, std::memory_order_relaxed);
  const double ns = static_cast<double>(std::max<int64_t>(latency.count(), 1));
  int bucket = static_cast<int>(std::ceil(4.0 * std::log2(ns / kBucketBaseNs)));
  bucket = std::clamp(bucket, 0, kBuckets - 1);
  latency_[static_cast<size_t>(bucket)].fetch_add(1, std::memory_order_relaxed);
  latency_sum_ns_.fetch_add(static_cast<uint64_t>(latency.count()), std::memory_order_relaxed);
}

void ServerMetrics::RecordStreamEnd(int code) {
  stream_ends_[static_cast<size_t>(code >= 0 && code <= 16 ? code : 2)].fetch_add(1, std::memory_order_relaxed);
}

ServerMetrics::Snapshot ServerMetrics::Take() const {
  Snapshot s;
  s.at_ns = WallNs();
  s.events = events_.load(std::memory_order_relaxed);
  s.batches = batches_.load(std::memory_order_relaxed);
  s.bytes = bytes_.load(std::memory_order_relaxed);
  s.streams = streams_.load(std::memory_order_relaxed);
  s.agents = agents_.load(std::memory_order_relaxed);
  s.enroll_ok = enroll_ok_.load(std::memory_order_relaxed);
  s.enroll_refused = enroll_refused_.load(std::memory_order_relaxed);
  s.commands_sent = commands_sent_.load(std::memory_order_relaxed);
  for (size_t i = 0; i < s.stream_ends.size(); ++i) s.stream_ends[i] = stream_ends_[i].load(std::memory_order_relaxed);
  for (size_t i = 0; i < s.latency.size(); ++i) s.latency[i] = latency_[i].load(std::memory_order_relaxed);
  s.latency_sum_ns = latency_sum_ns_.load(std::memory_order_relaxed);
  return s;
}

double LatencyQuantile(const ServerMetrics::Snapshot& from, const ServerMetrics::Snapshot& to, double q) {
  uint64_t total = 0;
  for (size_t i = 0; i < to.latency.size(); ++i) total += to.latency[i] - from.latency[i];
  if (total == 0) return 0;
  const auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total)));
  uint64_t seen = 0;
  for (size_t i = 0; i < to.latency.size(); ++i) {
    seen += to.latency[i] - from.latency[i];
    if (seen >= std::max<uint64_t>(rank, 1)) return BucketUpperSeconds(static_cast<int>(i));
  }
  return BucketUpperSeconds(ServerMetrics::kBuckets - 1);
}

std::string FormatPrometheus(const ServerMetrics::Snapshot& prev, const ServerMetrics::Snapshot& now,
                             const std::string& extra) {
  const double secs = std::max(1e-9, static_cast<double>(now.at_ns - prev.at_ns) / 1e9);
  std::string o;
  auto metric = [&o](const char* name, const char* type, const char* help, const std::string& lines) {
    o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + lines;
  };
  auto line = [](const std::string& name, const std::string& value) { return name + " " + value + "\n"; };
  metric("mamori_server_events_received_total", "counter", "Events received in batches, resends included.",
         line("mamori_server_events_received_total", std::to_string(now.events)));
  metric("mamori_server_ingest_events_per_second", "gauge", "Events received per second over the last interval.",
         line("mamori_server_ingest_events_per_second", Num(static_cast<double>(now.events - prev.events) / secs)));
  metric("mamori_server_batches_total", "counter", "Event batches appended to the store.",
         line("mamori_server_batches_total", std::to_string(now.batches)));
  metric("mamori_server_batch_bytes_total", "counter", "Serialized bytes of the batches appended.",
         line("mamori_server_batch_bytes_total", std::to_string(now.bytes)));
  metric("mamori_server_connected_agents", "gauge", "Agents with an open, authenticated stream on this replica.",
         line("mamori_server_connected_agents", std::to_string(now.agents)));
  metric("mamori_server_streams", "gauge", "Open Connect streams on this replica (before and after Hello).",
         line("mamori_server_streams", std::to_string(now.streams)));
  uint64_t count = 0;
  for (uint64_t c : now.latency) count += c;
  metric("mamori_server_store_append_seconds", "summary",
         "Store AppendBatch latency; quantiles over the last interval.",
         line("mamori_server_store_append_seconds{quantile=\"0.5\"}", Num(LatencyQuantile(prev, now, 0.5))) +
             line("mamori_server_store_append_seconds{quantile=\"0.99\"}", Num(LatencyQuantile(prev, now, 0.99))) +
             line("mamori_server_store_append_seconds_sum", Num(static_cast<double>(now.latency_sum_ns) / 1e9)) +
             line("mamori_server_store_append_seconds_count", std::to_string(count)));
  metric("mamori_server_enrollments_total", "counter", "Enrollment requests by result.",
         line("mamori_server_enrollments_total{result=\"ok\"}", std::to_string(now.enroll_ok)) +
             line("mamori_server_enrollments_total{result=\"refused\"}", std::to_string(now.enroll_refused)));
  metric("mamori_server_commands_sent_total", "counter", "Commands written to agent streams (resends included).",
         line("mamori_server_commands_sent_total", std::to_string(now.commands_sent)));
  std::string ends;
  for (size_t i = 0; i < now.stream_ends.size(); ++i) {
    if (now.stream_ends[i] != 0) {
      ends += line(std::string("mamori_server_stream_ends_total{code=\"") + CodeName(static_cast<int>(i)) + "\"}",
                   std::to_string(now.stream_ends[i]));
    }
  }
  metric("mamori_server_stream_ends_total", "counter", "Connect streams ended, by gRPC status code.", ends);
  o += extra;
  return o;
}

MetricsReporter::MetricsReporter(const ServerMetrics* metrics, Options options, ExtraMetrics extra)
    : metrics_(metrics), options_(std::move(options)), extra_(std::move(extra)) {}

MetricsReporter::~MetricsReporter() { Stop(); }

void MetricsReporter::Start() {
  thread_ = std::thread([this] { Run(); });
}

void MetricsReporter::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void MetricsReporter::WriteFile(const ServerMetrics::Snapshot& prev, const ServerMetrics::Snapshot& now) {
  if (options_.file.empty()) return;
  // Atomic replace: the collector never reads a half-written file.
  Status s = WriteFileAtomically(options_.file, FormatPrometheus(prev, now, extra_ ? extra_() : ""), 0644);
  if (!s.ok()) MAMORI_LOG(kWarning, "metrics file: " << s.message());
}

void MetricsReporter::Run() {
  ServerMetrics::Snapshot file_prev = metrics_->Take();
  ServerMetrics::Snapshot log_prev = file_prev;
  auto next_file = std::chrono::steady_clock::now() + options_.interval;
  auto next_log = std::chrono::steady_clock::now() + options_.log_interval;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    const auto wake = std::min(next_file, next_log);
    cv_.wait_until(lock, wake, [this] { return stop_; });
    const bool stopping = stop_;
    lock.unlock();
    const auto now_tp = std::chrono::steady_clock::now();
    const ServerMetrics::Snapshot now = metrics_->Take();
    if (stopping || now_tp >= next_file) {
      WriteFile(file_prev, now);
      file_prev = now;
      next_file = now_tp + options_.interval;
    }
    if (!stopping && now_tp >= next_log) {
      const double secs = std::max(1e-9, static_cast<double>(now.at_ns - log_prev.at_ns) / 1e9);
      MAMORI_LOG(kInfo, "metrics: " << Num(static_cast<double>(now.events - log_prev.events) / secs) << " events/s, "
                                    << (now.batches - log_prev.batches) << " batches, " << now.agents
                                    << " agents connected, append p50 "
                                    << Num(LatencyQuantile(log_prev, now, 0.5) * 1e3) << " ms p99 "
                                    << Num(LatencyQuantile(log_prev, now, 0.99) * 1e3) << " ms");
      log_prev = now;
      next_log = now_tp + options_.log_interval;
    }
    lock.lock();
    if (stopping) return;
  }
}

}  // namespace mamori::server

// mamori_uplink_driver: the agent's telemetry path in one process — a spool
// fed by a synthetic producer, drained by an Uplink to mamori-server.
//
//   mamori_uplink_driver --spool DIR (--key-dir DIR | --insecure --agent-id ID)
//                        --server HOST:PORT [--server ...] (--events N | --until-sequence N)
//                        [--rate EPS] [--compression auto|none|gzip|deflate] [--in-flight N]
//                        [--batch-events N] [--batch-bytes N] [--timeout SECONDS]
//                        [--enroll-token TOKEN --ca-file PEM]
//   mamori_uplink_driver --encode-bench [--events N]
//
// --events N          append N new events, wait until the server acknowledged them all
// --until-sequence N  append until the spool's sequence N exists (resuming an earlier run
//                     on the same spool), wait until 1..N are acknowledged
// Events are realistic exec events (~300 bytes serialized) whose process.pid
// is the sequence they get (the end-to-end tests check payload against
// sequence) and whose timestamp_ns is the append time (latency = the store's
// received_at - timestamp_ns).
//
// --enroll-token enrolls into --key-dir first (a no-op when already enrolled).
//
// Prints one JSON object: events, seconds, events_per_s (appended events /
// time until the last is acknowledged), cpu_user_s, cpu_sys_s, max_rss_kb,
// latency_p50_ms / p99 (append -> acknowledged by the server, i.e. durably
// stored; sampled every millisecond), uplink stats. Exit 0 when everything was
// acknowledged before --timeout (default 600 s), 1 otherwise, 2 on errors.
#include <sys/resource.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "mamori/common/file_util.h"
#include "mamori/common/json.h"
#include "mamori/common/log.h"
#include "mamori/telemetry/convert.h"
#include "mamori/telemetry/spool.h"
#include "mamori/telemetry/uplink.h"
#include "mamori/v1/event.pb.h"
#include "wire.h"

namespace {

using namespace mamori;             // NOLINT(google-build-using-namespace): a tool's main
using namespace mamori::telemetry;  // NOLINT(google-build-using-namespace)
using Clock = std::chrono::steady_clock;

struct Args {
  std::string spool, key_dir, agent_id, compression = "auto", token, ca_file;
  std::vector<std::string> servers;
  bool insecure = false, encode_bench = false;
  uint64_t events = 0, until = 0, rate = 0;
  size_t in_flight = 4, batch_events = 0, batch_bytes = 0;  // 0: as the server says
  int timeout_s = 600;
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr, "mamori_uplink_driver: %s (see the comment at the top of uplink_driver.cc)\n", why);
  std::exit(2);
}

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Usage(("missing value for " + k).c_str());
      return argv[++i];
    };
    if (k == "--spool")
      a.spool = next();
    else if (k == "--key-dir")
      a.key_dir = next();
    else if (k == "--agent-id")
      a.agent_id = next();
    else if (k == "--server")
      a.servers.push_back(next());
    else if (k == "--insecure")
      a.insecure = true;
    else if (k == "--events")
      a.events = std::stoull(next());
    else if (k == "--until-sequence")
      a.until = std::stoull(next());
    else if (k == "--rate")
      a.rate = std::stoull(next());
    else if (k == "--compression")
      a.compression = next();
    else if (k == "--in-flight")
      a.in_flight = std::stoul(next());
    else if (k == "--batch-events")
      a.batch_events = std::stoul(next());
    else if (k == "--batch-bytes")
      a.batch_bytes = std::stoul(next());
    else if (k == "--timeout")
      a.timeout_s = std::stoi(next());
    else if (k == "--encode-bench")
      a.encode_bench = true;
    else if (k == "--enroll-token")
      a.token = next();
    else if (k == "--ca-file")
      a.ca_file = next();
    else
      Usage(("unknown argument " + k).c_str());
  }
  return a;
}

// A realistic process-creation event: ~300 bytes, varying pids, argv and cwd.
v1::Event MakeEvent(uint64_t seq) {
  static const char* const kImages[] = {"/usr/bin/python3.11", "/usr/bin/git", "/usr/lib/jvm/java-17/bin/java",
                                        "/usr/bin/ssh", "/usr/local/bin/node"};
  static const char* const kCwds[] = {"/home/alice/projects/mamori", "/srv/app/releases/20241126-1",
                                      "/var/lib/jenkins/workspace/build-42"};
  v1::Event e;
  e.set_timestamp_ns(NowNs());
  v1::ProcessContext* p = e.mutable_process();
  p->set_pid(static_cast<int32_t>(seq));
  p->set_tid(static_cast<int32_t>(seq));
  p->set_ppid(static_cast<int32_t>(1000 + seq % 97));
  p->set_uid(1000);
  p->set_euid(1000);
  p->set_gid(1000);
  p->set_egid(1000);
  p->set_user("alice");
  const char* image = kImages[seq % 5];
  p->set_image(image);
  p->add_argv(std::strrchr(image, '/') + 1);
  p->add_argv("--config");
  p->add_argv("/etc/app/settings-" + std::to_string(seq % 13) + ".yaml");
  p->set_command_line(p->argv(0) + " " + p->argv(1) + " " + p->argv(2));
  p->set_cwd(kCwds[seq % 3]);
  p->set_start_time_ns(static_cast<uint64_t>(e.timestamp_ns()));
  p->set_sha256("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  v1::ProcessContext* parent = e.mutable_parent();
  parent->set_pid(static_cast<int32_t>(1000 + seq % 97));
  parent->set_image("/usr/bin/bash");
  parent->set_command_line("-bash");
  parent->set_user("alice");
  e.mutable_process_activity()->set_kind(v1::ProcessActivity::KIND_EXEC);
  return e;
}

// Batch building: framing spool records (what the uplink does) vs parsing
// each record, setting the sequence and serializing the batch.
int EncodeBench(uint64_t n) {
  if (n == 0) n = 200'000;
  std::vector<std::string> records;
  records.reserve(n);
  size_t bytes = 0;
  for (uint64_t i = 0; i < n; ++i) {
    records.push_back(EncodeSpoolPayload(MakeEvent(i + 1)));
    bytes += records.back().size();
  }
  constexpr size_t kBatch = 1000;
  auto t0 = Clock::now();
  size_t out_bytes = 0;
  {
    wire::BatchBuilder b(kBatch, 4u << 20, 4u << 20, false);
    for (uint64_t i = 0; i < n; ++i) {
      if (b.AddRecord(i + 1, records[i]) == wire::BatchBuilder::AddResult::kFull) {
        out_bytes += b.TakeEventBatch().size();
        (void)b.AddRecord(i + 1, records[i]);
      }
    }
    out_bytes += b.TakeEventBatch().size();
  }
  const double framed_s = std::chrono::duration<double>(Clock::now() - t0).count();
  t0 = Clock::now();
  {
    v1::EventBatch batch;
    for (uint64_t i = 0; i < n; ++i) {
      v1::Event* e = batch.add_events();
      if (!e->ParseFromString(records[i])) return 2;
      e->set_sequence(i + 1);
      if (batch.events_size() == static_cast<int>(kBatch) || i + 1 == n) {
        out_bytes += batch.SerializeAsString().size();
        batch.Clear();
      }
    }
  }
  const double reserialized_s = std::chrono::duration<double>(Clock::now() - t0).count();
  t0 = Clock::now();
  {
    wire::BatchBuilder b(kBatch, 4u << 20, 4u << 20, true);
    for (uint64_t i = 0; i < n; ++i) {
      if (b.AddRecord(i + 1, records[i]) == wire::BatchBuilder::AddResult::kFull) {
        out_bytes += b.TakeEventBatch().size();
        (void)b.AddRecord(i + 1, records[i]);
      }
    }
    out_bytes += b.TakeEventBatch().size();
  }
  const double validated_s = std::chrono::duration<double>(Clock::now() - t0).count();
  // What gzip (as gRPC's message compression does it: zlib, default level)
  // makes of one batch of 1,000 events, and at what CPU cost.
  std::string one;
  {
    wire::BatchBuilder b(kBatch, 4u << 20, 4u << 20, false);
    for (uint64_t i = 0; i < std::min<uint64_t>(n, kBatch); ++i) (void)b.AddRecord(i + 1, records[i]);
    one = b.TakeEventBatch();
  }
  std::vector<unsigned char> z(compressBound(one.size()));
  uLongf zlen = z.size();
  t0 = Clock::now();
  constexpr int kRounds = 20;
  for (int r = 0; r < kRounds; ++r) {
    zlen = z.size();
    if (compress2(z.data(), &zlen, reinterpret_cast<const Bytef*>(one.data()), one.size(), Z_DEFAULT_COMPRESSION) !=
        Z_OK) {
      return 2;
    }
  }
  const double gzip_s = std::chrono::duration<double>(Clock::now() - t0).count() / kRounds;
  std::printf(
      "{\"events\":%llu,\"avg_event_bytes\":%.0f,\"framed_events_per_s\":%.0f,\"parse_serialize_events_per_s\":%.0f,"
      "\"framed_with_validation_events_per_s\":%.0f,\"gzip_ratio\":%.1f,\"gzip_events_per_s\":%.0f,\"checksum\":%zu}\n",
      static_cast<unsigned long long>(n), static_cast<double>(bytes) / static_cast<double>(n), n / framed_s,
      n / reserialized_s, n / validated_s, static_cast<double>(one.size()) / static_cast<double>(zlen),
      static_cast<double>(kBatch) / gzip_s, out_bytes);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = Parse(argc, argv);
  if (a.encode_bench) return EncodeBench(a.events);
  if (a.spool.empty() || a.servers.empty() || (a.events == 0 && a.until == 0))
    Usage("--spool, --server and --events or --until-sequence are required");
  log::SetLevel(log::Level::kWarning);

  if (!a.token.empty()) {
    EnrollOptions eo;
    eo.server = a.servers.front();
    eo.token = a.token;
    eo.key_dir = a.key_dir;
    eo.insecure = a.insecure;
    eo.agent.set_hostname("uplink-driver");
    if (!a.ca_file.empty()) {
      Result<std::string> ca = ReadFileToString(a.ca_file);
      if (!ca.ok()) Usage(ca.status().message().c_str());
      eo.ca_certificate_pem = *ca;
    }
    Result<Enrollment> e = Enroll(eo);
    if (!e.ok()) {
      std::fprintf(stderr, "mamori_uplink_driver: %s\n", e.status().ToString().c_str());
      return 2;
    }
  }

  UplinkOptions o;
  o.servers = a.servers;
  o.insecure = a.insecure;
  if (!a.key_dir.empty()) {
    Result<AgentCredentials> c = LoadCredentials(a.key_dir);
    if (!c.ok()) {
      std::fprintf(stderr, "mamori_uplink_driver: %s\n", c.status().ToString().c_str());
      return 2;
    }
    o.credentials = *c;
  }
  if (!a.agent_id.empty()) o.credentials.agent_id = a.agent_id;
  Result<Compression> comp = CompressionFromName(a.compression);
  if (!comp.ok()) Usage(comp.status().message().c_str());
  o.compression = *comp;
  o.max_in_flight = a.in_flight;
  o.max_batch_events = a.batch_events;
  o.max_batch_bytes = a.batch_bytes;
  o.initial_backoff = std::chrono::milliseconds(100);
  o.max_backoff = std::chrono::milliseconds(2000);
  o.agent_info = [] {
    v1::AgentInfo i;
    i.set_hostname("uplink-driver");
    i.set_agent_version("bench");
    return i;
  };

  SpoolOptions so;
  so.dir = a.spool;
  so.max_bytes = uint64_t{4} << 30;
  Result<std::unique_ptr<Spool>> spool = Spool::Open(so);
  if (!spool.ok()) {
    std::fprintf(stderr, "mamori_uplink_driver: %s\n", spool.status().ToString().c_str());
    return 2;
  }
  const uint64_t first = (*spool)->GetStats().next_sequence;
  const uint64_t target = a.until != 0 ? a.until : first + a.events - 1;
  Result<std::unique_ptr<Uplink>> up = Uplink::Create(o, spool->get());
  if (!up.ok()) {
    std::fprintf(stderr, "mamori_uplink_driver: %s\n", up.status().ToString().c_str());
    return 2;
  }
  const uint64_t start_seq = (*spool)->GetStats().next_sequence;
  // Append and acknowledgement times (steady ns since t0) per sequence, for the latency.
  const size_t span = target >= start_seq ? static_cast<size_t>(target - start_seq + 1) : 0;
  std::vector<int64_t> appended_at(span, -1), acked_at(span, -1);
  std::atomic<uint64_t> appended_upto{0};
  std::atomic<bool> done_polling{false};
  const auto t0 = Clock::now();
  auto since = [&] { return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count(); };
  std::thread poller([&] {
    uint64_t seen = start_seq - 1;
    while (!done_polling.load()) {
      const uint64_t acked = std::min((*spool)->GetStats().acked_sequence, appended_upto.load());
      if (acked > seen) {
        const int64_t now = since();
        for (uint64_t q = std::max(seen + 1, start_seq); q <= acked && q <= target; ++q) acked_at[q - start_seq] = now;
        seen = acked;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  if (Status s = (*up)->Start(); !s.ok()) return 2;

  // The producer: this thread, paced by --rate.
  uint64_t appended = 0;
  for (uint64_t seq = start_seq; seq <= target; ++seq) {
    Result<uint64_t> got = (*spool)->Append(Priority::kLow, EncodeSpoolPayload(MakeEvent(seq)));
    if (!got.ok() || *got != seq) {
      std::fprintf(stderr, "mamori_uplink_driver: append: %s\n",
                   got.ok() ? ("sequence " + std::to_string(*got) + " != " + std::to_string(seq)).c_str()
                            : got.status().ToString().c_str());
      return 2;
    }
    ++appended;
    appended_at[seq - start_seq] = since();
    appended_upto.store(seq);
    if (a.rate > 0) {  // bursts: sleep only when a millisecond ahead, as real producers come in bursts
      const auto due = t0 + std::chrono::nanoseconds(appended * 1'000'000'000ull / a.rate);
      if (due > Clock::now() + std::chrono::milliseconds(1)) std::this_thread::sleep_until(due);
    }
  }
  const double append_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto deadline = t0 + std::chrono::seconds(a.timeout_s);
  bool done = false;
  while (Clock::now() < deadline) {
    if ((*spool)->GetStats().acked_sequence >= target) {
      done = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const double total_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  done_polling.store(true);
  poller.join();
  const UplinkStats st = (*up)->stats();
  (*up)->Stop();
  std::vector<int64_t> lat;
  lat.reserve(span);
  for (size_t i = 0; i < span; ++i) {
    if (appended_at[i] >= 0 && acked_at[i] >= 0) lat.push_back(acked_at[i] - appended_at[i]);
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    return lat.empty() ? 0.0
                       : static_cast<double>(lat[std::min(lat.size() - 1, static_cast<size_t>(p * lat.size()))]) / 1e6;
  };
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const auto secs = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
  std::printf(
      "{\"first_sequence\":%llu,\"last_sequence\":%llu,\"appended\":%llu,\"append_seconds\":%.3f,\"seconds\":%.3f,"
      "\"events_per_s\":%.0f,\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,\"max_rss_kb\":%ld,\"acked\":%llu,"
      "\"batches\":%llu,\"bytes_sent\":%llu,\"reconnects\":%llu,\"latency_p50_ms\":%.1f,\"latency_p99_ms\":%.1f,"
      "\"latency_max_ms\":%.1f,\"done\":%s,\"last_error\":%s}\n",
      static_cast<unsigned long long>(first), static_cast<unsigned long long>(target),
      static_cast<unsigned long long>(appended), append_s, total_s, appended / total_s, secs(ru.ru_utime),
      secs(ru.ru_stime), ru.ru_maxrss, static_cast<unsigned long long>(st.acked_sequence),
      static_cast<unsigned long long>(st.batches_sent), static_cast<unsigned long long>(st.bytes_sent),
      static_cast<unsigned long long>(st.reconnects), pct(0.50), pct(0.99), pct(1.0), done ? "true" : "false",
      json::Quote(st.last_error.ToString()).c_str());
  return done ? 0 : 1;
}

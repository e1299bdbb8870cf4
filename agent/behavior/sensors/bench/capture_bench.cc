// mamori_behavior_capture_bench: the driver of bench/behavior-capture-bench.sh.
//
//   capture  --execs N [--ring-mb M]
//       Starts the eBPF sensor, fork+execs a temporary copy of /bin/true N
//       times with a unique token in each argv, and counts the exec events
//       received with exactly that argv, and the drops reported.
//   workload --kind exec|file|nop --count N --dir D [--sensor]
//       Times a fork/exec-heavy or file-write-heavy workload (files in D),
//       with the eBPF sensor running in this process (--sensor) or not.
//   hold --dir D [--seconds S]
//       Runs the sensor (D watched) and consumes it, as the agent would, until
//       stdin closes or S seconds pass; prints what it saw. The benchmark
//       runs the workload in another process: a process that forks while it
//       holds the sensor's mappings pays for them at every fork, which the
//       agent's users do not.
//
// Output: key=value lines on stdout. Needs root for the sensor.
#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "mamori/behavior/sensors.h"

namespace {

using namespace mamori::behavior;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

double Cpu(const timeval& u, const timeval& s) { return u.tv_sec + s.tv_sec + (u.tv_usec + s.tv_usec) / 1e6; }

// CPU time of this process plus its waited-for children.
double ProcessCpuSeconds() {
  rusage self{}, children{};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  return Cpu(self.ru_utime, self.ru_stime) + Cpu(children.ru_utime, children.ru_stime);
}

const char* Arg(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return fallback;
}

bool Flag(int argc, char** argv, const char* name) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return true;
  }
  return false;
}

void CopyExecutable(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  std::ofstream out(to, std::ios::binary);
  out << in.rdbuf();
  out.close();
  chmod(to.c_str(), 0755);
}

// fork + execv + wait. Returns false if the child could not run.
bool RunOnce(const std::string& exe, const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    execv(exe.c_str(), args.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Consumes a sensor on its own thread (as the agent would), calling `seen`
// for each event.
class Consumer {
 public:
  Consumer(Sensor& sensor, std::function<void(const Event&)> seen)
      : sensor_(sensor), seen_(std::move(seen)), thread_([this] { Run(); }) {}
  ~Consumer() { Finish(); }
  void Finish() {
    if (!thread_.joinable()) return;
    sensor_.Stop();
    thread_.join();
  }
  Clock::time_point last_event() const { return Clock::time_point(Clock::duration(last_.load())); }
  // CPU the consumer thread has used so far. REQUIRES: not finished.
  double CpuSeconds() {
    clockid_t clock;
    timespec ts{};
    if (pthread_getcpuclockid(thread_.native_handle(), &clock) != 0 || clock_gettime(clock, &ts) != 0) return 0;
    return ts.tv_sec + ts.tv_nsec / 1e9;
  }

 private:
  void Run() {
    Event e;
    while (true) {
      auto r = sensor_.Next(std::chrono::milliseconds(100), &e);
      if (r == Sensor::NextResult::kEnd) return;
      if (r != Sensor::NextResult::kEvent) continue;
      last_.store(Clock::now().time_since_epoch().count());
      seen_(e);
    }
  }
  Sensor& sensor_;
  std::function<void(const Event&)> seen_;
  std::atomic<Clock::rep> last_{0};
  std::thread thread_;
};

uint32_t g_groups = kAllSensorGroups;
const char* g_prefix = nullptr;  // watched prefix; default: the workload directory

std::unique_ptr<LinuxSensor> StartSensor(const std::string& dir, size_t ring_bytes) {
  LinuxSensorOptions o;
  o.groups = g_groups;
  o.file_prefixes = {g_prefix != nullptr ? std::string(g_prefix) : dir};
  o.ignore_pid = 0;
  o.ring_buffer_bytes = ring_bytes;
  auto sensor = MakeEbpfSensor(o);
  mamori::Status s = sensor->Start();
  if (!s.ok()) {
    std::fprintf(stderr, "sensor: %s\n", s.ToString().c_str());
    std::exit(2);
  }
  return sensor;
}

int Capture(int argc, char** argv) {
  const int execs = std::atoi(Arg(argc, argv, "--execs", "10000"));
  const size_t ring = static_cast<size_t>(std::atoi(Arg(argc, argv, "--ring-mb", "8"))) << 20;
  char tmpl[] = "/tmp/mamori-capture-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string exe = dir + "/mamori-bench-true";
  CopyExecutable("/bin/true", exe);

  auto sensor = StartSensor(dir, ring);
  std::mutex mu;
  std::set<std::string> full;  // tokens whose exec arrived with exactly the argv sent
  uint64_t matching = 0, partial = 0, drops = 0;
  Consumer consumer(*sensor, [&](const Event& e) {
    std::lock_guard<std::mutex> lock(mu);
    if (e.type == EventType::kSensorDrops) {
      drops += e.dropped;
      return;
    }
    if (e.type != EventType::kExec || e.process.image != exe) return;
    ++matching;
    const auto& a = e.process.argv;
    if (a.size() == 4 && a[0] == "mamori-bench-true" && a[1] == "--token" && a[3] == "end") {
      full.insert(a[2]);
    } else {
      ++partial;
    }
  });

  auto start = Clock::now();
  int failed = 0;
  for (int i = 0; i < execs; ++i) {
    if (!RunOnce(exe, {"mamori-bench-true", "--token", "t" + std::to_string(i), "end"})) ++failed;
  }
  const double run_seconds = Seconds(start);
  // Wait until every exec is in, or the stream has been quiet for 2 s.
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (full.size() >= static_cast<size_t>(execs)) break;
    }
    if (Clock::now() - consumer.last_event() > std::chrono::seconds(2) &&
        Clock::now() - start > std::chrono::seconds(3)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // one more drop report
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  consumer.Finish();
  std::lock_guard<std::mutex> lock(mu);
  std::printf(
      "execs=%d\nfailed=%d\nexec_events=%llu\nfull_argv=%zu\npartial_argv=%llu\ndrops_reported=%llu\n"
      "sensor_dropped=%llu\nrun_seconds=%.3f\n",
      execs, failed, static_cast<unsigned long long>(matching), full.size(), static_cast<unsigned long long>(partial),
      static_cast<unsigned long long>(drops), static_cast<unsigned long long>(sensor->stats().dropped), run_seconds);
  unlink(exe.c_str());
  rmdir(dir.c_str());
  return 0;
}

int Workload(int argc, char** argv) {
  const std::string kind = Arg(argc, argv, "--kind", "exec");
  const int count = std::atoi(Arg(argc, argv, "--count", "5000"));
  const std::string dir = Arg(argc, argv, "--dir", "/tmp");
  const bool with_sensor = Flag(argc, argv, "--sensor");
  const std::string exe = dir + "/mamori-bench-true";
  if (kind == "exec") CopyExecutable("/bin/true", exe);

  std::unique_ptr<LinuxSensor> sensor;
  std::unique_ptr<Consumer> consumer;
  std::atomic<uint64_t> events{0};
  if (with_sensor) {
    sensor = StartSensor(dir, 8u << 20);
    consumer = std::make_unique<Consumer>(*sensor, [&](const Event&) { events.fetch_add(1); });
  }

  const double cpu_start = ProcessCpuSeconds();
  const double consumer_start = consumer ? consumer->CpuSeconds() : 0;
  auto start = Clock::now();
  if (kind == "exec") {
    for (int i = 0; i < count; ++i) RunOnce(exe, {"mamori-bench-true", "w" + std::to_string(i)});
  } else if (kind == "nop") {  // syscalls no probe handles: the cost of the dispatch alone
    for (int i = 0; i < count; ++i) getppid();
  } else {
    std::string block(4096, 'x');
    for (int i = 0; i < count; ++i) {
      std::string path = dir + "/f" + std::to_string(i);
      int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
      if (fd < 0) return 1;
      if (write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) return 1;
      close(fd);
      std::string renamed = path + ".done";
      rename(path.c_str(), renamed.c_str());
      unlink(renamed.c_str());
    }
  }
  const double seconds = Seconds(start);
  // The workload's CPU (this thread and the children, kernel time included,
  // which is where the BPF programs run); the consumer thread's separately.
  double consumer_cpu = consumer ? consumer->CpuSeconds() - consumer_start : 0;
  const double cpu = ProcessCpuSeconds() - cpu_start - consumer_cpu;
  uint64_t dropped = 0;
  if (consumer) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    consumer_cpu = consumer->CpuSeconds() - consumer_start;  // with the backlog drained
    consumer->Finish();
    dropped = sensor->stats().dropped;
  }
  if (kind == "exec") unlink(exe.c_str());
  std::printf(
      "kind=%s\ncount=%d\nsensor=%d\nseconds=%.3f\ncpu_seconds=%.3f\nconsumer_cpu_seconds=%.3f\n"
      "events=%llu\ndropped=%llu\n",
      kind.c_str(), count, with_sensor ? 1 : 0, seconds, cpu, consumer_cpu,
      static_cast<unsigned long long>(events.load()), static_cast<unsigned long long>(dropped));
  return 0;
}

int Hold(int argc, char** argv) {
  const std::string dir = Arg(argc, argv, "--dir", "/tmp");
  const int seconds = std::atoi(Arg(argc, argv, "--seconds", "600"));
  auto sensor = StartSensor(dir, 8u << 20);
  std::atomic<uint64_t> events{0};
  Consumer consumer(*sensor, [&](const Event&) { events.fetch_add(1); });
  const double cpu_start = consumer.CpuSeconds();
  std::printf("ready\n");
  std::fflush(stdout);
  // Until stdin closes (the benchmark is done) or the time is up.
  std::atomic<bool> stdin_closed{false};
  std::thread waiter([&] {
    char c;
    while (read(0, &c, 1) > 0) {
    }
    stdin_closed.store(true);
  });
  waiter.detach();
  const auto deadline = Clock::now() + std::chrono::seconds(seconds);
  while (Clock::now() < deadline && !stdin_closed.load()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double reader_cpu = consumer.CpuSeconds() - cpu_start;
  consumer.Finish();
  std::printf("events=%llu\ndropped=%llu\nreader_cpu_seconds=%.3f\n", static_cast<unsigned long long>(events.load()),
              static_cast<unsigned long long>(sensor->stats().dropped), reader_cpu);
  std::fflush(stdout);
  std::_Exit(0);  // the waiter thread may still be blocked in read
}

}  // namespace

int main(int argc, char** argv) {
  g_groups = static_cast<uint32_t>(std::strtoul(Arg(argc, argv, "--groups", "63"), nullptr, 0));
  g_prefix = Arg(argc, argv, "--prefix", nullptr);
  if (argc >= 2 && std::strcmp(argv[1], "capture") == 0) return Capture(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "workload") == 0) return Workload(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "hold") == 0) return Hold(argc, argv);
  std::fprintf(stderr,
               "usage: %s capture --execs N [--ring-mb M]\n"
               "       %s workload --kind exec|file|nop --count N --dir D [--sensor]\n"
               "       %s hold --dir D [--seconds S]\n",
               argv[0], argv[0], argv[0]);
  return 2;
}

// The eBPF sensor against the running kernel. Needs root and BPF; skipped
// (with a warning) where the kernel cannot run BPF at all. Every test acts
// only on temporary directories and processes it created.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <thread>

#include "mamori/behavior/sensors.h"
#include "sensor_test_support.h"
#include "test_util.h"

namespace mamori::behavior {
namespace {

using namespace std::chrono_literals;
using testing::EventLog;
using testing::Spawn;
using testing::TestOptions;
using testing::Wait;
using testing::Watchdog;

#define REQUIRE_EBPF_USABLE()                        \
  do {                                               \
    std::string why = testing::EbpfUnusableReason(); \
    if (!why.empty()) {                              \
      WARN("eBPF sensor test skipped: " << why);     \
      return;                                        \
    }                                                \
  } while (0)

std::unique_ptr<LinuxSensor> StartEbpf(const LinuxSensorOptions& options) {
  auto sensor = MakeEbpfSensor(options);
  Status s = sensor->Start();
  INFO(s.ToString());
  REQUIRE(s.ok());
  return sensor;
}

TEST_CASE("ebpf: exec reports the full argv, image, ppid and uid captured in the kernel") {
  REQUIRE_EBPF_USABLE();
  Watchdog watchdog(30);
  mamori::testing::TempDir dir;
  const std::string exe = dir.path() + "/mamori-true";
  testing::CopyExecutable("/bin/true", exe);
  std::vector<std::string> argv = {"mamori-true"};
  for (int i = 0; i < 200; ++i) {
    argv.push_back(i % 7 == 0 ? "arg " + std::to_string(i) + " with spaces" : "arg-" + std::to_string(i) + "-x");
  }
  argv.push_back(std::string(3000, 'L'));  // one long argument: several KB in all
  auto sensor = StartEbpf(TestOptions({}));
  EventLog log(*sensor);

  pid_t child = Spawn(exe, argv);
  REQUIRE(WIFEXITED(Wait(child)));
  auto exec = log.WaitFor([&](const Event& e) { return e.type == EventType::kExec && e.process.pid == child; });
  REQUIRE(exec);
  CHECK(exec->process.argv == argv);
  std::string joined;
  for (const auto& a : argv) joined += (joined.empty() ? "" : " ") + a;
  CHECK(exec->process.command_line == joined);
  CHECK(exec->process.image == exe);
  CHECK(exec->process.ppid == getpid());
  CHECK(exec->process.uid == getuid());
  CHECK(exec->process.euid == geteuid());
  CHECK(exec->process.gid == getgid());
  char cwd[4096];
  REQUIRE(getcwd(cwd, sizeof cwd) != nullptr);
  CHECK(exec->process.cwd == cwd);
  CHECK(!exec->process.cgroup.empty());
  CHECK(exec->process.cgroup[0] == '/');
  CHECK(exec->process.start_time_ns > 0);
  CHECK(exec->timestamp_ns >= exec->process.start_time_ns);
  CHECK(sensor->counters().argv_truncated == 0);
}

TEST_CASE("ebpf: argv longer than max_argv_bytes is cut and counted") {
  REQUIRE_EBPF_USABLE();
  Watchdog watchdog(30);
  mamori::testing::TempDir dir;
  const std::string exe = dir.path() + "/mamori-true";
  testing::CopyExecutable("/bin/true", exe);
  std::vector<std::string> argv = {"mamori-true"};
  for (int i = 0; i < 100; ++i) argv.push_back("argument-number-" + std::to_string(i));
  auto options = TestOptions({});
  options.max_argv_bytes = 256;
  auto sensor = StartEbpf(options);
  EventLog log(*sensor);

  pid_t child = Spawn(exe, argv);
  Wait(child);
  auto exec = log.WaitFor([&](const Event& e) { return e.type == EventType::kExec && e.process.pid == child; });
  REQUIRE(exec);
  size_t bytes = 0;
  for (const auto& a : exec->process.argv) bytes += a.size() + 1;
  CHECK(bytes <= 257);
  REQUIRE(exec->process.argv.size() > 2);
  CHECK(exec->process.argv[1] == argv[1]);
  CHECK(sensor->counters().argv_truncated >= 1);
}

TEST_CASE("ebpf: fork and exit report the new process and its exit status") {
  REQUIRE_EBPF_USABLE();
  Watchdog watchdog(30);
  auto sensor = StartEbpf(TestOptions({}));
  EventLog log(*sensor);

  pid_t child = fork();
  if (child == 0) _exit(3);
  REQUIRE(WEXITSTATUS(Wait(child)) == 3);
  pid_t killed = fork();
  if (killed == 0) {
    raise(SIGKILL);
    _exit(0);
  }
  Wait(killed);

  auto fork_event = log.WaitFor([&](const Event& e) { return e.type == EventType::kFork && e.process.pid == child; });
  REQUIRE(fork_event);
  CHECK(fork_event->process.ppid == getpid());
  CHECK(fork_event->process.uid == getuid());
  auto exit_event = log.WaitFor([&](const Event& e) { return e.type == EventType::kExit && e.process.pid == child; });
  REQUIRE(exit_event);
  CHECK(exit_event->exit_code == 3);
  auto killed_exit = log.WaitFor([&](const Event& e) { return e.type == EventType::kExit && e.process.pid == killed; });
  REQUIRE(killed_exit);
  CHECK(killed_exit->exit_code == 128 + SIGKILL);
}

TEST_CASE("ebpf: file operations under a watched prefix are reported with their paths") {
  REQUIRE_EBPF_USABLE();
  Watchdog watchdog(30);
  mamori::testing::TempDir watched, unwatched;
  auto sensor = StartEbpf(TestOptions({watched.path()}));
  EventLog log(*sensor);
  const pid_t me = getpid();

  // Outside the prefix first: none of these may show up.
  {
    const std::string f = unwatched.path() + "/outside.txt";
    int fd = open(f.c_str(), O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, "x", 1) == 1);
    close(fd);
    REQUIRE(rename(f.c_str(), (f + ".2").c_str()) == 0);
    REQUIRE(chmod((f + ".2").c_str(), 0600) == 0);
    REQUIRE(unlink((f + ".2").c_str()) == 0);
  }
  const std::string a = watched.path() + "/a.txt";
  const std::string b = watched.path() + "/b.txt";
  int fd = open(a.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0640);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, "hello", 5) == 5);
  close(fd);
  fd = open(a.c_str(), O_WRONLY | O_APPEND);
  REQUIRE(fd >= 0);
  close(fd);
  fd = open(a.c_str(), O_RDONLY);  // read-only: not reported
  close(fd);
  REQUIRE(rename(a.c_str(), b.c_str()) == 0);
  REQUIRE(chmod(b.c_str(), 04755) == 0);
  REQUIRE(chown(b.c_str(), 65534, 65534) == 0);
  // Relative to a directory descriptor, with "." and ".." in the name.
  int dfd = open(watched.path().c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(dfd >= 0);
  REQUIRE(unlinkat(dfd, "./sub/../b.txt", 0) != 0);  // no "sub": fails, not reported
  REQUIRE(unlinkat(dfd, "./b.txt", 0) == 0);
  close(dfd);

  auto by = [&](EventType t, const std::string& path) {
    return [=](const Event& e) { return e.type == t && e.process.pid == me && e.target_filename == path; };
  };
  auto create = log.WaitFor(by(EventType::kFileCreate, a));
  REQUIRE(create);
  CHECK(create->mode == 0640);
  CHECK(log.WaitFor(by(EventType::kFileOpenWrite, a)));
  auto ren = log.WaitFor(by(EventType::kFileRename, b));
  REQUIRE(ren);
  CHECK(ren->source_filename == a);
  auto chm = log.WaitFor(by(EventType::kFileChmod, b));
  REQUIRE(chm);
  CHECK(chm->mode == 04755);
  auto cho = log.WaitFor(by(EventType::kFileChown, b));
  REQUIRE(cho);
  CHECK(cho->owner_uid == 65534);
  CHECK(cho->owner_gid == 65534);
  auto unl = log.WaitFor(by(EventType::kFileUnlink, b));
  REQUIRE(unl);

  int unlinks = 0;
  for (const Event& e : log.events()) {
    INFO(EventTypeName(e.type) << " " << e.target_filename << " <- " << e.source_filename);
    CHECK(e.target_filename.rfind(unwatched.path(), 0) != 0);
    CHECK(e.source_filename.rfind(unwatched.path(), 0) != 0);
    if (e.type == EventType::kFileUnlink && e.process.pid == me) ++unlinks;
  }
  CHECK(unlinks == 1);  // the failed unlinkat was not reported
}

TEST_CASE("ebpf: a chmod that sets the setuid bit is reported outside the prefixes too") {
  REQUIRE_EBPF_USABLE();
  Watchdog watchdog(30);
  mamori::testing::TempDir watched, elsewhere;
  auto sensor = StartEbpf(TestOptions({watched.path()}));
  EventLog log(*sensor);
  const std::string f = elsewhere.Write("tool", "#!/bin/sh\n");
  REQUIRE(chmod(f.c_str(), 0755) == 0);
  REQUIRE(chmod(f.c_str(), 04755) == 0);
  auto e = log.WaitFor([&](const Event& x) { return x.type == EventType::kFileChmod && x.target_filename == f; });
  REQUIRE(e);
  CHECK(e->mode == 04755);
  log.ReadFor(200ms);
  int chmods = 0;
  for (const Event& x : log.events()) chmods += x.type == EventType::kFileChmod && x.target_filename == f;
  CHECK(chmods == 1);  // the plain 0755 was outside the prefixes
}

TEST_CASE("ebpf: the ignored process's own activity is not reported") {
  REQUIRE_EBPF_USABLE();
  Watchdog watchdog(30);
  mamori::testing::TempDir watched;
  auto options = TestOptions({watched.path()});
  options.ignore_pid = -1;  // this process
  auto sensor = StartEbpf(options);
  EventLog log(*sensor);
  const std::string mine = watched.Write("mine", "x");
  const std::string theirs = watched.path() + "/theirs";
  pid_t child = fork();
  if (child == 0) {
    int fd = open(theirs.c_str(), O_CREAT | O_WRONLY, 0600);
    _exit(fd >= 0 ? 0 : 1);
  }
  REQUIRE(WEXITSTATUS(Wait(child)) == 0);
  REQUIRE(log.WaitFor([&](const Event& e) { return e.type == EventType::kFileCreate && e.target_filename == theirs; }));
  for (const Event& e : log.events()) CHECK(e.target_filename != mine);
}

// Listener on `loopback`, a client connecting to it, the accept.
void CheckTcp(int family, const char* loopback) {
  auto sensor = StartEbpf(TestOptions({}));
  EventLog log(*sensor);
  const pid_t me = getpid();
  int listener = socket(family, SOCK_STREAM, 0);
  REQUIRE(listener >= 0);
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    in->sin_family = AF_INET;
    inet_pton(AF_INET, loopback, &in->sin_addr);
    len = sizeof(sockaddr_in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    in6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, loopback, &in6->sin6_addr);
    len = sizeof(sockaddr_in6);
  }
  REQUIRE(bind(listener, reinterpret_cast<sockaddr*>(&ss), len) == 0);
  REQUIRE(listen(listener, 4) == 0);
  REQUIRE(getsockname(listener, reinterpret_cast<sockaddr*>(&ss), &len) == 0);
  uint16_t port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                          : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  int client = socket(family, SOCK_STREAM, 0);
  REQUIRE(connect(client, reinterpret_cast<sockaddr*>(&ss), len) == 0);
  int accepted = accept(listener, nullptr, nullptr);
  REQUIRE(accepted >= 0);
  sockaddr_storage cs{};
  socklen_t clen = sizeof cs;
  getsockname(client, reinterpret_cast<sockaddr*>(&cs), &clen);
  uint16_t client_port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&cs)->sin_port
                                                 : reinterpret_cast<sockaddr_in6*>(&cs)->sin6_port);
  close(accepted);
  close(client);
  close(listener);

  auto bound = log.WaitFor(
      [&](const Event& e) { return e.type == EventType::kNetBind && e.process.pid == me && e.source_port == port; });
  REQUIRE(bound);
  CHECK(bound->protocol == "tcp");
  CHECK(bound->source_ip == loopback);
  auto conn = log.WaitFor([&](const Event& e) {
    return e.type == EventType::kNetConnect && e.process.pid == me && e.destination_port == port;
  });
  REQUIRE(conn);
  CHECK(conn->protocol == "tcp");
  CHECK(conn->initiated);
  CHECK(conn->destination_ip == loopback);
  CHECK(conn->source_ip == loopback);
  CHECK(conn->source_port == client_port);
  auto acc = log.WaitFor(
      [&](const Event& e) { return e.type == EventType::kNetAccept && e.process.pid == me && e.source_port == port; });
  REQUIRE(acc);
  CHECK(!acc->initiated);
  CHECK(acc->destination_port == client_port);
  CHECK(acc->destination_ip == loopback);
}

TEST_CASE("ebpf: TCP bind, connect and accept over IPv4") {
  REQUIRE_EBPF_USABLE();
  Watchdog watchdog(30);
  CheckTcp(AF_INET, "127.0.0.1");
}

TEST_CASE("ebpf: TCP bind, connect and accept over IPv6") {
  REQUIRE_EBPF_USABLE();
  Watchdog watchdog(30);
  int probe = socket(AF_INET6, SOCK_STREAM, 0);
  if (probe < 0) {
    WARN("no IPv6 here");
    return;
  }
  close(probe);
  CheckTcp(AF_INET6, "::1");
}

TEST_CASE("ebpf: UDP connect is reported") {
  REQUIRE_EBPF_USABLE();
  Watchdog watchdog(30);
  auto sensor = StartEbpf(TestOptions({}));
  EventLog log(*sensor);
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);  // discard; nothing is sent
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  REQUIRE(connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0);
  close(s);
  auto e = log.WaitFor([&](const Event& x) {
    return x.type == EventType::kNetConnect && x.process.pid == getpid() && x.protocol == "udp";
  });
  REQUIRE(e);
  CHECK(e->destination_port == 9);
  CHECK(e->destination_ip == "127.0.0.1");
}

TEST_CASE("ebpf: setuid and setgid report the new id") {
  REQUIRE_EBPF_USABLE();
  Watchdog watchdog(30);
  auto sensor = StartEbpf(TestOptions({}));
  EventLog log(*sensor);
  pid_t child = fork();
  if (child == 0) _exit(setgid(65534) == 0 && setuid(65534) == 0 ? 0 : 1);
  REQUIRE(WEXITSTATUS(Wait(child)) == 0);
  auto gid = log.WaitFor([&](const Event& e) { return e.type == EventType::kSetGid && e.process.pid == child; });
  REQUIRE(gid);
  CHECK(gid->new_id == 65534);
  auto uid = log.WaitFor([&](const Event& e) { return e.type == EventType::kSetUid && e.process.pid == child; });
  REQUIRE(uid);
  CHECK(uid->new_id == 65534);
  CHECK(uid->process.uid == 65534);
  CHECK(uid->process.euid == 65534);
}

TEST_CASE("ebpf: ptrace attach on a child is reported") {
  REQUIRE_EBPF_USABLE();
  Watchdog watchdog(30);
  auto sensor = StartEbpf(TestOptions({}));
  EventLog log(*sensor);
  pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  REQUIRE(ptrace(PTRACE_ATTACH, child, nullptr, nullptr) == 0);
  int status = 0;
  waitpid(child, &status, 0);
  ptrace(PTRACE_DETACH, child, nullptr, nullptr);
  kill(child, SIGKILL);
  Wait(child);
  auto e = log.WaitFor([&](const Event& x) { return x.type == EventType::kPtrace && x.target_pid == child; });
  REQUIRE(e);
  CHECK(e->process.pid == getpid());
  CHECK(e->ptrace_request == PTRACE_ATTACH);
}

TEST_CASE("ebpf: module loads are watched where the kernel has modules (none are loaded here)") {
  REQUIRE_EBPF_USABLE();
  Watchdog watchdog(30);
  auto sensor = StartEbpf(TestOptions({}));
  const bool kernel_has_modules = access("/proc/modules", R_OK) == 0;
  bool found = false;
  for (const ProbeStatus& p : sensor->probes()) {
    if (p.name != "module_load") continue;
    found = true;
    INFO(p.reason);
    CHECK(p.attached == kernel_has_modules);
    if (!p.attached) CHECK(p.reason.find("module") != std::string::npos);
  }
  CHECK(found);
}

TEST_CASE("ebpf: a full ring buffer loses events, and says how many") {
  REQUIRE_EBPF_USABLE();
  Watchdog watchdog(30);
  mamori::testing::TempDir watched;
  auto options = TestOptions({watched.path()});
  options.ring_buffer_bytes = 1;  // rounded up to one page
  options.groups = kGroupFile;    // the rest of the machine's activity stays out
  auto sensor = StartEbpf(options);
  // A burst the consumer does not read: 3000 creates of ~200-byte records.
  for (int i = 0; i < 3000; ++i) {
    int fd = open((watched.path() + "/f" + std::to_string(i)).c_str(), O_CREAT | O_WRONLY, 0600);
    REQUIRE(fd >= 0);
    close(fd);
  }
  EventLog log(*sensor);
  log.ReadFor(1500ms);
  uint64_t dropped = 0, creates = 0;
  for (const Event& e : log.events()) {
    if (e.type == EventType::kSensorDrops) {
      CHECK(e.drop_source == "ringbuf");
      dropped += e.dropped;
    }
    creates += e.type == EventType::kFileCreate;
  }
  CHECK(dropped > 0);
  CHECK(creates + dropped >= 3000);  // each create arrived or was counted
  CHECK(sensor->stats().dropped == dropped);
  CHECK(sensor->counters().dropped == dropped);
}

TEST_CASE("ebpf: Stop makes a blocked Next return kEnd") {
  REQUIRE_EBPF_USABLE();
  Watchdog watchdog(30);
  auto options = TestOptions({});
  options.groups = kGroupModule;  // next to nothing to read
  auto sensor = StartEbpf(options);
  std::thread stopper([&] {
    std::this_thread::sleep_for(200ms);
    sensor->Stop();
  });
  auto start = std::chrono::steady_clock::now();
  Event e;
  Sensor::NextResult r;
  do {
    r = sensor->Next(10s, &e);
  } while (r == Sensor::NextResult::kEvent);
  stopper.join();
  CHECK(r == Sensor::NextResult::kEnd);
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  CHECK(sensor->status().ok());
}

TEST_CASE("ebpf: Start without root fails with kPermissionDenied") {
  if (geteuid() != 0) {
    CHECK(MakeEbpfSensor(TestOptions({}))->Start().code() == StatusCode::kPermissionDenied);
    return;
  }
  Watchdog watchdog(30);
  pid_t child = fork();
  if (child == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    Status s = MakeEbpfSensor(TestOptions({}))->Start();
    _exit(s.code() == StatusCode::kPermissionDenied ? 0 : 1);
  }
  CHECK(WEXITSTATUS(Wait(child)) == 0);
}

TEST_CASE("ebpf: bad options are kInvalidArgument") {
  REQUIRE_EBPF_USABLE();
  CHECK(MakeEbpfSensor(TestOptions({"relative/path"}))->Start().code() == StatusCode::kInvalidArgument);
  CHECK(MakeEbpfSensor(TestOptions({"/" + std::string(300, 'x')}))->Start().code() == StatusCode::kInvalidArgument);
  std::vector<std::string> many(17, "/tmp");
  CHECK(MakeEbpfSensor(TestOptions(many))->Start().code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mamori::behavior

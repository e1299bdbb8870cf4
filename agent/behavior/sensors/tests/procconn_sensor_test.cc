// The procconn fallback against the running kernel (root only). Same
// scenarios as the eBPF tests where procconn has a source for them.
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "best_sensor.h"
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

#define REQUIRE_PROCCONN_USABLE()                        \
  do {                                                   \
    std::string why = testing::ProcConnUnusableReason(); \
    if (!why.empty()) {                                  \
      WARN("procconn sensor test skipped: " << why);     \
      return;                                            \
    }                                                    \
  } while (0)

std::unique_ptr<LinuxSensor> StartProcConn(const LinuxSensorOptions& options) {
  auto sensor = MakeProcConnSensor(options);
  Status s = sensor->Start();
  INFO(s.ToString());
  REQUIRE(s.ok());
  return sensor;
}

TEST_CASE("procconn: exec of a process that lives long enough has its argv, image and ppid") {
  REQUIRE_PROCCONN_USABLE();
  Watchdog watchdog(30);
  mamori::testing::TempDir dir;
  const std::string exe = dir.path() + "/mamori-sh";
  testing::CopyExecutable("/bin/sh", exe);
  // The shell lives until the test has its event (the sensor reads argv and
  // image from /proc when the message arrives, which a busy machine delays),
  // at most 20 s.
  const std::string release = dir.path() + "/release";  // made once the event is in
  std::vector<std::string> argv = {
      "mamori-sh", "-c", "i=0; while [ ! -e \"$0\" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done", release,
      "an arg with spaces"};
  for (int i = 0; i < 100; ++i) argv.push_back("arg-" + std::to_string(i));
  auto sensor = StartProcConn(TestOptions({}));
  EventLog log(*sensor);
  pid_t child = Spawn(exe, argv);
  auto exec = log.WaitFor([&](const Event& e) { return e.type == EventType::kExec && e.process.pid == child; });
  dir.Write("release", "");
  Wait(child);
  REQUIRE(exec);
  CHECK(exec->process.argv == argv);
  CHECK(exec->process.image == exe);
  CHECK(exec->process.ppid == getpid());
  CHECK(exec->process.uid == getuid());
  CHECK(exec->process.start_time_ns > 0);
}

TEST_CASE("procconn: a process gone before /proc is read still gives an exec event, counted as incomplete") {
  REQUIRE_PROCCONN_USABLE();
  Watchdog watchdog(30);
  auto sensor = StartProcConn(TestOptions({}));
  EventLog log(*sensor);
  std::vector<pid_t> children;
  for (int i = 0; i < 20; ++i) children.push_back(Spawn("/bin/true", {"true"}));
  for (pid_t c : children) Wait(c);
  int complete = 0, incomplete = 0;
  for (pid_t c : children) {
    auto exec = log.WaitFor([&](const Event& e) { return e.type == EventType::kExec && e.process.pid == c; });
    REQUIRE(exec);
    if (exec->process.image.empty() || exec->process.argv.empty()) {
      ++incomplete;
    } else {
      ++complete;
      CHECK(exec->process.argv == std::vector<std::string>{"true"});
    }
  }
  CHECK(sensor->counters().incomplete_exec >= static_cast<uint64_t>(incomplete));
}

TEST_CASE("procconn: fork and exit with the exit status") {
  REQUIRE_PROCCONN_USABLE();
  Watchdog watchdog(30);
  auto sensor = StartProcConn(TestOptions({}));
  EventLog log(*sensor);
  pid_t child = fork();
  if (child == 0) _exit(3);
  REQUIRE(WEXITSTATUS(Wait(child)) == 3);
  auto fork_event = log.WaitFor([&](const Event& e) { return e.type == EventType::kFork && e.process.pid == child; });
  REQUIRE(fork_event);
  CHECK(fork_event->process.ppid == getpid());
  auto exit_event = log.WaitFor([&](const Event& e) { return e.type == EventType::kExit && e.process.pid == child; });
  REQUIRE(exit_event);
  CHECK(exit_event->exit_code == 3);
}

TEST_CASE("procconn: file operations under a watched prefix, none outside") {
  REQUIRE_PROCCONN_USABLE();
  Watchdog watchdog(30);
  mamori::testing::TempDir watched, unwatched;
  auto sensor = StartProcConn(TestOptions({watched.path()}));
  EventLog log(*sensor);
  const pid_t me = getpid();
  {
    const std::string f = unwatched.path() + "/outside.txt";
    int fd = open(f.c_str(), O_CREAT | O_WRONLY, 0644);
    REQUIRE(write(fd, "x", 1) == 1);
    close(fd);
    REQUIRE(unlink(f.c_str()) == 0);
  }
  const std::string a = watched.path() + "/a.txt";
  const std::string b = watched.path() + "/b.txt";
  int fd = open(a.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0640);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, "hello", 5) == 5);
  close(fd);
  REQUIRE(rename(a.c_str(), b.c_str()) == 0);
  REQUIRE(chmod(b.c_str(), 04755) == 0);

  auto by = [&](EventType t, const std::string& path) {
    return [=](const Event& e) { return e.type == t && e.process.pid == me && e.target_filename == path; };
  };
  CHECK(log.WaitFor(by(EventType::kFileCreate, a)));
  CHECK(log.WaitFor(by(EventType::kFileOpenWrite, a)));
  auto ren = log.WaitFor(by(EventType::kFileRename, b));
  REQUIRE(ren);
  CHECK(ren->source_filename == a);
  // fanotify carries no mode: procconn reads it when the event arrives, so
  // the file must still be there (an unlink racing the read gives mode 0).
  auto chm = log.WaitFor(by(EventType::kFileChmod, b));
  REQUIRE(chm);
  CHECK(chm->mode == 04755);
  REQUIRE(unlink(b.c_str()) == 0);
  CHECK(log.WaitFor(by(EventType::kFileUnlink, b)));
  for (const Event& e : log.events()) CHECK(e.target_filename.rfind(unwatched.path(), 0) != 0);
}

TEST_CASE("procconn: setuid and ptrace attach") {
  REQUIRE_PROCCONN_USABLE();
  Watchdog watchdog(30);
  auto sensor = StartProcConn(TestOptions({}));
  EventLog log(*sensor);
  pid_t child = fork();
  if (child == 0) {
    if (setuid(65534) != 0) _exit(1);
    usleep(200000);  // long enough for /proc to be read
    _exit(0);
  }
  REQUIRE(WEXITSTATUS(Wait(child)) == 0);
  auto uid = log.WaitFor([&](const Event& e) { return e.type == EventType::kSetUid && e.process.pid == child; });
  REQUIRE(uid);
  CHECK(uid->new_id == 65534);

  pid_t traced = fork();
  if (traced == 0) {
    pause();
    _exit(0);
  }
  REQUIRE(ptrace(PTRACE_ATTACH, traced, nullptr, nullptr) == 0);
  waitpid(traced, nullptr, 0);
  ptrace(PTRACE_DETACH, traced, nullptr, nullptr);
  kill(traced, SIGKILL);
  Wait(traced);
  auto pt = log.WaitFor([&](const Event& e) { return e.type == EventType::kPtrace && e.target_pid == traced; });
  REQUIRE(pt);
  CHECK(pt->process.pid == getpid());
}

TEST_CASE("procconn: reports that it has no network or module source") {
  REQUIRE_PROCCONN_USABLE();
  auto sensor = StartProcConn(TestOptions({}));
  int unavailable = 0;
  for (const ProbeStatus& p : sensor->probes()) {
    if (p.name == "network" || p.name == "module_load") {
      CHECK(!p.attached);
      CHECK(!p.reason.empty());
      ++unavailable;
    }
  }
  CHECK(unavailable == 2);
}

// ---- MakeBestSensor's choice, with injected sensors --------------------------

class FakeSensor final : public LinuxSensor {
 public:
  FakeSensor(std::string name, Status start) : name_(std::move(name)), start_(std::move(start)) {}
  std::string_view name() const override { return name_; }
  Status Start() override { return start_; }
  void Stop() override {}
  NextResult Next(std::chrono::milliseconds, Event*) override { return NextResult::kEnd; }
  Status status() const override { return Status::Ok(); }
  SensorStats stats() const override { return {}; }
  LinuxSensorCounters counters() const override { return {}; }
  std::vector<ProbeStatus> probes() const override { return {}; }

 private:
  std::string name_;
  Status start_;
};

TEST_CASE("best sensor: falls back only when the first sensor is unavailable") {
  auto make = [](const char* name, Status s) { return std::make_unique<FakeSensor>(name, std::move(s)); };
  auto fallback_ok = [&] { return make("procconn", Status::Ok()); };

  auto first_ok = linux_sensors::PickSensor(make("ebpf", Status::Ok()), fallback_ok);
  REQUIRE(first_ok.ok());
  CHECK(first_ok->sensor->name() == "ebpf");
  CHECK(first_ok->ebpf_status.ok());

  auto fell_back = linux_sensors::PickSensor(make("ebpf", UnavailableError("no BTF")), fallback_ok);
  REQUIRE(fell_back.ok());
  CHECK(fell_back->sensor->name() == "procconn");
  CHECK(fell_back->ebpf_status.code() == StatusCode::kUnavailable);
  CHECK(fell_back->ebpf_status.message() == "no BTF");

  auto denied = linux_sensors::PickSensor(make("ebpf", PermissionDeniedError("not root")), fallback_ok);
  CHECK(denied.status().code() == StatusCode::kPermissionDenied);

  auto both_fail = linux_sensors::PickSensor(make("ebpf", UnavailableError("no BTF")),
                                             [&] { return make("procconn", UnavailableError("no connector")); });
  CHECK(both_fail.status().code() == StatusCode::kUnavailable);
}

TEST_CASE("best sensor: on this machine") {
  REQUIRE_PROCCONN_USABLE();
  auto options = TestOptions({});
  auto best = MakeBestSensor(options);
  REQUIRE(best.ok());
  if (testing::EbpfUnusableReason().empty()) {
    CHECK(best->sensor->name() == "ebpf");
  } else {
    CHECK(best->sensor->name() == "procconn");
    CHECK(best->ebpf_status.code() == StatusCode::kUnavailable);
  }
}

}  // namespace
}  // namespace mamori::behavior

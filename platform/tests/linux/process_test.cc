#include "mamori/platform/process.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <catch2/catch.hpp>

namespace mamori::platform {
namespace {

// A child that sleeps for at most 30 s; reaped (and killed if needed) at scope exit.
class Sleeper {
 public:
  Sleeper() {
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::sleep(30);
      ::_exit(0);
    }
  }
  ~Sleeper() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
  }
  Pid pid() const { return static_cast<Pid>(pid_); }
  // Returns the wait status and forgets the child.
  int Wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
};

uint64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

TEST_CASE("process list finds the test's own child with its parent and start time", "[platform]") {
  uint64_t before = NowNs();
  Sleeper child;
  auto list = ListProcesses();
  REQUIRE(list.ok());
  const ProcessInfo* found = nullptr;
  for (const auto& p : *list) {
    if (p.pid == child.pid()) found = &p;
  }
  REQUIRE(found != nullptr);
  CHECK(found->ppid == CurrentPid());
  CHECK(!found->name.empty());
  // One clock tick (10 ms) resolution plus the boot-time estimate.
  CHECK(found->start_time_ns + 100'000'000 >= before);
  CHECK(found->start_time_ns <= NowNs() + 100'000'000);
  auto direct = ProcessStartTime(child.pid());
  REQUIRE(direct.ok());
  CHECK((*direct > found->start_time_ns ? *direct - found->start_time_ns : found->start_time_ns - *direct) <
        kStartTimeToleranceNs);
}

TEST_CASE("kill refuses a pid whose start time differs and kills with the right one", "[platform]") {
  Sleeper child;
  auto start = ProcessStartTime(child.pid());
  REQUIRE(start.ok());
  Status wrong = KillProcess(child.pid(), *start - 10'000'000'000ull);
  CHECK(wrong.code() == StatusCode::kFailedPrecondition);
  CHECK(wrong.message().find("another process") != std::string::npos);
  CHECK(::kill(static_cast<pid_t>(child.pid()), 0) == 0);  // still alive

  REQUIRE(KillProcess(child.pid(), *start).ok());
  int status = child.Wait();
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
}

TEST_CASE("kill refuses pid 0 and this process and a missing start time", "[platform]") {
  CHECK(KillProcess(0, 1).code() == StatusCode::kInvalidArgument);
  CHECK(KillProcess(CurrentPid(), 1).code() == StatusCode::kInvalidArgument);
  Sleeper child;
  CHECK(KillProcess(child.pid(), 0).code() == StatusCode::kInvalidArgument);
}

TEST_CASE("kill and start time of an exited process say not found", "[platform]") {
  Pid pid;
  {
    Sleeper child;
    pid = child.pid();
  }  // killed and reaped: the pid is free (reuse within this test is negligible)
  CHECK(ProcessStartTime(pid).status().code() == StatusCode::kNotFound);
  CHECK(KillProcess(pid, 1).code() == StatusCode::kNotFound);
}

}  // namespace
}  // namespace mamori::platform

// Real fanotify on a tmpfs mounted for the test alone: nothing outside it is
// ever watched, blocked or touched. Needs root (CAP_SYS_ADMIN), as CI has.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

#include "mamori/agent/onaccess.h"
#include "agent_test_util.h"

namespace mamori::agent {
namespace {

using testing::Contains;
using testing::InChild;
using testing::TestMount;
using testing::Watchdog;

// Open permission events on the test mount only, answered by `deadline` at the latest.
OnAccessOptions OpenOnly(const TestMount& mnt, std::chrono::milliseconds deadline) {
  OnAccessOptions o;
  o.open_paths = {mnt.path()};
  o.close_write = false;
  o.deadline = deadline;
  return o;
}

TEST_CASE("fanotify: opening or executing a detected file is denied, clean files and our own I/O are not") {
  if (::geteuid() != 0) FAIL("on-access tests need root (CAP_SYS_ADMIN for fanotify)");
  TestMount mnt;
  Watchdog wd(30);
  std::atomic<int> decisions{0};
  OnAccessOptions o;
  o.exec_paths = {mnt.path()};
  o.open_paths = {mnt.path()};
  o.deadline = std::chrono::milliseconds(3000);
  auto m = MakeOnAccessMonitor(
      o,
      [&](const AccessEvent& e) {
        ++decisions;
        return Contains(e.fd, "EVIL-MARKER") ? AccessVerdict::kDeny : AccessVerdict::kAllow;
      },
      nullptr);
  REQUIRE(m.ok());
  REQUIRE((*m)->Start().ok());
  std::string clean = mnt.Write("clean.txt", "hello\n");
  std::string evil = mnt.Write("evil.txt", "bad stuff EVIL-MARKER\n");
  std::string good_script = mnt.Write("good.sh", "#!/bin/sh\nexit 0\n", 0755);
  std::string evil_script = mnt.Write("evil.sh", "#!/bin/sh\n# EVIL-MARKER\nexit 0\n", 0755);

  auto [clean_err, clean_ms] = InChild(clean, false);
  CHECK(clean_err == 0);
  // Denied by the decider, not at the 3 s deadline (latency is measured in bench/).
  auto [evil_err, evil_ms] = InChild(evil, false);
  CHECK(evil_err == EPERM);
  CHECK(evil_ms < 1500);
  auto [exec_ok, exec_ok_ms] = InChild(good_script, true);
  CHECK(exec_ok == 0);
  auto [exec_err, exec_ms] = InChild(evil_script, true);
  CHECK(exec_err == EPERM);
  CHECK(exec_ms < 1500);

  // The monitor's own process is never asked about.
  int before = decisions;
  int fd = ::open(evil.c_str(), O_RDONLY);
  CHECK(fd >= 0);
  ::close(fd);
  CHECK(decisions == before);
  CHECK((*m)->stats().own_process >= 1);
  CHECK((*m)->stats().denied >= 2);
  (*m)->Stop();
  // Stopped: nothing is blocked any more.
  CHECK(InChild(evil, false).first == 0);
}

TEST_CASE("fanotify: a clean file is not asked about again until it is modified") {
  if (::geteuid() != 0) FAIL("on-access tests need root (CAP_SYS_ADMIN for fanotify)");
  TestMount mnt;
  Watchdog wd(30);
  std::atomic<int> asked{0};
  OnAccessMonitor* monitor = nullptr;
  OnAccessOptions o = OpenOnly(mnt, OnAccessOptions{}.deadline);
  auto m = MakeOnAccessMonitor(
      o,
      [&](const AccessEvent& e) {
        ++asked;
        if (!Contains(e.fd, "EVIL-MARKER")) {
          monitor->MarkClean(e.fd);
          return AccessVerdict::kAllow;
        }
        return AccessVerdict::kDeny;
      },
      nullptr);
  REQUIRE(m.ok());
  monitor = m->get();
  REQUIRE(monitor->Start().ok());
  std::string f = mnt.Write("doc.txt", "clean text\n");
  CHECK(InChild(f, false).first == 0);
  CHECK(InChild(f, false).first == 0);
  CHECK(asked == 1);  // the second open cost nothing
  {
    // Modifying the file drops the ignore mark: the next open is asked about.
    pid_t pid = ::fork();
    if (pid == 0) {
      int fd = ::open(f.c_str(), O_WRONLY | O_APPEND);
      (void)!::write(fd, " EVIL-MARKER", 12);
      ::close(fd);
      ::_exit(0);
    }
    ::waitpid(pid, nullptr, 0);
  }
  CHECK(InChild(f, false).first == EPERM);
  CHECK(asked >= 2);
  monitor->Stop();
}

TEST_CASE("fanotify: a decision that misses the deadline is answered allow and reported") {
  if (::geteuid() != 0) FAIL("on-access tests need root (CAP_SYS_ADMIN for fanotify)");
  TestMount mnt;
  Watchdog wd(30);
  std::atomic<int> reported{0};
  OnAccessOptions o = OpenOnly(mnt, std::chrono::milliseconds(300));
  auto m = MakeOnAccessMonitor(
      o,
      [&](const AccessEvent&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(6000));  // a wedged scan
        return AccessVerdict::kDeny;
      },
      [&](const std::string& what, const AccessEvent*) {
        if (what == "timeout") ++reported;
      });
  REQUIRE(m.ok());
  REQUIRE((*m)->Start().ok());
  std::string f = mnt.Write("slow.txt", "x");
  auto [err, ms] = InChild(f, false);
  CHECK(err == 0);    // failed open: allowed
  CHECK(ms < 4500);   // at the 300 ms deadline, not when the 6 s scan finished
  CHECK((*m)->stats().timeouts == 1);
  // The report is made after the waiter is released.
  CHECK(testing::WaitFor([&] { return reported == 1; }, std::chrono::milliseconds(10000)));
  (*m)->Stop();
}

TEST_CASE("fanotify: the loops beat while idle and a wedged deadline watcher shows as a stale heartbeat") {
  if (::geteuid() != 0) FAIL("on-access tests need root (CAP_SYS_ADMIN for fanotify)");
  TestMount mnt;
  Watchdog wd(60);
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<bool> reporting{false};
  auto hold = [&] {  // until the test releases it, 30 s at most
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::seconds(30), [&] { return release; });
  };
  OnAccessOptions o = OpenOnly(mnt, std::chrono::milliseconds(300));
  auto m = MakeOnAccessMonitor(
      o,
      [&](const AccessEvent&) {
        hold();  // a wedged scan: the deadline answers
        return AccessVerdict::kAllow;
      },
      [&](const std::string& what, const AccessEvent*) {
        if (what != "timeout") return;
        reporting = true;
        hold();  // a wedged report: the deadline watcher stops turning
      });
  REQUIRE(m.ok());
  REQUIRE((*m)->Start().ok());
  auto age = [&] { return std::chrono::steady_clock::now() - (*m)->LastHeartbeat(); };

  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  CHECK(age() < std::chrono::milliseconds(2000));  // idle, yet both loops turn (once a second)

  std::string f = mnt.Write("slow.txt", "x");
  auto [err, ms] = InChild(f, false);
  CHECK(err == 0);  // answered at the deadline
  REQUIRE(testing::WaitFor([&] { return reporting.load(); }, std::chrono::milliseconds(10000)));
  CHECK(testing::WaitFor([&] { return age() > std::chrono::milliseconds(3000); }, std::chrono::milliseconds(10000)));
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  CHECK(testing::WaitFor([&] { return age() < std::chrono::milliseconds(1500); }, std::chrono::milliseconds(10000)));
  (*m)->Stop();
}

TEST_CASE("fanotify: when the agent process dies the kernel releases the waiting process") {
  if (::geteuid() != 0) FAIL("on-access tests need root (CAP_SYS_ADMIN for fanotify)");
  TestMount mnt;
  Watchdog wd(30);
  std::string f = mnt.Write("held.txt", "x");
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  pid_t agent = ::fork();
  REQUIRE(agent >= 0);
  if (agent == 0) {
    // A stand-in agent whose decision never comes (deadline far away).
    OnAccessOptions o = OpenOnly(mnt, std::chrono::milliseconds(60000));
    auto m = MakeOnAccessMonitor(
        o, [](const AccessEvent&) {
          ::pause();
          return AccessVerdict::kAllow;
        },
        nullptr);
    if (!m.ok() || !(*m)->Start().ok()) ::_exit(1);
    (void)!::write(ready[1], "r", 1);
    ::pause();
    ::_exit(0);
  }
  char c;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  std::atomic<bool> opened{false};
  std::thread opener([&] {
    auto r = InChild(f, false);
    opened = r.first == 0;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(!opened);  // held by the stand-in agent
  ::kill(agent, SIGKILL);
  ::waitpid(agent, nullptr, 0);
  opener.join();
  CHECK(opened);  // released when its fanotify descriptor went away
}

}  // namespace
}  // namespace mamori::agent

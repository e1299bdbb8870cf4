// Helpers for tests that drive real fanotify: a tmpfs mounted for the test
// alone (nothing outside it is ever watched), a watchdog that kills a wedged
// test, and accesses made from a child process (the monitor's own process is
// never asked about).
#pragma once

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <utility>

#include "test_util.h"

namespace mamori::testing {

using Clock = std::chrono::steady_clock;

// A tmpfs of our own, unmounted (lazily) at the end.
class TestMount {
 public:
  TestMount() {
    path_ = dir_.path() + "/mnt";
    REQUIRE(::mkdir(path_.c_str(), 0755) == 0);
    REQUIRE(::mount("tmpfs", path_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=0755") == 0);
  }
  ~TestMount() { ::umount2(path_.c_str(), MNT_DETACH); }
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& data, mode_t mode = 0644) const {
    std::string p = path_ + "/" + name;
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    ::close(fd);
    ::chmod(p.c_str(), mode);
    return p;
  }

 private:
  testing::TempDir dir_;
  std::string path_;
};

// Kills this test process if it wedges: the kernel then releases every waiter.
class Watchdog {
 public:
  explicit Watchdog(int seconds) : thread_([this, seconds] {
      auto until = Clock::now() + std::chrono::seconds(seconds);
      while (!done_ && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (!done_) {
        std::fprintf(stderr, "watchdog: on-access test wedged, killing it\n");
        ::_exit(99);
      }
    }) {}
  ~Watchdog() {
    done_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

inline bool Contains(int fd, const std::string& marker) {
  char buf[4096];
  ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  return n > 0 && std::string(buf, static_cast<size_t>(n)).find(marker) != std::string::npos;
}

// Opens (or execs) `path` in a child process so that this process — the
// monitor's — is not the one asking. Returns errno (0 on success) and the time taken.
inline std::pair<int, double> InChild(const std::string& path, bool exec) {
  int pipefd[2];
  REQUIRE(::pipe(pipefd) == 0);
  auto start = Clock::now();
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::alarm(10);
    int err = 0;
    if (exec) {
      char* argv[] = {const_cast<char*>(path.c_str()), nullptr};
      char* envp[] = {nullptr};
      // stdout to /dev/null: the script's output is not the test's
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::execve(path.c_str(), argv, envp);
      err = errno;
    } else {
      int fd = ::open(path.c_str(), O_RDONLY);
      err = fd < 0 ? errno : 0;
    }
    (void)!::write(pipefd[1], &err, sizeof err);
    ::_exit(0);
  }
  ::close(pipefd[1]);
  int err = -1;
  ssize_t n = ::read(pipefd[0], &err, sizeof err);
  ::close(pipefd[0]);
  ::waitpid(pid, nullptr, 0);
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (exec && n == 0) err = 0;  // exec succeeded: the child became the script
  return {err, ms};
}

// Writes a file from a child process, as another program would (the
// on-access monitor answers its own process without scanning).
inline void WriteAsOther(const std::string& path, const std::string& data, mode_t mode = 0644) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0 || ::write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) ::_exit(1);
    ::close(fd);
    ::_exit(0);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  REQUIRE(WEXITSTATUS(st) == 0);
}

#ifdef MAMORI_AGENT_BINARY
// The agent under test, stopped with SIGTERM (or killed if it will not stop).
class AgentProcess {
 public:
  AgentProcess(const std::string& config, const std::string& socket, const std::string& log) {
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(fd, 2);
      ::dup2(fd, 1);
      // A test that crashes must not leave its agent running.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      ::execl(MAMORI_AGENT_BINARY, MAMORI_AGENT_BINARY, "--config", config.c_str(), nullptr);
      ::_exit(127);
    }
    // Up to 30 s: loading rules, signatures and the BPF object took ~15 s on a
    // 2-core machine running two test binaries and compiles at once.
    for (int i = 0; i < 600 && ::access(socket.c_str(), F_OK) != 0; ++i) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        FAIL("mamori-agent exited during start-up (status " << st << "); see " << log);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    REQUIRE(::access(socket.c_str(), F_OK) == 0);
  }
  // Returns the exit status; kills the agent if it does not stop within 10 s.
  int Stop() {
    if (pid_ <= 0) return -1;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 200; ++i) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    return -2;
  }
  ~AgentProcess() { Stop(); }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

inline bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds max) {
  auto until = std::chrono::steady_clock::now() + max;
  while (std::chrono::steady_clock::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return cond();
}

#endif  // MAMORI_AGENT_BINARY

#ifdef MAMORI_SIG_BINARY
// Signed bundles for the command tests, built with the real mamori-sig in
// `dir`: v1.mbundle (version 1: an EICAR rule) and v2.mbundle (version 2:
// the same + rule PushedTwo) signed with pub.key (trust pub.pub), and
// forged.mbundle (version 7) signed with stranger.key, which nobody trusts.
inline void MakeSignedTestBundles(const TempDir& dir) {
  const std::string d = dir.path();
  const std::string sig = MAMORI_SIG_BINARY;
  const std::string eicar_rule =
      "rule Eicar_Test { strings: $e = \"X5O!P%@AP[4\\\\PZX54(P^)7CC)7}$EICAR\" condition: $e at 0 }\n";
  dir.Write("b1/yara/eicar.yar", eicar_rule);
  dir.Write("b2/yara/eicar.yar", eicar_rule);
  dir.Write("b2/yara/two.yar", "rule PushedTwo { strings: $a = \"MAMORI-PUSHED-TWO\" condition: $a }\n");
  REQUIRE(std::system((sig + " keygen " + d + "/pub > /dev/null").c_str()) == 0);
  REQUIRE(std::system((sig + " keygen " + d + "/stranger > /dev/null").c_str()) == 0);
  for (const char* v : {"1", "2"}) {
    REQUIRE(std::system((sig + " build " + d + "/b" + v + " -o " + d + "/v" + v + ".mbundle --version " + v +
                         " --key " + d + "/pub.key > /dev/null")
                            .c_str()) == 0);
  }
  REQUIRE(std::system(
              (sig + " build " + d + "/b2 -o " + d + "/forged.mbundle --version 7 --key " + d + "/stranger.key > /dev/null")
                  .c_str()) == 0);
}
#endif  // MAMORI_SIG_BINARY

}  // namespace mamori::testing

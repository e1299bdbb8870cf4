// mamori-server in a child process, for the server tests that need the real
// binary (replicas on one database, connection floods measured from /proc).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <regex>
#include <string>
#include <thread>

#include "mamori/common/file_util.h"
#include "test_client.h"

namespace mamori::server::testing {

// Started from `config` with its output in `log`; the constructor waits (20 s
// at most) for the "listening on 127.0.0.1:PORT" line and fails the test
// otherwise. SIGTERM, then SIGKILL after 5 s, on Stop() or destruction.
class ServerChild {
 public:
  ServerChild(const std::string& config, const std::string& log) : log_(log) {
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execl(MAMORI_SERVER_BINARY, MAMORI_SERVER_BINARY, "--config", config.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const std::regex re("listening on 127\\.0\\.0\\.1:([0-9]+)");
    const bool up = WaitFor(
        [&] {
          Result<std::string> text = ReadFileToString(log_);
          std::smatch m;
          if (!text.ok() || !std::regex_search(*text, m, re)) return false;
          port_ = std::stoi(m[1]);
          return true;
        },
        std::chrono::seconds(20));
    if (!up) FAIL("mamori-server did not start: " << ReadFileToString(log_).value());
  }
  ServerChild(const ServerChild&) = delete;
  ServerChild& operator=(const ServerChild&) = delete;
  ~ServerChild() { Stop(); }

  // Returns the exit code (0 = clean shutdown; sanitizer reports make it non-zero).
  int Stop() {
    if (pid_ <= 0) return exit_code_;
    ::kill(pid_, SIGTERM);
    int st = 0;
    for (int i = 0; i < 500 && ::waitpid(pid_, &st, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (::waitpid(pid_, &st, WNOHANG) == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &st, 0);
    }
    pid_ = -1;
    exit_code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return exit_code_;
  }
  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  std::string log_;
  pid_t pid_ = -1;
  int port_ = 0;
  int exit_code_ = 0;
};

}  // namespace mamori::server::testing

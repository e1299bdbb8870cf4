#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "mamori/platform/service_control.h"
#include "mamori/platform/service_host.h"
#include "test_util.h"

extern char** environ;

namespace mamori::platform {
namespace {

using testing::TempDir;

std::string ReadAll(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool WaitForLog(const std::string& path, const std::string& line, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ReadAll(path).find(line + "\n") != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// Runs mamori_test_service with `args` and extra environment entries.
pid_t Spawn(const std::vector<std::string>& args, const std::vector<std::string>& env_extra = {}) {
  std::vector<std::string> argv_s{MAMORI_TEST_SERVICE_PATH};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "NOTIFY_SOCKET=", 14) != 0) env_s.emplace_back(*e);
  }
  env_s.insert(env_s.end(), env_extra.begin(), env_extra.end());
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, MAMORI_TEST_SERVICE_PATH, nullptr, nullptr, argv.data(), envp.data()) == 0);
  return pid;
}

// Waits at most `limit` for the child; kills it if it overstays (watchdog).
int Reap(pid_t pid, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      FAIL("test service did not exit in time");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status;
}

TEST_CASE("console-mode service stops on SIGTERM and exits with the app's code", "[platform]") {
  TempDir t;
  std::string log = t / "svc.log";
  pid_t pid = Spawn({"--console", "--log", log, "--exit-code", "7"});
  REQUIRE(WaitForLog(log, "run", std::chrono::seconds(10)));
  REQUIRE(::kill(pid, SIGTERM) == 0);
  int status = Reap(pid, std::chrono::seconds(10));
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 7);
  CHECK(ReadAll(log) == "start\nrun\nstop signal\nexit 7\n");
}

TEST_CASE("a service whose start fails exits with an error and never runs", "[platform]") {
  TempDir t;
  std::string log = t / "svc.log";
  pid_t pid = Spawn({"--console", "--log", log, "--fail-start"});
  int status = Reap(pid, std::chrono::seconds(10));
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 2);
  std::string text = ReadAll(log);
  CHECK(text.find("run\n") == std::string::npos);
  CHECK(text.find("error FAILED_PRECONDITION: service start: asked to fail at start") != std::string::npos);
}

TEST_CASE("service mode tells systemd READY then STOPPING through NOTIFY_SOCKET", "[platform]") {
  TempDir t;
  std::string sock_path = t / "notify";
  int sock = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(sock >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  REQUIRE(sock_path.size() < sizeof addr.sun_path);
  std::memcpy(addr.sun_path, sock_path.c_str(), sock_path.size());
  REQUIRE(::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  auto receive = [&]() -> std::string {
    pollfd p{sock, POLLIN, 0};
    if (::poll(&p, 1, 10'000) != 1) return "(nothing within 10 s)";
    char buf[256];
    ssize_t n = ::recv(sock, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "(recv failed)";
  };
  pid_t pid = Spawn({"--log", t / "svc.log"}, {"NOTIFY_SOCKET=" + sock_path});
  CHECK(receive() == "READY=1");
  REQUIRE(WaitForLog(t / "svc.log", "run", std::chrono::seconds(10)));
  REQUIRE(::kill(pid, SIGINT) == 0);
  CHECK(receive() == "STOPPING=1");
  int status = Reap(pid, std::chrono::seconds(10));
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  ::close(sock);
}

TEST_CASE("service control says unavailable without systemd and not found for an unknown unit", "[platform]") {
  struct stat st {};
  auto q = QueryServiceState("mamori-no-such-unit-for-tests");
  if (::stat("/run/systemd/system", &st) != 0) {
    CHECK(q.status().code() == StatusCode::kUnavailable);
    CHECK(q.status().message().find("systemd") != std::string::npos);
    CHECK(StartSystemService("mamori-no-such-unit-for-tests", std::chrono::seconds(1)).code() ==
          StatusCode::kUnavailable);
  } else {
    CHECK(q.status().code() == StatusCode::kNotFound);
    CHECK(StopSystemService("mamori-no-such-unit-for-tests", std::chrono::seconds(1)).code() ==
          StatusCode::kNotFound);
  }
  ServiceInstall spec;
  spec.name = "mamori-test";
  CHECK(InstallSystemService(spec).code() == StatusCode::kUnimplemented);
  CHECK(RemoveSystemService("mamori-test").code() == StatusCode::kUnimplemented);
}

TEST_CASE("service state and stop reason names", "[platform]") {
  CHECK(std::string(ServiceStateName(ServiceState::kRunning)) == "running");
  CHECK(std::string(ServiceStateName(ServiceState::kStopPending)) == "stop_pending");
  CHECK(std::string(StopReasonName(StopReason::kPreshutdown)) == "preshutdown");
}

}  // namespace
}  // namespace mamori::platform

// mamori-agent end to end: the real binary, real fanotify on a test-owned
// tmpfs, the real `mamori` CLI on the control socket.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "agent_test_util.h"
#include "mamori/common/file_util.h"

namespace mamori::agent {
namespace {

using namespace std::chrono_literals;
using testing::Eicar;
using testing::InChild;
using testing::TempDir;
using testing::TestMount;
using testing::Watchdog;

struct Run {
  int exit_code = -1;
  std::string out;
};

Run Cli(const std::string& args) {
  FILE* f = ::popen((std::string(MAMORI_BINARY) + " " + args + " 2>&1").c_str(), "r");
  REQUIRE(f != nullptr);
  Run r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) r.out.append(buf, n);
  int st = ::pclose(f);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// The agent under test, stopped with SIGTERM (or killed if it will not stop).
class AgentProcess {
 public:
  AgentProcess(const std::string& config, const std::string& socket, const std::string& log) {
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(fd, 2);
      ::execl(MAMORI_AGENT_BINARY, MAMORI_AGENT_BINARY, "--config", config.c_str(), nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 200 && ::access(socket.c_str(), F_OK) != 0; ++i) std::this_thread::sleep_for(50ms);
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
      std::this_thread::sleep_for(50ms);
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

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds max) {
  auto until = std::chrono::steady_clock::now() + max;
  while (std::chrono::steady_clock::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return cond();
}

// Writes a file from a child process, as another program would.
void WriteAsOther(const std::string& path, const std::string& data, mode_t mode = 0644) {
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

TEST_CASE("mamori-agent blocks and quarantines EICAR written to a watched mount, and answers the CLI") {
  if (::geteuid() != 0) FAIL("the agent end-to-end test needs root (fanotify)");
  TempDir dir;
  TestMount mnt;
  Watchdog wd(90);
  const std::string sock = dir.path() + "/run/agent.sock";
  const std::string data = dir.path() + "/data";
  const std::string config = dir.Write("agent.yaml",
      "log_level: debug\n"
      "data_dir: " + data + "\n"
      "control_socket: " + sock + "\n"
      "signatures: [" MAMORI_SOURCE_DIR "/signatures/default]\n"
      "onaccess:\n"
      "  exec_paths: [" + mnt.path() + "]\n"
      "  open_paths: [" + mnt.path() + "]\n"
      "  action: quarantine\n"
      "  deadline_ms: 3000\n");
  {
    Run check = Cli("version");  // the CLI itself works
    REQUIRE(check.exit_code == 0);
  }
  AgentProcess agent(config, sock, dir.path() + "/agent.log");
  const std::string s = " --socket " + sock;

  Run status = Cli("status" + s);
  CHECK(status.exit_code == 0);
  CHECK(status.out.find("on-access    fanotify") != std::string::npos);

  // Clean files and programs are unaffected.
  WriteAsOther(mnt.path() + "/notes.txt", "hello\n");
  WriteAsOther(mnt.path() + "/tool.sh", "#!/bin/sh\nexit 0\n", 0755);
  CHECK(InChild(mnt.path() + "/notes.txt", false).first == 0);
  CHECK(InChild(mnt.path() + "/tool.sh", true).first == 0);

  // EICAR arrives (a download): opening and executing it are denied fast.
  const std::string bad = mnt.path() + "/invoice.com";
  WriteAsOther(bad, Eicar(), 0755);
  auto [open_err, open_ms] = InChild(bad, false);
  CHECK((open_err == EPERM || open_err == ENOENT));  // denied, or already in quarantine
  CHECK(open_ms < 100);
  auto [exec_err, exec_ms] = InChild(bad, true);
  CHECK((exec_err == EPERM || exec_err == ENOENT));
  CHECK(exec_ms < 100);

  // It ends up in quarantine, and the events say so.
  CHECK(WaitFor([&] { return !std::filesystem::exists(bad); }, 5000ms));
  Run list = Cli("quarantine list" + s);
  CHECK(list.exit_code == 0);
  REQUIRE(list.out.find(bad) != std::string::npos);
  std::string id = list.out.substr(0, 32);
  auto events = ReadFileToString(data + "/events.jsonl");
  REQUIRE(events.ok());
  CHECK(events->find("\"type\":\"quarantine\"") != std::string::npos);
  CHECK(events->find("\"result\":\"quarantined\"") != std::string::npos);
  CHECK(events->find("\"signature\":\"Mamori") != std::string::npos);

  // An admin restores it elsewhere and allow-lists it: it is not caught again.
  const std::string back = mnt.path() + "/restored.com";
  Run restore = Cli("quarantine restore " + id + " --to " + back + " --allow" + s);
  CHECK(restore.exit_code == 0);
  CHECK(*ReadFileToString(back) == Eicar());
  {
    int err = InChild(back, false).first;
    INFO("agent log: " << *ReadFileToString(dir.path() + "/agent.log"));
    CHECK(err == 0);
  }

  // `mamori scan --agent`: performed by the agent, policy applied.
  TempDir elsewhere;
  std::string other = elsewhere.Write("sub/eicar2.com", Eicar() + "\n");
  Run scan = Cli("scan --agent " + elsewhere.path() + s);
  CHECK(scan.exit_code == 1);
  CHECK(scan.out.find("eicar2.com: Mamori_Test_EICAR FOUND") != std::string::npos);
  CHECK(WaitFor([&] { return !std::filesystem::exists(other); }, 5000ms));

  // A forged bundle is refused and the set in use stays.
  Run update = Cli("update --bundle " + dir.Write("forged.mbundle", "not a bundle") + s);
  CHECK(update.exit_code == 1);
  CHECK(update.out.find("update refused") != std::string::npos);

  CHECK(agent.Stop() == 0);  // SIGTERM: clean stop
  CHECK(InChild(mnt.path() + "/notes.txt", false).first == 0);
}

TEST_CASE("mamori-agent --check-config reports errors with file and line") {
  TempDir dir;
  std::string bad = dir.Write("bad.yaml", "data_dir: /tmp/x\nonaccess:\n  action: nuke\n");
  FILE* f = ::popen((std::string(MAMORI_AGENT_BINARY) + " --check-config --config " + bad + " 2>&1").c_str(), "r");
  char buf[1024] = {};
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  int st = ::pclose(f);
  CHECK(WEXITSTATUS(st) == 2);
  CHECK(std::string(buf, n).find(bad + ":3:11: onaccess.action") != std::string::npos);
  std::string good = dir.Write("good.yaml", "data_dir: /tmp/x\nsignatures: [" MAMORI_SOURCE_DIR "/signatures/default]\n");
  f = ::popen((std::string(MAMORI_AGENT_BINARY) + " --check-config --config " + good + " 2>&1").c_str(), "r");
  n = std::fread(buf, 1, sizeof buf - 1, f);
  st = ::pclose(f);
  CHECK(WEXITSTATUS(st) == 0);
  CHECK(std::string(buf, n).find("OK") != std::string::npos);
}

}  // namespace
}  // namespace mamori::agent

namespace mamori::agent {
namespace {

TEST_CASE("mamori-agent honors exclusions, reloads signatures on SIGHUP and runs scheduled scans") {
  if (::geteuid() != 0) FAIL("the agent end-to-end test needs root (fanotify)");
  TempDir dir;
  TestMount mnt;
  Watchdog wd(150);
  const std::string sock = dir.path() + "/agent.sock";
  const std::string data = dir.path() + "/data";
  const std::string sigs = dir.path() + "/sigs";
  dir.Write("sigs/one.yar", "rule Marker_One { strings: $a = \"MAMORI-TEST-MARKER-ONE\" condition: $a }\n");
  TempDir sched;
  sched.Write("scheduled/two.txt", "MAMORI-TEST-MARKER-TWO");
  auto config = [&](const std::string& extra) {
    return dir.Write("agent.yaml",
        "data_dir: " + data + "\ncontrol_socket: " + sock + "\nsignatures: [" + sigs + "]\n"
        "onaccess:\n  open_paths: [" + mnt.path() + "]\n  action: deny\n"
        "exclusions:\n  paths: [\"" + mnt.path() + "/vendor/*\"]\n" + extra);
  };
  std::string cfg = config("");
  AgentProcess agent(cfg, sock, dir.path() + "/agent.log");

  WriteAsOther(mnt.path() + "/one.txt", "MAMORI-TEST-MARKER-ONE");
  ::mkdir((mnt.path() + "/vendor").c_str(), 0755);
  WriteAsOther(mnt.path() + "/vendor/one.txt", "MAMORI-TEST-MARKER-ONE");
  WriteAsOther(mnt.path() + "/two.txt", "MAMORI-TEST-MARKER-TWO");
  CHECK(InChild(mnt.path() + "/one.txt", false).first == EPERM);
  CHECK(InChild(mnt.path() + "/vendor/one.txt", false).first == 0);  // excluded path
  CHECK(InChild(mnt.path() + "/two.txt", false).first == 0);         // no rule for it yet

  // A new rule and a scheduled scan every minute, then SIGHUP.
  dir.Write("sigs/two.yar", "rule Marker_Two { strings: $a = \"MAMORI-TEST-MARKER-TWO\" condition: $a }\n");
  config("scheduled_scans:\n  - name: every-minute\n    schedule: \"* * * * *\"\n    paths: [" + sched.path() + "]\n");
  REQUIRE(::kill(agent.pid(), SIGHUP) == 0);
  CHECK(WaitFor([&] { return ReadFileToString(data + "/events.jsonl")->find("\"type\":\"reloaded\"") != std::string::npos; }, 10000ms));
  CHECK(InChild(mnt.path() + "/two.txt", false).first == EPERM);

  // Excluded processes are not held up: exclude this very test program.
  config("  processes: [" + std::filesystem::read_symlink("/proc/self/exe").string() + "]\n");
  REQUIRE(::kill(agent.pid(), SIGHUP) == 0);
  CHECK(WaitFor([&] {
    auto ev = ReadFileToString(data + "/events.jsonl");
    size_t first = ev->find("\"type\":\"reloaded\"");
    return first != std::string::npos && ev->find("\"type\":\"reloaded\"", first + 1) != std::string::npos;
  }, 10000ms));
  CHECK(InChild(mnt.path() + "/one.txt", false).first == 0);

  // The scheduled scan ran within the minute it was due (set by the first reload).
  config("scheduled_scans:\n  - name: every-minute\n    schedule: \"* * * * *\"\n    paths: [" + sched.path() + "]\n");
  REQUIRE(::kill(agent.pid(), SIGHUP) == 0);
  CHECK(WaitFor([&] {
    auto ev = ReadFileToString(data + "/events.jsonl");
    return ev->find("\"type\":\"scheduled_scan_finished\"") != std::string::npos;
  }, 70000ms));
  auto ev = ReadFileToString(data + "/events.jsonl");
  CHECK(ev->find("\"source\":\"scheduled:every-minute\"") != std::string::npos);
  CHECK(ev->find("Marker_Two") != std::string::npos);
  CHECK(agent.Stop() == 0);
}

}  // namespace
}  // namespace mamori::agent

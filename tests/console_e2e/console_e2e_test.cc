// Issue 7 end to end: the real mamori-server (SQLite, its CA, 127.0.0.1),
// the real mamori-agent enrolled to it, and the real `mamorictl` driven by
// an admin and an analyst with API tokens. Everything the agent scans,
// quarantines, restores or kills is in this test's temp dir or is this
// test's own child process.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utime.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent_test_util.h"
#include "mamori/common/file_util.h"
#include "mamori/common/json.h"
#include "server_process.h"

namespace mamori {
namespace {

using namespace std::chrono_literals;
using testing::AgentProcess;
using testing::TempDir;
using testing::WaitFor;

std::string ReadAll(const std::string& path) {
  auto s = ReadFileToString(path);
  return s.ok() ? *s : std::string();
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

struct Ctl {
  int rc = -1;
  std::string out;  // stdout and stderr
  // The stdout lines parsed as JSON objects (mamorictl --json); others skipped.
  std::vector<json::Value> Objects() const {
    std::vector<json::Value> v;
    size_t at = 0;
    while (at < out.size()) {
      size_t nl = out.find('\n', at);
      if (nl == std::string::npos) nl = out.size();
      std::string line = out.substr(at, nl - at);
      at = nl + 1;
      if (line.empty() || line[0] != '{') continue;
      auto p = json::Parse(line);
      if (p.ok()) v.push_back(std::move(*p));
    }
    return v;
  }
};

std::string Str(const json::Value& v, std::initializer_list<const char*> path) {
  const json::Value* cur = &v;
  for (const char* k : path) {
    cur = cur->Find(k);
    if (cur == nullptr) return "";
  }
  return cur->is_string() || cur->is_number() ? cur->AsString() : "";
}

struct Fixture {
  TempDir dir;
  std::string d = dir.path();
  std::string sock = d + "/agent.sock";
  std::string config;
  std::unique_ptr<telemetry::testing::ServerProcess> server;
  std::unique_ptr<AgentProcess> agent;
  std::string agent_id;
  std::string admin_token_file = d + "/admin.token";
  std::string analyst_token_file = d + "/analyst.token";

  Fixture() {
    // Signed bundles: version 1 at start (EICAR), version 2 pushed later, one signed by a stranger.
    testing::MakeSignedTestBundles(dir);

    REQUIRE(MakeDirs(d + "/server", 0700).ok());
    server = std::make_unique<telemetry::testing::ServerProcess>(
        MAMORI_SERVER_BINARY, d + "/server", "stream:\n  heartbeat_interval: 1s\n  command_poll_interval: 100ms\n");
    Status s = server->Start();
    INFO(s.ToString());
    REQUIRE(s.ok());
    auto ca = server->CaCertificate();
    auto token = server->CreateToken();
    REQUIRE(ca.ok());
    REQUIRE(token.ok());
    dir.Write("ca.crt", *ca);
    dir.Write("token", *token);
    for (auto [name, role, file] : {std::tuple{"alice", "admin", admin_token_file},
                                    std::tuple{"bob", "analyst", analyst_token_file}}) {
      auto t = server->Admin({"user", "add", name, "--role", role});
      INFO(t.status().ToString());
      REQUIRE(t.ok());
      dir.Write(file.substr(d.size() + 1), Trim(*t) + "\n");
    }
    config = dir.Write("agent.yaml", "data_dir: " + d + "/agent\ncontrol_socket: " + sock + "\nsignatures: [" + d +
                                         "/v1.mbundle]\ntrusted_keys: [" + d + "/pub.pub]\n"
                                         "onaccess:\n  enabled: false\n  action: quarantine\nbehavior:\n  enabled: false\n"
                                         "telemetry:\n  servers: [" + server->address() + "]\n  ca_cert: " + d +
                                         "/ca.crt\n  enrollment_token_file: " + d + "/token\n");
    StartAgent();
    REQUIRE(WaitFor([&] {
      Ctl c = Run(admin_token_file, {"agents", "list", "--online"});
      auto objs = c.Objects();
      if (c.rc != 0 || objs.empty()) return false;
      agent_id = Str(objs.front(), {"agent_id"});
      return !agent_id.empty();
    }, 30s));
  }

  void StartAgent() { agent = std::make_unique<AgentProcess>(config, sock, d + "/agent.log"); }

  // mamorictl --json as the user whose token is in `token_file`.
  Ctl Run(const std::string& token_file, const std::vector<std::string>& args) const {
    std::string cmd = std::string("'") + MAMORICTL_BINARY + "' --server " + server->address() + " --ca '" + d +
                      "/ca.crt' --token-file '" + token_file + "' --json";
    for (const auto& a : args) cmd += " '" + a + "'";
    cmd += " 2>&1";
    Ctl c;
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) c.out.append(buf, n);
    int st = ::pclose(p);
    c.rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    return c;
  }
  Ctl Admin(const std::vector<std::string>& args) const { return Run(admin_token_file, args); }
  Ctl Analyst(const std::vector<std::string>& args) const { return Run(analyst_token_file, args); }
};

TEST_CASE("console e2e: remote scan finds and quarantines EICAR, the admin's restore brings back bytes mode and mtime, the analyst's restore is denied and audited") {
  Fixture f;
  const std::string eicar = std::string("X5O!P%@AP[4\\PZX54(P^)7CC)7}") + "$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
  const std::string path = f.dir.Write("inbox/invoice.com", eicar);
  f.dir.Write("inbox/notes.txt", "nothing to see\n");
  REQUIRE(::chmod(path.c_str(), 0640) == 0);
  struct utimbuf times{1700000000, 1700000000};
  REQUIRE(::utime(path.c_str(), &times) == 0);

  Ctl scan = f.Admin({"scan", f.agent_id, f.d + "/inbox", "--wait"});
  INFO(scan.out << "\nagent log:\n" << ReadAll(f.d + "/agent.log"));
  REQUIRE(scan.rc == 1);  // found
  struct stat st{};
  // Quarantined (the agent's action thread moves it, after the scan reports): gone from the folder.
  CHECK(WaitFor([&] { return ::stat(path.c_str(), &st) != 0; }, std::chrono::seconds(10)));
  CHECK(::stat((f.d + "/inbox/notes.txt").c_str(), &st) == 0);

  std::string item;
  REQUIRE(WaitFor([&] {
    Ctl findings = f.Admin({"findings", "--agent", f.agent_id});
    if (findings.out.find("invoice.com") == std::string::npos) return false;
    for (const auto& o : f.Admin({"quarantine", "list", f.agent_id}).Objects()) {
      if (Str(o, {"entry", "detection"}) == "Eicar_Test") item = Str(o, {"entry", "quarantine_id"});
    }
    return !item.empty();
  }, 20s));

  Ctl denied = f.Analyst({"quarantine", "restore", f.agent_id, item});
  CHECK(denied.rc == 2);
  CHECK(denied.out.find("permission denied") != std::string::npos);
  bool audited = false;
  for (const auto& o : f.Admin({"audit", "--actor", "bob"}).Objects()) {
    if (Str(o, {"action"}) == "command.quarantine_restore" && Str(o, {"result"}) == "denied") audited = true;
  }
  CHECK(audited);

  Ctl restore = f.Admin({"quarantine", "restore", f.agent_id, item, "--wait"});
  INFO(restore.out);
  REQUIRE(restore.rc == 0);
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK(ReadAll(path) == eicar);
  CHECK((st.st_mode & 07777) == 0640);
  CHECK(st.st_mtime == 1700000000);
}

TEST_CASE("console e2e: a kill queued while the agent is down runs after it reconnects") {
  Fixture f;
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::execl("/bin/sleep", "sleep", "120", nullptr);
    ::_exit(127);
  }
  // Never kill(-1, ...) or kill(0, ...): only the child, and only while it is unreaped.
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      if (pid <= 0) return;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reaper{child};

  REQUIRE(f.agent->Stop() == 0);
  REQUIRE(WaitFor([&] { return f.Admin({"agents", "list", "--online"}).Objects().empty(); }, 20s));
  Ctl queued = f.Admin({"kill", f.agent_id, std::to_string(child)});
  INFO(queued.out);
  REQUIRE(queued.rc == 0);
  auto objs = queued.Objects();
  REQUIRE_FALSE(objs.empty());
  const std::string command_id = Str(objs.front(), {"command_id"});
  REQUIRE_FALSE(command_id.empty());
  CHECK(::kill(child, 0) == 0);  // nothing ran yet

  f.StartAgent();
  Ctl waited = f.Admin({"command", "wait", command_id, "--timeout", "30"});
  INFO(waited.out << "\nagent log:\n" << ReadAll(f.d + "/agent.log"));
  REQUIRE(waited.rc == 0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  reaper.pid = 0;  // reaped
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
}

TEST_CASE("console e2e: a signed signature push is reported by the agent and a forged one is refused with the reason shown") {
  Fixture f;
  auto rollout = [&] {
    auto objs = f.Admin({"signatures", "status"}).Objects();
    return objs.empty() ? json::Value() : objs.front();
  };
  const std::string before = Str(rollout(), {"signature_version"});
  REQUIRE_FALSE(before.empty());

  Ctl push = f.Admin({"signatures", "push", f.d + "/v2.mbundle", "--agents", f.agent_id});
  INFO(push.out);
  REQUIRE(push.rc == 0);
  std::string after;
  REQUIRE(WaitFor([&] {
    json::Value r = rollout();
    after = Str(r, {"signature_version"});
    return Str(r, {"push_state"}) == "succeeded" && after != before;
  }, 30s));

  Ctl forged = f.Admin({"signatures", "push", f.d + "/forged.mbundle", "--agents", f.agent_id});
  INFO(forged.out);
  REQUIRE(forged.rc == 0);
  json::Value r;
  REQUIRE(WaitFor([&] {
    r = rollout();
    return Str(r, {"push_state"}) == "failed";
  }, 30s));
  INFO(Str(r, {"push_error"}));
  CHECK_FALSE(Str(r, {"push_error"}).empty());
  CHECK(Str(r, {"signature_version"}) == after);  // still the signed version 2

  // Pushing is an admin's action.
  Ctl denied = f.Analyst({"signatures", "push", f.d + "/v2.mbundle", "--agents", f.agent_id});
  CHECK(denied.rc == 2);
  CHECK(denied.out.find("permission denied") != std::string::npos);
}

}  // namespace
}  // namespace mamori

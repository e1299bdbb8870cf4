// README command 1 (scripts/demo) as a test: the quickstart starts a real
// mamori-server and mamori-agent on loopback from this build's binaries,
// shows the EICAR finding, its quarantine entry and the behavior alert
// through mamorictl, leaves both running, and `stop`/`purge` take everything
// down again (processes gone, the demo tmpfs unmounted, the folder removed).
//
// RUN_SERIAL (CMake): the demo agent's behavior monitor sees the whole
// machine and its shipped rules may respond (kill); no other test's process
// may be running while it is up.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

pid_t PidIn(const std::string& pid_file) { return static_cast<pid_t>(std::atoi(Slurp(pid_file).c_str())); }

bool Alive(pid_t pid) { return pid > 0 && ::kill(pid, 0) == 0; }

bool IsMountPoint(const std::string& dir) {
  return std::system(("mountpoint -q '" + dir + "'").c_str()) == 0;
}

struct DemoDir {
  std::string root;
  std::string demo;
  DemoDir() {
    char tmpl[] = "/tmp/mamori-quickstart-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    root = tmpl;
    demo = root + "/demo";
  }
  std::string Env() const {
    return "MAMORI_DEMO_SKIP_BUILD=1 MAMORI_DEMO_BIN='" MAMORI_BUILD_DIR "' MAMORI_DEMO_DIR='" + demo + "' ";
  }
  int Run(const std::string& verb, const std::string& out) const {
    std::string cmd = Env() + "timeout 300 '" MAMORI_SOURCE_DIR "/scripts/demo' " + verb + " >'" + out + "' 2>&1";
    int rc = std::system(cmd.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
  }
  ~DemoDir() {
    // Whatever happened, nothing of the demo stays up.
    Run("purge", root + "/purge.log");
    std::system(("rm -rf '" + root + "'").c_str());
  }
};

}  // namespace

TEST_CASE("quickstart: scripts/demo shows the finding, quarantine entry and alert through mamorictl and stop takes it all down") {
  if (::geteuid() != 0) {
    WARN("skipped: the quickstart's agent part needs root (fanotify, eBPF)");
    return;
  }
  DemoDir d;
  const std::string out = d.root + "/start.log";
  int rc = d.Run("start", out);
  std::string log = Slurp(out);
  INFO(log);
  REQUIRE(rc == 0);
  CHECK(log.find("exit code 1 (0 clean, 1 found, 2 error)") != std::string::npos);
  CHECK(log.find("/watched/invoice.com: scanned when written, moved to the quarantine vault") != std::string::npos);
  CHECK(log.find("Mamori.Test.EICAR.Hash") != std::string::npos);
  CHECK(log.find("e4ba40da-3709-4d47-8b1f-d602cc1a5bd8 /usr/bin/bash") != std::string::npos);
  CHECK(log.find("Mamori is running") != std::string::npos);

  // Left running, and the console works with the written config.
  const std::string run = d.demo + "/run";
  // Kept before stop, which removes the pid files.
  const pid_t server_pid = PidIn(run + "/server.pid");
  const pid_t agent_pid = PidIn(run + "/agent.pid");
  REQUIRE(Alive(server_pid));
  REQUIRE(Alive(agent_pid));
  REQUIRE(IsMountPoint(d.demo + "/watched"));
  const std::string q = d.root + "/quarantine.json";
  REQUIRE(std::system(("'" MAMORI_BUILD_DIR "/server/ctl/mamorictl' --config '" + run + "/mamorictl.conf' --json quarantine list >'" + q + "'").c_str()) == 0);
  CHECK(Slurp(q).find("Mamori.Test.EICAR.Hash") != std::string::npos);

  REQUIRE(d.Run("stop", d.root + "/stop.log") == 0);
  CHECK_FALSE(Alive(server_pid));
  CHECK_FALSE(Alive(agent_pid));
  CHECK_FALSE(IsMountPoint(d.demo + "/watched"));
  struct stat st{};
  CHECK(::stat((d.demo + "/server").c_str(), &st) == 0);  // stop keeps the data

  REQUIRE(d.Run("purge", d.root + "/purge.log") == 0);
  CHECK(::stat(d.demo.c_str(), &st) != 0);
}

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "mamori/behavior/responder.h"
#include "test_util.h"

namespace mamori::behavior {
namespace {

// A child of this test running `sh -c script`; killed and reaped at scope exit
// whatever the test did.
class Child {
 public:
  explicit Child(const char* script) {
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      execl("/bin/sh", "sh", "-c", script, static_cast<char*>(nullptr));
      _exit(127);
    }
    setpgid(pid_, pid_);
  }
  ~Child() {
    kill(-pid_, SIGKILL);
    Reap();
  }
  pid_t pid() const { return pid_; }
  // Waits for the child; returns the signal that killed it (0 if none/not yet).
  int Reap() {
    int status = 0;
    if (!reaped_ && waitpid(pid_, &status, 0) == pid_) {
      reaped_ = true;
      signal_ = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
    return signal_;
  }

 private:
  pid_t pid_;
  bool reaped_ = false;
  int signal_ = 0;
};

bool Alive(pid_t pid) { return kill(pid, 0) == 0; }

std::vector<pid_t> ChildrenOf(pid_t pid) {
  std::vector<pid_t> out;
  for (int i = 0; i < 500 && out.size() < 2; ++i) {  // up to 10 s for the shell to fork twice
    out.clear();
    std::string tasks = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children";
    if (FILE* f = fopen(tasks.c_str(), "r")) {
      int c;
      while (fscanf(f, "%d", &c) == 1) out.push_back(c);
      fclose(f);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return out;
}

TEST_CASE("Kill process kills the test's own child") {
  Child c("sleep 30");
  Responder r({}, nullptr, nullptr);
  auto out = r.KillProcess(c.pid(), 0);
  CHECK(out.done);
  CHECK(out.action == "kill_process");
  CHECK(c.Reap() == SIGKILL);
}

TEST_CASE("Kill process refuses a pid whose start time does not match (pid reuse)") {
  Child c("sleep 30");
  Responder r({}, nullptr, nullptr);
  auto out = r.KillProcess(c.pid(), 1'000'000'000ull);  // 1970: certainly not this process
  CHECK(!out.done);
  CHECK_THAT(out.detail, Catch::Contains("another process"));
  CHECK(Alive(c.pid()));
}

TEST_CASE("Responses never touch the agent, its ancestors or PID 1") {
  Responder r({}, nullptr, nullptr);
  CHECK(r.Protected(getpid()));
  CHECK(r.Protected(getppid()));
  CHECK(r.Protected(1));
  CHECK(r.Protected(2));
  auto self = r.KillProcess(getpid(), 0);
  CHECK(!self.done);
  CHECK_THAT(self.detail, Catch::Contains("protected"));
  CHECK(!r.KillTree(1, 0).done);
  CHECK(!r.KillProcess(getppid(), 0).done);
}

TEST_CASE("Responses never touch the agent's parser workers but do touch its other children") {
  // A fake /proc: pid 400000 is a child of this process running this very
  // binary as a parser worker; 400001 a child running /bin/sleep; 400002 a
  // child forked but not yet exec'd (this binary, this argv).
  char self_exe[4096] = {};
  REQUIRE(::readlink("/proc/self/exe", self_exe, sizeof self_exe - 1) > 0);
  char dir_template[] = "/tmp/mamori-responder-XXXXXX";
  REQUIRE(::mkdtemp(dir_template) != nullptr);
  const std::string root = dir_template;
  auto fake = [&](int pid, const char* comm, const char* exe, const char* argv0) {
    const std::string d = root + "/" + std::to_string(pid);
    REQUIRE(::mkdir(d.c_str(), 0700) == 0);
    std::string stat = std::to_string(pid) + " (" + comm + ") S " + std::to_string(getpid());
    for (int field = 5; field <= 22; ++field) stat += " 1";
    FILE* f = std::fopen((d + "/stat").c_str(), "w");
    REQUIRE(f != nullptr);
    std::fputs((stat + "\n").c_str(), f);
    std::fclose(f);
    REQUIRE(::symlink(exe, (d + "/exe").c_str()) == 0);
    f = std::fopen((d + "/cmdline").c_str(), "w");
    REQUIRE(f != nullptr);
    std::fwrite(argv0, 1, std::strlen(argv0) + 1, f);
    std::fclose(f);
  };
  fake(400000, "mamori-parser", self_exe, "mamori-parser-worker");
  fake(400001, "sleep", "/bin/sleep", "sleep");
  fake(400002, "mamori_behavior", self_exe, "./mamori_behavior_model_tests");  // forked, not yet exec'd
  Responder::Options o;
  o.proc_root = root;
  Responder r(o, nullptr, nullptr);
  CHECK(r.Protected(400000));
  CHECK(!r.Protected(400001));
  CHECK(!r.Protected(400002));
  std::filesystem::remove_all(root);
}

TEST_CASE("Kill tree stops and kills a process and all its descendants") {
  Child c("sleep 30 & sleep 30 & wait");
  std::vector<pid_t> kids = ChildrenOf(c.pid());
  REQUIRE(kids.size() == 2);
  Responder r({}, nullptr, nullptr);
  auto out = r.KillTree(c.pid(), 0);
  CHECK(out.done);
  CHECK(out.detail == "killed 3 processes");
  CHECK(c.Reap() == SIGKILL);
  for (pid_t k : kids) {
    // Orphans are reparented and reaped by init (or a subreaper); wait for them to go.
    bool gone = false;
    for (int i = 0; i < 1000 && !gone; ++i) {
      FILE* f = fopen(("/proc/" + std::to_string(k) + "/stat").c_str(), "r");
      if (f == nullptr) {
        gone = true;
        break;
      }
      char buf[512] = {};
      size_t n = fread(buf, 1, sizeof buf - 1, f);
      fclose(f);
      const char* close = strrchr(buf, ')');
      gone = n > 0 && close != nullptr && (close[2] == 'Z' || close[2] == 'X');
      if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(gone);
  }
}

TEST_CASE("Quarantine responses refuse system paths, also through symlinks") {
  mamori::testing::TempDir dir;
  std::string link = dir.path() + "/bash-link";
  REQUIRE(symlink("/usr/bin/bash", link.c_str()) == 0);
  int calls = 0;
  Responder r({}, nullptr, [&](const std::string&, const std::string&) -> Result<std::string> {
    ++calls;
    return std::string("id-1");
  });
  CHECK_THAT(r.QuarantineFile("quarantine_image", "/usr/bin/bash", "rule").detail,
             Catch::Contains("protected path /usr/"));
  CHECK_THAT(r.QuarantineFile("quarantine_image", link, "rule").detail, Catch::Contains("protected path"));
  CHECK(!r.QuarantineFile("quarantine_target", "relative/path", "rule").done);
  CHECK(calls == 0);

  std::string dropped = dir.Write("payload.sh", "#!/bin/sh\n");
  auto out = r.QuarantineFile("quarantine_target", dropped, "rule");
  CHECK(out.done);
  CHECK(out.detail == "quarantined as id-1");
  CHECK(calls == 1);
}

TEST_CASE("A failing vault is reported, not hidden") {
  mamori::testing::TempDir dir;
  Responder r({}, nullptr, [](const std::string&, const std::string&) -> Result<std::string> {
    return Status(StatusCode::kResourceExhausted, "quota");
  });
  auto out = r.QuarantineFile("quarantine_target", dir.Write("x", "x"), "rule");
  CHECK(!out.done);
  CHECK_THAT(out.detail, Catch::Contains("quota"));
}

}  // namespace
}  // namespace mamori::behavior

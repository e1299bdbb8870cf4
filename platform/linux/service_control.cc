// Linux: systemd through systemctl(1), run with posix_spawnp and a fixed
// argument vector (no shell). systemd must be the init system.
#include "mamori/platform/service_control.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <thread>

extern char** environ;

namespace mamori::platform {
namespace {

struct Ran {
  int exit_code = -1;
  std::string out;
};

Result<Ran> RunSystemctl(const std::vector<std::string>& args) {
  struct stat st {};
  if (::stat("/run/systemd/system", &st) != 0) {
    return UnavailableError("systemd is not the init system here (no /run/systemd/system)");
  }
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return ErrnoError(errno, "systemctl: pipe");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  std::vector<std::string> argv_s{"systemctl"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, "systemctl", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(pipefd[1]);
  if (rc != 0) {
    ::close(pipefd[0]);
    return ErrnoError(rc, "systemctl: spawn");
  }
  Ran ran;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) ran.out.append(buf, static_cast<size_t>(n));
  }
  ::close(pipefd[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ran.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return ran;
}

std::string Unit(const std::string& name) {
  return name.find('.') == std::string::npos ? name + ".service" : name;
}

}  // namespace

Result<ServiceStatus> QueryServiceState(const std::string& name) {
  auto ran = RunSystemctl({"show", "--property=LoadState,ActiveState,SubState,MainPID,ExecMainStatus", "--", Unit(name)});
  if (!ran.ok()) return ran.status();
  if (ran->exit_code != 0) {
    return UnavailableError("systemctl show " + Unit(name) + " exited " + std::to_string(ran->exit_code));
  }
  std::map<std::string, std::string> kv;
  size_t pos = 0;
  while (pos < ran->out.size()) {
    size_t nl = ran->out.find('\n', pos);
    if (nl == std::string::npos) nl = ran->out.size();
    std::string line = ran->out.substr(pos, nl - pos);
    size_t eq = line.find('=');
    if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 1);
    pos = nl + 1;
  }
  if (kv["LoadState"] == "not-found") return NotFoundError("service " + Unit(name) + " is not installed");
  ServiceStatus s;
  const std::string& active = kv["ActiveState"];
  if (active == "active" || active == "reloading") s.state = ServiceState::kRunning;
  else if (active == "activating") s.state = ServiceState::kStartPending;
  else if (active == "deactivating") s.state = ServiceState::kStopPending;
  else s.state = ServiceState::kStopped;
  s.pid = static_cast<uint32_t>(std::strtoul(kv["MainPID"].c_str(), nullptr, 10));
  s.exit_code = static_cast<uint32_t>(std::strtoul(kv["ExecMainStatus"].c_str(), nullptr, 10));
  return s;
}

namespace {

Status StartOrStop(const std::string& verb, const std::string& name, ServiceState want, std::chrono::milliseconds wait) {
  auto q = QueryServiceState(name);
  if (!q.ok()) return q.status();
  if (q->state == want) return Status::Ok();
  auto ran = RunSystemctl({verb, "--no-block", "--", Unit(name)});
  if (!ran.ok()) return ran.status();
  if (ran->exit_code != 0) {
    return ran->exit_code == 4 ? PermissionDeniedError("systemctl " + verb + " " + Unit(name) + ": not allowed")
                               : InternalError("systemctl " + verb + " " + Unit(name) + " exited " +
                                               std::to_string(ran->exit_code));
  }
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    q = QueryServiceState(name);
    if (!q.ok()) return q.status();
    if (q->state == want) return Status::Ok();
    if (std::chrono::steady_clock::now() >= deadline) {
      return DeadlineExceededError("service " + Unit(name) + " is " + ServiceStateName(q->state) + ", not " +
                                   ServiceStateName(want) + ", after " + std::to_string(wait.count()) + " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace

Status StartSystemService(const std::string& name, std::chrono::milliseconds wait) {
  return StartOrStop("start", name, ServiceState::kRunning, wait);
}

Status StopSystemService(const std::string& name, std::chrono::milliseconds wait) {
  return StartOrStop("stop", name, ServiceState::kStopped, wait);
}

Status InstallSystemService(const ServiceInstall& spec) {
  return Status(StatusCode::kUnimplemented,
                "install service " + spec.name + ": on Linux the package installs the systemd unit");
}

Status RemoveSystemService(const std::string& name) {
  return Status(StatusCode::kUnimplemented, "remove service " + name + ": on Linux the package removes the systemd unit");
}

}  // namespace mamori::platform

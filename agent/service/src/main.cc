// mamori-agent: the endpoint protection service.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "agent.h"
#include "mamori/common/log.h"
#include "mamori/scanner/parser_pool.h"
#include "privileges.h"
#include "systemd.h"
#include "watchdog.h"

namespace {

constexpr const char* kUsage =
    "usage: mamori-agent [--config FILE] [--check-config]\n"
    "\n"
    "Runs in the foreground (systemd Type=notify). SIGHUP reloads the config and\n"
    "signatures; SIGTERM stops after answering pending permission events.\n"
    "  --config FILE    default /etc/mamori/agent.yaml\n"
    "  --check-config   validate the config (load the signatures and behavior rules) and exit\n";

mamori::log::Level LevelOf(const std::string& s) {
  using mamori::log::Level;
  return s == "debug" ? Level::kDebug : s == "warning" ? Level::kWarning : s == "error" ? Level::kError : Level::kInfo;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mamori;  // NOLINT(google-build-using-namespace): service main
  // The agent re-runs itself as its confined container/mail parsers.
  if (auto code = scanner::RunParserWorkerIfRequested(argc, argv)) return *code;
  std::string config_path = "/etc/mamori/agent.yaml";
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) config_path = argv[++i];
    else if (a == "--check-config") check = true;
    else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "mamori-agent: unknown argument '%s'\n\n%s", a.c_str(), kUsage);
      return 64;
    }
  }
  auto config = agent::LoadAgentConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "mamori-agent: %s\n", config.status().message().c_str());
    return 2;
  }
  log::SetLevel(LevelOf(config->log_level));
  log::SetJson(config->log_json);
  if (check) {
    auto sigs = agent::LoadConfiguredSignatures(*config, 0);
    if (!sigs.ok()) {
      std::fprintf(stderr, "mamori-agent: %s: signatures: %s\n", config_path.c_str(), sigs.status().message().c_str());
      return 2;
    }
    size_t behavior_rules = 0;
    if (config->behavior_enabled) {
      auto rules = agent::LoadBehaviorRules(*config, nullptr);
      if (!rules.ok()) {
        std::fprintf(stderr, "mamori-agent: %s: %s\n", config_path.c_str(), rules.status().message().c_str());
        return 2;
      }
      behavior_rules = (*rules)->rules().size();
    }
    std::printf("%s: OK (%zu hashes, %zu YARA rules, %zu behavior rules)\n", config_path.c_str(),
                (*sigs)->hashes.size(), (*sigs)->yara ? (*sigs)->yara->rule_count() : size_t{0}, behavior_rules);
    return 0;
  }

  // Signals are taken synchronously by this thread only; every other thread
  // inherits the blocked mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto a = agent::Agent::Create(*config);
  if (!a.ok()) {
    MAMORI_LOG(kError, "cannot start: " << a.status().message());
    return 1;
  }
  if (Status s = (*a)->Start(); !s.ok()) {
    MAMORI_LOG(kError, "cannot start: " << s.message());
    (*a)->Stop();
    return 1;
  }
  // Start-up is over (fanotify marks, eBPF, netlink bound): keep only what
  // the running agent uses (docs/least-privilege.md).
  if (Status s = agent::DropCapabilities(agent::RuntimeCapabilities()); !s.ok()) {
    MAMORI_LOG(kError, "least privilege: " << s.message());
  }
  MAMORI_LOG(kInfo, "mamori-agent started (pid " << getpid() << ", config " << config_path << ")");
  agent::SdNotify("READY=1\nSTATUS=protecting");

  auto ping = agent::SdWatchdogInterval();
  if (ping.count() == 0) ping = config->watchdog_interval;
  // Health is looked at every 5 s at least; a ping only while healthy. A
  // minute of stalled on-access loops without a supervisor to restart us:
  // exit, so the kernel releases every process waiting on our answers.
  const auto tick = std::min<std::chrono::milliseconds>(ping, std::chrono::milliseconds(5000));
  agent::WatchdogGate gate(std::chrono::milliseconds(60'000));
  for (;;) {
    timespec timeout{static_cast<time_t>(tick.count() / 1000), static_cast<long>(tick.count() % 1000) * 1000000};
    int sig = sigtimedwait(&set, nullptr, &timeout);
    if (sig < 0) {
      const Status health = (*a)->CheckHealth();
      switch (gate.Tick(health, std::chrono::steady_clock::now())) {
        case agent::WatchdogGate::Action::kPing: agent::SdNotify("WATCHDOG=1"); break;
        case agent::WatchdogGate::Action::kRecovered: agent::SdNotify("WATCHDOG=1\nSTATUS=protecting"); break;
        case agent::WatchdogGate::Action::kWithhold: agent::SdNotify("STATUS=unhealthy: " + health.message()); break;
        case agent::WatchdogGate::Action::kGiveUp:
          MAMORI_LOG(kError, "watchdog: giving up (" << health.message()
                                                     << "); exiting so that the kernel releases the waiting processes");
          std::_Exit(70);  // no destructors: they would join the stalled threads
      }
      continue;
    }
    if (sig == SIGHUP) {
      agent::SdNotify("RELOADING=1");
      Status s = (*a)->Reload();
      if (s.ok()) MAMORI_LOG(kInfo, "reloaded config and signatures");
      else MAMORI_LOG(kError, "reload refused, still running the previous set: " << s.message());
      agent::SdNotify("READY=1");
      continue;
    }
    MAMORI_LOG(kInfo, "stopping on signal " << sig);
    agent::SdNotify("STOPPING=1");
    (*a)->Stop();
    return 0;
  }
}

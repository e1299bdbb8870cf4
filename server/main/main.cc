// mamori-server: the management server (agent enrollment and telemetry
// streams) plus its administrative verbs.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "admin.h"
#include "mamori/common/log.h"
#include "mamori/server/config.h"
#include "mamori/server/server.h"
#include "mamori/v1/version.h"

namespace {

constexpr const char* kUsage =
    "usage: mamori-server [OPTIONS]                     serve (foreground)\n"
    "       mamori-server [OPTIONS] --check-config      validate the config and exit\n"
    "       mamori-server [OPTIONS] ca export           print the CA certificate (agents pin it)\n"
    "       mamori-server [OPTIONS] token create [--reusable] [--ttl 24h] [--description TEXT] [--json]\n"
    "                                                   print a new enrollment token (shown once)\n"
    "       mamori-server [OPTIONS] token list\n"
    "       mamori-server [OPTIONS] agent list [--json]\n"
    "       mamori-server [OPTIONS] agent revoke ID | agent unrevoke ID\n"
    "       mamori-server [OPTIONS] user add NAME --role admin|analyst [--json]\n"
    "                                                   create a console user; print its API token (shown once)\n"
    "       mamori-server [OPTIONS] user list | user disable NAME | user enable NAME\n"
    "       mamori-server [OPTIONS] user cert NAME --csr FILE [--days 365]\n"
    "                                                   sign a console user's CSR with the CA; print the certificate\n"
    "\n"
    "OPTIONS\n"
    "  --config FILE      default /etc/mamori/server.yaml (built-in defaults when that file is absent)\n"
    "  --data-dir DIR     overrides data_dir (CA, SQLite database, metrics file)\n"
    "  --listen HOST:PORT overrides listen\n"
    "  --insecure         plaintext gRPC, loopback addresses only; agents are not authenticated (tests)\n"
    "  --version\n"
    "\n"
    "SIGHUP reopens the SIEM output files (logrotate); SIGTERM/SIGINT stop the server.\n";

constexpr const char* kDefaultConfig = "/etc/mamori/server.yaml";

mamori::log::Level LevelOf(const std::string& s) {
  using mamori::log::Level;
  return s == "debug" ? Level::kDebug : s == "warning" ? Level::kWarning : s == "error" ? Level::kError : Level::kInfo;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mamori;  // NOLINT(google-build-using-namespace): service main
  std::string config_path, data_dir, listen;
  bool check = false, insecure = false;
  std::vector<std::string> verb;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (!verb.empty()) {
      verb.push_back(a);  // everything after the verb belongs to it
    } else if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a == "--data-dir" && i + 1 < argc) {
      data_dir = argv[++i];
    } else if (a == "--listen" && i + 1 < argc) {
      listen = argv[++i];
    } else if (a == "--insecure") {
      insecure = true;
    } else if (a == "--check-config") {
      check = true;
    } else if (a == "--version") {
      std::printf("mamori-server (protocol %s)\n", mamori::v1::kProtocolVersion);
      return 0;
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (!a.empty() && a[0] != '-') {
      verb.push_back(a);
    } else {
      std::fprintf(stderr, "mamori-server: unknown argument '%s'\n\n%s", a.c_str(), kUsage);
      return 64;
    }
  }

  server::ServerConfig config;
  struct stat st {};
  if (!config_path.empty() || ::stat(kDefaultConfig, &st) == 0) {
    if (config_path.empty()) config_path = kDefaultConfig;
    Result<server::ServerConfig> loaded = server::LoadServerConfig(config_path);
    if (!loaded.ok()) {
      std::fprintf(stderr, "mamori-server: %s\n", loaded.status().message().c_str());
      return 2;
    }
    config = std::move(*loaded);
  }
  if (!data_dir.empty()) {
    if (data_dir.front() != '/') {
      std::fprintf(stderr, "mamori-server: --data-dir must be absolute\n");
      return 2;
    }
    config.data_dir = data_dir;
  }
  if (!listen.empty()) {
    Result<server::HostPort> hp = server::ParseHostPort(listen);
    if (!hp.ok()) {
      std::fprintf(stderr, "mamori-server: --listen: %s\n", hp.status().message().c_str());
      return 2;
    }
    config.listen = listen;
  }
  config.insecure = insecure;
  log::SetLevel(LevelOf(config.log_level));
  log::SetJson(config.log_json);
  if (insecure) {
    if (Status s = server::CheckInsecureAllowed(config); !s.ok()) {
      std::fprintf(stderr, "mamori-server: %s\n", s.message().c_str());
      return 2;
    }
  }
  if (check) {
    std::printf("%s: OK (listen %s, store %s, %zu SIEM outputs)\n",
                config.source.empty() ? "built-in defaults" : config.source.c_str(), config.listen.c_str(),
                config.store.backend == server::StoreConfig::Backend::kPostgres ? "postgres" : "sqlite",
                config.siem.size());
    return 0;
  }
  if (!verb.empty()) {
    return server::RunAdminVerb(config, verb[0], std::vector<std::string>(verb.begin() + 1, verb.end()));
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

  if (config.source.empty()) MAMORI_LOG(kInfo, "no " << kDefaultConfig << ": using built-in defaults");
  Result<std::unique_ptr<server::Store>> store = server::OpenConfiguredStore(config);
  if (!store.ok()) {
    MAMORI_LOG(kError, "cannot open the store: " << store.status().ToString());
    return 1;
  }
  Result<std::unique_ptr<server::Server>> srv = server::Server::Start(config, std::move(*store));
  if (!srv.ok()) {
    MAMORI_LOG(kError, "cannot start: " << srv.status().ToString());
    return 1;
  }
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      Status s = (*srv)->ReopenOutputs();
      if (s.ok())
        MAMORI_LOG(kInfo, "SIGHUP: reopened the SIEM outputs");
      else
        MAMORI_LOG(kError, "SIGHUP: reopening the SIEM outputs: " << s.message());
      continue;
    }
    MAMORI_LOG(kInfo, "stopping on signal " << sig);
    (*srv)->Shutdown();
    return 0;
  }
}

// The mamori-agent service: signatures, on-access protection, quarantine,
// on-demand and scheduled scans, the control socket and the event log.
//
// Lifecycle: Create (validates config, loads signatures, opens the vault) ->
// Start (threads, fanotify, control socket) -> Reload (SIGHUP) ... -> Stop
// (SIGTERM: pending permission events answered first).
//
// Thread safety: Start/Reload/Stop from the main thread; the rest runs on the
// agent's own threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <utility>
#include <string>
#include <thread>
#include <vector>

#include "behavior_service.h"
#include "command_handler.h"
#include "telemetry_service.h"
#include "mamori/agent/config.h"
#include "mamori/agent/control.h"
#include "mamori/agent/event_log.h"
#include "mamori/agent/onaccess.h"
#include "mamori/behavior/responder.h"
#include "mamori/quarantine/vault.h"
#include "mamori/scanner/allow_list.h"
#include "mamori/scanner/parser_pool.h"
#include "mamori/scanner/scanner.h"
#include "mamori/scanner/signature_holder.h"
#include "mamori/scanner/verdict_cache.h"

namespace mamori::agent {

Result<std::shared_ptr<const scanner::SignatureSet>> LoadConfiguredSignatures(const AgentConfig& config,
                                                                              uint64_t min_exclusive_version);

class Agent {
 public:
  static Result<std::unique_ptr<Agent>> Create(AgentConfig config);
  ~Agent();

  Status Start();
  // Re-reads the config file and the signatures (SIGHUP). A bad config or
  // signature set is refused and the running ones stay.
  Status Reload();
  void Stop();

  std::string StatusText() const;
  // OK while the on-access loops turn (their heartbeat is younger than
  // `stale`); kUnavailable naming the stall otherwise. Any thread.
  Status CheckHealth(std::chrono::milliseconds stale = std::chrono::milliseconds(5000)) const;

 private:
  v1::AgentInfo Info() const;
  explicit Agent(AgentConfig config);

  AccessVerdict Decide(const AccessEvent& e);
  void ReportMonitor(const std::string& what, const AccessEvent* e);
  // Applies the configured action to a top-level file with findings; `fd` is
  // the descriptor that was scanned (dup'ed by the caller, owned by the job).
  void Act(const scanner::ScanReport& r, int fd, const std::string& source, pid_t pid);
  void PostAction(std::function<void()> job);
  void ActionLoop();
  void SchedulerLoop();
  int HandleControl(const ControlPeer& peer, const std::vector<std::string>& req, ControlReply& reply);
  // `command_id` tags the findings of a server command's scan; apply_policy
  // false reports only; `progress` (may be null) is read live by the caller;
  // `reported` (may be null) counts the findings reported (not allow-listed).
  int RunScan(const std::vector<std::string>& paths, bool json, const std::string& source, bool idle,
              ControlReply* reply, const std::string& command_id = "", bool apply_policy = true,
              scanner::TreeScanProgress* progress = nullptr, std::atomic<uint64_t>* reported = nullptr);
  // The paths shared by the control socket verbs and the server's commands.
  Status InstallBundle(const std::string& path);
  Result<quarantine::Record> RestoreItem(const std::string& id, const quarantine::RestoreOptions& options);
  CommandOps MakeCommandOps();
  bool ExcludedProcess(pid_t pid) const;
  bool ExcludedPath(const std::string& path) const;
  bool ExcludedHash(const std::string& sha256_hex) const;
  std::shared_ptr<scanner::VerdictCache> CacheFor(const std::shared_ptr<const scanner::SignatureSet>& sigs);
  std::unique_ptr<scanner::Scanner> AcquireScanner(const std::shared_ptr<const scanner::SignatureSet>& sigs);
  void ReleaseScanner(std::unique_ptr<scanner::Scanner> s);

  mutable std::mutex config_mu_;
  AgentConfig config_;  // guarded by config_mu_ (replaced on reload)
  scanner::AllowList restored_allow_;  // guarded by config_mu_: hashes restored with --allow

  scanner::SignatureHolder signatures_;
  std::unique_ptr<quarantine::Vault> vault_;
  std::unique_ptr<EventLog> events_;
  std::unique_ptr<OnAccessMonitor> monitor_;
  std::unique_ptr<ControlServer> control_;
  std::unique_ptr<BehaviorService> behavior_;    // null when behavior.enabled is false
  std::unique_ptr<TelemetryService> telemetry_;  // null when no telemetry.servers
  std::unique_ptr<behavior::Responder> responder_;  // kill_process commands; null without telemetry
  std::unique_ptr<CommandHandler> commands_;        // server commands; null without telemetry
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();

  std::mutex cache_mu_;
  // Set once in Start() before anything scans, never changed after (a config
  // change needs a restart); null when off or when it could not start.
  // Two pools: on-access scans (which hold a process) never wait for a worker
  // busy with a scheduled or remote scan of a big archive.
  std::shared_ptr<scanner::ParserPool> parser_pool_;       // on-access
  std::shared_ptr<scanner::ParserPool> scan_parser_pool_;  // on-demand, scheduled and remote scans
  std::string parser_pool_error_;  // why it is null although configured
  std::shared_ptr<scanner::VerdictCache> cache_;  // guarded by cache_mu_; for the current signature version
  std::string cache_version_;                     // guarded by cache_mu_

  std::mutex pool_mu_;
  std::vector<std::unique_ptr<scanner::Scanner>> pool_;  // guarded by pool_mu_: idle scanners

  std::mutex action_mu_;
  std::condition_variable action_cv_;
  std::deque<std::function<void()>> actions_;  // guarded by action_mu_
  bool stopping_ = false;                      // guarded by action_mu_
  std::set<std::pair<uint64_t, uint64_t>> quarantining_;  // guarded by action_mu_: (dev, ino) queued or in progress
  std::thread action_thread_, scheduler_thread_;
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> scans_running_{0};
};

}  // namespace mamori::agent

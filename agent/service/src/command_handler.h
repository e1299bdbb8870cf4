// Runs the commands mamori-server sends on the agent's authenticated Connect
// stream (proto/mamori/v1/command.proto, docs/agent-commands.md). The uplink
// is the only caller of OnCommand: there is no other way into this class.
//
//   OnCommand (uplink thread): journal the id durably (CommandJournal), then
//   return true (-> CommandAck) and queue the command. A command seen before
//   is never run again; its stored final result is reported again if kept.
//   Expired, unknown or malformed commands are rejected at once.
//
//   Two workers: "long" (scan, signature_push) and "quick" (everything else),
//   so a long scan never holds up a kill or a restore. Each command reports
//   OUTCOME_RUNNING when it starts (scans also every progress_interval with
//   the ScanSummary so far), then its final result. Results go through
//   `report` (the telemetry spool: sequenced events that survive restarts).
//
//   A command accepted but never finished (the agent died mid-way) is
//   reported FAILED (ABORTED) by the next Start: at most once means it is
//   not run again.
//
// Thread safety: OnCommand from any thread (the uplink's); Start/Stop from
// the agent's controlling thread. `ops`, `events` and `report` are called
// from the workers and must be thread-safe.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "command_journal.h"
#include "mamori/agent/event_log.h"
#include "mamori/common/status.h"
#include "mamori/quarantine/vault.h"
#include "mamori/scanner/tree_scan.h"
#include "mamori/v1/command.pb.h"

namespace mamori::agent {

// What the commands act on: the agent's own code paths, the same ones the
// local control socket uses.
struct CommandOps {
  // Scans `paths` like `mamori scan --agent` (findings become scan_finding
  // events carrying `command_id`; apply_policy=false: report only). The
  // handler reads `progress` while it runs and sets progress->cancel on Stop.
  std::function<Result<v1::ScanSummary>(const std::vector<std::string>& paths, bool apply_policy,
                                        const std::string& command_id, scanner::TreeScanProgress* progress)>
      scan;
  std::function<Result<std::vector<quarantine::Record>>()> quarantine_list;
  // `to` empty = the original path; allow_list adds the hash to the agent's allow-list.
  std::function<Result<quarantine::Record>(const std::string& id, const std::string& to, bool allow_list)>
      quarantine_restore;
  std::function<Status(const std::string& id)> quarantine_delete;
  // Verifies (trusted keys, no downgrade) and hot-swaps the bundle file, as
  // `mamori update --bundle` does.
  std::function<Status(const std::string& bundle_path)> install_bundle;
  std::function<v1::AgentInfo()> info;
  // SIGKILL through a pidfd, refusing protected processes and a pid whose
  // start time differs (0 = unchecked); `tree`: its descendants too (stopped
  // first, so none forks away). Error = refused or failed, with why.
  std::function<Status(pid_t pid, uint64_t start_time_ns, bool tree)> kill;
};

struct CommandHandlerOptions {
  std::string data_dir;  // holds commands.journal and bundles/ (pushed bundles while installing)
  std::chrono::milliseconds progress_interval{2000};
  CommandJournal::Options journal;
};

class CommandHandler {
 public:
  using ReportFn = std::function<Status(const v1::CommandResult&)>;

  // Opens the journal. `events` (not owned) must outlive the handler.
  static Result<std::unique_ptr<CommandHandler>> Create(CommandHandlerOptions options, CommandOps ops,
                                                        EventLog* events, ReportFn report);
  ~CommandHandler();  // Stop()

  // Reports commands an earlier run left unfinished, starts the workers.
  Status Start();
  // Cancels a running scan, joins the workers; commands still queued are
  // reported FAILED (ABORTED). Idempotent.
  void Stop();

  // UplinkOptions::on_command. true once the command is durably recorded
  // (or was already): the uplink acknowledges it. Never blocks on execution.
  bool OnCommand(const v1::Command& command);

  // Commands finished since Create (for status and tests).
  uint64_t finished() const { return finished_.load(); }

 private:
  struct Lane {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<v1::Command> queue;  // guarded by mu
    std::thread thread;
  };

  CommandHandler(CommandHandlerOptions options, CommandOps ops, EventLog* events, ReportFn report);
  void Work(Lane* lane);
  v1::CommandResult Execute(const v1::Command& c);
  v1::CommandResult Scan(const v1::Command& c);
  v1::CommandResult Restore(const v1::Command& c);
  v1::CommandResult Delete(const v1::Command& c);
  v1::CommandResult Push(const v1::Command& c);
  v1::CommandResult Kill(const v1::Command& c);
  // Records and reports a final result (journal after the spool: a crash in
  // between reports it twice, and the server keeps the first).
  void Finish(const v1::Command& c, v1::CommandResult r);
  void Running(const v1::Command& c, const v1::ScanSummary* progress);

  const CommandHandlerOptions options_;  // constant
  const CommandOps ops_;                 // constant
  EventLog* const events_;               // not owned
  const ReportFn report_;                // constant
  std::unique_ptr<CommandJournal> journal_;
  Lane long_, quick_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> started_{false};
  std::atomic<uint64_t> finished_{0};
  std::mutex scan_mu_;
  scanner::TreeScanProgress* scan_progress_ = nullptr;  // guarded by scan_mu_: the running scan's
};

// "scan", "quarantine_list", ... (the oneof member's name), "" when unknown.
std::string CommandKindName(const v1::Command& c);

}  // namespace mamori::agent

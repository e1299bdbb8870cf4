// mamori-agent configuration (/etc/mamori/agent.yaml).
//
// Every path is overridable so tests run in temporary folders. Unknown keys
// are errors (a typo must not silently disable protection). Errors name the
// file, line and column: "agent.yaml:12:5: onaccess.action: expected one of
// quarantine, deny, report".
//
// Thread safety: a loaded AgentConfig is a plain value; SIGHUP builds a new one.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "mamori/common/status.h"
#include "mamori/scanner/limits.h"

namespace mamori::agent {

enum class OnAccessAction { kQuarantine, kDeny, kReport };
std::string_view OnAccessActionName(OnAccessAction a);

struct ScheduledScan {
  std::string name;
  std::string schedule;  // cron: "min hour day-of-month month day-of-week"
  std::vector<std::string> paths;
};

struct AgentConfig {
  std::string source;  // the file it came from, for messages

  // Logging.
  std::string log_level = "info";  // debug, info, warning, error
  bool log_json = false;

  // Places.
  std::string data_dir = "/var/lib/mamori";           // quarantine/, cache/, events.jsonl
  std::string control_socket = "/run/mamori/agent.sock";
  std::vector<uint32_t> control_uids = {0};          // peers allowed on the control socket

  // Signatures: a directory, files, or one bundle (*.mbundle) verified with trusted_keys.
  std::vector<std::string> signatures = {"/usr/share/mamori/signatures"};
  std::vector<std::string> trusted_keys;

  // On-access protection.
  bool onaccess_enabled = true;
  std::vector<std::string> exec_paths;   // FAN_OPEN_EXEC_PERM on the mounts holding these
  std::vector<std::string> open_paths;   // FAN_OPEN_PERM on the mounts holding these
  bool scan_on_close_write = true;       // FAN_CLOSE_WRITE on exec_paths and open_paths
  OnAccessAction action = OnAccessAction::kQuarantine;
  std::chrono::milliseconds deadline{2000};  // answer every permission event within this
  uint64_t onaccess_max_file_size = 32ull << 20;  // larger files are allowed unscanned (reported)
  unsigned onaccess_workers = 2;

  // Exclusions (never scanned, never blocked).
  std::vector<std::string> exclude_paths;      // fnmatch globs on the full path
  std::vector<std::string> exclude_processes;  // exe paths
  std::vector<std::string> exclude_sha256;     // hex digests

  // Quarantine.
  uint64_t quarantine_quota = 1ull << 30;
  int64_t quarantine_retention_days = 30;

  // On-demand and scheduled scans.
  unsigned scan_threads = 0;  // 0 = cores
  std::vector<ScheduledScan> scheduled_scans;
  scanner::ScanLimits limits;
  // Containers and mail are opened in confined worker processes
  // (scanner/parser_pool.h, docs/least-privilege.md); read at start only.
  bool parser_sandbox = true;
  unsigned parser_workers = 2;

  // Behavior monitor (EDR): sensors -> process table -> Sigma rules -> responses.
  bool behavior_enabled = true;
  // "auto" (eBPF, falling back to the proc connector), "ebpf", "procconn",
  // "replay" (events from behavior_replay_file; tests) or "none".
  std::string behavior_sensor = "auto";
  std::string behavior_replay_file;
  std::vector<std::string> behavior_rules = {"/usr/share/mamori/behavior"};  // Sigma YAML files or dirs
  // File events are reported under these prefixes only.
  std::vector<std::string> behavior_watch_paths = {"/etc/", "/root/", "/home/", "/tmp/", "/var/tmp/",
                                                   "/dev/shm/", "/var/spool/cron/", "/usr/local/bin/",
                                                   "/var/log/", "/boot/", "/lib/modules/"};
  bool behavior_responses = true;                  // master switch over rules' opt-in responses
  std::vector<std::string> behavior_protected_paths;  // empty: the responder's defaults (system dirs)
  uint64_t behavior_max_processes = 32768;
  bool behavior_record_events = false;             // every event to events.jsonl (verbose)

  // Telemetry to mamori-server: events go to a durable spool (data_dir/spool)
  // and stream over gRPC with mTLS. Enabled when `servers` is set.
  std::vector<std::string> telemetry_servers;   // "host:port", tried in rotation
  std::string telemetry_ca_cert;                // pinned server CA (`mamori-server ca export`)
  std::string telemetry_token_file;             // enrollment token, read at first start
  bool telemetry_insecure = false;              // plaintext; refused unless every server is loopback
  uint64_t telemetry_spool_max_bytes = 1ull << 30;
  bool telemetry_send_behavior_events = true;   // raw activity (low priority), not only alerts
  std::string telemetry_compression = "auto";   // auto, none, gzip, deflate
  // The client certificate is renewed once this share of its validity has
  // passed (0-100; 0 renews at every start, at most once an hour).
  uint64_t telemetry_renew_certificate_at_percent = 67;

  // systemd watchdog ping interval when WATCHDOG_USEC is not set.
  std::chrono::milliseconds watchdog_interval{10000};
};

// Parses YAML text; `source` names it in errors.
Result<AgentConfig> ParseAgentConfig(std::string_view yaml, const std::string& source);
Result<AgentConfig> LoadAgentConfig(const std::string& path);

}  // namespace mamori::agent

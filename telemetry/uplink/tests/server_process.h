// The real mamori-server as a child process, for the end-to-end tests:
// config and data in a temp dir, a loopback port chosen by the kernel at the
// first start and kept across restarts (so the agent reconnects to the same
// address), admin verbs, and read-only checks of its SQLite store.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::telemetry::testing {

class ServerProcess {
 public:
  // `data_dir` must exist. `extra_yaml` is appended to the generated server.yaml.
  // `insecure`: plaintext (--insecure).
  ServerProcess(std::string binary, std::string data_dir, std::string extra_yaml = "", bool insecure = false);
  ~ServerProcess();  // kills the server if it still runs

  // Starts the server and waits until it listens (15 s at most; a restart
  // whose port is taken meanwhile is retried for up to 20 s).
  Status Start();
  // SIGTERM and wait.
  Status Stop();
  // SIGKILL and reap.
  void Kill9();
  bool running() const { return pid_ > 0; }

  // Valid after the first successful Start().
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string db_path() const { return data_dir_ + "/mamori.db"; }
  const std::string& log_path() const { return log_path_; }

  // Runs `mamori-server --config ... VERB...`; returns stdout, or an error
  // naming the exit code and stderr.
  Result<std::string> Admin(const std::vector<std::string>& verb) const;
  Result<std::string> CaCertificate() const { return Admin({"ca", "export"}); }
  Result<std::string> CreateToken() const;

 private:
  Status StartOnce(bool* port_in_use);
  Status WriteConfig() const;

  const std::string binary_, data_dir_, config_path_, log_path_, extra_yaml_;
  const bool insecure_;
  int port_ = 0;  // 0 until the first start
  pid_t pid_ = -1;
};

// Read-only queries of a server's SQLite database (the server may run: WAL).
struct StoredSequences {
  uint64_t rows = 0;
  uint64_t distinct = 0;
  uint64_t min = 0;
  uint64_t max = 0;
  uint64_t marker_mismatches = 0;  // exec events whose process.pid != sequence
};
Result<StoredSequences> QueryStoredSequences(const std::string& db_path, const std::string& agent_id,
                                             bool check_markers);
// The agent's acknowledged sequence (agents.acked_seq), 0 when unknown.
uint64_t QueryAckedSequence(const std::string& db_path, const std::string& agent_id);
// Events of one type for the agent, as serialized mamori.v1.Event payloads.
Result<std::vector<std::string>> QueryPayloads(const std::string& db_path, const std::string& agent_id,
                                               const std::string& type);

}  // namespace mamori::telemetry::testing

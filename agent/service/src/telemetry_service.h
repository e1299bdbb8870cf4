// The agent's link to mamori-server: a durable spool every recorded event
// goes into (data_dir/spool), enrollment at first start (data_dir/keys), and
// the uplink stream that drains the spool with acknowledgements.
//
// Protection never waits for the server: if enrollment or the connection
// fails, events keep going into the spool (within its bound) and a background
// thread retries with backoff.
//
// Thread safety: Create/Start/Stop from the agent's main thread; writer() and
// StatusLine() from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "mamori/agent/config.h"
#include "mamori/common/status.h"
#include "mamori/telemetry/event_writer.h"
#include "mamori/telemetry/spool.h"
#include "mamori/telemetry/uplink.h"
#include "mamori/v1/common.pb.h"

namespace mamori::agent {

// Holds a gRPC library reference for its lifetime; the destructor releases
// it with a blocking shutdown, so gRPC is fully torn down when it returns.
class TelemetryService {
 public:
  // Opens the spool. REQUIRES: !c.telemetry_servers.empty().
  static Result<std::unique_ptr<TelemetryService>> Create(const AgentConfig& c);
  ~TelemetryService();

  // Valid for the service's lifetime.
  telemetry::EventWriter* writer() { return writer_.get(); }

  // `agent_info` is called on the uplink thread for Hello and heartbeats,
  // `on_command` (may be empty) for each command the server sends.
  Status Start(std::function<v1::AgentInfo()> agent_info, std::function<bool(const v1::Command&)> on_command = {});
  // Makes every event written so far durable (the spool's group commit).
  Status Sync() { return spool_->Sync(); }
  void Stop();
  // "telemetry    connected to 127.0.0.1:8443 as <id>: 1234 sent, acked 1200, spool 34 MB".
  std::string StatusLine() const;

 private:
  explicit TelemetryService(const AgentConfig& c);
  void ConnectLoop();
  Result<telemetry::AgentCredentials> Credentials();

  const AgentConfig config_;  // constant
  std::unique_ptr<telemetry::Spool> spool_;
  std::unique_ptr<telemetry::EventWriter> writer_;
  std::function<v1::AgentInfo()> agent_info_;
  std::function<bool(const v1::Command&)> on_command_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                          // guarded by mu_
  std::unique_ptr<telemetry::Uplink> uplink_;      // guarded by mu_
  std::string agent_id_;                           // guarded by mu_
  std::string waiting_reason_;                     // guarded by mu_: why not connected yet
  std::thread thread_;
};

}  // namespace mamori::agent

// The agent's behavior monitor (EDR half): picks the sensor the config and
// the kernel allow, loads the Sigma rules, keeps the process table, records
// alerts, responses and sensor drops in the event log.
//
// Thread safety: Create/Start/Stop/ReloadRules from the agent's main thread;
// StatusLine from any thread.
#pragma once

#include <memory>
#include <string>

#include "mamori/agent/config.h"
#include "mamori/agent/event_log.h"
#include "mamori/behavior/monitor.h"
#include "mamori/behavior/process_table.h"
#include "mamori/behavior/responder.h"
#include "mamori/behavior/rules/rule_set.h"
#include "mamori/telemetry/event_writer.h"

namespace mamori::agent {

// Loads the configured behavior rules. A rule the engine refuses is logged and
// recorded (event "behavior_rule_refused") and the others load; a path that
// cannot be read at all is an error.
Result<std::shared_ptr<const behavior::rules::RuleSet>> LoadBehaviorRules(const AgentConfig& c, EventLog* events);

class BehaviorService {
 public:
  // `events` must outlive the service. `quarantine` moves a file into the
  // agent's vault (used by quarantine_* responses). `telemetry` (may be null,
  // must outlive the service) receives alerts, drops and, if configured, every
  // event, typed.
  static Result<std::unique_ptr<BehaviorService>> Create(const AgentConfig& c, EventLog* events,
                                                         behavior::Responder::QuarantineFn quarantine,
                                                         telemetry::EventWriter* telemetry);
  ~BehaviorService();

  // Chooses and starts the sensor (auto: eBPF, else the proc connector; the
  // reason eBPF was not used is logged and recorded), snapshots /proc, and
  // starts the pipeline.
  Status Start();
  void Stop();
  // Loads the rules of `fresh` and swaps them in; refused as a whole (old
  // rules stay) only when a path cannot be read.
  Status ReloadRules(const AgentConfig& fresh);
  // "behavior     ebpf: 1234 events, 2 alerts, 0 dropped, 41 rules".
  std::string StatusLine() const;
  // "ebpf", "procconn", "replay", "none"; "" before Start.
  std::string sensor_name() const;

 private:
  BehaviorService(const AgentConfig& c, EventLog* events);
  Result<std::unique_ptr<behavior::Sensor>> MakeSensor();
  void RecordAlert(const behavior::AlertRecord& a);
  void RecordEvent(const behavior::Event& e);

  const AgentConfig config_;  // constant: sensor and paths need a restart to change
  EventLog* const events_;
  telemetry::EventWriter* telemetry_ = nullptr;  // set in Create
  std::shared_ptr<const behavior::rules::RuleSet> initial_rules_;
  std::unique_ptr<behavior::ImageHasher> hasher_;
  std::unique_ptr<behavior::ProcessTable> table_;
  std::unique_ptr<behavior::Responder> responder_;
  std::unique_ptr<behavior::Monitor> monitor_;
  std::string fallback_reason_;  // why the preferred sensor was not used; set in Start
};

}  // namespace mamori::agent

// The behavior pipeline: sensor -> process table -> rules engine -> responses
// -> sinks (the agent's event log and, later, the telemetry spool).
//
// Runs on one thread of its own (Start/Stop) or on the caller's thread until
// the sensor's stream ends (Run: replay files in tests and benchmarks).
// Sensor drop reports are always passed to the event sink: lost events are
// never silent.
//
// Thread safety: Start, Stop, Run from one controlling thread; SwapRules and
// stats from any thread. The sinks are called on the pipeline thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mamori/behavior/event.h"
#include "mamori/behavior/process_table.h"
#include "mamori/behavior/responder.h"
#include "mamori/behavior/rules/engine.h"
#include "mamori/behavior/sensor.h"

namespace mamori::behavior {

// An alert as the agent records and ships it.
struct AlertRecord {
  rules::Alert alert;
  // The acting process of the last triggering event and its ancestors,
  // [process, parent, grandparent, ...].
  std::vector<ProcessContext> ancestry;
  std::vector<ResponseOutcome> responses;
};

// One JSON object: rule (id, title, level, tags, file), timestamp, events,
// ancestry (pid, ppid, user, image, command_line, sha256) and responses.
std::string AlertToJson(const AlertRecord& a);

class Monitor {
 public:
  struct Options {
    size_t ancestry_depth = 8;
    std::chrono::milliseconds poll{200};  // how often the thread looks at Stop/SwapRules when idle
    bool responses_enabled = true;        // master switch over rules' opt-in responses
    bool emit_all_events = false;         // also pass every enriched event to the event sink
  };
  struct Sinks {
    std::function<void(const AlertRecord&)> alert;
    std::function<void(const Event&)> event;  // sensor drops always; everything if emit_all_events
  };
  struct Stats {
    std::string sensor;
    uint64_t events = 0;
    uint64_t alerts = 0;
    uint64_t responses = 0;         // response actions attempted
    uint64_t sensor_dropped = 0;    // events the sensor reported lost
    uint64_t correlation_evictions = 0;
    size_t rules = 0;
  };

  // `sensor` must have been started (Sensor::Start). `table` and `responder` are not owned and must outlive the monitor;
  // `responder` may be null (responses then recorded as not executed).
  Monitor(Options options, std::unique_ptr<Sensor> sensor, std::shared_ptr<const rules::RuleSet> rules,
          ProcessTable* table, Responder* responder, Sinks sinks);
  ~Monitor();

  // Starts the pipeline thread.
  Status Start();
  // Stops the sensor and joins the thread. Idempotent.
  void Stop();
  // Processes on this thread until the sensor's stream ends, then closes open
  // correlation windows. Returns the sensor's final status.
  Status Run();

  // New rules take effect before the next event; correlation state starts
  // afresh with them.
  void SwapRules(std::shared_ptr<const rules::RuleSet> rules);
  Stats stats() const;

 private:
  void Loop();
  void Handle(Event* e, rules::Engine* engine, std::vector<rules::Alert>* alerts);
  void Raise(rules::Alert alert);

  const Options options_;
  const std::unique_ptr<Sensor> sensor_;
  ProcessTable* const table_;
  Responder* const responder_;
  const Sinks sinks_;

  mutable std::mutex mu_;
  std::shared_ptr<const rules::RuleSet> rules_;  // guarded by mu_
  std::atomic<bool> rules_changed_{false};       // set with rules_ under mu_
  rules::EngineStats engine_stats_;              // guarded by mu_ (copied from the pipeline thread)

  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> events_{0}, alerts_{0}, responses_{0}, dropped_{0};
  std::thread thread_;
};

}  // namespace mamori::behavior

// Matching behavior events against a RuleSet.
//
//   auto rules = RuleSet::Load({"/etc/mamori/behavior"}, &report);
//   Engine engine(*rules);                  // one per matching thread
//   std::vector<Alert> alerts;
//   engine.Process(event, &alerts);         // appends zero or more alerts
//
// An event is matched only against the rules of the Sigma categories its type
// feeds (kExec -> process_creation, ...). Correlation rules keep per-group
// state inside the Engine; their time is Event::timestamp_ns (never the wall
// clock), so a replay gives the same alerts as the live run.
//
// Thread safety: an Engine is not thread-safe; use one per thread (they may
// share the RuleSet). Lifetime: the Engine keeps its RuleSet alive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "mamori/behavior/event.h"
#include "mamori/behavior/rules/rule_set.h"

namespace mamori::behavior::rules {

// A correlation alert carries at most this many events (the latest ones).
inline constexpr size_t kMaxAlertEvents = 16;

struct Alert {
  std::shared_ptr<const RuleInfo> rule;
  // The matching event for a rule; for a correlation, the events that made it
  // fire, oldest first (at most kMaxAlertEvents, the most recent kept).
  std::vector<Event> events;
  // Timestamp of the event that completed the match (for a correlation whose
  // condition has an upper bound: the end of the window that satisfied it).
  uint64_t timestamp_ns = 0;
};

struct EngineOptions {
  // Live groups (distinct group-by values) per correlation rule. When full,
  // the least recently updated group is evicted (counted in stats).
  size_t max_groups_per_correlation = 10000;
};

struct EngineStats {
  uint64_t events = 0;                 // events given to Process
  uint64_t alerts = 0;                 // alerts appended
  uint64_t rule_evaluations = 0;       // full rule evaluations after the literal prefilter
  uint64_t correlation_groups = 0;     // groups currently held
  uint64_t correlation_evictions = 0;  // groups dropped because a correlation was at its cap
};

class Engine {
 public:
  // REQUIRES: rules != nullptr.
  explicit Engine(std::shared_ptr<const RuleSet> rules, EngineOptions options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Matches `e` and appends the alerts it raises to *out (never clears it).
  // Also closes correlation windows that ended before e.timestamp_ns.
  void Process(const Event& e, std::vector<Alert>* out);

  // Closes correlation windows that ended before `now_ns` without an event
  // (e.g. at the end of a replay: AdvanceTime(UINT64_MAX, &alerts)). Only
  // correlations whose condition has an upper bound (lt/lte/eq) wait for the
  // window to close; the others fire as soon as the condition holds.
  void AdvanceTime(uint64_t now_ns, std::vector<Alert>* out);

  EngineStats stats() const;
  const RuleSet& rule_set() const { return *rules_; }

 private:
  struct State;
  void Match(const Event& e, std::vector<Alert>* out);

  const std::shared_ptr<const RuleSet> rules_;  // constant after construction
  std::unique_ptr<State> state_;
};

}  // namespace mamori::behavior::rules

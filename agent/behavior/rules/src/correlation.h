// Per-Engine state of Sigma correlation rules.
//
// Semantics (docs/behavior-rules.md has the user-facing version):
//  - Time is the events' timestamp_ns. A window covers [start, start + timespan].
//  - Conditions with only lower bounds (gt/gte, and temporal types) slide: the
//    correlation fires as soon as the window ending at the current event
//    satisfies it, then that group starts afresh.
//  - Conditions with an upper bound (lt/lte/eq on event_count/value_count) use
//    a tumbling window opened by the group's first event and judged when the
//    clock passes its end (a later event, or Engine::AdvanceTime).
//  - temporal_ordered needs the referenced rules matched in list order by
//    distinct events, all within one timespan.
//  - Each correlation holds at most `max_groups` groups; beyond that the least
//    recently updated group is evicted (counted). Idle groups expire.
//
// Thread safety: not thread-safe; one per Engine.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <queue>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "compiled.h"
#include "mamori/behavior/rules/engine.h"

namespace mamori::behavior::rules::internal {

class CorrelationRuntime {
 public:
  CorrelationRuntime(const Compiled& compiled, size_t max_groups);
  ~CorrelationRuntime();

  // Feeds the inputs produced by one event `e` (matches of rules that feed
  // correlations); chained correlations that fire are fed in turn. Appends
  // alerts of standalone correlations to *out.
  void Feed(const std::vector<CorrelationInput>& inputs, const Event& e, std::vector<Alert>* out);

  // Judges tumbling windows that ended before `now`.
  void CloseWindowsBefore(uint64_t now, std::vector<Alert>* out);
  // The earliest window end still pending (UINT64_MAX if none).
  uint64_t next_deadline() const { return deadlines_.empty() ? UINT64_MAX : deadlines_.top().at; }

  uint64_t groups() const;
  uint64_t evictions() const { return evictions_; }
  uint64_t alerts() const { return alerts_; }

 private:
  struct Group;
  struct State;  // per correlation
  struct Deadline {
    uint64_t at;
    uint32_t correlation;
    uint64_t window;
    std::string key;
    bool operator>(const Deadline& o) const { return at > o.at; }
  };
  // What one input carries: the events behind the match (one for a rule, the
  // firing events for a chained correlation); the last one completed it.
  struct Input {
    CorrelationInput target;
    std::shared_ptr<const std::vector<Event>> events;
  };

  void Update(const Input& in, std::vector<Input>* fired_next, std::vector<Alert>* out);
  void Fire(uint32_t c, std::vector<Event> events, uint64_t at, std::vector<Input>* fired_next,
            std::vector<Alert>* out);
  Group* Touch(uint32_t c, const std::string& key, uint64_t now, std::vector<Input>* fired_next,
               std::vector<Alert>* out);
  void Erase(uint32_t c, const std::string& key);
  void CloseWindow(uint32_t c, const std::string& key, std::vector<Input>* fired_next, std::vector<Alert>* out);
  void Drain(std::vector<Input> inputs, std::vector<Alert>* out);
  void CompactDeadlines();

  const Compiled& compiled_;
  const size_t max_groups_;
  std::vector<std::unique_ptr<State>> states_;  // per correlation
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<Deadline>> deadlines_;
  uint64_t next_window_ = 1;
  uint64_t evictions_ = 0;
  uint64_t alerts_ = 0;
  EventView view_;  // for group-by keys and counted values
};

}  // namespace mamori::behavior::rules::internal

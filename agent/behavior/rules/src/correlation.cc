#include "correlation.h"

#include <algorithm>
#include <deque>

namespace mamori::behavior::rules::internal {
namespace {

using Type = CorrelationDef::Type;

bool Expired(uint64_t ts, uint64_t now, uint64_t span) { return now > ts && now - ts > span; }

bool Counting(const CorrelationDef& d) { return d.type == Type::kEventCount || d.type == Type::kValueCount; }
bool Tumbling(const CorrelationDef& d) { return d.has_upper && Counting(d); }

// Appends `events` to `to`, keeping the latest kMaxAlertEvents.
template <typename Container>
void AppendBounded(Container* to, const std::vector<Event>& events) {
  for (const Event& e : events) {
    if (to->size() == kMaxAlertEvents) to->erase(to->begin());
    to->push_back(e);
  }
}

}  // namespace

struct CorrelationRuntime::Group {
  std::list<std::string>::iterator lru;
  uint64_t last = 0;  // newest event time seen by the group
  // Tumbling windows.
  uint64_t window_start = 0;
  uint64_t window = 0;
  int64_t count = 0;
  std::unordered_set<std::string> value_set;
  bool value_overflow = false;  // more distinct values than the condition allows
  // Sliding event_count: the timestamps in the window (at most min_count).
  std::deque<uint64_t> times;
  // Sliding value_count: distinct values, least recently seen first.
  std::list<std::pair<std::string, uint64_t>> values;
  std::unordered_map<std::string, std::list<std::pair<std::string, uint64_t>>::iterator> value_pos;
  // temporal: per referenced rule, when it last matched and with which events.
  std::vector<bool> seen;
  std::vector<uint64_t> seen_at;
  std::vector<std::vector<Event>> ref_events;
  // temporal_ordered: per step, the best partial sequence ending there (the
  // latest start leaves the most room).
  struct Step {
    bool valid = false;
    uint64_t start = 0;
    std::vector<Event> chain;
  };
  std::vector<Step> steps;
  // event_count/value_count: the latest events, for the alert.
  std::deque<Event> events;
};

struct CorrelationRuntime::State {
  std::unordered_map<std::string, Group> groups;
  std::list<std::string> lru;  // keys, least recently updated first
};

CorrelationRuntime::CorrelationRuntime(const Compiled& compiled, size_t max_groups)
    : compiled_(compiled), max_groups_(std::max<size_t>(1, max_groups)) {
  for (size_t i = 0; i < compiled.correlations.size(); ++i) states_.push_back(std::make_unique<State>());
}

CorrelationRuntime::~CorrelationRuntime() = default;

uint64_t CorrelationRuntime::groups() const {
  uint64_t n = 0;
  for (const auto& s : states_) n += s->groups.size();
  return n;
}

void CorrelationRuntime::Erase(uint32_t c, const std::string& key) {
  State& s = *states_[c];
  auto it = s.groups.find(key);
  if (it == s.groups.end()) return;
  s.lru.erase(it->second.lru);
  s.groups.erase(it);
}

void CorrelationRuntime::Fire(uint32_t c, std::vector<Event> events, uint64_t at, std::vector<Input>* fired_next,
                              std::vector<Alert>* out) {
  const CorrelationDef& d = compiled_.correlations[c];
  if (events.size() > kMaxAlertEvents) events.erase(events.begin(), events.end() - kMaxAlertEvents);
  auto shared = std::make_shared<const std::vector<Event>>(std::move(events));
  for (const CorrelationInput& f : d.feeds) fired_next->push_back({f, shared});
  if (d.info->standalone) {
    out->push_back(Alert{d.info, *shared, at});
    ++alerts_;
  }
}

void CorrelationRuntime::CloseWindow(uint32_t c, const std::string& key, std::vector<Input>* fired_next,
                                     std::vector<Alert>* out) {
  const CorrelationDef& d = compiled_.correlations[c];
  State& s = *states_[c];
  auto it = s.groups.find(key);
  if (it == s.groups.end()) return;
  Group& g = it->second;
  int64_t n = d.type == Type::kEventCount ? g.count
              : g.value_overflow          ? d.max_count + 1
                                          : static_cast<int64_t>(g.value_set.size());
  if (n >= d.min_count && n <= d.max_count) {
    Fire(c, std::vector<Event>(g.events.begin(), g.events.end()), g.window_start + d.timespan_ns, fired_next, out);
  }
  Erase(c, key);
}

CorrelationRuntime::Group* CorrelationRuntime::Touch(uint32_t c, const std::string& key, uint64_t now,
                                                     std::vector<Input>* fired_next, std::vector<Alert>* out) {
  const CorrelationDef& d = compiled_.correlations[c];
  State& s = *states_[c];
  // Idle groups (nothing within the timespan) hold no useful state.
  while (!s.lru.empty()) {
    const std::string front = s.lru.front();
    if (!Expired(s.groups.at(front).last, now, d.timespan_ns)) break;
    if (Tumbling(d)) {
      CloseWindow(c, front, fired_next, out);
    } else {
      Erase(c, front);
    }
  }
  if (auto it = s.groups.find(key); it != s.groups.end()) {
    Group& g = it->second;
    if (Tumbling(d) && Expired(g.window_start, now, d.timespan_ns)) {
      CloseWindow(c, key, fired_next, out);  // its window ended; this event opens the next
    } else {
      s.lru.splice(s.lru.end(), s.lru, g.lru);
      g.last = std::max(g.last, now);
      return &g;
    }
  }
  if (s.groups.size() >= max_groups_) {
    Erase(c, std::string(s.lru.front()));
    ++evictions_;
  }
  Group& g = s.groups[key];
  g.lru = s.lru.insert(s.lru.end(), key);
  g.last = now;
  const size_t n = d.refs.size();
  if (d.type == Type::kTemporal) {
    g.seen.assign(n, false);
    g.seen_at.assign(n, 0);
    g.ref_events.resize(n);
  } else if (d.type == Type::kTemporalOrdered) {
    g.steps.resize(n);
  }
  if (Tumbling(d)) {
    g.window_start = now;
    g.window = next_window_++;
    deadlines_.push({now + d.timespan_ns, c, g.window, key});
    // Deadlines of evicted or already closed windows stay queued until due;
    // with long timespans and group churn, drop them before they pile up.
    if (deadlines_.size() > 2 * max_groups_ * states_.size() + 1024) CompactDeadlines();
  }
  return &g;
}

void CorrelationRuntime::CompactDeadlines() {
  std::vector<Deadline> live;
  while (!deadlines_.empty()) {
    const Deadline& d = deadlines_.top();
    const State& s = *states_[d.correlation];
    auto it = s.groups.find(d.key);
    if (it != s.groups.end() && it->second.window == d.window) live.push_back(d);
    deadlines_.pop();
  }
  deadlines_ = decltype(deadlines_)(std::greater<Deadline>(), std::move(live));
}

void CorrelationRuntime::Update(const Input& in, std::vector<Input>* fired_next, std::vector<Alert>* out) {
  const uint32_t c = in.target.correlation, k = in.target.ref;
  const CorrelationDef& d = compiled_.correlations[c];
  const CorrelationDef::Ref& ref = d.refs[k];
  const std::vector<Event>& events = *in.events;
  const uint64_t now = events.back().timestamp_ns;  // the event that completed the input
  view_.Reset(events.back());
  std::string key;
  for (FieldId f : ref.group_by) {
    key.append(view_.Raw(f));
    key.push_back('\x1f');
  }
  std::string value;
  if (d.type == Type::kValueCount) {
    value = std::string(view_.Raw(*ref.value_field));
    if (value.empty()) return;  // nothing to count
  }
  Group* g = Touch(c, key, now, fired_next, out);
  const uint64_t span = d.timespan_ns;

  switch (d.type) {
    case Type::kEventCount:
    case Type::kValueCount: {
      AppendBounded(&g->events, events);
      if (Tumbling(d)) {
        if (d.type == Type::kEventCount) {
          ++g->count;
        } else if (!g->value_overflow) {
          g->value_set.insert(std::move(value));
          if (static_cast<int64_t>(g->value_set.size()) > d.max_count) {
            g->value_overflow = true;
            g->value_set.clear();
          }
        }
        return;  // judged when the window closes
      }
      while (!g->events.empty() && Expired(g->events.front().timestamp_ns, now, span)) g->events.pop_front();
      int64_t n = 0;
      if (d.type == Type::kEventCount) {
        g->times.push_back(now);
        while (!g->times.empty() && Expired(g->times.front(), now, span)) g->times.pop_front();
        n = static_cast<int64_t>(g->times.size());
      } else {
        if (auto it = g->value_pos.find(value); it != g->value_pos.end()) {
          it->second->second = now;
          g->values.splice(g->values.end(), g->values, it->second);
        } else {
          g->values.emplace_back(value, now);
          g->value_pos.emplace(std::move(value), std::prev(g->values.end()));
        }
        while (!g->values.empty() && Expired(g->values.front().second, now, span)) {
          g->value_pos.erase(g->values.front().first);
          g->values.pop_front();
        }
        n = static_cast<int64_t>(g->value_pos.size());
      }
      if (n >= d.min_count) {
        Fire(c, std::vector<Event>(g->events.begin(), g->events.end()), now, fired_next, out);
        Erase(c, key);
      }
      return;
    }
    case Type::kTemporal: {
      g->seen[k] = true;
      g->seen_at[k] = now;
      g->ref_events[k].clear();
      AppendBounded(&g->ref_events[k], events);
      int64_t distinct = 0;
      for (size_t i = 0; i < g->seen.size(); ++i) {
        if (g->seen[i] && Expired(g->seen_at[i], now, span)) g->seen[i] = false;
        distinct += g->seen[i];
      }
      if (distinct >= d.min_count) {
        std::vector<Event> all;
        for (size_t i = 0; i < g->seen.size(); ++i) {
          if (g->seen[i]) all.insert(all.end(), g->ref_events[i].begin(), g->ref_events[i].end());
        }
        std::stable_sort(all.begin(), all.end(),
                         [](const Event& a, const Event& b) { return a.timestamp_ns < b.timestamp_ns; });
        Fire(c, std::move(all), now, fired_next, out);
        Erase(c, key);
      }
      return;
    }
    case Type::kTemporalOrdered: {
      auto& steps = g->steps;
      for (auto& s : steps) {
        if (s.valid && Expired(s.start, now, span)) s = {};
      }
      if (k == 0) {
        steps[0].valid = true;
        steps[0].start = now;
        steps[0].chain.clear();
        AppendBounded(&steps[0].chain, events);
      } else if (steps[k - 1].valid && (!steps[k].valid || steps[k].start <= steps[k - 1].start)) {
        steps[k].valid = true;
        steps[k].start = steps[k - 1].start;
        steps[k].chain = steps[k - 1].chain;
        AppendBounded(&steps[k].chain, events);
      }
      if (steps.back().valid) {
        Fire(c, steps.back().chain, now, fired_next, out);
        Erase(c, key);
      }
      return;
    }
  }
}

void CorrelationRuntime::Drain(std::vector<Input> inputs, std::vector<Alert>* out) {
  while (!inputs.empty()) {
    // Later steps first, so one event cannot complete two consecutive steps of
    // a temporal_ordered correlation.
    std::stable_sort(inputs.begin(), inputs.end(), [](const Input& a, const Input& b) {
      return a.target.correlation != b.target.correlation ? a.target.correlation < b.target.correlation
                                                          : a.target.ref > b.target.ref;
    });
    std::vector<Input> next;
    for (const Input& in : inputs) Update(in, &next, out);
    inputs = std::move(next);
  }
}

void CorrelationRuntime::Feed(const std::vector<CorrelationInput>& inputs, const Event& e, std::vector<Alert>* out) {
  auto events = std::make_shared<const std::vector<Event>>(1, e);
  std::vector<Input> all;
  all.reserve(inputs.size());
  for (const CorrelationInput& target : inputs) all.push_back({target, events});
  Drain(std::move(all), out);
}

void CorrelationRuntime::CloseWindowsBefore(uint64_t now, std::vector<Alert>* out) {
  std::vector<Input> next;
  while (!deadlines_.empty() && deadlines_.top().at < now) {
    Deadline d = deadlines_.top();
    deadlines_.pop();
    State& s = *states_[d.correlation];
    auto it = s.groups.find(d.key);
    if (it != s.groups.end() && it->second.window == d.window) CloseWindow(d.correlation, d.key, &next, out);
  }
  Drain(std::move(next), out);
}

}  // namespace mamori::behavior::rules::internal

// The matching hot path: per event, scan the fields its bucket's prefilter
// names, evaluate the candidate rules (and those without a prefilter), then
// hand matches to the correlation runtime. No allocation per event once warm,
// except for the alerts themselves.
#include "mamori/behavior/rules/engine.h"

#include <algorithm>

#include "compiled.h"
#include "correlation.h"

namespace mamori::behavior::rules {

using internal::Atom;
using internal::Bucket;
using internal::Compiled;

struct Engine::State {
  State(const Compiled& c, const EngineOptions& options)
      : compiled(c), correlations(c, options.max_groups_per_correlation) {
    size_t max_rules = 0, max_atoms = 0;
    for (const Bucket& b : c.buckets) {
      max_rules = std::max(max_rules, b.rules.size());
      max_atoms = std::max(max_atoms, b.atoms.size());
    }
    rule_mark.assign(max_rules, 0);
    atom_mark.assign(max_atoms, 0);
    candidates.reserve(max_rules);
  }

  // Starts a new marking generation (rule_mark/atom_mark entries equal to
  // `gen` are set for the current event).
  void NextGeneration() {
    if (++gen == 0) {
      std::fill(rule_mark.begin(), rule_mark.end(), 0);
      std::fill(atom_mark.begin(), atom_mark.end(), 0);
      gen = 1;
    }
  }

  void Candidate(uint32_t pos) {
    if (rule_mark[pos] != gen) {
      rule_mark[pos] = gen;
      candidates.push_back(pos);
    }
  }

  // Constant after construction.
  const Compiled& compiled;  // owned by Engine::rules_
  // Per-event scratch (reused: no allocation once warm) and correlation state.
  internal::CorrelationRuntime correlations;
  internal::EventView view;
  uint32_t gen = 0;
  std::vector<uint32_t> rule_mark;  // per bucket position
  std::vector<uint32_t> atom_mark;  // per bucket atom
  std::vector<uint32_t> candidates;
  std::vector<internal::CorrelationInput> inputs;
  EngineStats stats;
};

Engine::Engine(std::shared_ptr<const RuleSet> rules, EngineOptions options)
    : rules_(std::move(rules)), state_(std::make_unique<State>(rules_->compiled(), options)) {}

Engine::~Engine() = default;

void Engine::Process(const Event& e, std::vector<Alert>* out) {
  State& s = *state_;
  ++s.stats.events;
  const size_t before = out->size();
  if (s.correlations.next_deadline() < e.timestamp_ns) s.correlations.CloseWindowsBefore(e.timestamp_ns, out);
  Match(e, out);
  s.stats.alerts += out->size() - before;
}

void Engine::Match(const Event& e, std::vector<Alert>* out) {
  State& s = *state_;
  const auto type = static_cast<size_t>(e.type);
  if (type >= s.compiled.buckets.size()) return;
  const Bucket& b = s.compiled.buckets[type];
  if (b.rules.empty()) return;
  s.view.Reset(e);
  s.NextGeneration();
  s.candidates.clear();

  // Prefilter: which rules have one of their necessary literals in place.
  for (const Bucket::Scan& scan : b.scans) {
    const std::string_view text = s.view.Raw(scan.field);
    if (text.empty()) continue;
    scan.index.Scan(text, [&](uint32_t local, size_t end) {
      const uint32_t id = scan.atom_base + local;
      if (s.atom_mark[id] == s.gen) return;
      const Bucket::AtomInfo& atom = b.atoms[id];
      const bool at_start = end == atom.length, at_end = end == text.size();
      switch (atom.anchor) {
        case Atom::Anchor::kNone:
          break;
        case Atom::Anchor::kStart:
          if (!at_start) return;
          break;
        case Atom::Anchor::kEnd:
          if (!at_end) return;
          break;
        case Atom::Anchor::kBoth:
          if (!at_start || !at_end) return;
          break;
      }
      s.atom_mark[id] = s.gen;
      for (uint32_t r = atom.rules_begin; r < atom.rules_end; ++r) s.Candidate(b.atom_rules[r]);
    });
  }
  for (uint32_t pos : b.unfiltered) s.Candidate(pos);
  if (s.candidates.empty()) return;
  std::sort(s.candidates.begin(), s.candidates.end());  // alerts in rule order

  s.inputs.clear();
  for (uint32_t pos : s.candidates) {
    const internal::CompiledRule& rule = s.compiled.rules[b.rules[pos]];
    ++s.stats.rule_evaluations;
    if (!rule.detection.program.Eval(rule.category, s.view)) continue;
    if (rule.info->standalone) out->push_back(Alert{rule.info, {e}, e.timestamp_ns});
    s.inputs.insert(s.inputs.end(), rule.feeds.begin(), rule.feeds.end());
  }
  if (!s.inputs.empty()) s.correlations.Feed(s.inputs, e, out);
}

void Engine::AdvanceTime(uint64_t now_ns, std::vector<Alert>* out) {
  const size_t before = out->size();
  state_->correlations.CloseWindowsBefore(now_ns, out);
  state_->stats.alerts += out->size() - before;
}

EngineStats Engine::stats() const {
  EngineStats st = state_->stats;
  st.correlation_groups = state_->correlations.groups();
  st.correlation_evictions = state_->correlations.evictions();
  return st;
}

}  // namespace mamori::behavior::rules

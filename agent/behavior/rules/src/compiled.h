// The compiled form of a RuleSet (RuleSet::compiled()): rules, correlations
// and, per event type, the bucket of rules that type can match with its
// literal prefilter. Built by rule_set.cc, read by the Engine. Immutable once
// built.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "detection.h"
#include "fields.h"
#include "literal_index.h"
#include "mamori/behavior/rules/rule_set.h"

namespace mamori::behavior::rules::internal {

// A place a match is fed to: correlation `correlation`, at position `ref` of
// its `rules:` list.
struct CorrelationInput {
  uint32_t correlation = 0;
  uint32_t ref = 0;
};

struct CompiledRule {
  std::shared_ptr<const RuleInfo> info;
  Category category;
  CompiledDetection detection;
  std::vector<CorrelationInput> feeds;  // correlations that use this rule
};

struct CorrelationDef {
  enum class Type : uint8_t { kEventCount, kValueCount, kTemporal, kTemporalOrdered };
  struct Ref {
    bool is_correlation = false;
    uint32_t index = 0;                  // into Compiled::rules or Compiled::correlations
    std::vector<FieldId> group_by;       // resolved per referenced rule (aliases applied)
    std::optional<FieldId> value_field;  // value_count: the counted field (aliases applied)
  };

  std::shared_ptr<const RuleInfo> info;
  Type type = Type::kEventCount;
  std::vector<Ref> refs;  // in `rules:` order
  uint64_t timespan_ns = 0;
  // The count must lie in [min_count, max_count]. has_upper: some of lt/lte/eq
  // was given, so the count is judged when the window closes (tumbling).
  int64_t min_count = 0;
  int64_t max_count = INT64_MAX;
  bool has_upper = false;
  std::vector<CorrelationInput> feeds;  // correlations chained on this one
};

// The rules an event type can match.
struct Bucket {
  struct Scan {
    FieldId field;
    LiteralIndex index;
    uint32_t atom_base = 0;  // index ids + atom_base = bucket atom id
  };
  struct AtomInfo {
    Atom::Anchor anchor;
    uint32_t length;
    uint32_t rules_begin, rules_end;  // range in atom_rules (positions in `rules`)
  };
  std::vector<uint32_t> rules;       // indices into Compiled::rules, ascending
  std::vector<uint32_t> unfiltered;  // positions in `rules` evaluated for every event
  std::vector<Scan> scans;           // one per (field, scan mode) some prefilter names
  std::vector<AtomInfo> atoms;
  std::vector<uint32_t> atom_rules;
};

struct Compiled {
  std::vector<CompiledRule> rules;
  std::vector<CorrelationDef> correlations;
  std::array<Bucket, kEventTypeCount> buckets;
  std::vector<std::shared_ptr<const RuleInfo>> infos;  // rules then correlations
};

}  // namespace mamori::behavior::rules::internal

// Reading Sigma YAML documents: rule metadata, log source, the `mamori:`
// extension block, the detection section (detection.h) and correlation
// sections. Linking correlations to the rules they name happens afterwards in
// rule_set.cc, once every file is read.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "compiled.h"
#include "mamori/behavior/rules/rule_set.h"

namespace mamori::behavior::rules::internal {

struct ParsedRule {
  std::shared_ptr<RuleInfo> info;
  Category category;
  CompiledDetection detection;
};

struct ParsedCorrelation {
  std::shared_ptr<RuleInfo> info;
  CorrelationDef::Type type = CorrelationDef::Type::kEventCount;
  std::vector<std::string> rule_refs;  // ids or names, as written
  std::vector<std::string> group_by;
  std::map<std::string, std::map<std::string, std::string>> aliases;  // alias -> rule name -> field
  std::string value_field;                                            // value_count
  uint64_t timespan_ns = 0;
  int64_t min_count = 1;
  int64_t max_count = INT64_MAX;
  bool has_upper = false;
  bool generate = false;
};

// A rule that did not load, remembered so that a correlation naming it can
// say why it cannot load either.
struct DroppedRule {
  std::string id;
  std::string name;
  std::string why;  // "skipped: ..." or "refused: ..."
};

struct ParsedFile {
  std::vector<ParsedRule> rules;
  std::vector<ParsedCorrelation> correlations;
  std::vector<DroppedRule> dropped;
};

// Parses every YAML document of `text` (the content of `file`). Refused and
// skipped documents are added to *report (counts included); the others to *out.
void ParseRuleFile(std::string_view text, const std::string& file, ParsedFile* out, LoadReport* report);

// "title (id)" or "title" or "(id)" for report lines.
std::string RuleLabel(const RuleInfo& info);

// Adds a refused/skipped item and bumps its count.
void AddRefused(LoadReport* report, const std::string& file, int line, std::string rule, std::string reason);
void AddSkipped(LoadReport* report, const std::string& file, int line, std::string rule, std::string reason);

}  // namespace mamori::behavior::rules::internal

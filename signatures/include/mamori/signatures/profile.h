// Per-rule YARA scan cost on a sample corpus: a handful of slow rules can
// cost 25x all the others together, and publishers must know which.
//
// Each rule is compiled on its own (with the imports of its file and the
// rules it references) and timed over the corpus held in memory.
//
// Thread safety: free function, no shared state.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::signatures {

struct RuleCost {
  std::string rule;       // rule name
  std::string where;      // "file:line" of the rule
  double seconds = 0;     // scan time over the corpus, this rule alone
  double extra = 0;       // seconds above the baseline (one plain string that never matches)
  bool capped = false;    // stopped at the per-rule budget: the real cost is higher
  std::string error;      // set when the rule could not be compiled alone
};

struct ProfileReport {
  std::vector<RuleCost> rules;  // slowest first; uncompilable ones last
  double all_rules_seconds = 0; // every rule compiled together, same corpus
  double sum_seconds = 0;       // sum over rules measured alone
  double baseline_seconds = 0;  // one plain-string rule over the same corpus: the cost of a pass
  double sum_extra = 0;         // sum of RuleCost::extra
  uint64_t corpus_bytes = 0;
  size_t corpus_files = 0;
};

// A rule's source text split out of a YARA file.
struct RuleSource {
  std::string name;
  std::string text;   // from its modifiers to its closing brace
  int line = 0;       // 1-based line of the rule keyword
  bool global = false;
};

// Splits YARA source into imports and rules (comments, strings, hex strings
// and regular expressions are skipped correctly when matching braces).
// INVALID_ARGUMENT with "file:line" when the structure is broken.
Status SplitYaraRules(std::string_view text, const std::string& file, std::vector<std::string>* imports,
                      std::vector<RuleSource>* rules);

// Each rule is measured for at most `per_rule_budget` (then marked capped).
Result<ProfileReport> ProfileRules(const std::vector<std::string>& rule_files, const std::string& corpus_dir,
                                   uint64_t max_corpus_bytes,
                                   std::chrono::milliseconds per_rule_budget = std::chrono::seconds(10));

}  // namespace mamori::signatures

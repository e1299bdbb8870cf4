// Sigma-compatible behavior rules: loading and compiling a rule set.
//
// A RuleSet is built once from Sigma YAML files (several documents per file
// allowed) and is immutable afterwards. Rules for a Linux log source Mamori
// feeds (docs/behavior-rules.md lists the categories and their fields) are
// compiled to flat matchers indexed by event type; correlation documents
// (Sigma correlation specification 2.0) are linked to the rules they name.
//
// Every rule either loads completely or is left out with a reason:
//   refused - the rule is meant for us but uses something unsupported or is
//             malformed (unknown modifier or field, bad condition, bad regex,
//             unknown response, YAML error...). The reason names file:line.
//   skipped - the rule targets a log source Mamori does not produce (another
//             product, a `service:` such as auditd, another category).
//
// Thread safety: a loaded RuleSet is immutable; share it across threads as
// std::shared_ptr<const RuleSet>. Each thread matches with its own Engine
// (engine.h). To change rules, load a new RuleSet and build new Engines.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::behavior::rules {

// What a rule asks the agent to do when it fires (the `mamori:` block). The
// engine only reports these in the Alert; the response executor acts.
enum class ResponseKind : uint8_t {
  kKillProcess,       // "kill_process": the acting process
  kKillTree,          // "kill_tree": the acting process and its descendants
  kQuarantineImage,   // "quarantine_image": the acting process's executable
  kQuarantineTarget,  // "quarantine_target": the event's TargetFilename
  kIsolate,           // "isolate": network isolation (parsed; the executor may not implement it)
};
std::string_view ResponseKindName(ResponseKind kind);

struct RuleInfo {
  std::string id;    // Sigma `id` ("" when the rule has none)
  std::string name;  // Sigma `name` (how correlations may refer to it), often ""
  std::string title;
  std::string level;  // "informational" | "low" | "medium" | "high" | "critical" | ""
  std::string status;
  std::string description;
  std::string file;               // where it was loaded from (the name given to LoadFromString)
  int line = 0;                   // 1-based line where the YAML document starts
  std::string category;           // logsource category; "" for correlation rules
  std::vector<std::string> tags;  // the ATT&CK tags (`attack.*`), as written
  std::vector<ResponseKind> responses;
  bool correlation = false;
  // False when a correlation refers to the rule and none of the referring
  // correlations says `generate: true` (Sigma default): the rule then only
  // feeds its correlations and raises no alert of its own.
  bool standalone = true;
};

struct LoadReport {
  struct Item {
    std::string file;
    int line = 0;
    std::string rule;  // title, with the id in parentheses when present
    std::string reason;
  };
  int loaded = 0;   // rules and correlation rules ready to match
  int refused = 0;  // == refused_items.size()
  int skipped = 0;  // == skipped_items.size()
  std::vector<Item> refused_items;
  std::vector<Item> skipped_items;

  // Counts, then one line per refused and per skipped rule:
  // "file:line: rule: reason".
  std::string ToText() const;
};

namespace internal {
struct Compiled;
}  // namespace internal

class RuleSet {
 public:
  // Loads every *.yml / *.yaml file under `paths` (files, or directories
  // walked recursively in sorted order). Fails only when a path cannot be read
  // at all (NOT_FOUND / PERMISSION_DENIED / INVALID_ARGUMENT naming it); every
  // per-rule or per-file problem goes to `report` (which may be null) and the
  // other rules still load. Correlations may refer to rules in other files.
  static Result<std::shared_ptr<const RuleSet>> Load(const std::vector<std::string>& paths, LoadReport* report);

  // Same, from YAML text; `name` stands for the file name in messages.
  static Result<std::shared_ptr<const RuleSet>> LoadFromString(std::string_view yaml, std::string_view name,
                                                               LoadReport* report);

  ~RuleSet();
  RuleSet(const RuleSet&) = delete;
  RuleSet& operator=(const RuleSet&) = delete;

  // The loaded rules (base rules then correlation rules, in load order).
  const std::vector<std::shared_ptr<const RuleInfo>>& rules() const;

  // For Engine. Valid as long as this RuleSet.
  const internal::Compiled& compiled() const { return *compiled_; }

 private:
  explicit RuleSet(std::unique_ptr<internal::Compiled> compiled);

  const std::unique_ptr<internal::Compiled> compiled_;  // constant after construction
};

}  // namespace mamori::behavior::rules

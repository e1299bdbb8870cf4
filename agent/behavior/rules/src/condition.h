// Parser for the `condition` of a Sigma detection section. The grammar is at
// the top of condition.cc. The result is an owning AST whose nodes remember
// their offset in the condition text, so later errors (an identifier the
// detection does not define) point at the right column too.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::behavior::rules::internal {

struct CondNode {
  enum class Kind { kAnd, kOr, kNot, kIdentifier, kOneOf, kAllOf };
  Kind kind;
  // kIdentifier: the search identifier. kOneOf/kAllOf: the pattern (may hold
  // `*` wildcards) or "them".
  std::string text;
  std::vector<std::unique_ptr<CondNode>> children;  // kAnd/kOr: 2+, kNot: 1
  int offset = 0;                                   // 0-based byte offset in the condition text
};

struct ConditionError {
  int offset = 0;  // 0-based byte offset in the condition text
  std::string message;
};

// Parses one condition string. On error fills *error and returns null.
std::unique_ptr<CondNode> ParseCondition(std::string_view text, ConditionError* error);

// True if `name` matches the `1 of`/`all of` pattern (`*` = any run of characters).
bool IdentifierPatternMatches(std::string_view pattern, std::string_view name);

}  // namespace mamori::behavior::rules::internal

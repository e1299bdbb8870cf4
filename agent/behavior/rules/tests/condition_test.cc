// The condition language: table-driven truth tables for and/or/not,
// parentheses, `1 of` / `all of` / `them`, and parser errors with positions.
#include "condition.h"

#include <catch2/catch.hpp>

#include "test_util.h"

namespace mamori::behavior::rules {
namespace {

// Four search identifiers, each true when the command line holds its marker.
constexpr const char* kSelections =
    "    sel_a:\n        CommandLine|contains: 'aaa'\n"
    "    sel_b:\n        CommandLine|contains: 'bbb'\n"
    "    filter_c:\n        CommandLine|contains: 'ccc'\n"
    "    _hidden:\n        CommandLine|contains: 'hhh'\n";

struct Case {
  const char* condition;
  const char* command_line;
  bool match;
};

const Case kCases[] = {
    {"sel_a and sel_b", "aaa bbb", true},
    {"sel_a and sel_b", "aaa", false},
    {"sel_a or sel_b", "bbb", true},
    {"sel_a or sel_b", "ccc", false},
    {"not sel_a", "bbb", true},
    {"not sel_a", "aaa", false},
    {"sel_a and not filter_c", "aaa", true},
    {"sel_a and not filter_c", "aaa ccc", false},
    {"1 of sel_*", "bbb", true},
    {"1 of sel_*", "ccc", false},
    {"any of sel_*", "aaa", true},
    {"all of sel_*", "aaa bbb", true},
    {"all of sel_*", "aaa", false},
    {"1 of *_c", "ccc", true},
    {"1 of them", "ccc", true},
    {"1 of them", "hhh", false},  // identifiers starting with '_' are not part of `them`
    {"all of them", "aaa bbb ccc", true},
    {"all of them", "aaa bbb", false},
    {"_hidden", "hhh", true},  // but can be named
    {"1 of sel_a", "aaa", true},
    // Precedence: not > and > or; parentheses override.
    {"sel_a or sel_b and filter_c", "aaa", true},
    {"(sel_a or sel_b) and filter_c", "aaa", false},
    {"(sel_a or sel_b) and filter_c", "bbb ccc", true},
    {"not sel_a and sel_b", "bbb", true},
    {"not sel_a and sel_b", "aaa bbb", false},
    {"not (sel_a or sel_b)", "ccc", true},
    {"not (sel_a or sel_b)", "bbb", false},
    {"not not sel_a", "aaa", true},
    {"sel_a and (sel_b or (filter_c and not _hidden))", "aaa ccc", true},
    {"sel_a and (sel_b or (filter_c and not _hidden))", "aaa ccc hhh", false},
    {"1 of sel_* and not 1 of filter_*", "aaa", true},
    {"1 of sel_* and not 1 of filter_*", "aaa ccc", false},
    // Keywords are case-insensitive; identifiers are not.
    {"sel_a AND NOT filter_c", "aaa", true},
    {"ALL OF sel_*", "aaa bbb", true},
};

TEST_CASE("conditions combine search identifiers as the Sigma specification says") {
  for (const Case& c : kCases) {
    INFO("condition: " << c.condition << "\ncommand line: " << c.command_line);
    auto set = testing::LoadOk(
        testing::RuleText("process_creation", std::string(kSelections) + "    condition: " + c.condition + "\n"));
    auto alerts = testing::Run(set, {testing::Exec({{"CommandLine", c.command_line}})});
    CHECK(alerts.size() == (c.match ? 1u : 0u));
  }
}

TEST_CASE("a list of conditions means any of them") {
  auto set = testing::LoadOk(testing::RuleText(
      "process_creation", std::string(kSelections) + "    condition:\n        - sel_a\n        - sel_b\n"));
  CHECK(testing::Run(set, {testing::Exec({{"CommandLine", "bbb"}})}).size() == 1);
  CHECK(testing::Run(set, {testing::Exec({{"CommandLine", "ccc"}})}).empty());
}

TEST_CASE("condition parser errors name the offset") {
  struct Bad {
    const char* text;
    int offset;
    const char* message;
  };
  const Bad kBad[] = {
      {"", 0, "empty condition"},
      {"sel and (a or b", 8, "unbalanced '('"},
      {"sel)", 3, "unbalanced ')'"},
      {"(sel))", 5, "unbalanced ')'"},
      {"sel and", 7, "condition ends"},
      {"sel and or x", 8, "'or' where an identifier was expected"},
      {"sel | count() > 5", 4, "aggregation"},
      {"sel near other", 4, "unexpected 'near'"},
      {"near other", 0, "'near' is not supported"},
      {"1 of", 4, "expected a pattern"},
      {"all sel", 4, "expected 'of'"},
      {"sel*", 0, "wildcard identifier"},
      {"sel & x", 4, "unexpected character '&'"},
      {"(a or b) c", 9, "unexpected 'c'"},
  };
  const std::string deep_parens = std::string(65, '(') + "a" + std::string(65, ')');
  const std::string deep_nots = [] {
    std::string s;
    for (int i = 0; i < 65; ++i) s += "not ";
    return s + "a";
  }();
  for (const auto& [text, offset] : {std::pair{deep_parens, 64}, std::pair{deep_nots, 256}}) {
    internal::ConditionError err;
    CHECK(internal::ParseCondition(text, &err) == nullptr);
    CHECK(err.offset == offset);
    CHECK_THAT(err.message, Catch::Contains("nests deeper than 64 levels"));
  }
  internal::ConditionError ok;
  CHECK(internal::ParseCondition(std::string(64, '(') + "a" + std::string(64, ')'), &ok) != nullptr);
  for (const Bad& b : kBad) {
    INFO("condition: '" << b.text << "'");
    internal::ConditionError err;
    CHECK(internal::ParseCondition(b.text, &err) == nullptr);
    CHECK(err.offset == b.offset);
    CHECK_THAT(err.message, Catch::Contains(b.message));
  }
}

TEST_CASE("identifier patterns match with stars anywhere") {
  using internal::IdentifierPatternMatches;
  CHECK(IdentifierPatternMatches("selection_*", "selection_img"));
  CHECK(IdentifierPatternMatches("sel*img", "selection_img"));
  CHECK(IdentifierPatternMatches("*", "x"));
  CHECK(IdentifierPatternMatches("selection", "selection"));
  CHECK_FALSE(IdentifierPatternMatches("selection_*", "selection"));
  CHECK_FALSE(IdentifierPatternMatches("filter_*", "selection_filter_x"));
}

}  // namespace
}  // namespace mamori::behavior::rules

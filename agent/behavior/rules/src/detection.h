// Compiles the `detection` section of a Sigma rule into a Program: a flat
// array of and/or/not nodes over FieldTests, evaluated with short-circuit.
// Also derives the rule's prefilter: literals of which at least one must occur
// (case-insensitively, at the given anchor) in its field for the rule to be
// able to match.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fields.h"
#include "matchers.h"

namespace mamori::behavior::rules::internal {

class Program {
 public:
  struct Node {
    enum class Op : uint8_t { kAnd, kOr, kNot, kTest };
    Op op;
    uint32_t begin;  // kAnd/kOr/kNot: range [begin, end) in kids_; kTest: index in tests_
    uint32_t end;
  };

  bool Eval(Category category, EventView& view) const { return Eval(root_, category, view); }

  uint32_t AddTest(FieldTest test);
  uint32_t AddNode(Node::Op op, const std::vector<uint32_t>& kids);
  void set_root(uint32_t root) { root_ = root; }
  uint32_t root() const { return root_; }
  const Node& node(uint32_t n) const { return nodes_[n]; }
  const std::vector<uint32_t>& kids() const { return kids_; }
  const FieldTest& test(uint32_t t) const { return tests_[t]; }
  size_t test_count() const { return tests_.size(); }

 private:
  bool Eval(uint32_t n, Category category, EventView& view) const;

  std::vector<Node> nodes_;
  std::vector<uint32_t> kids_;
  std::vector<FieldTest> tests_;
  uint32_t root_ = 0;
};

struct Atom {
  enum class Anchor : uint8_t { kNone, kStart, kEnd, kBoth };
  FieldId field;
  std::string literal;  // as written (the index folds it)
  Anchor anchor = Anchor::kNone;
};

struct CompiledDetection {
  Program program;
  // At least one of these occurs in any event the rule matches; nullopt when
  // no such set exists (the rule is evaluated for every event of its category).
  std::optional<std::vector<Atom>> prefilter;
};

struct DetectionError {
  YAML::Mark mark;  // where; line/column 0-based as yaml-cpp gives them
  std::string message;
};

// REQUIRES: `detection` is the node under `detection:`. May throw yaml-cpp
// exceptions on malformed nodes (the loader catches them).
bool CompileDetection(const YAML::Node& detection, Category category, CompiledDetection* out, DetectionError* error);

}  // namespace mamori::behavior::rules::internal

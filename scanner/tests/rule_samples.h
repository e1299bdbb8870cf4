// Inert samples for the default YARA rule set (signatures/default/yara).
//
// Every sample is generated at run time: text that imitates what an attacker
// drops (one-liners, configs, web shells) and fake ELF images that are only the
// "\x7f" "ELF" identification bytes, zero padding and the family strings the
// rules look for. Nothing here can run, and the sources are written in pieces
// so that neither this header nor rule_samples.cc matches any rule itself.
#pragma once

#include <string>
#include <vector>

namespace mamori::testing {

// One generated input.
struct RuleSample {
  std::string name;  // short id: test output, dump file names
  std::string data;
};

// The samples of one rule: a row of the table-driven default rule test.
struct RuleSampleSet {
  std::string rule;        // rule name
  std::string name_space;  // rule file stem (CompileFiles uses it as namespace)
  // Each must match `rule` and no other rule of the default set.
  std::vector<RuleSample> positives;
  // Near misses (the benign look-alike, or one ingredient short): must match
  // no rule at all.
  std::vector<RuleSample> negatives;
};

// The 68-byte EICAR test string, assembled from two pieces so that no source
// file contains it.
std::string EicarTestString();

// One entry per rule of the default set, in rule-file order.
std::vector<RuleSampleSet> DefaultRuleSampleSets();

}  // namespace mamori::testing

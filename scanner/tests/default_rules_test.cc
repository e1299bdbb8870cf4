// Table-driven test of the shipped default YARA rules (signatures/default/yara),
// in the spirit of YARA's own tests/test-rules.c: every rule has generated
// positive samples that must match that rule and nothing else, and near-miss
// samples that must match nothing. The samples live in rule_samples.cc.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "mamori/scanner/hash_db.h"
#include "mamori/scanner/hasher.h"
#include "mamori/scanner/yara_engine.h"
#include "rule_samples.h"

#ifndef MAMORI_SOURCE_DIR
#error "MAMORI_SOURCE_DIR (the source tree root) must be defined by the build"
#endif

namespace mamori::scanner {
namespace {

using testing::DefaultRuleSampleSets;
using testing::EicarTestString;
using testing::RuleSampleSet;

const std::string kSourceDir = MAMORI_SOURCE_DIR;
const std::string kRulesDir = kSourceDir + "/signatures/default/yara";

// The shipped rule files, sorted so that failures are reproducible.
std::vector<std::string> DefaultRuleFiles() {
  std::vector<std::string> paths;
  for (const auto& entry : std::filesystem::directory_iterator(kRulesDir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".yar") paths.push_back(entry.path().string());
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Compiles the default rules and returns a scanner over them (REQUIREs success).
std::unique_ptr<YaraScanner> DefaultScanner() {
  auto rules = YaraRules::CompileFiles(DefaultRuleFiles());
  if (!rules.ok()) FAIL(rules.status().ToString());
  auto scanner = YaraScanner::Create(*rules);
  if (!scanner.ok()) FAIL(scanner.status().ToString());
  return std::move(*scanner);
}

std::vector<YaraMatch> Scan(YaraScanner& scanner, std::string_view data) {
  std::vector<YaraMatch> matches;
  Status st = scanner.ScanBuffer(data, std::chrono::seconds(10), &matches);
  if (!st.ok()) FAIL(st.ToString());
  return matches;
}

std::vector<std::string> RuleNames(const std::vector<YaraMatch>& matches) {
  std::vector<std::string> names;
  for (const auto& m : matches) names.push_back(m.rule);
  std::sort(names.begin(), names.end());
  return names;
}

std::string MetaValue(const YaraMatch& m, std::string_view key) {
  for (const auto& [k, v] : m.meta) {
    if (k == key) return v;
  }
  return "";
}

TEST_CASE("Default YARA rules compile without errors or warnings") {
  const std::vector<std::string> files = DefaultRuleFiles();
  REQUIRE(!files.empty());
  auto rules = YaraRules::CompileFiles(files);
  if (!rules.ok()) FAIL(rules.status().ToString());
  // A warning means a slow string (short atoms, unbounded regex): every file
  // is scanned with these rules, so the set must stay fast.
  for (const auto& w : (*rules)->warnings()) UNSCOPED_INFO(w.path << ":" << w.line << ": " << w.message);
  CHECK((*rules)->warnings().empty());
  // One table row per rule: a new rule without samples fails here.
  CHECK((*rules)->rule_count() == DefaultRuleSampleSets().size());
}

TEST_CASE("Default YARA rules: each positive sample matches exactly its rule") {
  auto scanner = DefaultScanner();
  for (const RuleSampleSet& set : DefaultRuleSampleSets()) {
    REQUIRE(!set.positives.empty());
    for (const auto& sample : set.positives) {
      INFO("rule " << set.rule << ", sample " << sample.name);
      const auto matches = Scan(*scanner, sample.data);
      CHECK(RuleNames(matches) == std::vector<std::string>{set.rule});
      for (const auto& m : matches) CHECK(m.name_space == set.name_space);
    }
  }
}

TEST_CASE("Default YARA rules: near-miss samples match no rule") {
  auto scanner = DefaultScanner();
  for (const RuleSampleSet& set : DefaultRuleSampleSets()) {
    REQUIRE(!set.negatives.empty());
    for (const auto& sample : set.negatives) {
      INFO("near miss of " << set.rule << ", sample " << sample.name);
      CHECK(RuleNames(Scan(*scanner, sample.data)).empty());
    }
  }
}

TEST_CASE("Default YARA rules carry description, author, severity, date and tags") {
  auto scanner = DefaultScanner();
  const std::regex date_re("[0-9]{4}-[0-9]{2}-[0-9]{2}");
  const std::set<std::string> severities = {"low", "medium", "high"};
  for (const RuleSampleSet& set : DefaultRuleSampleSets()) {
    // The metadata of a rule is only visible on a match: use its first positive.
    const auto matches = Scan(*scanner, set.positives.front().data);
    REQUIRE(matches.size() == 1);
    const YaraMatch& m = matches[0];
    INFO("rule " << m.rule);
    CHECK(!MetaValue(m, "description").empty());
    CHECK(MetaValue(m, "author") == "Mamori project");
    CHECK(severities.count(MetaValue(m, "severity")) == 1);
    CHECK(std::regex_match(MetaValue(m, "date"), date_re));
    CHECK(!m.tags.empty());
    if (m.rule == "Mamori_Test_EICAR") CHECK(!MetaValue(m, "reference").empty());
  }
}

TEST_CASE("Default YARA rules do not flag the Mamori sources that describe them") {
  // The rule files and the sample generators spell out what the rules look
  // for; a scanner run over the Mamori tree (or a package of it) must not
  // report its own sources.
  auto scanner = DefaultScanner();
  std::vector<std::string> paths = DefaultRuleFiles();
  for (const char* rel : {"/scanner/tests/rule_samples.cc", "/scanner/tests/rule_samples.h",
                          "/scanner/tests/default_rules_test.cc", "/signatures/README.md",
                          "/signatures/default/hashes/eicar.mhdb"}) {
    paths.push_back(kSourceDir + rel);
  }
  const std::string eicar = EicarTestString();
  for (const auto& path : paths) {
    INFO(path);
    const std::string text = ReadFile(path);
    REQUIRE(!text.empty());
    CHECK(RuleNames(Scan(*scanner, text)).empty());
    // Other vendors' scanners look for the EICAR string anywhere in a file.
    CHECK(text.find(eicar) == std::string::npos);
  }
}

TEST_CASE("Default hash signatures list the SHA-256 of the EICAR test file") {
  HashDb db;
  const std::string path = kSourceDir + "/signatures/default/hashes/eicar.mhdb";
  Status st = db.LoadFile(path);
  if (!st.ok()) FAIL(st.ToString());
  db.Finalize();
  const std::string eicar = EicarTestString();
  REQUIRE(eicar.size() == 68);
  const Digests d = Hasher::Of(eicar);
  const auto name = db.Lookup(DigestKind::kSha256, d.bytes(DigestKind::kSha256), eicar.size());
  REQUIRE(name.has_value());
  CHECK(*name == "Mamori.Test.EICAR.Hash");
  // The entry is pinned to 68 bytes: the same digest claimed for another size
  // is not a hit (and cheap size pre-filtering stays possible).
  CHECK(!db.Lookup(DigestKind::kSha256, d.bytes(DigestKind::kSha256), eicar.size() + 1).has_value());
}

}  // namespace
}  // namespace mamori::scanner

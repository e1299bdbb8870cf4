// The default behavior rules (signatures/behavior): every rule file loads,
// fires on its own attack fixture, stays quiet on its near miss, and the whole
// set stays quiet on a replay of ordinary Linux activity.
//
// Fixture convention (signatures/behavior/README.md): for a rule file
// <stem>.yml, tests/<stem>.match.jsonl must raise an alert of the file's
// designated rule (the FIRST YAML document of the file: the rule itself, or the
// correlation in a correlation file) and tests/<stem>.nomatch.jsonl must not.
// tests/benign.jsonl must raise no alert of any rule.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "mamori/behavior/event.h"
#include "mamori/behavior/rules/engine.h"
#include "mamori/behavior/rules/rule_set.h"
#include "mamori/behavior/sensor.h"

#ifndef MAMORI_SOURCE_DIR
#error "MAMORI_SOURCE_DIR (the source tree root) must be defined by the build"
#endif

namespace mamori::behavior::rules {
namespace {

namespace fs = std::filesystem;

const fs::path kRulesDir = fs::path(MAMORI_SOURCE_DIR) / "signatures" / "behavior";
const fs::path kFixturesDir = kRulesDir / "tests";

constexpr int kMinRules = 30;
constexpr size_t kMinBenignEvents = 200;

struct DefaultSet {
  LoadReport report;
  std::shared_ptr<const RuleSet> set;  // null when Load failed outright
  Status status;
};

const DefaultSet& Defaults() {
  static const DefaultSet* d = [] {
    auto* out = new DefaultSet;
    auto set = RuleSet::Load({kRulesDir.string()}, &out->report);
    if (set.ok()) {
      out->set = *set;
    } else {
      out->status = set.status();
    }
    return out;
  }();
  return *d;
}

// The rule files, sorted so that failures are reproducible.
std::vector<fs::path> RuleFiles() {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(kRulesDir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    if (it->is_regular_file() && (p.extension() == ".yml" || p.extension() == ".yaml")) files.push_back(p);
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<std::string> RuleStems() {
  std::vector<std::string> stems;
  for (const fs::path& p : RuleFiles()) stems.push_back(p.stem().string());
  return stems;
}

// The loaded rules of one file, in document order.
std::vector<std::shared_ptr<const RuleInfo>> RulesOfFile(const std::string& stem) {
  std::vector<std::shared_ptr<const RuleInfo>> out;
  if (!Defaults().set) return out;
  for (const auto& r : Defaults().set->rules()) {
    if (fs::path(r->file).stem().string() == stem) out.push_back(r);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a->line < b->line; });
  return out;
}

// The rule a file's fixtures are about: its first YAML document.
std::shared_ptr<const RuleInfo> DesignatedRule(const std::string& stem) {
  auto rules = RulesOfFile(stem);
  return rules.empty() ? nullptr : rules.front();
}

struct Replay {
  Status status;  // the replay sensor's error (bad JSON, unknown key...)
  size_t events = 0;
  std::vector<Alert> alerts;
};

// Feeds a fixture through a fresh Engine, then closes every correlation window.
Replay ReplayFixture(const fs::path& path) {
  Replay r;
  Engine engine(Defaults().set);
  auto sensor = MakeReplaySensor(path.string());
  r.status = sensor->Start();
  if (!r.status.ok()) return r;
  Event e;
  while (sensor->Next(std::chrono::milliseconds(0), &e) == Sensor::NextResult::kEvent) {
    ++r.events;
    engine.Process(e, &r.alerts);
  }
  r.status = sensor->status();
  engine.AdvanceTime(UINT64_MAX, &r.alerts);
  return r;
}

bool Fired(const Replay& r, const std::string& id) {
  return std::any_of(r.alerts.begin(), r.alerts.end(), [&](const Alert& a) { return a.rule && a.rule->id == id; });
}

// "title [file]" of every rule that fired, for failure messages.
std::string Describe(const Replay& r) {
  std::map<std::string, int> counts;
  for (const Alert& a : r.alerts) {
    const std::string file = a.rule ? fs::path(a.rule->file).filename().string() : "?";
    const std::string title = a.rule ? a.rule->title : "?";
    ++counts[title + " [" + file + "]"];
  }
  if (counts.empty()) return "no alerts";
  std::string out;
  for (const auto& [what, n] : counts) out += "\n  " + what + " x" + std::to_string(n);
  return "alerts:" + out;
}

std::string DescribeEvents(const Alert& a) {
  std::string out;
  for (const Event& e : a.events) out += "\n    " + EventToJson(e);
  return out;
}

bool IsTechniqueTag(const std::string& tag) {
  // attack.t1059 or attack.t1059.004
  return tag.size() >= 12 && tag.compare(0, 8, "attack.t") == 0 &&
         std::all_of(tag.begin() + 8, tag.begin() + 12, [](char c) { return c >= '0' && c <= '9'; });
}

TEST_CASE("The default behavior rules load with nothing refused or skipped") {
  const DefaultSet& d = Defaults();
  INFO(d.status.ToString());
  REQUIRE(d.set != nullptr);
  INFO(d.report.ToText());
  CHECK(d.report.refused == 0);
  CHECK(d.report.skipped == 0);
  CHECK(d.report.loaded >= kMinRules);
  CHECK(RuleFiles().size() >= static_cast<size_t>(kMinRules));
  // Every file contributed its rules.
  for (const std::string& stem : RuleStems()) {
    INFO(stem);
    CHECK(DesignatedRule(stem) != nullptr);
  }
}

TEST_CASE("Every default rule is tagged with an ATT&CK technique and has a unique id") {
  const DefaultSet& d = Defaults();
  REQUIRE(d.set != nullptr);
  std::set<std::string> ids;
  for (const auto& r : d.set->rules()) {
    INFO(r->file << ":" << r->line << ": " << r->title);
    CHECK(!r->id.empty());
    CHECK(ids.insert(r->id).second);
    CHECK(std::any_of(r->tags.begin(), r->tags.end(), IsTechniqueTag));
  }
  for (const std::string& stem : RuleStems()) {
    auto rule = DesignatedRule(stem);
    if (!rule) continue;
    INFO(stem << ": " << rule->title);
    // The designated rule is the one that alerts: it carries the metadata.
    CHECK((rule->standalone || rule->correlation));
    CHECK(!rule->level.empty());
    CHECK(!rule->status.empty());
    CHECK(!rule->description.empty());
    // Opt-in responses are reserved for high-confidence detections.
    if (!rule->responses.empty()) CHECK((rule->level == "high" || rule->level == "critical"));
  }
}

TEST_CASE("Every default rule file has a match and a nomatch fixture, and no fixture is orphaned") {
  std::set<std::string> stems;
  for (const std::string& stem : RuleStems()) {
    stems.insert(stem);
    INFO(stem);
    CHECK(fs::is_regular_file(kFixturesDir / (stem + ".match.jsonl")));
    CHECK(fs::is_regular_file(kFixturesDir / (stem + ".nomatch.jsonl")));
  }
  std::error_code ec;
  for (fs::directory_iterator it(kFixturesDir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name == "benign.jsonl") continue;
    INFO(name);
    std::string stem;
    for (const char* suffix : {".match.jsonl", ".nomatch.jsonl"}) {
      const std::string s = suffix;
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
        stem = name.substr(0, name.size() - s.size());
      }
    }
    CHECK(!stem.empty());
    CHECK(stems.count(stem) == 1);
  }
}

TEST_CASE("Each default rule fires on its match fixture and not on its near miss") {
  REQUIRE(Defaults().set != nullptr);
  const std::vector<std::string> stems = RuleStems();
  REQUIRE(!stems.empty());
  const std::string stem = GENERATE_COPY(from_range(stems));
  auto rule = DesignatedRule(stem);
  INFO("rule file: " << stem << ".yml");
  REQUIRE(rule != nullptr);
  INFO("designated rule: " << rule->title << " (" << rule->id << ")");

  const fs::path match = kFixturesDir / (stem + ".match.jsonl");
  const fs::path nomatch = kFixturesDir / (stem + ".nomatch.jsonl");
  {
    Replay r = ReplayFixture(match);
    INFO(match.string() << ": " << r.status.ToString() << ", " << r.events << " events, " << Describe(r));
    REQUIRE(r.status.ok());
    CHECK(r.events > 0);
    CHECK(Fired(r, rule->id));
  }
  {
    Replay r = ReplayFixture(nomatch);
    std::string offending;
    for (const Alert& a : r.alerts) {
      if (a.rule && a.rule->id == rule->id) offending += DescribeEvents(a);
    }
    INFO(nomatch.string() << ": " << r.status.ToString() << ", " << r.events << " events, " << Describe(r)
                          << offending);
    REQUIRE(r.status.ok());
    CHECK(r.events > 0);
    CHECK_FALSE(Fired(r, rule->id));
  }
}

TEST_CASE("Ordinary Linux activity fires no default rule") {
  REQUIRE(Defaults().set != nullptr);
  const fs::path benign = kFixturesDir / "benign.jsonl";
  Replay r = ReplayFixture(benign);
  INFO(benign.string() << ": " << r.status.ToString());
  REQUIRE(r.status.ok());
  CHECK(r.events >= kMinBenignEvents);
  for (const Alert& a : r.alerts) {
    FAIL_CHECK("unexpected alert: " << (a.rule ? a.rule->title + " [" + fs::path(a.rule->file).filename().string() + "]"
                                               : std::string("?"))
                                    << DescribeEvents(a));
  }
  CHECK(r.alerts.empty());
}

}  // namespace
}  // namespace mamori::behavior::rules

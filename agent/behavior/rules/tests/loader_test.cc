// Loading: refused rules say file:line and why, skipped log sources are told
// apart, a bad rule never takes the others down, and a rule never half-loads.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "test_util.h"

namespace mamori::behavior::rules {
namespace {

namespace fs = std::filesystem;

// A temporary directory removed when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "mamori-rules-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string Write(const std::string& name, const std::string& text) const {
    fs::path p = path_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

constexpr const char* kGood = R"(title: Good rule
id: 0a000000-0000-0000-0000-000000000001
logsource:
    product: linux
    category: process_creation
detection:
    selection:
        Image|endswith: '/nc'
    condition: selection
)";

struct Refusal {
  const char* what;
  std::string text;
  int line;             // expected 1-based line in the report
  const char* because;  // substring of the reason
};

std::string Rule(const std::string& detection, const std::string& extra = "") {
  // detection starts on line 6 (title, id, logsource x3, detection:)
  return "title: Bad rule\nid: 0b000000-0000-0000-0000-000000000001\nlogsource:\n    product: linux\n"
         "    category: process_creation\ndetection:\n" +
         detection + extra;
}

const Refusal kRefusals[] = {
    {"unknown modifier", Rule("    selection:\n        Image|containz: x\n    condition: selection\n"), 8,
     "unknown modifier 'containz'"},
    {"unknown identifier in the condition",
     Rule("    selection:\n        Image: x\n    condition: selection and selection2\n"), 9,
     "unknown search identifier 'selection2'"},
    {"unbalanced parenthesis", Rule("    selection:\n        Image: x\n    condition: (selection\n"), 9,
     "unbalanced '('"},
    {"pattern matching nothing", Rule("    selection:\n        Image: x\n    condition: 1 of filter_*\n"), 9,
     "no search identifier matches 'filter_*'"},
    {"no condition", Rule("    selection:\n        Image: x\n"), 7, "no 'condition'"},
    {"field of another category", Rule("    selection:\n        DestinationIp: 1.2.3.4\n    condition: selection\n"), 8,
     "'DestinationIp' is not available in category 'process_creation'"},
    {"Windows-only field", Rule("    selection:\n        OriginalFileName: x.exe\n    condition: selection\n"), 8,
     "'OriginalFileName' is not available on Linux"},
    {"field name case", Rule("    selection:\n        commandline: x\n    condition: selection\n"), 8,
     "did you mean 'CommandLine'"},
    {"bad regex", Rule("    selection:\n        CommandLine|re: '(?<=a)b'\n    condition: selection\n"), 8,
     "regular expression"},
    {"bad cidr", Rule("    selection:\n        CommandLine|cidr: '10.0.0.0/33'\n    condition: selection\n"), 8,
     "invalid CIDR"},
    {"lt with a word", Rule("    selection:\n        ProcessId|lt: many\n    condition: selection\n"), 8,
     "need an integer"},
    {"expand placeholders", Rule("    selection:\n        User|expand: '%admins%'\n    condition: selection\n"), 8,
     "expand"},
    {"conflicting modifiers", Rule("    selection:\n        Image|re|contains: x\n    condition: selection\n"), 8,
     "cannot be combined"},
    {"sub-modifier without re", Rule("    selection:\n        Image|i: x\n    condition: selection\n"), 8,
     "sub-modifier of 're'"},
    {"aggregation", Rule("    selection:\n        Image: x\n    condition: selection | count() > 5\n"), 9,
     "aggregation"},
    {"duplicate key", Rule("    selection:\n        Image: x\n        Image: y\n    condition: selection\n"), 9,
     "duplicate key 'Image'"},
    {"unknown response",
     Rule("    selection:\n        Image: x\n    condition: selection\n",
          "mamori:\n    responses: [kill_everything]\n"),
     11, "unknown response 'kill_everything'"},
    {"unknown mamori key",
     Rule("    selection:\n        Image: x\n    condition: selection\n", "mamori:\n    respones: [kill_process]\n"),
     11, "unknown key 'respones'"},
    {"unknown level", Rule("    selection:\n        Image: x\n    condition: selection\n", "level: severe\n"), 10,
     "unknown level 'severe'"},
    {"no title", "logsource:\n    product: linux\n    category: process_creation\n", 1, "no 'title'"},
};

TEST_CASE("unsupported or malformed rules are refused with file:line and a reason") {
  for (const Refusal& r : kRefusals) {
    INFO(r.what << "\n" << r.text);
    LoadReport report;
    auto set = RuleSet::LoadFromString(r.text + "---\n" + kGood, "rules/bad.yml", &report);
    REQUIRE(set.ok());
    CHECK(report.loaded == 1);  // the good rule after it still loads
    REQUIRE(report.refused == 1);
    const auto& item = report.refused_items[0];
    CHECK(item.file == "rules/bad.yml");
    CHECK(item.line == r.line);
    CHECK_THAT(item.reason, Catch::Contains(r.because));
    CHECK_THAT(report.ToText(), Catch::Contains("rules/bad.yml:" + std::to_string(r.line) + ": "));
    REQUIRE((*set)->rules().size() == 1);
    CHECK((*set)->rules()[0]->title == "Good rule");
  }
}

TEST_CASE("a YAML syntax error refuses its document, with the line") {
  LoadReport report;
  const std::string broken = "title: Broken\ndetection:\n    selection: [unclosed\n";
  auto set = RuleSet::LoadFromString(std::string(kGood) + "---\n" + broken + "---\n" +
                                         std::string(kGood).replace(std::string(kGood).find("0001"), 4, "0002"),
                                     "three.yml", &report);
  REQUIRE(set.ok());
  CHECK(report.loaded == 2);  // the documents around it
  REQUIRE(report.refused == 1);
  CHECK(report.refused_items[0].rule == "Broken");
  CHECK(report.refused_items[0].line >= 12);  // inside the second document (lines 11-13)
  CHECK(report.refused_items[0].line <= 14);
  CHECK_THAT(report.refused_items[0].reason, Catch::Contains("YAML error"));
}

TEST_CASE("malformed YAML that makes yaml-cpp 0.7's LoadAll spin is refused promptly") {
  for (const char* text : {"!,", ",", "!....,....time..", "- !+(.,.)", "[:", "{:", "---\n!,\n---\n,\n"}) {
    INFO(text);
    LoadReport report;
    auto set = RuleSet::LoadFromString(text, "spin.yml", &report);
    REQUIRE(set.ok());
    CHECK(report.loaded == 0);
  }
}

TEST_CASE("directives and comments before the first --- belong to the first document") {
  LoadReport report;
  auto set = RuleSet::LoadFromString(std::string("%YAML 1.2\n# a comment\n---\n") + kGood, "directive.yml", &report);
  REQUIRE(set.ok());
  INFO(report.ToText());
  CHECK(report.loaded == 1);
  CHECK(report.refused == 0);
  CHECK((*set)->rules().at(0)->line == 4);
}

TEST_CASE("rules for log sources Mamori does not produce are skipped, not refused") {
  const std::string text = std::string(kGood) +
                           "---\ntitle: Windows\nlogsource:\n    product: windows\n    category: process_creation\n"
                           "detection:\n    s:\n        OriginalFileName: x\n    condition: s\n"
                           "---\ntitle: Auditd\nlogsource:\n    product: linux\n    service: auditd\n"
                           "detection:\n    s:\n        type: EXECVE\n    condition: s\n"
                           "---\ntitle: DNS\nlogsource:\n    product: linux\n    category: dns\n"
                           "detection:\n    s:\n        query: x\n    condition: s\n";
  LoadReport report;
  auto set = RuleSet::LoadFromString(text, "mixed.yml", &report);
  REQUIRE(set.ok());
  CHECK(report.loaded == 1);
  CHECK(report.refused == 0);
  REQUIRE(report.skipped == 3);
  CHECK(report.skipped_items[0].reason == "unsupported logsource (product: windows)");
  CHECK(report.skipped_items[1].reason == "unsupported logsource (service: auditd)");
  CHECK(report.skipped_items[2].reason == "unsupported logsource (category: dns)");
  CHECK(report.skipped_items[1].line == 22);  // its logsource mapping
}

TEST_CASE("a directory loads recursively and bad files do not stop the others") {
  TempDir dir;
  dir.Write("a/good.yml", kGood);
  dir.Write("a/broken.yaml", "title: [\n");
  dir.Write("b/multi.yml", Rule("    selection:\n        Image: x\n    condition: selection and nope\n") + "---\n" +
                               std::string(kGood).replace(std::string(kGood).find("0001"), 4, "0002"));
  dir.Write("b/notes.txt", "not a rule");
  dir.Write(".git/ignored.yml", "title: [\n");
  LoadReport report;
  auto set = RuleSet::Load({dir.path()}, &report);
  REQUIRE(set.ok());
  INFO(report.ToText());
  CHECK(report.loaded == 2);
  CHECK(report.refused == 2);
  CHECK_THAT(report.ToText(), Catch::Contains("broken.yaml:"));
  CHECK_THAT(report.ToText(), Catch::Contains("multi.yml:9: Bad rule"));
  auto alerts = testing::Run(*set, {testing::Exec({{"Image", "/usr/bin/nc"}})});
  CHECK(alerts.size() == 2);
}

TEST_CASE("an unreadable path is an error naming it") {
  LoadReport report;
  auto set = RuleSet::Load({"/nonexistent/mamori/rules"}, &report);
  REQUIRE_FALSE(set.ok());
  CHECK(set.status().code() == StatusCode::kNotFound);
  CHECK_THAT(set.status().message(), Catch::Contains("/nonexistent/mamori/rules"));
}

TEST_CASE("a rule with one bad part is refused whole and never fires") {
  // The first selection alone would match; the second one is broken.
  const std::string text = Rule(
      "    selection:\n        Image|endswith: '/nc'\n    other:\n        Image|bogus: x\n"
      "    condition: selection or other\n");
  LoadReport report;
  auto set = RuleSet::LoadFromString(text, "half.yml", &report);
  REQUIRE(set.ok());
  CHECK(report.loaded == 0);
  CHECK(report.refused == 1);
  CHECK((*set)->rules().empty());
  CHECK(testing::Run(*set, {testing::Exec({{"Image", "/usr/bin/nc"}})}).empty());
}

TEST_CASE("a second rule with the same id is refused") {
  LoadReport report;
  auto set = RuleSet::LoadFromString(std::string(kGood) + "---\n" + kGood, "dup.yml", &report);
  REQUIRE(set.ok());
  CHECK(report.loaded == 1);
  REQUIRE(report.refused == 1);
  CHECK_THAT(report.refused_items[0].reason, Catch::Contains("duplicate rule id (also dup.yml:1)"));
}

TEST_CASE("metadata and responses reach RuleInfo") {
  auto set = testing::LoadOk(R"(title: Reverse shell
id: 0c000000-0000-0000-0000-000000000001
status: test
description: bash with /dev/tcp
level: critical
tags:
    - attack.execution
    - attack.t1059.004
    - detection.emerging-threats
    - cve.2021-1234
logsource:
    product: linux
    category: process_creation
detection:
    selection:
        CommandLine|contains: '/dev/tcp/'
    condition: selection
mamori:
    responses: [kill_process, quarantine_image, isolate, kill_process]
)");
  const RuleInfo& info = *set->rules().at(0);
  CHECK(info.id == "0c000000-0000-0000-0000-000000000001");
  CHECK(info.level == "critical");
  CHECK(info.status == "test");
  CHECK(info.category == "process_creation");
  CHECK(info.file == "test.yml");
  CHECK(info.line == 1);
  CHECK(info.tags == std::vector<std::string>{"attack.execution", "attack.t1059.004"});
  CHECK(info.responses ==
        std::vector<ResponseKind>{ResponseKind::kKillProcess, ResponseKind::kQuarantineImage, ResponseKind::kIsolate});
  CHECK_FALSE(info.correlation);
  CHECK(info.standalone);
  CHECK(ResponseKindName(ResponseKind::kQuarantineTarget) == "quarantine_target");
}

}  // namespace
}  // namespace mamori::behavior::rules

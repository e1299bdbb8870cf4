#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "mamori/behavior/monitor.h"
#include "mamori/common/json.h"
#include "test_util.h"

namespace mamori::behavior {
namespace {

constexpr const char* kWebShellRule = R"(
title: Shell spawned by a web server
id: 0b3e7f9a-1c2d-4e5f-8a9b-0c1d2e3f4a5b
status: test
logsource:
  product: linux
  category: process_creation
detection:
  selection:
    ParentImage|endswith: '/nginx'
    Image|endswith: '/sh'
  condition: selection
level: high
tags:
  - attack.t1505.003
)";

constexpr const char* kKillSleeperRule = R"(
title: Test sleeper that must be killed
id: 7d1f0e2c-3b4a-4c5d-9e8f-1a2b3c4d5e6f
status: test
logsource:
  product: linux
  category: process_creation
detection:
  selection:
    CommandLine|contains: 'mamori-monitor-test-sleeper'
  condition: selection
level: critical
tags:
  - attack.execution
mamori:
  responses: [kill_process]
)";

std::shared_ptr<const rules::RuleSet> Rules(const char* yaml) {
  rules::LoadReport report;
  auto set = rules::RuleSet::LoadFromString(yaml, "test.yml", &report);
  REQUIRE(set.ok());
  INFO(report.ToText());
  REQUIRE(report.loaded == 1);
  return *set;
}

std::unique_ptr<Sensor> Replay(const std::string& path) {
  auto s = MakeReplaySensor(path);
  REQUIRE(s->Start().ok());
  return s;
}

struct Collected {
  std::vector<AlertRecord> alerts;
  std::vector<Event> events;
  Monitor::Sinks Sinks() {
    return {[this](const AlertRecord& a) { alerts.push_back(a); }, [this](const Event& e) { events.push_back(e); }};
  }
};

ProcessTable::Options EventsOnly() {
  ProcessTable::Options o;
  o.proc_root = "";
  return o;
}

TEST_CASE("Replayed events raise an alert with rule, events and ancestry") {
  mamori::testing::TempDir dir;
  std::string replay = dir.Write("events.jsonl",
      R"({"type":"exec","timestamp_ns":1000,"process":{"pid":10,"ppid":1,"image":"/usr/sbin/nginx","argv":["nginx"]}})" "\n"
      R"({"type":"fork","timestamp_ns":2000,"process":{"pid":11,"ppid":10}})" "\n"
      R"({"type":"exec","timestamp_ns":3000,"process":{"pid":11,"image":"/bin/sh","argv":["sh","-c","id"]}})" "\n"
      R"({"type":"exec","timestamp_ns":4000,"process":{"pid":12,"ppid":1,"image":"/bin/sh","argv":["sh"]}})" "\n");
  ProcessTable table(EventsOnly(), nullptr);
  Collected got;
  Monitor m({}, Replay(replay), Rules(kWebShellRule), &table, nullptr, got.Sinks());
  REQUIRE(m.Run().ok());
  REQUIRE(got.alerts.size() == 1);
  const AlertRecord& a = got.alerts[0];
  CHECK(a.alert.rule->title == "Shell spawned by a web server");
  REQUIRE(a.alert.events.size() == 1);
  CHECK(a.alert.events[0].process.pid == 11);
  CHECK(a.alert.events[0].parent.image == "/usr/sbin/nginx");
  REQUIRE(a.ancestry.size() == 2);
  CHECK(a.ancestry[0].command_line == "sh -c id");
  CHECK(a.ancestry[1].image == "/usr/sbin/nginx");
  auto json = json::Parse(AlertToJson(a));
  REQUIRE(json.ok());
  CHECK(json->Find("rule_id")->AsString() == "0b3e7f9a-1c2d-4e5f-8a9b-0c1d2e3f4a5b");
  CHECK(json->Find("level")->AsString() == "high");
  CHECK(json->Find("tags")->items()[0].AsString() == "attack.t1505.003");
  CHECK(json->Find("ancestry")->items()[1].Find("image")->AsString() == "/usr/sbin/nginx");
  CHECK(json->Find("events")->items()[0].Find("process")->Find("pid")->AsString() == "11");
  auto s = m.stats();
  CHECK(s.sensor == "replay");
  CHECK(s.events == 4);
  CHECK(s.alerts == 1);
}

TEST_CASE("Sensor drop reports reach the event sink and the counters") {
  mamori::testing::TempDir dir;
  std::string replay = dir.Write("events.jsonl",
      R"({"type":"sensor_drops","dropped":17,"drop_source":"ringbuf"})" "\n"
      R"({"type":"sensor_drops","dropped":3,"drop_source":"ringbuf"})" "\n");
  ProcessTable table(EventsOnly(), nullptr);
  Collected got;
  Monitor m({}, Replay(replay), Rules(kWebShellRule), &table, nullptr, got.Sinks());
  REQUIRE(m.Run().ok());
  CHECK(got.events.size() == 2);
  CHECK(m.stats().sensor_dropped == 20);
}

// A real child of this test stands for the attacker's process.
pid_t StartSleeper() {
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", "sleep 30; : mamori-monitor-test-sleeper", static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

std::string SleeperEvent(pid_t pid) {
  return R"({"type":"exec","timestamp_ns":1,"process":{"pid":)" + std::to_string(pid) +
         R"(,"ppid":)" + std::to_string(getpid()) +
         R"(,"image":"/bin/sh","argv":["sh","-c","sleep 30; : mamori-monitor-test-sleeper"]}})" "\n";
}

TEST_CASE("A rule's kill_process response kills the acting process and is recorded") {
  pid_t child = StartSleeper();
  REQUIRE(child > 0);
  mamori::testing::TempDir dir;
  std::string replay = dir.Write("events.jsonl", SleeperEvent(child));
  ProcessTable table(EventsOnly(), nullptr);
  Responder responder({}, &table, nullptr);
  Collected got;
  Monitor m({}, Replay(replay), Rules(kKillSleeperRule), &table, &responder, got.Sinks());
  REQUIRE(m.Run().ok());
  REQUIRE(got.alerts.size() == 1);
  REQUIRE(got.alerts[0].responses.size() == 1);
  CHECK(got.alerts[0].responses[0].action == "kill_process");
  INFO(got.alerts[0].responses[0].detail);
  CHECK(got.alerts[0].responses[0].done);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
}

TEST_CASE("With responses disabled the alert says so and the process lives") {
  pid_t child = StartSleeper();
  REQUIRE(child > 0);
  mamori::testing::TempDir dir;
  std::string replay = dir.Write("events.jsonl", SleeperEvent(child));
  ProcessTable table(EventsOnly(), nullptr);
  Responder responder({}, &table, nullptr);
  Collected got;
  Monitor::Options o;
  o.responses_enabled = false;
  Monitor m(o, Replay(replay), Rules(kKillSleeperRule), &table, &responder, got.Sinks());
  REQUIRE(m.Run().ok());
  REQUIRE(got.alerts.size() == 1);
  REQUIRE(got.alerts[0].responses.size() == 1);
  CHECK(!got.alerts[0].responses[0].done);
  CHECK_THAT(got.alerts[0].responses[0].detail, Catch::Contains("disabled"));
  CHECK(kill(child, 0) == 0);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
}

TEST_CASE("A malformed replay line ends the run with its file and line") {
  mamori::testing::TempDir dir;
  std::string replay = dir.Write("events.jsonl", R"({"type":"fork"})" "\n" "{oops\n");
  ProcessTable table(EventsOnly(), nullptr);
  Collected got;
  Monitor m({}, Replay(replay), Rules(kWebShellRule), &table, nullptr, got.Sinks());
  Status s = m.Run();
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("events.jsonl:2"));
}

TEST_CASE("Swapped rules replace the loaded ones before the next event") {
  mamori::testing::TempDir dir;
  std::string replay = dir.Write("events.jsonl", SleeperEvent(424242));
  ProcessTable table(EventsOnly(), nullptr);
  Collected got;
  Monitor::Options o;
  o.responses_enabled = false;
  Monitor m(o, Replay(replay), Rules(kWebShellRule), &table, nullptr, got.Sinks());
  m.SwapRules(Rules(kKillSleeperRule));
  REQUIRE(m.Run().ok());
  REQUIRE(got.alerts.size() == 1);
  CHECK(got.alerts[0].alert.rule->title == "Test sleeper that must be killed");
}

}  // namespace
}  // namespace mamori::behavior

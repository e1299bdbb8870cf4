// Correlation rules with explicit event timestamps: event_count, value_count,
// temporal, temporal_ordered, group-by, timespans, expiry, chaining, limits.
#include <catch2/catch.hpp>

#include "test_util.h"

namespace mamori::behavior::rules {
namespace {

using testing::Exec;
using testing::Titles;

constexpr uint64_t S(uint64_t seconds) { return seconds * 1'000'000'000ull; }

// Three named base rules on process_creation.
constexpr const char* kBase = R"(title: whoami run
id: b0000000-0000-0000-0000-000000000001
name: whoami
logsource: {product: linux, category: process_creation}
detection:
    selection:
        Image|endswith: '/whoami'
    condition: selection
---
title: id run
id: b0000000-0000-0000-0000-000000000002
name: id_cmd
logsource: {product: linux, category: process_creation}
detection:
    selection:
        Image|endswith: '/id'
    condition: selection
---
title: uname run
id: b0000000-0000-0000-0000-000000000003
name: uname
logsource: {product: linux, category: process_creation}
detection:
    selection:
        Image|endswith: '/uname'
    condition: selection
---
)";

std::shared_ptr<const RuleSet> Load(const std::string& correlations, int loaded) {
  return testing::LoadOk(std::string(kBase) + correlations, loaded);
}

Event Run(const char* tool, const char* user, uint64_t t) {
  return Exec({{"Image", std::string("/usr/bin/") + tool}, {"User", user}}, t);
}

constexpr const char* kManyWhoami = R"(title: Many whoami
id: c0000000-0000-0000-0000-000000000001
correlation:
    type: event_count
    rules: [whoami]
    group-by: [User]
    timespan: 10s
    condition:
        gte: 3
level: high
)";

TEST_CASE("event_count fires when a group reaches the count within the timespan") {
  auto set = Load(kManyWhoami, 4);
  auto alerts =
      testing::Run(set, {Run("whoami", "alice", S(0)), Run("whoami", "bob", S(1)), Run("whoami", "alice", S(2)),
                         Run("whoami", "bob", S(3)), Run("whoami", "alice", S(4))});
  REQUIRE(Titles(alerts) == std::vector<std::string>{"Many whoami"});  // base rule only feeds it
  CHECK(alerts[0].timestamp_ns == S(4));
  CHECK(alerts[0].rule->correlation);
  REQUIRE(alerts[0].events.size() == 3);
  for (const Event& e : alerts[0].events) CHECK(e.process.user == "alice");
}

TEST_CASE("event_count forgets events older than the timespan") {
  auto set = Load(kManyWhoami, 4);
  Engine engine(set);
  std::vector<Alert> alerts;
  for (uint64_t t : {0, 6, 12}) engine.Process(Run("whoami", "alice", S(t)), &alerts);
  CHECK(alerts.empty());  // 0 is gone when 12 arrives
  engine.Process(Run("whoami", "alice", S(13)), &alerts);
  REQUIRE(alerts.size() == 1);  // 6, 12, 13
  CHECK(alerts[0].events.front().timestamp_ns == S(6));
  engine.Process(Run("whoami", "alice", S(14)), &alerts);
  CHECK(alerts.size() == 1);  // the group started afresh after firing
}

TEST_CASE("generate: true keeps the referenced rule's own alerts") {
  std::string text = kManyWhoami;
  text.replace(text.find("level: high"), 11, "level: high\ngenerate: true");
  auto set = Load(text, 4);
  auto alerts =
      testing::Run(set, {Run("whoami", "alice", S(0)), Run("whoami", "alice", S(1)), Run("whoami", "alice", S(2))});
  CHECK(Titles(alerts) == std::vector<std::string>{"whoami run", "whoami run", "whoami run", "Many whoami"});
  CHECK(set->rules()[0]->standalone);
}

TEST_CASE("value_count counts distinct values per group") {
  auto set = testing::LoadOk(R"(title: outbound
name: outbound
logsource: {product: linux, category: network_connection}
detection:
    selection:
        Initiated: 'true'
    condition: selection
---
title: Port scan
correlation:
    type: value_count
    rules: outbound
    group-by: Image
    timespan: 1m
    condition:
        field: DestinationPort
        gte: 3
)",
                             2);
  auto conn = [](const char* image, const char* port, uint64_t t) {
    return testing::MakeEvent(EventType::kNetConnect, {{"Image", image}, {"DestinationPort", port}}, t);
  };
  auto alerts = testing::Run(set, {conn("/usr/bin/nmap", "22", S(0)), conn("/usr/bin/nmap", "22", S(1)),
                                   conn("/usr/bin/curl", "8080", S(2)), conn("/usr/bin/nmap", "80", S(3))});
  CHECK(alerts.empty());  // nmap: 2 distinct ports; curl's do not count for nmap
  alerts = testing::Run(
      set, {conn("/usr/bin/nmap", "22", S(0)), conn("/usr/bin/nmap", "80", S(1)), conn("/usr/bin/nmap", "443", S(2))});
  REQUIRE(Titles(alerts) == std::vector<std::string>{"Port scan"});
  CHECK(alerts[0].events.size() == 3);
  // Outside the timespan a value no longer counts.
  alerts = testing::Run(set, {conn("/usr/bin/nmap", "22", S(0)), conn("/usr/bin/nmap", "80", S(30)),
                              conn("/usr/bin/nmap", "443", S(61))});
  CHECK(alerts.empty());
}

constexpr const char* kRecon = R"(title: Recon burst
correlation:
    type: temporal
    rules: [whoami, id_cmd, uname]
    group-by: [User]
    timespan: 1m
)";

TEST_CASE("temporal needs every rule within the timespan, in any order") {
  auto set = Load(kRecon, 4);
  auto alerts = testing::Run(set, {Run("uname", "alice", S(0)), Run("whoami", "alice", S(10)), Run("id", "bob", S(15)),
                                   Run("id", "alice", S(20))});
  REQUIRE(Titles(alerts) == std::vector<std::string>{"Recon burst"});
  REQUIRE(alerts[0].events.size() == 3);
  CHECK(alerts[0].events[0].process.image == "/usr/bin/uname");  // oldest first
  CHECK(alerts[0].events[2].process.image == "/usr/bin/id");
}

TEST_CASE("temporal does not fire when a rule's match has expired") {
  auto set = Load(kRecon, 4);
  auto alerts =
      testing::Run(set, {Run("id", "alice", S(0)), Run("whoami", "alice", S(30)), Run("uname", "alice", S(70))});
  CHECK(alerts.empty());
}

TEST_CASE("temporal with a condition counts distinct rules") {
  std::string text = kRecon;
  text.insert(text.find("    timespan"), "    condition: {gte: 2}\n");
  auto set = Load(text, 4);
  auto alerts = testing::Run(set, {Run("id", "alice", S(0)), Run("id", "alice", S(1)), Run("uname", "alice", S(2))});
  CHECK(Titles(alerts) == std::vector<std::string>{"Recon burst"});
}

constexpr const char* kOrdered = R"(title: whoami then id
correlation:
    type: temporal_ordered
    rules: [whoami, id_cmd]
    group-by: [User]
    timespan: 1m
)";

TEST_CASE("temporal_ordered fires only for the listed order") {
  auto set = Load(kOrdered, 4);
  CHECK(Titles(testing::Run(set, {Run("whoami", "alice", S(0)), Run("id", "alice", S(5))})) ==
        std::vector<std::string>{"whoami then id"});
  CHECK(testing::Run(set, {Run("id", "alice", S(0)), Run("whoami", "alice", S(5))}).empty());
  CHECK(testing::Run(set, {Run("whoami", "alice", S(0)), Run("id", "bob", S(5))}).empty());
  CHECK(testing::Run(set, {Run("whoami", "alice", S(0)), Run("id", "alice", S(61))}).empty());
  auto alerts = testing::Run(set, {Run("id", "alice", S(0)), Run("whoami", "alice", S(5)), Run("id", "alice", S(6))});
  REQUIRE(alerts.size() == 1);
  REQUIRE(alerts[0].events.size() == 2);
  CHECK(alerts[0].events[0].timestamp_ns == S(5));
  CHECK(alerts[0].events[1].timestamp_ns == S(6));
}

TEST_CASE("temporal_ordered needs distinct events for its steps") {
  auto set = testing::LoadOk(R"(title: A
name: a
logsource: {product: linux, category: process_creation}
detection:
    selection:
        Image|endswith: '/tool'
    condition: selection
---
title: B
name: b
logsource: {product: linux, category: process_creation}
detection:
    selection:
        CommandLine|contains: 'tool'
    condition: selection
---
title: A then B
correlation:
    type: temporal_ordered
    rules: [a, b]
    timespan: 1m
)",
                             3);
  const Event both = Exec({{"Image", "/usr/bin/tool"}, {"CommandLine", "tool --run"}}, S(1));
  CHECK(testing::Run(set, {both}).empty());
  Event again = both;
  again.timestamp_ns = S(2);
  CHECK(testing::Run(set, {both, again}).size() == 1);
}

TEST_CASE("an upper bound is judged when the window closes") {
  auto set = Load(R"(title: Few whoami
correlation:
    type: event_count
    rules: [whoami]
    group-by: [User]
    timespan: 10s
    condition:
        gte: 1
        lt: 3
)",
                  4);
  Engine engine(set);
  std::vector<Alert> alerts;
  for (auto [user, t] : {std::pair{"alice", 0}, {"alice", 1}, {"bob", 2}, {"bob", 3}, {"bob", 4}}) {
    engine.Process(Run("whoami", user, S(t)), &alerts);
  }
  CHECK(alerts.empty());  // nothing is decided while the windows are open
  engine.AdvanceTime(S(11), &alerts);
  REQUIRE(Titles(alerts) == std::vector<std::string>{"Few whoami"});  // alice: 2 < 3; bob: 3
  CHECK(alerts[0].events.size() == 2);
  CHECK(alerts[0].timestamp_ns == S(10));
  // A later event closes windows too.
  engine.Process(Run("whoami", "carol", S(100)), &alerts);
  engine.Process(Run("ls", "dave", S(111)), &alerts);  // matches nothing; only moves time
  REQUIRE(alerts.size() == 2);
  CHECK(alerts[1].events.at(0).process.user == "carol");
}

TEST_CASE("groups beyond the cap evict the least recently updated one") {
  auto set = Load(kManyWhoami, 4);
  EngineOptions options;
  options.max_groups_per_correlation = 2;
  Engine engine(set, options);
  std::vector<Alert> alerts;
  for (auto [user, t] : {std::pair{"u1", 0}, {"u1", 1}, {"u2", 2}, {"u3", 3}, {"u1", 4}}) {
    engine.Process(Run("whoami", user, S(t)), &alerts);
  }
  CHECK(alerts.empty());  // u1's two earlier events were evicted with its group
  CHECK(engine.stats().correlation_evictions == 2);
  CHECK(engine.stats().correlation_groups == 2);
}

TEST_CASE("churning groups of long windows keep memory bounded") {
  auto set = Load(R"(title: Rare whoami
correlation:
    type: event_count
    rules: [whoami]
    group-by: [User]
    timespan: 1d
    condition: {lte: 1}
)",
                  4);
  EngineOptions options;
  options.max_groups_per_correlation = 1;
  Engine engine(set, options);
  std::vector<Alert> alerts;
  for (int i = 0; i < 5000; ++i) engine.Process(Run("whoami", ("u" + std::to_string(i)).c_str(), S(i)), &alerts);
  CHECK(engine.stats().correlation_groups == 1);
  CHECK(engine.stats().correlation_evictions == 4999);
  engine.AdvanceTime(UINT64_MAX, &alerts);
  REQUIRE(alerts.size() == 1);  // only the surviving group's window is judged
  CHECK(alerts[0].events.at(0).process.user == "u4999");
}

TEST_CASE("idle groups expire") {
  auto set = Load(kManyWhoami, 4);
  Engine engine(set);
  std::vector<Alert> alerts;
  engine.Process(Run("whoami", "u1", S(0)), &alerts);
  engine.Process(Run("whoami", "u2", S(1)), &alerts);
  CHECK(engine.stats().correlation_groups == 2);
  engine.Process(Run("whoami", "u3", S(30)), &alerts);
  CHECK(engine.stats().correlation_groups == 1);
  CHECK(engine.stats().correlation_evictions == 0);
}

TEST_CASE("a correlation alert carries at most the last 16 events") {
  auto set = Load(R"(title: Whoami storm
correlation:
    type: event_count
    rules: [whoami]
    timespan: 1m
    condition: {gte: 20}
)",
                  4);
  std::vector<Event> events;
  for (uint64_t i = 0; i < 20; ++i) events.push_back(Run("whoami", "alice", S(i)));
  auto alerts = testing::Run(set, events);
  REQUIRE(alerts.size() == 1);
  REQUIRE(alerts[0].events.size() == kMaxAlertEvents);
  CHECK(alerts[0].events.back().timestamp_ns == S(19));
  CHECK(alerts[0].events.front().timestamp_ns == S(4));
}

TEST_CASE("correlations chain: a correlation may refer to another") {
  auto set = Load(R"(title: Repeated whoami
name: many_whoami
correlation:
    type: event_count
    rules: [whoami]
    group-by: [User]
    timespan: 1m
    condition: {gte: 2}
---
title: Repeated whoami then id
correlation:
    type: temporal_ordered
    rules: [many_whoami, id_cmd]
    group-by: [User]
    timespan: 5m
level: critical
)",
                  5);
  auto alerts = testing::Run(set, {Run("whoami", "alice", S(0)), Run("whoami", "alice", S(1)), Run("id", "bob", S(2)),
                                   Run("id", "alice", S(3))});
  REQUIRE(Titles(alerts) == std::vector<std::string>{"Repeated whoami then id"});
  REQUIRE(alerts[0].events.size() == 3);
  CHECK(alerts[0].events[2].process.image == "/usr/bin/id");
  CHECK(alerts[0].rule->level == "critical");
}

TEST_CASE("aliases map one group-by name to different fields per rule") {
  auto set = testing::LoadOk(R"(title: inbound
name: inbound
logsource: {product: linux, category: network_connection}
detection:
    selection:
        Initiated: 'false'
    condition: selection
---
title: outbound
name: outbound
logsource: {product: linux, category: network_connection}
detection:
    selection:
        Initiated: 'true'
    condition: selection
---
title: Connect back
correlation:
    type: temporal_ordered
    rules: [inbound, outbound]
    group-by: [peer]
    timespan: 1m
    aliases:
        peer:
            inbound: SourceIp
            outbound: DestinationIp
)",
                             3);
  auto in = testing::MakeEvent(EventType::kNetAccept, {{"SourceIp", "198.51.100.7"}}, S(0));
  auto out_same = testing::MakeEvent(EventType::kNetConnect, {{"DestinationIp", "198.51.100.7"}}, S(5));
  auto out_other = testing::MakeEvent(EventType::kNetConnect, {{"DestinationIp", "203.0.113.9"}}, S(5));
  CHECK(testing::Run(set, {in, out_other}).empty());
  CHECK(Titles(testing::Run(set, {in, out_same})) == std::vector<std::string>{"Connect back"});
}

TEST_CASE("correlations that cannot work are refused with a reason") {
  struct Bad {
    const char* what;
    const char* text;
    const char* because;
  };
  const Bad kBad[] = {
      {"unknown rule", "title: X\ncorrelation:\n    type: temporal\n    rules: [nope]\n    timespan: 1m\n",
       "references unknown rule 'nope'"},
      {"skipped rule",
       "title: X\ncorrelation:\n    type: temporal\n    rules: [win]\n    timespan: 1m\n---\ntitle: W\nname: win\n"
       "logsource: {product: windows, category: process_creation}\ndetection: {s: {Image: x}, condition: s}\n",
       "was not loaded (skipped: unsupported logsource (product: windows))"},
      {"group-by field",
       "title: X\ncorrelation:\n    type: event_count\n    rules: [whoami]\n    group-by: [Hostname]\n"
       "    timespan: 1m\n    condition: {gte: 2}\n",
       "unknown field 'Hostname'"},
      {"value_count without field",
       "title: X\ncorrelation:\n    type: value_count\n    rules: [whoami]\n    timespan: 1m\n    condition: {gte: "
       "2}\n",
       "need 'field'"},
      {"timespan unit", "title: X\ncorrelation:\n    type: temporal\n    rules: [whoami, uname]\n    timespan: 10x\n",
       "timespan '10x'"},
      {"count without condition",
       "title: X\ncorrelation:\n    type: event_count\n    rules: [whoami]\n    timespan: 1m\n", "need a 'condition'"},
      {"partial temporal_ordered",
       "title: X\ncorrelation:\n    type: temporal_ordered\n    rules: [whoami, uname]\n    timespan: 1m\n"
       "    condition: {gte: 1}\n",
       "temporal_ordered needs every listed rule"},
      {"unknown type", "title: X\ncorrelation:\n    type: sequence\n    rules: [whoami]\n    timespan: 1m\n",
       "unknown correlation type 'sequence'"},
      {"impossible range",
       "title: X\ncorrelation:\n    type: event_count\n    rules: [whoami]\n    timespan: 1m\n"
       "    condition: {gt: 5, lt: 3}\n",
       "can never hold"},
      {"cycle",
       "title: X\nname: x\ncorrelation:\n    type: temporal\n    rules: [y, whoami]\n    timespan: 1m\n---\n"
       "title: Y\nname: y\ncorrelation:\n    type: temporal\n    rules: [x, uname]\n    timespan: 1m\n",
       "cycle"},
  };
  for (const Bad& b : kBad) {
    INFO(b.what);
    LoadReport report;
    auto set = RuleSet::LoadFromString(std::string(kBase) + b.text, "corr.yml", &report);
    REQUIRE(set.ok());
    CHECK(report.loaded == 3);  // the base rules
    REQUIRE(report.refused >= 1);
    CHECK_THAT(report.refused_items[0].reason, Catch::Contains(b.because));
    CHECK(report.refused_items[0].line >= 28);  // points into the correlation document
  }
}

TEST_CASE("correlations may refer to rules by id, across files") {
  LoadReport report;
  auto set = RuleSet::LoadFromString(std::string(kBase) + R"(title: By id
correlation:
    type: temporal
    rules: [b0000000-0000-0000-0000-000000000001, b0000000-0000-0000-0000-000000000002]
    timespan: 1m
)",
                                     "ids.yml", &report);
  REQUIRE(set.ok());
  CHECK(report.loaded == 4);
  CHECK(Titles(testing::Run(*set, {Run("id", "alice", S(0)), Run("whoami", "bob", S(1))})) ==
        std::vector<std::string>{"By id"});
}

}  // namespace
}  // namespace mamori::behavior::rules

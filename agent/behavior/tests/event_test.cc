#include <catch2/catch.hpp>

#include "mamori/behavior/event.h"
#include "mamori/behavior/sensor.h"
#include "test_util.h"

namespace mamori::behavior {
namespace {

Event SampleExec() {
  Event e;
  e.type = EventType::kExec;
  e.timestamp_ns = 1764190000123456789ull;
  e.process.pid = 4242;
  e.process.tid = 4242;
  e.process.ppid = 1000;
  e.process.uid = 1000;
  e.process.euid = 0;
  e.process.image = "/tmp/x y/\xe6\x97\xa5";
  e.process.argv = {"sh", "-c", "echo \"hi\"\tthere"};
  e.process.command_line = JoinArgv(e.process.argv);
  e.process.cwd = "/home/u";
  e.parent.pid = 1000;
  e.parent.image = "/usr/bin/bash";
  return e;
}

TEST_CASE("Every event type has a name that maps back to it") {
  for (int i = 0; i < kEventTypeCount; ++i) {
    auto t = static_cast<EventType>(i);
    INFO(i);
    CHECK(EventTypeName(t) != "unknown");
    CHECK(EventTypeFromName(EventTypeName(t)) == t);
  }
  CHECK(!EventTypeFromName("exe").has_value());
}

TEST_CASE("An event survives a JSON round trip field by field") {
  Event e = SampleExec();
  auto back = EventFromJson(EventToJson(e));
  REQUIRE(back.ok());
  CHECK(back->type == EventType::kExec);
  CHECK(back->timestamp_ns == e.timestamp_ns);
  CHECK(back->process.pid == 4242);
  CHECK(back->process.euid == 0);
  CHECK(back->process.image == e.process.image);
  CHECK(back->process.argv == e.process.argv);
  CHECK(back->process.command_line == "sh -c echo \"hi\"\tthere");
  CHECK(back->parent.image == "/usr/bin/bash");

  Event n;
  n.type = EventType::kNetConnect;
  n.process.pid = 7;
  n.protocol = "tcp";
  n.destination_ip = "::1";
  n.destination_port = 65535;
  n.initiated = true;
  auto nb = EventFromJson(EventToJson(n));
  REQUIRE(nb.ok());
  CHECK(nb->destination_port == 65535);
  CHECK(nb->initiated);
  CHECK(nb->destination_ip == "::1");
}

TEST_CASE("Fixture events may give argv only, command_line is derived from it") {
  auto e = EventFromJson(R"({"type":"exec","process":{"pid":5,"argv":["curl","-s","http://x"]}})");
  REQUIRE(e.ok());
  CHECK(e->process.command_line == "curl -s http://x");
}

TEST_CASE("Malformed events are refused naming the key") {
  struct Case { const char* line; const char* what; };
  for (const Case& c : std::initializer_list<Case>{
           {R"({"type":"exe"})", "unknown event type \"exe\""},
           {R"({"timestamp_ns":1})", "missing key \"type\""},
           {R"({"type":"exec","imgae":"/bin/sh"})", "unknown key \"imgae\""},
           {R"({"type":"exec","process":{"pid":"5"}})", "process: key \"pid\" must be an integer"},
           {R"({"type":"net_connect","destination_port":70000})", "\"destination_port\" out of range"},
           {R"({"type":"exec","process":{"argv":["a",1]}})", "array of strings"},
           {R"([1])", "must be a JSON object"},
           {R"({"type":"exec",)", "at column"}}) {
    auto e = EventFromJson(c.line);
    INFO(c.line);
    REQUIRE(!e.ok());
    CHECK_THAT(e.status().message(), Catch::Contains(c.what));
  }
}

TEST_CASE("The replay sensor yields file events in order, skips comments, then ends") {
  mamori::testing::TempDir dir;
  std::string path = dir.Write("events.jsonl", "# a fixture\n" + EventToJson(SampleExec()) +
                                                   "\n\n" + R"({"type":"exit","exit_code":3})" + "\n");
  auto sensor = MakeReplaySensor(path);
  REQUIRE(sensor->Start().ok());
  CHECK(sensor->name() == "replay");
  Event e;
  REQUIRE(sensor->Next(std::chrono::milliseconds(0), &e) == Sensor::NextResult::kEvent);
  CHECK(e.process.pid == 4242);
  REQUIRE(sensor->Next(std::chrono::milliseconds(0), &e) == Sensor::NextResult::kEvent);
  CHECK(e.type == EventType::kExit);
  CHECK(e.exit_code == 3);
  CHECK(sensor->Next(std::chrono::milliseconds(0), &e) == Sensor::NextResult::kEnd);
  CHECK(sensor->status().ok());
  CHECK(sensor->stats().delivered == 2);
}

TEST_CASE("The replay sensor stops at a malformed line naming file and line") {
  mamori::testing::TempDir dir;
  std::string path = dir.Write("bad.jsonl", R"({"type":"fork"})" "\n" R"({"type":"nope"})" "\n");
  auto sensor = MakeReplaySensor(path);
  REQUIRE(sensor->Start().ok());
  Event e;
  CHECK(sensor->Next(std::chrono::milliseconds(0), &e) == Sensor::NextResult::kEvent);
  CHECK(sensor->Next(std::chrono::milliseconds(0), &e) == Sensor::NextResult::kEnd);
  CHECK_THAT(sensor->status().message(), Catch::Contains("bad.jsonl:2"));
  CHECK_THAT(sensor->status().message(), Catch::Contains("unknown event type"));
}

TEST_CASE("A missing replay file fails Start with NOT_FOUND") {
  auto sensor = MakeReplaySensor("/nonexistent/mamori/events.jsonl");
  CHECK(sensor->Start().code() == StatusCode::kNotFound);
}

TEST_CASE("The null sensor times out until stopped") {
  auto sensor = MakeNullSensor();
  REQUIRE(sensor->Start().ok());
  Event e;
  CHECK(sensor->Next(std::chrono::milliseconds(1), &e) == Sensor::NextResult::kTimeout);
  sensor->Stop();
  CHECK(sensor->Next(std::chrono::milliseconds(1000), &e) == Sensor::NextResult::kEnd);
}

}  // namespace
}  // namespace mamori::behavior

// agent::Event -> mamori.v1.Event: one table row per type the agent writes
// (agent/service/src/agent.cc, behavior_service.cc), built exactly as the
// agent builds it.
#include <catch2/catch.hpp>
#include <functional>

#include "mamori/agent/event_log.h"
#include "mamori/behavior/event.h"
#include "mamori/server/event_row.h"
#include "mamori/telemetry/convert.h"

namespace mamori::telemetry {
namespace {

using agent::Event;

struct Row {
  Event in;
  const char* store_type;
  Priority priority;
  std::function<void(const v1::Event&)> check;
};

TEST_CASE("agent events map by type name to typed payloads") {
  behavior::Event be;
  be.type = behavior::EventType::kFileCreate;
  be.timestamp_ns = 77;
  be.target_filename = "/tmp/new";
  be.process.pid = 9;

  const std::vector<Row> rows = {
      {Event("agent_started").Str("signature_version", "2024.1").Num("bundle_version", 12).Num("onaccess", 1),
       "agent_started", Priority::kNormal,
       [](const v1::Event& e) {
         CHECK(e.agent_status().info().signature_version() == "2024.1");
         CHECK(e.agent_status().info().bundle_version() == 12);
         CHECK(e.agent_status().info().onaccess_enabled());
       }},
      {Event("agent_stopped"), "agent_stopping", Priority::kNormal, nullptr},
      {Event("reloaded").Str("signature_version", "v2"), "agent_config_reloaded", Priority::kNormal, nullptr},
      {Event("reload_refused").Str("reason", "bad yaml in /etc/\xff"), "agent_reload_refused", Priority::kNormal,
       [](const v1::Event& e) { CHECK(e.agent_status().message() == "bad yaml in /etc/\\xff"); }},
      {Event("signature_update").Str("bundle", "/tmp/b.mbundle").Num("uid", 0).Str("result", "installed"),
       "agent_signatures_updated", Priority::kNormal, nullptr},
      {Event("signature_update").Str("bundle", "/tmp/b.mbundle").Num("uid", 0).Str("result", "bad signature"),
       "agent_reload_refused", Priority::kNormal,
       [](const v1::Event& e) { CHECK(e.agent_status().message().find("bad signature") != std::string::npos); }},
      {Event("onaccess")
           .Str("access", "exec")
           .Str("decision", "deny")
           .Str("path", "/tmp/eicar\xff")
           .Num("pid", 4242)
           .Str("exe", "/usr/bin/cat")
           .Str("signature", "Eicar-Test")
           .Str("object", "/tmp/eicar\xff")
           .Str("sha256", "275a")
           .Str("policy", "quarantine"),
       "onaccess_detection", Priority::kCritical,
       [](const v1::Event& e) {
         const auto& d = e.on_access();
         CHECK(d.access() == v1::OnAccessDecision::ACCESS_EXEC);
         CHECK(d.decision() == v1::OnAccessDecision::DECISION_DENY);
         CHECK(d.path() == "/tmp/eicar\xff");
         CHECK(d.signature() == "Eicar-Test");
         CHECK(d.sha256() == "275a");
         CHECK(d.policy() == v1::POLICY_QUARANTINE);
         CHECK(e.process().pid() == 4242);
         CHECK(e.process().image() == "/usr/bin/cat");
         CHECK(e.severity() == v1::SEVERITY_HIGH);
       }},
      {Event("onaccess_timeout").Str("path", "/big").Num("pid", 5).Str("decision", "allow"), "onaccess_timeout",
       Priority::kNormal, [](const v1::Event& e) { CHECK(e.on_access().path() == "/big"); }},
      {Event("onaccess_overflow"), "onaccess_overflow", Priority::kCritical, nullptr},
      {Event("scan_finding")
           .Str("source", "scheduled:nightly")
           .Str("path", "/srv/a.zip")
           .Str("object", "/srv/a.zip!x.exe")
           .Str("signature", "Win.Trojan")
           .Str("policy", "report"),
       "scan_finding", Priority::kCritical,
       [](const v1::Event& e) {
         const auto& f = e.scan_finding();
         CHECK(f.source() == "schedule:nightly");
         CHECK(f.path() == "/srv/a.zip");
         CHECK(f.object() == "/srv/a.zip!x.exe");
         CHECK(f.signature() == "Win.Trojan");
         CHECK(f.policy() == v1::POLICY_REPORT);
       }},
      {Event("quarantine")
           .Str("source", "onaccess")
           .Str("path", "/tmp/e")
           .Str("signature", "Eicar")
           .Num("pid", 7)
           .Str("result", "quarantined")
           .Str("id", "00112233445566778899aabbccddeeff")
           .Str("sha256", "aa"),
       "quarantine", Priority::kCritical,
       [](const v1::Event& e) {
         const auto& q = e.quarantine();
         CHECK(q.outcome() == v1::QuarantineAction::OUTCOME_SUCCEEDED);
         CHECK(q.quarantine_id() == "00112233445566778899aabbccddeeff");
         CHECK(q.source() == "onaccess");
         CHECK(q.sha256() == "aa");
         CHECK(e.process().pid() == 7);
       }},
      {Event("quarantine")
           .Str("source", "control")
           .Str("path", "/x")
           .Num("pid", 0)
           .Str("result", "failed")
           .Str("reason", "EPERM"),
       "quarantine", Priority::kCritical,
       [](const v1::Event& e) {
         CHECK(e.quarantine().outcome() == v1::QuarantineAction::OUTCOME_FAILED);
         CHECK(e.quarantine().error() == "EPERM");
         CHECK_FALSE(e.has_process());
       }},
      {Event("quarantine_delete").Str("id", "ab").Num("uid", 1000).Str("result", "ok"), "quarantine_delete",
       Priority::kCritical, [](const v1::Event& e) { CHECK(e.quarantine().requested_by_uid() == 1000); }},
      {Event("quarantine_restore").Str("id", "ab").Num("uid", 0).Str("result", "restored").Str("path", "/home/f"),
       "quarantine_restore", Priority::kCritical,
       [](const v1::Event& e) {
         CHECK(e.quarantine().outcome() == v1::QuarantineAction::OUTCOME_SUCCEEDED);
         CHECK(e.quarantine().path() == "/home/f");
         CHECK(e.quarantine().source() == "control");
       }},
      {Event("quarantine_restore").Str("id", "ab").Num("uid", 0).Str("result", "restored").Str("path", "/home/f")
           .Str("requested_by", "alice").Str("command_id", "c0ffee"),
       "quarantine_restore", Priority::kCritical,
       [](const v1::Event& e) {
         CHECK(e.quarantine().source() == "command");
         CHECK(e.quarantine().command_id() == "c0ffee");
       }},
      {Event("scan_requested").Num("uid", 1000).Num("pid", 33).Str("paths", "/home"), "scan_started", Priority::kNormal,
       [](const v1::Event& e) {
         CHECK(e.scan_run().source() == "control");
         CHECK(e.scan_run().paths(0) == "/home");
         CHECK(e.process().uid() == 1000);
       }},
      {Event("scheduled_scan_started").Str("name", "nightly"), "scan_started", Priority::kNormal,
       [](const v1::Event& e) { CHECK(e.scan_run().source() == "schedule:nightly"); }},
      {Event("scheduled_scan_finished").Str("name", "nightly").Num("exit", 1), "scan_finished", Priority::kNormal,
       [](const v1::Event& e) { CHECK(e.scan_run().exit_code() == 1); }},
      {Event("sensor_drops").Num("dropped", 12).Str("source", "ringbuf"), "sensor_drops", Priority::kCritical,
       [](const v1::Event& e) {
         CHECK(e.sensor_drops().dropped() == 12);
         CHECK(e.sensor_drops().drop_source() == "ringbuf");
       }},
      {Event("behavior_alert")
           .Str("rule_id", "r1")
           .Str("title", "T")
           .Str("level", "critical")
           .Num("pid", 3)
           .Str("image", "/tmp/x")
           .Str("command_line", "x -y")
           .Json("alert",
                 "{\"rule_id\":\"r1\",\"tags\":[\"attack.t1\"],\"ancestry\":[{\"pid\":3,\"ppid\":2,\"uid\":0,"
                 "\"user\":\"root\",\"image\":\"/tmp/x\",\"command_line\":\"x -y\"},{\"pid\":2,\"ppid\":1,\"uid\":0,"
                 "\"user\":\"root\",\"image\":\"/bin/sh\",\"command_line\":\"sh\"}],\"responses\":[{\"action\":"
                 "\"kill_process\",\"target\":\"3\",\"done\":true,\"detail\":\"killed\"}]}"),
       "behavior_alert", Priority::kCritical,
       [](const v1::Event& e) {
         const auto& b = e.behavior_alert();
         CHECK(b.rule_id() == "r1");
         CHECK(b.rule_title() == "T");
         CHECK(e.severity() == v1::SEVERITY_CRITICAL);
         REQUIRE(b.tags_size() == 1);
         REQUIRE(b.responses_size() == 1);
         CHECK(b.responses(0) == "kill_process 3: killed");
         CHECK(e.process().command_line() == "x -y");
         CHECK(e.parent().image() == "/bin/sh");
       }},
      {Event("behavior_event").Json("event", behavior::EventToJson(be)), "file_create", Priority::kLow,
       [](const v1::Event& e) {
         CHECK(e.file().target_filename() == "/tmp/new");
         CHECK(e.timestamp_ns() == 77);  // the behavior event's own time
       }},
      // Types without a typed payload: a generic agent_status carrying everything.
      {Event("behavior_response")
           .Str("rule_id", "r1")
           .Str("action", "kill_tree")
           .Str("target", "3")
           .Str("result", "done")
           .Str("detail", "killed 2"),
       "agent_status", Priority::kNormal,
       [](const v1::Event& e) {
         CHECK(e.agent_status().trigger() == v1::AgentStatus::TRIGGER_UNSPECIFIED);
         CHECK(e.agent_status().message() ==
               "{\"type\":\"behavior_response\",\"rule_id\":\"r1\",\"action\":\"kill_tree\",\"target\":\"3\","
               "\"result\":\"done\",\"detail\":\"killed 2\"}");
       }},
      {Event("behavior_rule_refused").Str("file", "/r.yml").Num("line", 4).Str("rule", "x").Str("reason", "bad"),
       "agent_status", Priority::kNormal,
       [](const v1::Event& e) { CHECK(e.agent_status().counters().at("line") == 4); }},
      {Event("behavior_started").Str("sensor", "ebpf").Num("rules", 53).Num("processes", 120), "agent_status",
       Priority::kNormal, [](const v1::Event& e) { CHECK(e.agent_status().counters().at("rules") == 53); }},
      {Event("something_new").Str("k", "v\xff").Num("n", -1), "agent_status", Priority::kNormal,
       [](const v1::Event& e) {
         CHECK(e.agent_status().message() == "{\"type\":\"something_new\",\"k\":\"v\\\\xff\",\"n\":-1}");
         CHECK(e.agent_status().counters().empty());  // negative: not a counter
       }},
      // A typed mapping whose field does not parse falls back to the generic form.
      {Event("behavior_event").Json("event", "{\"nonsense\":1}"), "agent_status", Priority::kNormal, nullptr},
  };

  for (const Row& row : rows) {
    INFO(row.in.ToJson());
    Converted c = FromAgentEvent(row.in, 1000);
    CHECK(server::EventTypeName(c.event) == row.store_type);
    CHECK(c.priority == row.priority);
    CHECK(c.event.sequence() == 0);
    CHECK(c.event.timestamp_ns() != 0);
    if (row.check) row.check(c.event);
    v1::Event back;
    REQUIRE(back.ParseFromString(EncodeSpoolPayload(c.event)));
  }
}

TEST_CASE("the last occurrence of a repeated key wins") {
  Converted c = FromAgentEvent(Event("onaccess").Str("path", "/first").Str("path", "/second"), 1);
  CHECK(c.event.on_access().path() == "/second");
}

}  // namespace
}  // namespace mamori::telemetry

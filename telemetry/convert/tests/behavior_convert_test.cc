// behavior::Event / AlertRecord -> mamori.v1.Event: one table row per event
// type, checked against the store's type names (the server side of the
// contract) and the spool priority table.
#include <catch2/catch.hpp>
#include <functional>
#include <memory>

#include "mamori/behavior/event.h"
#include "mamori/behavior/monitor.h"
#include "mamori/server/event_row.h"
#include "mamori/telemetry/convert.h"

namespace mamori::telemetry {
namespace {

using behavior::EventType;

behavior::ProcessContext Proc(int32_t pid, std::string image) {
  behavior::ProcessContext p;
  p.pid = pid;
  p.tid = pid + 1;
  p.ppid = 1;
  p.uid = 1000;
  p.euid = 0;
  p.gid = 100;
  p.egid = 101;
  p.user = "alice";
  p.image = std::move(image);
  p.argv = {"sh", "-c", "echo \xff"};  // not UTF-8: argv is bytes
  p.command_line = behavior::JoinArgv(p.argv);
  p.cwd = "/home/alice";
  p.tty = "pts/3";
  p.cgroup = "/user.slice";
  p.start_time_ns = 1234;
  p.sha256 = "ab";
  return p;
}

struct Row {
  EventType type;
  std::function<void(behavior::Event*)> fill;
  const char* store_type;  // server::EventTypeName of the result
  Priority priority;
  std::function<void(const v1::Event&)> check;
};

TEST_CASE("behavior events map to typed payloads, store type names and priorities") {
  const std::vector<Row> rows = {
      {EventType::kExec, [](behavior::Event*) {}, "exec", Priority::kLow,
       [](const v1::Event& e) { CHECK(e.process_activity().kind() == v1::ProcessActivity::KIND_EXEC); }},
      {EventType::kFork, [](behavior::Event*) {}, "fork", Priority::kLow, nullptr},
      {EventType::kExit, [](behavior::Event* e) { e->exit_code = 137; }, "exit", Priority::kLow,
       [](const v1::Event& e) { CHECK(e.process_activity().exit_code() == 137); }},
      {EventType::kSetUid, [](behavior::Event* e) { e->new_id = 0; }, "setuid", Priority::kLow, nullptr},
      {EventType::kSetGid, [](behavior::Event* e) { e->new_id = 7; }, "setgid", Priority::kLow,
       [](const v1::Event& e) { CHECK(e.process_activity().new_id() == 7); }},
      {EventType::kPtrace,
       [](behavior::Event* e) {
         e->target_pid = 42;
         e->ptrace_request = 16;
       },
       "ptrace", Priority::kLow,
       [](const v1::Event& e) {
         CHECK(e.process_activity().target_pid() == 42);
         CHECK(e.process_activity().ptrace_request() == 16);
       }},
      {EventType::kModuleLoad, [](behavior::Event* e) { e->module_name = "evil"; }, "module_load", Priority::kLow,
       [](const v1::Event& e) { CHECK(e.process_activity().module_name() == "evil"); }},
      {EventType::kFileOpenWrite, [](behavior::Event* e) { e->target_filename = "/etc/passwd"; }, "file_open_write",
       Priority::kLow, [](const v1::Event& e) { CHECK(e.file().target_filename() == "/etc/passwd"); }},
      {EventType::kFileCreate,
       [](behavior::Event* e) {
         e->target_filename = "/tmp/\xfe\xff";
         e->mode = 0755;
       },
       "file_create", Priority::kLow,
       [](const v1::Event& e) {
         CHECK(e.file().target_filename() == "/tmp/\xfe\xff");  // bytes kept exactly
         CHECK(e.file().mode() == 0755);
       }},
      {EventType::kFileRename,
       [](behavior::Event* e) {
         e->source_filename = "/a";
         e->target_filename = "/b";
       },
       "file_rename", Priority::kLow,
       [](const v1::Event& e) {
         CHECK(e.file().source_filename() == "/a");
         CHECK(e.file().target_filename() == "/b");
       }},
      {EventType::kFileUnlink, [](behavior::Event* e) { e->target_filename = "/x"; }, "file_unlink", Priority::kLow,
       nullptr},
      {EventType::kFileChmod, [](behavior::Event* e) { e->mode = 04755; }, "file_chmod", Priority::kLow,
       [](const v1::Event& e) { CHECK(e.file().mode() == 04755); }},
      {EventType::kFileChown,
       [](behavior::Event* e) {
         e->owner_uid = 0;
         e->owner_gid = 5;
       },
       "file_chown", Priority::kLow, [](const v1::Event& e) { CHECK(e.file().owner_gid() == 5); }},
      {EventType::kNetConnect,
       [](behavior::Event* e) {
         e->protocol = "tcp";
         e->source_ip = "10.0.0.1";
         e->source_port = 40000;
         e->destination_ip = "::1";
         e->destination_port = 443;
         e->destination_hostname = "example.org";
         e->initiated = true;
       },
       "net_connect", Priority::kLow,
       [](const v1::Event& e) {
         const auto& n = e.network();
         CHECK(n.kind() == v1::NetworkActivity::KIND_CONNECT);
         CHECK(n.protocol() == "tcp");
         CHECK(n.source_ip() == "10.0.0.1");
         CHECK(n.source_port() == 40000);
         CHECK(n.destination_ip() == "::1");
         CHECK(n.destination_port() == 443);
         CHECK(n.destination_hostname() == "example.org");
         CHECK(n.initiated());
       }},
      {EventType::kNetAccept, [](behavior::Event*) {}, "net_accept", Priority::kLow, nullptr},
      {EventType::kNetBind, [](behavior::Event* e) { e->source_port = 22; }, "net_bind", Priority::kLow, nullptr},
      {EventType::kSensorDrops,
       [](behavior::Event* e) {
         e->dropped = 99;
         e->drop_source = "ringbuf";
       },
       "sensor_drops", Priority::kCritical,
       [](const v1::Event& e) {
         CHECK(e.sensor_drops().sensor() == "ebpf");
         CHECK(e.sensor_drops().drop_source() == "ringbuf");
         CHECK(e.sensor_drops().dropped() == 99);
         CHECK(e.severity() != v1::SEVERITY_UNSPECIFIED);
       }},
  };
  REQUIRE(rows.size() == static_cast<size_t>(behavior::kEventTypeCount));  // every type has a row

  for (const Row& row : rows) {
    INFO(behavior::EventTypeName(row.type));
    behavior::Event in;
    in.type = row.type;
    in.timestamp_ns = 1'700'000'000'000'000'000ull;
    in.process = Proc(100, "/usr/bin/bash");
    in.parent = Proc(1, "/sbin/init");
    row.fill(&in);
    Converted c = FromBehaviorEvent(in, "ebpf");
    CHECK(c.priority == row.priority);
    CHECK(PriorityOf(c.event) == row.priority);
    CHECK(server::EventTypeName(c.event) == row.store_type);
    CHECK(c.event.sequence() == 0);
    CHECK(c.event.timestamp_ns() == 1'700'000'000'000'000'000ll);
    CHECK(c.event.process().pid() == 100);
    CHECK(c.event.process().image() == "/usr/bin/bash");
    CHECK(c.event.parent().image() == "/sbin/init");
    if (row.check) row.check(c.event);

    // The spool record parses back (proto3 refuses invalid UTF-8 in string fields).
    v1::Event back;
    REQUIRE(back.ParseFromString(EncodeSpoolPayload(c.event)));
    CHECK(back.process().argv(2) == "echo \xff");
  }
}

TEST_CASE("process contexts carry every field, unknown parents are left out") {
  behavior::Event in;
  in.type = EventType::kExec;
  in.process = Proc(100, "/bin/x");
  Converted c = FromBehaviorEvent(in);
  const v1::ProcessContext& p = c.event.process();
  CHECK(p.pid() == 100);
  CHECK(p.tid() == 101);
  CHECK(p.ppid() == 1);
  CHECK(p.uid() == 1000);
  CHECK(p.euid() == 0);
  CHECK(p.gid() == 100);
  CHECK(p.egid() == 101);
  CHECK(p.user() == "alice");
  CHECK(p.argv_size() == 3);
  CHECK(p.command_line() == "sh -c echo \xff");
  CHECK(p.cwd() == "/home/alice");
  CHECK(p.tty() == "pts/3");
  CHECK(p.cgroup() == "/user.slice");
  CHECK(p.start_time_ns() == 1234);
  CHECK(p.sha256() == "ab");
  CHECK_FALSE(c.event.has_parent());
}

TEST_CASE("string fields are made valid UTF-8") {
  CHECK(ValidUtf8("plain") == "plain");
  CHECK(ValidUtf8("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(ValidUtf8("a\xff"
                  "b") == "a\\xffb");
  CHECK(ValidUtf8("\xe0\x80\x80") == "\\xe0\\x80\\x80");  // overlong
  behavior::Event in;
  in.type = EventType::kNetConnect;
  in.destination_hostname = "h\xc0st";
  Converted c = FromBehaviorEvent(in);
  v1::Event back;
  REQUIRE(back.ParseFromString(EncodeSpoolPayload(c.event)));
  CHECK(back.network().destination_hostname() == "h\\xc0st");
}

TEST_CASE("alerts carry rule, level, tags, responses, ancestry and evidence sequences") {
  auto rule = std::make_shared<behavior::rules::RuleInfo>();
  rule->id = "5b1f4b4e-0000-4000-8000-000000000001";
  rule->title = "Shell from /tmp";
  rule->level = "high";
  rule->description = "desc";
  rule->tags = {"attack.execution", "attack.t1059.004"};
  behavior::AlertRecord a;
  a.alert.rule = rule;
  a.alert.timestamp_ns = 55;
  behavior::Event trig;
  trig.type = EventType::kExec;
  trig.process = Proc(300, "/tmp/x");
  a.alert.events = {trig};
  a.ancestry = {Proc(300, "/tmp/x"), Proc(200, "/bin/bash"), Proc(1, "/sbin/init")};
  a.responses = {{"kill_process", "300", true, "killed 1 process"}, {"quarantine_image", "/tmp/x", false, "protected"}};
  const std::vector<uint64_t> related = {7, 8};
  Converted c = FromAlert(a, related);
  CHECK(c.priority == Priority::kCritical);
  CHECK(server::EventTypeName(c.event) == "behavior_alert");
  CHECK(c.event.severity() == v1::SEVERITY_HIGH);
  CHECK(c.event.timestamp_ns() == 55);
  CHECK(c.event.process().pid() == 300);
  CHECK(c.event.parent().image() == "/bin/bash");
  const v1::BehaviorAlert& b = c.event.behavior_alert();
  CHECK(b.rule_id() == rule->id);
  CHECK(b.rule_title() == "Shell from /tmp");
  CHECK(b.description() == "desc");
  REQUIRE(b.tags_size() == 2);
  CHECK(b.tags(1) == "attack.t1059.004");
  REQUIRE(b.related_sequences_size() == 2);
  CHECK(b.related_sequences(1) == 8);
  REQUIRE(b.responses_size() == 2);
  CHECK(b.responses(0) == "kill_process 300: killed 1 process");
  CHECK(b.responses(1) == "quarantine_image /tmp/x refused: protected");

  SECTION("levels map to severities") {
    const std::vector<std::pair<const char*, v1::Severity>> levels = {
        {"informational", v1::SEVERITY_INFO}, {"low", v1::SEVERITY_LOW},           {"medium", v1::SEVERITY_MEDIUM},
        {"high", v1::SEVERITY_HIGH},          {"critical", v1::SEVERITY_CRITICAL}, {"", v1::SEVERITY_MEDIUM}};
    for (const auto& [level, sev] : levels) {
      rule->level = level;
      CHECK(FromAlert(a).event.severity() == sev);
    }
  }
  SECTION("without ancestry the last triggering event names the actor") {
    a.ancestry.clear();
    Converted d = FromAlert(a);
    CHECK(d.event.process().image() == "/tmp/x");
    CHECK(d.event.behavior_alert().related_sequences_size() == 0);
  }
}

TEST_CASE("the spool's drop report is a critical sensor_drops event") {
  DropCounts counts;
  counts.low = 10;
  counts.normal = 2;
  v1::Event e = SpoolDropReport(counts, 9);
  CHECK(PriorityOf(e) == Priority::kCritical);
  CHECK(server::EventTypeName(e) == "sensor_drops");
  CHECK(e.sensor_drops().sensor() == "spool");
  CHECK(e.sensor_drops().drop_source() == "full");
  CHECK(e.sensor_drops().dropped() == 12);
}

TEST_CASE("command results are normal-priority events") {
  v1::CommandResult r;
  r.set_command_id("c1");
  r.set_outcome(v1::CommandResult::OUTCOME_SUCCEEDED);
  Converted c = FromCommandResult(r, 5);
  CHECK(c.priority == Priority::kNormal);
  CHECK(server::EventTypeName(c.event) == "command_result");
  CHECK(c.event.command_result().command_id() == "c1");
}

TEST_CASE("spool payloads are deterministic") {
  v1::Event e;
  auto* s = e.mutable_agent_status();
  for (int i = 0; i < 50; ++i) (*s->mutable_counters())["k" + std::to_string(i)] = i;
  v1::Event copy = e;
  CHECK(EncodeSpoolPayload(e) == EncodeSpoolPayload(copy));
}

}  // namespace
}  // namespace mamori::telemetry

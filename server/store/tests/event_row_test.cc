// The proto -> row mapping every backend indexes by.
#include <catch2/catch.hpp>

#include <functional>
#include <limits>
#include <string>

#include "mamori/server/event_row.h"

namespace mamori::server {
namespace {

v1::Event WithSequence(uint64_t seq) {
  v1::Event e;
  e.set_sequence(seq);
  e.set_timestamp_ns(123);
  return e;
}

}  // namespace

TEST_CASE("event rows: type names follow the payload and its kind", "[event_row]") {
  struct Case {
    std::function<void(v1::Event&)> fill;
    std::string type;
  };
  const std::vector<Case> cases = {
      {[](v1::Event&) {}, "unknown"},
      {[](v1::Event& e) { e.mutable_process_activity()->set_kind(v1::ProcessActivity::KIND_EXEC); }, "exec"},
      {[](v1::Event& e) { e.mutable_process_activity()->set_kind(v1::ProcessActivity::KIND_MODULE_LOAD); },
       "module_load"},
      {[](v1::Event& e) { e.mutable_process_activity()->set_kind(static_cast<v1::ProcessActivity::Kind>(99)); },
       "process"},
      {[](v1::Event& e) { e.mutable_file()->set_kind(v1::FileActivity::KIND_RENAME); }, "file_rename"},
      {[](v1::Event& e) { e.mutable_network()->set_kind(v1::NetworkActivity::KIND_CONNECT); }, "net_connect"},
      {[](v1::Event& e) { e.mutable_scan_finding(); }, "scan_finding"},
      {[](v1::Event& e) { e.mutable_on_access()->set_reason(v1::OnAccessDecision::REASON_DETECTED); },
       "onaccess_detection"},
      {[](v1::Event& e) { e.mutable_on_access()->set_reason(v1::OnAccessDecision::REASON_TIMEOUT); },
       "onaccess_timeout"},
      {[](v1::Event& e) { e.mutable_quarantine()->set_action(v1::QuarantineAction::ACTION_RESTORE); },
       "quarantine_restore"},
      {[](v1::Event& e) { e.mutable_behavior_alert(); }, "behavior_alert"},
      {[](v1::Event& e) { e.mutable_sensor_drops(); }, "sensor_drops"},
      {[](v1::Event& e) { e.mutable_agent_status()->set_trigger(v1::AgentStatus::TRIGGER_STARTED); },
       "agent_started"},
      {[](v1::Event& e) { e.mutable_command_result(); }, "command_result"},
      {[](v1::Event& e) { e.mutable_scan_run()->set_phase(v1::ScanRun::PHASE_FINISHED); }, "scan_finished"},
  };
  for (const auto& c : cases) {
    v1::Event e = WithSequence(1);
    c.fill(e);
    INFO(c.type);
    CHECK(EventTypeName(e) == c.type);
    Result<EventRow> r = EventRowFromProto(e);
    REQUIRE(r.ok());
    CHECK(r->type == c.type);
  }
}

TEST_CASE("event rows: columns come from the actor and the payload", "[event_row]") {
  v1::Event e = WithSequence(9);
  e.set_severity(v1::SEVERITY_HIGH);
  e.mutable_process()->set_pid(77);
  e.mutable_process()->set_image("/usr/bin/cat");
  e.mutable_process()->add_argv("cat");
  e.mutable_process()->add_argv("/etc/shadow");
  e.mutable_process()->set_sha256(std::string(64, 'A'));
  e.mutable_on_access()->set_reason(v1::OnAccessDecision::REASON_DETECTED);
  e.mutable_on_access()->set_path("/etc/shadow");
  e.mutable_on_access()->set_sha256(std::string(64, 'B'));
  e.mutable_on_access()->set_signature("Sig.1");
  Result<EventRow> r = EventRowFromProto(e);
  REQUIRE(r.ok());
  CHECK(r->sequence == 9);
  CHECK(r->timestamp_ns == 123);
  CHECK(r->pid == 77);
  CHECK(r->image == "/usr/bin/cat");
  CHECK(r->command_line == "cat /etc/shadow");  // joined argv when command_line is empty
  CHECK(r->process_sha256 == std::string(64, 'a'));  // lowercased
  CHECK(r->file_path == "/etc/shadow");
  CHECK(r->file_sha256 == std::string(64, 'b'));
  CHECK(r->rule_id == "Sig.1");
  CHECK(r->severity == v1::SEVERITY_HIGH);
  v1::Event back;
  REQUIRE(back.ParseFromString(r->payload));
  CHECK(back.SerializeAsString() == e.SerializeAsString());
}

TEST_CASE("event rows: sequences must be in [1, 2^63-1]", "[event_row]") {
  CHECK(EventRowFromProto(WithSequence(0)).status().code() == StatusCode::kInvalidArgument);
  CHECK(EventRowFromProto(WithSequence(uint64_t{1} << 63)).status().code() == StatusCode::kInvalidArgument);
  CHECK(EventRowFromProto(WithSequence(static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))).ok());
}

TEST_CASE("event rows: text columns are valid UTF-8, capped on a character boundary", "[event_row]") {
  CHECK(CleanTextColumn("plain /usr/bin/ls", 100) == "plain /usr/bin/ls");
  CHECK(CleanTextColumn("caf\xc3\xa9", 100) == "caf\xc3\xa9");                // valid 2-byte
  CHECK(CleanTextColumn("\xf0\x9f\x90\xb1", 100) == "\xf0\x9f\x90\xb1");      // valid 4-byte
  CHECK(CleanTextColumn(std::string("a\0b", 3), 100) == "a\\x00b");           // NUL
  CHECK(CleanTextColumn("a\xff" "b", 100) == "a\\xffb");                      // invalid byte
  CHECK(CleanTextColumn("\xc3\x28", 100) == "\\xc3(");                         // bad continuation
  CHECK(CleanTextColumn("\xe0\x80\x80", 100) == "\\xe0\\x80\\x80");            // overlong
  CHECK(CleanTextColumn("\xed\xa0\x80", 100) == "\\xed\\xa0\\x80");            // surrogate
  CHECK(CleanTextColumn("abc\xc3\xa9", 4) == "abc");                           // never half a character
  CHECK(CleanTextColumn("ab\xff", 4) == "ab");                                 // never half an escape
  CHECK(CleanTextColumn(std::string(10, 'x'), 4) == "xxxx");
}

}  // namespace mamori::server

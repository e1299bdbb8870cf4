// agent::Event (a type name + key/value fields, as the agent writes to its
// local event log) -> mamori.v1.Event with the matching typed payload. The
// types and fields come from agent/service/src/agent.cc and
// behavior_service.cc; docs/telemetry-uplink.md lists the mapping.
#include <functional>
#include <optional>
#include <unordered_map>

#include "mamori/agent/event_log.h"
#include "mamori/behavior/event.h"
#include "mamori/common/json.h"
#include "mamori/telemetry/convert.h"

namespace mamori::telemetry {

namespace {

// Field lookup over agent::Event::fields(): the last occurrence of a key wins.
class Fields {
 public:
  explicit Fields(const agent::Event& e) : e_(e) {}
  std::optional<std::string_view> Get(std::string_view key) const {
    const auto& f = e_.fields();
    for (auto it = f.rbegin(); it != f.rend(); ++it) {
      if (it->first == key) return std::string_view(it->second.value);
    }
    return std::nullopt;
  }
  std::string Str(std::string_view key) const { return std::string(Get(key).value_or("")); }
  int64_t Num(std::string_view key) const {
    auto v = Get(key);
    if (!v) return 0;
    int64_t n = 0;
    bool neg = false;
    size_t i = 0;
    if (!v->empty() && (*v)[0] == '-') {
      neg = true;
      i = 1;
    }
    for (; i < v->size(); ++i) {
      const char c = (*v)[i];
      if (c < '0' || c > '9') return 0;
      n = n * 10 + (c - '0');
    }
    return neg ? -n : n;
  }

 private:
  const agent::Event& e_;
};

// "scheduled:<name>" (what agent.cc passes) -> "schedule:<name>" (event.proto).
std::string Source(std::string_view s) {
  constexpr std::string_view kOld = "scheduled:";
  if (s.substr(0, kOld.size()) == kOld) return ValidUtf8("schedule:" + std::string(s.substr(kOld.size())));
  return ValidUtf8(s);
}

// Local (mamori quarantine ...: "control") or a server command ("command" + its id).
void SetRequester(const Fields& f, v1::QuarantineAction* q) {
  const std::string command_id = f.Str("command_id");
  q->set_source(command_id.empty() ? "control" : "command");
  q->set_command_id(ValidUtf8(command_id));
}

v1::Policy PolicyFrom(std::string_view p) {
  if (p == "quarantine") return v1::POLICY_QUARANTINE;
  if (p == "deny") return v1::POLICY_DENY;
  if (p == "report") return v1::POLICY_REPORT;
  return v1::POLICY_UNSPECIFIED;
}

v1::Severity SeverityFromLevel(std::string_view level) {
  if (level == "informational") return v1::SEVERITY_INFO;
  if (level == "low") return v1::SEVERITY_LOW;
  if (level == "medium") return v1::SEVERITY_MEDIUM;
  if (level == "high") return v1::SEVERITY_HIGH;
  if (level == "critical") return v1::SEVERITY_CRITICAL;
  return v1::SEVERITY_MEDIUM;
}

void SetActor(const Fields& f, v1::Event* out, std::string_view image_key = "exe") {
  const int64_t pid = f.Num("pid");
  auto image = f.Get(image_key);
  if (pid == 0 && (!image || image->empty())) return;
  v1::ProcessContext* p = out->mutable_process();
  p->set_pid(static_cast<int32_t>(pid));
  if (image) p->set_image(std::string(*image));
}

// Every type without a typed payload, and typed ones whose fields do not
// parse: AgentStatus (trigger UNSPECIFIED, stored as "agent_status") whose
// message is the whole event as one JSON object and whose counters hold the
// non-negative integer fields.
void Generic(const agent::Event& e, v1::Event* out) {
  v1::AgentStatus* s = out->mutable_agent_status();
  std::string json = "{\"type\":" + json::Quote(e.type());
  for (const auto& [k, f] : e.fields()) {
    json += "," + json::Quote(k) + ":" + (f.number ? f.value : json::Quote(f.value));
    if (f.number && !f.value.empty() && f.value.find_first_not_of("0123456789") == std::string::npos &&
        f.value.size() <= 19) {
      (*s->mutable_counters())[ValidUtf8(k)] = std::stoull(f.value);
    }
  }
  json += "}";
  s->set_message(ValidUtf8(json));
}

void AgentStatusEvent(const Fields& f, v1::AgentStatus::Trigger trigger, v1::Event* out) {
  v1::AgentStatus* s = out->mutable_agent_status();
  s->set_trigger(trigger);
  if (auto v = f.Get("signature_version")) s->mutable_info()->set_signature_version(ValidUtf8(*v));
  if (f.Get("bundle_version")) s->mutable_info()->set_bundle_version(static_cast<uint64_t>(f.Num("bundle_version")));
  if (f.Get("onaccess")) s->mutable_info()->set_onaccess_enabled(f.Num("onaccess") != 0);
  if (auto v = f.Get("reason")) s->set_message(ValidUtf8(*v));
}

bool BehaviorAlertFromFields(const agent::Event&, const Fields& f, v1::Event* out) {
  v1::BehaviorAlert* b = out->mutable_behavior_alert();
  b->set_rule_id(ValidUtf8(f.Str("rule_id")));
  b->set_rule_title(ValidUtf8(f.Str("title")));
  out->set_severity(SeverityFromLevel(f.Str("level")));
  if (f.Num("pid") != 0) {
    v1::ProcessContext* p = out->mutable_process();
    p->set_pid(static_cast<int32_t>(f.Num("pid")));
    p->set_image(f.Str("image"));
    p->set_command_line(f.Str("command_line"));
  }
  // The embedded AlertToJson object: tags, responses, ancestry. Its strings
  // went through json::Quote, so invalid bytes already read "\xHH".
  auto alert = f.Get("alert");
  if (!alert) return true;
  auto parsed = json::Parse(*alert);
  if (!parsed.ok() || !parsed->is_object()) return true;
  if (const json::Value* tags = parsed->Find("tags"); tags != nullptr && tags->is_array()) {
    for (const auto& t : tags->items()) {
      if (t.is_string()) b->add_tags(ValidUtf8(t.AsString()));
    }
  }
  if (const json::Value* rs = parsed->Find("responses"); rs != nullptr && rs->is_array()) {
    for (const auto& r : rs->items()) {
      auto str = [&](const char* k) {
        const json::Value* v = r.Find(k);
        return v != nullptr && v->is_string() ? v->AsString() : std::string();
      };
      const json::Value* done = r.Find("done");
      const bool ok = done != nullptr && done->is_bool() && done->AsBool();
      std::string text = str("action");
      if (!str("target").empty()) text += " " + str("target");
      text += ok ? ": " : " refused: ";
      const std::string detail = str("detail");
      text += detail.empty() ? (ok ? "done" : "not done") : detail;
      b->add_responses(ValidUtf8(text));
    }
  }
  if (const json::Value* anc = parsed->Find("ancestry"); anc != nullptr && anc->is_array()) {
    const auto fill = [](const json::Value& v, v1::ProcessContext* p) {
      auto num = [&](const char* k) -> int64_t {
        const json::Value* n = v.Find(k);
        if (n == nullptr || !n->is_number()) return 0;
        auto i = n->AsInt64();
        return i.ok() ? *i : 0;
      };
      auto str = [&](const char* k) {
        const json::Value* s = v.Find(k);
        return s != nullptr && s->is_string() ? s->AsString() : std::string();
      };
      p->set_pid(static_cast<int32_t>(num("pid")));
      p->set_ppid(static_cast<int32_t>(num("ppid")));
      p->set_uid(static_cast<uint32_t>(num("uid")));
      p->set_user(str("user"));
      p->set_image(str("image"));
      p->set_command_line(str("command_line"));
      p->set_sha256(ValidUtf8(str("sha256")));
    };
    const auto& items = anc->items();
    if (!items.empty() && items[0].is_object()) fill(items[0], out->mutable_process());
    if (items.size() > 1 && items[1].is_object()) fill(items[1], out->mutable_parent());
  }
  return true;
}

using Mapper = std::function<bool(const agent::Event&, const Fields&, v1::Event*)>;

const std::unordered_map<std::string_view, Mapper>& Mappers() {
  static const auto* const kMappers = new std::unordered_map<std::string_view, Mapper>{
      {"agent_started",
       [](const agent::Event&, const Fields& f, v1::Event* out) {
         AgentStatusEvent(f, v1::AgentStatus::TRIGGER_STARTED, out);
         return true;
       }},
      {"agent_stopped",
       [](const agent::Event&, const Fields& f, v1::Event* out) {
         AgentStatusEvent(f, v1::AgentStatus::TRIGGER_STOPPING, out);
         return true;
       }},
      {"reloaded",
       [](const agent::Event&, const Fields& f, v1::Event* out) {
         AgentStatusEvent(f, v1::AgentStatus::TRIGGER_CONFIG_RELOADED, out);
         return true;
       }},
      {"reload_refused",
       [](const agent::Event&, const Fields& f, v1::Event* out) {
         AgentStatusEvent(f, v1::AgentStatus::TRIGGER_RELOAD_REFUSED, out);
         return true;
       }},
      {"signature_update",
       [](const agent::Event&, const Fields& f, v1::Event* out) {
         // Installed: SIGNATURES_UPDATED. Refused: RELOAD_REFUSED with the reason.
         const std::string result = f.Str("result");
         const bool installed = result == "installed";
         v1::AgentStatus* s = out->mutable_agent_status();
         s->set_trigger(installed ? v1::AgentStatus::TRIGGER_SIGNATURES_UPDATED
                                  : v1::AgentStatus::TRIGGER_RELOAD_REFUSED);
         s->set_message(ValidUtf8("signature update from " + f.Str("bundle") + " (uid " + std::to_string(f.Num("uid")) +
                                  "): " + result));
         return true;
       }},
      {"onaccess",
       [](const agent::Event&, const Fields& f, v1::Event* out) {
         v1::OnAccessDecision* d = out->mutable_on_access();
         const std::string access = f.Str("access");
         d->set_access(access == "exec"          ? v1::OnAccessDecision::ACCESS_EXEC
                       : access == "open"        ? v1::OnAccessDecision::ACCESS_OPEN
                       : access == "close_write" ? v1::OnAccessDecision::ACCESS_CLOSE_WRITE
                                                 : v1::OnAccessDecision::ACCESS_UNSPECIFIED);
         const std::string decision = f.Str("decision");
         d->set_decision(decision == "deny"    ? v1::OnAccessDecision::DECISION_DENY
                         : decision == "allow" ? v1::OnAccessDecision::DECISION_ALLOW
                                               : v1::OnAccessDecision::DECISION_UNSPECIFIED);
         d->set_reason(v1::OnAccessDecision::REASON_DETECTED);
         d->set_path(f.Str("path"));
         d->set_signature(ValidUtf8(f.Str("signature")));
         d->set_object(f.Str("object"));
         d->set_sha256(ValidUtf8(f.Str("sha256")));
         d->set_policy(PolicyFrom(f.Str("policy")));
         d->set_signature_version(ValidUtf8(f.Str("signature_version")));
         SetActor(f, out);
         out->set_severity(v1::SEVERITY_HIGH);
         return true;
       }},
      {"onaccess_timeout",
       [](const agent::Event&, const Fields& f, v1::Event* out) {
         v1::OnAccessDecision* d = out->mutable_on_access();
         d->set_reason(v1::OnAccessDecision::REASON_TIMEOUT);
         d->set_decision(v1::OnAccessDecision::DECISION_ALLOW);
         d->set_path(f.Str("path"));
         SetActor(f, out);
         out->set_severity(v1::SEVERITY_LOW);
         return true;
       }},
      {"onaccess_overflow",
       [](const agent::Event&, const Fields& f, v1::Event* out) {
         v1::OnAccessDecision* d = out->mutable_on_access();
         d->set_reason(v1::OnAccessDecision::REASON_OVERFLOW);
         d->set_decision(v1::OnAccessDecision::DECISION_ALLOW);
         d->set_path(f.Str("path"));
         out->set_severity(v1::SEVERITY_MEDIUM);
         return true;
       }},
      {"scan_finding",
       [](const agent::Event&, const Fields& f, v1::Event* out) {
         v1::ScanFinding* s = out->mutable_scan_finding();
         s->set_source(Source(f.Str("source")));
         s->set_path(f.Str("path"));
         s->set_object(f.Str("object"));
         s->set_signature(ValidUtf8(f.Str("signature")));
         s->set_sha256(ValidUtf8(f.Str("sha256")));
         s->set_signature_version(ValidUtf8(f.Str("signature_version")));
         s->set_policy(PolicyFrom(f.Str("policy")));
         s->set_command_id(ValidUtf8(f.Str("command_id")));
         out->set_severity(v1::SEVERITY_HIGH);
         return true;
       }},
      {"quarantine",
       [](const agent::Event&, const Fields& f, v1::Event* out) {
         v1::QuarantineAction* q = out->mutable_quarantine();
         q->set_action(v1::QuarantineAction::ACTION_QUARANTINE);
         const bool ok = f.Str("result") == "quarantined";
         q->set_outcome(ok ? v1::QuarantineAction::OUTCOME_SUCCEEDED : v1::QuarantineAction::OUTCOME_FAILED);
         q->set_quarantine_id(ValidUtf8(f.Str("id")));
         q->set_path(f.Str("path"));
         q->set_sha256(ValidUtf8(f.Str("sha256")));
         q->set_signature(ValidUtf8(f.Str("signature")));
         q->set_source(Source(f.Str("source")));
         if (!ok) q->set_error(ValidUtf8(f.Str("reason")));
         SetActor(f, out);
         out->set_severity(ok ? v1::SEVERITY_HIGH : v1::SEVERITY_CRITICAL);
         return true;
       }},
      {"quarantine_delete",
       [](const agent::Event&, const Fields& f, v1::Event* out) {
         v1::QuarantineAction* q = out->mutable_quarantine();
         q->set_action(v1::QuarantineAction::ACTION_DELETE);
         const std::string result = f.Str("result");
         const bool ok = result == "ok";
         q->set_outcome(ok ? v1::QuarantineAction::OUTCOME_SUCCEEDED : v1::QuarantineAction::OUTCOME_FAILED);
         q->set_quarantine_id(ValidUtf8(f.Str("id")));
         q->set_requested_by_uid(static_cast<uint32_t>(f.Num("uid")));
         SetRequester(f, q);
         if (!ok) q->set_error(ValidUtf8(result));
         out->set_severity(v1::SEVERITY_INFO);
         return true;
       }},
      {"quarantine_restore",
       [](const agent::Event&, const Fields& f, v1::Event* out) {
         v1::QuarantineAction* q = out->mutable_quarantine();
         q->set_action(v1::QuarantineAction::ACTION_RESTORE);
         const std::string result = f.Str("result");
         const bool ok = result == "restored";
         q->set_outcome(ok ? v1::QuarantineAction::OUTCOME_SUCCEEDED : v1::QuarantineAction::OUTCOME_FAILED);
         q->set_quarantine_id(ValidUtf8(f.Str("id")));
         q->set_path(f.Str("path"));
         q->set_requested_by_uid(static_cast<uint32_t>(f.Num("uid")));
         SetRequester(f, q);
         if (!ok) q->set_error(ValidUtf8(result));
         out->set_severity(v1::SEVERITY_MEDIUM);  // a detected file is back on disk
         return true;
       }},
      {"scan_requested",
       [](const agent::Event&, const Fields& f, v1::Event* out) {
         v1::ScanRun* r = out->mutable_scan_run();
         r->set_phase(v1::ScanRun::PHASE_STARTED);
         r->set_source("control");
         if (auto p = f.Get("paths")) r->add_paths(std::string(*p));
         if (f.Num("pid") != 0 || f.Get("uid")) {
           out->mutable_process()->set_pid(static_cast<int32_t>(f.Num("pid")));
           out->mutable_process()->set_uid(static_cast<uint32_t>(f.Num("uid")));
         }
         return true;
       }},
      {"scheduled_scan_started",
       [](const agent::Event&, const Fields& f, v1::Event* out) {
         v1::ScanRun* r = out->mutable_scan_run();
         r->set_phase(v1::ScanRun::PHASE_STARTED);
         r->set_source(ValidUtf8("schedule:" + f.Str("name")));
         return true;
       }},
      {"scheduled_scan_finished",
       [](const agent::Event&, const Fields& f, v1::Event* out) {
         v1::ScanRun* r = out->mutable_scan_run();
         r->set_phase(v1::ScanRun::PHASE_FINISHED);
         r->set_source(ValidUtf8("schedule:" + f.Str("name")));
         r->set_exit_code(static_cast<int32_t>(f.Num("exit")));
         if (f.Get("files_scanned")) r->set_files_scanned(static_cast<uint64_t>(f.Num("files_scanned")));
         if (f.Get("findings")) r->set_findings(static_cast<uint64_t>(f.Num("findings")));
         if (f.Get("errors")) r->set_errors(static_cast<uint64_t>(f.Num("errors")));
         if (f.Get("duration_ms")) r->set_duration_ms(static_cast<uint64_t>(f.Num("duration_ms")));
         return true;
       }},
      {"sensor_drops",
       [](const agent::Event&, const Fields& f, v1::Event* out) {
         v1::SensorDrops* d = out->mutable_sensor_drops();
         d->set_sensor(ValidUtf8(f.Get("sensor").value_or("behavior")));
         d->set_drop_source(ValidUtf8(f.Str("source")));
         d->set_dropped(static_cast<uint64_t>(f.Num("dropped")));
         out->set_severity(v1::SEVERITY_MEDIUM);
         return true;
       }},
      {"behavior_alert", BehaviorAlertFromFields},
      {"behavior_event",
       [](const agent::Event&, const Fields& f, v1::Event* out) {
         auto json = f.Get("event");
         if (!json) return false;
         auto e = behavior::EventFromJson(*json);
         if (!e.ok()) return false;
         *out = FromBehaviorEvent(*e).event;
         return true;
       }},
  };
  return *kMappers;
}

}  // namespace

Converted FromAgentEvent(const agent::Event& e, int64_t timestamp_ns) {
  Converted c;
  const Fields fields(e);
  const auto& mappers = Mappers();
  auto it = mappers.find(e.type());
  bool mapped = false;
  if (it != mappers.end()) mapped = it->second(e, fields, &c.event);
  if (!mapped) {
    c.event.Clear();
    Generic(e, &c.event);
  }
  if (c.event.timestamp_ns() == 0) c.event.set_timestamp_ns(timestamp_ns);
  c.priority = PriorityOf(c.event);
  return c;
}

}  // namespace mamori::telemetry

#include "behavior_service.h"

#include <unistd.h>

#include "mamori/behavior/sensors.h"
#include "mamori/behavior/sensor.h"
#include "mamori/common/log.h"

namespace mamori::agent {

Result<std::shared_ptr<const behavior::rules::RuleSet>> LoadBehaviorRules(const AgentConfig& c, EventLog* events) {
  behavior::rules::LoadReport report;
  auto rules = behavior::rules::RuleSet::Load(c.behavior_rules, &report);
  if (!rules.ok()) return rules.status().WithContext("behavior rules");
  for (const auto& item : report.refused_items) {
    MAMORI_LOG(kWarning, "behavior rule refused: " << item.file << ":" << item.line << ": " << item.rule
                         << ": " << item.reason);
    if (events != nullptr) {
      events->Append(Event("behavior_rule_refused")
                         .Str("file", item.file)
                         .Num("line", item.line)
                         .Str("rule", item.rule)
                         .Str("reason", item.reason));
    }
  }
  MAMORI_LOG(kInfo, "behavior rules: " << report.loaded << " loaded, " << report.refused << " refused, "
                    << report.skipped << " skipped (other log sources)");
  return rules;
}

BehaviorService::BehaviorService(const AgentConfig& c, EventLog* events) : config_(c), events_(events) {}

BehaviorService::~BehaviorService() { Stop(); }

Result<std::unique_ptr<BehaviorService>> BehaviorService::Create(const AgentConfig& c, EventLog* events,
                                                                 behavior::Responder::QuarantineFn quarantine,
                                                                 telemetry::EventWriter* telemetry) {
  std::unique_ptr<BehaviorService> s(new BehaviorService(c, events));
  s->telemetry_ = telemetry;
  auto rules = LoadBehaviorRules(c, events);
  if (!rules.ok()) return rules.status();
  s->initial_rules_ = *rules;
  s->hasher_ = std::make_unique<behavior::ImageHasher>();
  behavior::ProcessTable::Options to;
  to.max_processes = c.behavior_max_processes;
  if (c.behavior_sensor == "replay") to.proc_root = "";  // replayed pids are not this machine's
  s->table_ = std::make_unique<behavior::ProcessTable>(to, s->hasher_.get());
  behavior::Responder::Options ro;
  if (!c.behavior_protected_paths.empty()) {
    ro.protected_paths.clear();
    for (std::string p : c.behavior_protected_paths) {
      if (p.back() != '/') p.push_back('/');
      ro.protected_paths.push_back(p);
    }
  }
  s->responder_ = std::make_unique<behavior::Responder>(ro, s->table_.get(), std::move(quarantine));
  return s;
}

Result<std::unique_ptr<behavior::Sensor>> BehaviorService::MakeSensor() {
  const std::string& kind = config_.behavior_sensor;
  std::unique_ptr<behavior::Sensor> sensor;
  if (kind == "replay") {
    sensor = behavior::MakeReplaySensor(config_.behavior_replay_file);
  } else if (kind == "none") {
    sensor = behavior::MakeNullSensor();
  } else {
    behavior::LinuxSensorOptions o;
    o.file_prefixes = config_.behavior_watch_paths;
    o.ignore_pid = -1;  // never watch ourselves
    if (kind == "auto") {
      auto best = behavior::MakeBestSensor(o);
      if (!best.ok()) return best.status();
      if (!best->ebpf_status.ok()) fallback_reason_ = best->ebpf_status.message();
      return std::unique_ptr<behavior::Sensor>(std::move(best->sensor));
    }
    if (kind == "ebpf") sensor = behavior::MakeEbpfSensor(o);
    else sensor = behavior::MakeProcConnSensor(o);
  }
  MAMORI_RETURN_IF_ERROR(sensor->Start());
  return sensor;
}

Status BehaviorService::Start() {
  auto sensor = MakeSensor();
  if (!sensor.ok()) return sensor.status().WithContext("behavior sensor");
  std::string name((*sensor)->name());
  if (!fallback_reason_.empty()) {
    MAMORI_LOG(kWarning, "behavior: eBPF sensor unavailable (" << fallback_reason_ << "); using " << name
                         << " with lower fidelity");
  }
  auto seen = table_->Snapshot();
  if (!seen.ok()) MAMORI_LOG(kWarning, "behavior: /proc snapshot: " << seen.status().message());
  behavior::Monitor::Options mo;
  mo.responses_enabled = config_.behavior_responses;
  mo.emit_all_events =
      config_.behavior_record_events || (telemetry_ != nullptr && config_.telemetry_send_behavior_events);
  behavior::Monitor::Sinks sinks;
  sinks.alert = [this](const behavior::AlertRecord& a) { RecordAlert(a); };
  sinks.event = [this](const behavior::Event& e) { RecordEvent(e); };
  monitor_ = std::make_unique<behavior::Monitor>(mo, std::move(*sensor), initial_rules_, table_.get(),
                                                 responder_.get(), std::move(sinks));
  MAMORI_RETURN_IF_ERROR(monitor_->Start().WithContext("behavior sensor " + name));
  Event started("behavior_started");
  started.Str("sensor", name)
      .Num("rules", static_cast<int64_t>(initial_rules_->rules().size()))
      .Num("processes", seen.ok() ? static_cast<int64_t>(*seen) : 0);
  if (!fallback_reason_.empty()) started.Str("fallback_reason", fallback_reason_);
  events_->Append(started);
  return Status::Ok();
}

void BehaviorService::Stop() {
  if (monitor_) monitor_->Stop();
}

Status BehaviorService::ReloadRules(const AgentConfig& fresh) {
  auto rules = LoadBehaviorRules(fresh, events_);
  if (!rules.ok()) return rules.status();
  if (monitor_) monitor_->SwapRules(*rules);
  initial_rules_ = *rules;
  return Status::Ok();
}

void BehaviorService::RecordAlert(const behavior::AlertRecord& a) {
  const auto& rule = *a.alert.rule;
  const behavior::Event* last = a.alert.events.empty() ? nullptr : &a.alert.events.back();
  Event ev("behavior_alert");
  ev.Str("rule_id", rule.id).Str("title", rule.title).Str("level", rule.level);
  if (last != nullptr) {
    ev.Num("pid", last->process.pid).Str("image", last->process.image).Str("command_line", last->process.command_line);
  }
  ev.Json("alert", behavior::AlertToJson(a));
  events_->Append(ev);
  if (telemetry_ != nullptr) {
    auto seq = telemetry_->WriteAlert(a);
    if (!seq.ok()) MAMORI_LOG(kError, "telemetry: alert not spooled (kept in events.jsonl): " << seq.status().message());
  }
  for (const auto& r : a.responses) {
    events_->Append(Event("behavior_response")
                        .Str("rule_id", rule.id)
                        .Str("action", r.action)
                        .Str("target", r.target)
                        .Str("result", r.done ? "done" : "not_done")
                        .Str("detail", r.detail));
  }
}

void BehaviorService::RecordEvent(const behavior::Event& e) {
  if (telemetry_ != nullptr && (e.type == behavior::EventType::kSensorDrops || config_.telemetry_send_behavior_events)) {
    (void)telemetry_->WriteBehaviorEvent(e);  // a full spool counts and reports its drops
  }
  if (e.type == behavior::EventType::kSensorDrops) {
    events_->Append(Event("sensor_drops").Num("dropped", static_cast<int64_t>(e.dropped)).Str("source", e.drop_source));
    return;
  }
  if (config_.behavior_record_events) events_->Append(Event("behavior_event").Json("event", behavior::EventToJson(e)));
}

std::string BehaviorService::sensor_name() const { return monitor_ ? monitor_->stats().sensor : ""; }

std::string BehaviorService::StatusLine() const {
  if (!monitor_) return "behavior     off";
  auto s = monitor_->stats();
  auto t = table_->stats();
  std::string out = "behavior     " + s.sensor + ": " + std::to_string(s.events) + " events, " +
                    std::to_string(s.alerts) + " alerts, " + std::to_string(s.responses) + " responses, " +
                    std::to_string(s.sensor_dropped) + " dropped, " + std::to_string(s.rules) + " rules, " +
                    std::to_string(t.size) + " processes tracked";
  if (!fallback_reason_.empty()) out += " (eBPF unavailable: " + fallback_reason_ + ")";
  return out;
}

}  // namespace mamori::agent

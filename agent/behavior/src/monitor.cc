#include "mamori/behavior/monitor.h"

#include <cstdint>
#include <limits>
#include <time.h>

#include "mamori/common/json.h"
#include "mamori/common/log.h"

namespace mamori::behavior {
namespace {

std::string ProcessSummaryJson(const ProcessContext& p) {
  std::string out = "{\"pid\":" + std::to_string(p.pid) + ",\"ppid\":" + std::to_string(p.ppid) +
                    ",\"uid\":" + std::to_string(p.uid);
  out += ",\"user\":" + json::Quote(p.user);
  out += ",\"image\":" + json::Quote(p.image);
  out += ",\"command_line\":" + json::Quote(p.command_line);
  if (!p.sha256.empty()) out += ",\"sha256\":" + json::Quote(p.sha256);
  return out + "}";
}

}  // namespace

std::string AlertToJson(const AlertRecord& a) {
  const rules::RuleInfo& r = *a.alert.rule;
  std::string out = "{\"rule_id\":" + json::Quote(r.id) + ",\"title\":" + json::Quote(r.title) +
                    ",\"level\":" + json::Quote(r.level) + ",\"tags\":[";
  for (size_t i = 0; i < r.tags.size(); ++i) out += (i ? "," : "") + json::Quote(r.tags[i]);
  out += "],\"rule_file\":" + json::Quote(r.file + ":" + std::to_string(r.line));
  out += ",\"correlation\":" + std::string(r.correlation ? "true" : "false");
  out += ",\"timestamp_ns\":" + std::to_string(a.alert.timestamp_ns);
  out += ",\"events\":[";
  for (size_t i = 0; i < a.alert.events.size(); ++i) out += (i ? "," : "") + EventToJson(a.alert.events[i]);
  out += "],\"ancestry\":[";
  for (size_t i = 0; i < a.ancestry.size(); ++i) out += (i ? "," : "") + ProcessSummaryJson(a.ancestry[i]);
  out += "],\"responses\":[";
  for (size_t i = 0; i < a.responses.size(); ++i) {
    const ResponseOutcome& o = a.responses[i];
    out += (i ? "," : "");
    out += "{\"action\":" + json::Quote(o.action) + ",\"target\":" + json::Quote(o.target) +
           ",\"done\":" + (o.done ? "true" : "false") + ",\"detail\":" + json::Quote(o.detail) + "}";
  }
  return out + "]}";
}

Monitor::Monitor(Options options, std::unique_ptr<Sensor> sensor, std::shared_ptr<const rules::RuleSet> rules,
                 ProcessTable* table, Responder* responder, Sinks sinks)
    : options_(options),
      sensor_(std::move(sensor)),
      table_(table),
      responder_(responder),
      sinks_(std::move(sinks)),
      rules_(std::move(rules)) {}

Monitor::~Monitor() { Stop(); }

Status Monitor::Start() {
  stop_.store(false);
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

void Monitor::Stop() {
  stop_.store(true);
  sensor_->Stop();
  if (thread_.joinable()) thread_.join();
}

Status Monitor::Run() {
  Loop();
  return sensor_->status();
}

void Monitor::SwapRules(std::shared_ptr<const rules::RuleSet> rules) {
  std::lock_guard<std::mutex> lock(mu_);
  rules_ = std::move(rules);
  rules_changed_.store(true, std::memory_order_release);
}

void Monitor::Loop() {
  std::shared_ptr<const rules::RuleSet> current;
  {
    std::lock_guard<std::mutex> lock(mu_);
    current = rules_;
    rules_changed_.store(false);
  }
  auto engine = std::make_unique<rules::Engine>(current);
  std::vector<rules::Alert> alerts;
  Event e;
  uint64_t since_stats = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    Sensor::NextResult r = sensor_->Next(options_.poll, &e);
    if (r == Sensor::NextResult::kEnd) break;
    if (rules_changed_.load(std::memory_order_acquire)) {
      std::lock_guard<std::mutex> lock(mu_);
      current = rules_;
      rules_changed_.store(false);
      engine_stats_ = engine->stats();
      engine = std::make_unique<rules::Engine>(current);
    }
    if (r == Sensor::NextResult::kTimeout || ++since_stats >= 4096) {
      std::lock_guard<std::mutex> lock(mu_);
      engine_stats_ = engine->stats();
      since_stats = 0;
    }
    if (r == Sensor::NextResult::kTimeout) {
      // Quiet time still moves correlation windows forward.
      timespec ts{};
      clock_gettime(CLOCK_REALTIME, &ts);
      alerts.clear();
      // One second of slack: sensor events may still be in flight.
      uint64_t now = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
      engine->AdvanceTime(now - 1000000000ull, &alerts);
      for (auto& a : alerts) Raise(std::move(a));
      continue;
    }
    Handle(&e, engine.get(), &alerts);
  }
  // End of stream (replay) or stop: windows that are open can only close now.
  alerts.clear();
  engine->AdvanceTime(std::numeric_limits<uint64_t>::max(), &alerts);
  for (auto& a : alerts) Raise(std::move(a));
  std::lock_guard<std::mutex> lock(mu_);
  engine_stats_ = engine->stats();
}

void Monitor::Handle(Event* e, rules::Engine* engine, std::vector<rules::Alert>* alerts) {
  events_.fetch_add(1, std::memory_order_relaxed);
  if (e->type == EventType::kSensorDrops) {
    dropped_.fetch_add(e->dropped, std::memory_order_relaxed);
    if (sinks_.event) sinks_.event(*e);
    return;
  }
  if (table_ != nullptr) table_->Apply(e);
  if (options_.emit_all_events && sinks_.event) sinks_.event(*e);
  alerts->clear();
  engine->Process(*e, alerts);
  for (auto& a : *alerts) Raise(std::move(a));
}

void Monitor::Raise(rules::Alert alert) {
  alerts_.fetch_add(1, std::memory_order_relaxed);
  AlertRecord rec;
  rec.alert = std::move(alert);
  const Event* last = rec.alert.events.empty() ? nullptr : &rec.alert.events.back();
  if (last != nullptr) {
    if (table_ != nullptr) rec.ancestry = table_->Ancestry(last->process.pid, options_.ancestry_depth);
    // The table may have dropped an exited process: the event still knows it.
    if (rec.ancestry.empty() || rec.ancestry.front().pid != last->process.pid) {
      rec.ancestry.insert(rec.ancestry.begin(), last->process);
      if (last->parent.known() && (rec.ancestry.size() < 2 || rec.ancestry[1].pid != last->parent.pid)) {
        rec.ancestry.insert(rec.ancestry.begin() + 1, last->parent);
      }
    }
  }
  for (rules::ResponseKind kind : rec.alert.rule->responses) {
    responses_.fetch_add(1, std::memory_order_relaxed);
    std::string name(rules::ResponseKindName(kind));
    if (!options_.responses_enabled || responder_ == nullptr) {
      rec.responses.push_back({name, "", false, "responses are disabled in the agent configuration"});
      continue;
    }
    if (last == nullptr) {
      rec.responses.push_back({name, "", false, "no triggering event"});
      continue;
    }
    const ProcessContext& p = last->process;
    switch (kind) {
      case rules::ResponseKind::kKillProcess:
        rec.responses.push_back(responder_->KillProcess(p.pid, p.start_time_ns));
        break;
      case rules::ResponseKind::kKillTree:
        rec.responses.push_back(responder_->KillTree(p.pid, p.start_time_ns));
        break;
      case rules::ResponseKind::kQuarantineImage:
        rec.responses.push_back(responder_->QuarantineFile(name, p.image, rec.alert.rule->title));
        break;
      case rules::ResponseKind::kQuarantineTarget:
        rec.responses.push_back(responder_->QuarantineFile(name, last->target_filename, rec.alert.rule->title));
        break;
      case rules::ResponseKind::kIsolate:
        rec.responses.push_back({name, "", false, "network isolation is not implemented in this agent version"});
        break;
    }
  }
  if (sinks_.alert) sinks_.alert(rec);
}

Monitor::Stats Monitor::stats() const {
  Stats s;
  s.sensor = std::string(sensor_->name());
  s.events = events_.load();
  s.alerts = alerts_.load();
  s.responses = responses_.load();
  s.sensor_dropped = std::max<uint64_t>(dropped_.load(), sensor_->stats().dropped);
  std::lock_guard<std::mutex> lock(mu_);
  s.correlation_evictions = engine_stats_.correlation_evictions;
  s.rules = rules_ ? rules_->rules().size() : 0;
  return s;
}

}  // namespace mamori::behavior

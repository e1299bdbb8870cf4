// Helpers for the rules tests: events described by their Sigma fields, and a
// one-rule loader.
#pragma once

#include <catch2/catch.hpp>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mamori/behavior/event.h"
#include "mamori/behavior/rules/engine.h"
#include "mamori/behavior/rules/rule_set.h"

namespace mamori::behavior::rules::testing {

using Fields = std::vector<std::pair<std::string, std::string>>;

// An event of `type` with the given Sigma fields set (test-side mapping; the
// engine's own mapping is what is under test).
inline Event MakeEvent(EventType type, const Fields& fields, uint64_t timestamp_ns = 0) {
  Event e;
  e.type = type;
  e.timestamp_ns = timestamp_ns;
  e.process.pid = 4242;
  e.process.ppid = 1;
  for (const auto& [k, v] : fields) {
    auto num = [&] { return std::strtoll(v.c_str(), nullptr, 0); };
    if (k == "Image")
      e.process.image = v;
    else if (k == "CommandLine")
      e.process.command_line = v;
    else if (k == "ParentImage")
      e.parent.image = v;
    else if (k == "ParentCommandLine")
      e.parent.command_line = v;
    else if (k == "User")
      e.process.user = v;
    else if (k == "ParentUser")
      e.parent.user = v;
    else if (k == "CurrentDirectory")
      e.process.cwd = v;
    else if (k == "ProcessId")
      e.process.pid = static_cast<int32_t>(num());
    else if (k == "ParentProcessId")
      e.process.ppid = static_cast<int32_t>(num());
    else if (k == "Uid")
      e.process.uid = static_cast<uint32_t>(num());
    else if (k == "Sha256")
      e.process.sha256 = v;
    else if (k == "Tty")
      e.process.tty = v;
    else if (k == "TargetFilename")
      e.target_filename = v;
    else if (k == "SourceFilename")
      e.source_filename = v;
    else if (k == "Mode")
      e.mode = static_cast<uint32_t>(num());
    else if (k == "DestinationIp")
      e.destination_ip = v;
    else if (k == "DestinationPort")
      e.destination_port = static_cast<uint16_t>(num());
    else if (k == "DestinationHostname")
      e.destination_hostname = v;
    else if (k == "SourceIp")
      e.source_ip = v;
    else if (k == "SourcePort")
      e.source_port = static_cast<uint16_t>(num());
    else if (k == "Protocol")
      e.protocol = v;
    else if (k == "ExitCode")
      e.exit_code = static_cast<int32_t>(num());
    else if (k == "NewId")
      e.new_id = static_cast<uint32_t>(num());
    else if (k == "ModuleName")
      e.module_name = v;
    else if (k == "TargetProcessId")
      e.target_pid = static_cast<int32_t>(num());
    else if (k == "PtraceRequest")
      e.ptrace_request = num();
    else
      FAIL("test helper does not know field " << k);
  }
  return e;
}

inline Event Exec(const Fields& fields, uint64_t timestamp_ns = 0) {
  return MakeEvent(EventType::kExec, fields, timestamp_ns);
}

// A complete rule document for `category` around a detection body (indented
// by four spaces, including its condition).
inline std::string RuleText(const std::string& category, const std::string& detection, const std::string& extra = "") {
  return "title: test rule\nid: 11111111-2222-3333-4444-555555555555\nlevel: high\n"
         "logsource:\n    product: linux\n    category: " +
         category + "\ndetection:\n" + detection + extra;
}

// Loads text that must yield exactly `loaded` rules and nothing refused.
inline std::shared_ptr<const RuleSet> LoadOk(const std::string& text, int loaded = 1) {
  LoadReport report;
  auto set = RuleSet::LoadFromString(text, "test.yml", &report);
  REQUIRE(set.ok());
  INFO(report.ToText());
  REQUIRE(report.refused == 0);
  REQUIRE(report.loaded == loaded);
  return *set;
}

// The alerts `events` raise, in order.
inline std::vector<Alert> Run(const std::shared_ptr<const RuleSet>& set, const std::vector<Event>& events,
                              EngineOptions options = {}) {
  Engine engine(set, options);
  std::vector<Alert> alerts;
  for (const Event& e : events) engine.Process(e, &alerts);
  return alerts;
}

// Titles of the alerts, in order.
inline std::vector<std::string> Titles(const std::vector<Alert>& alerts) {
  std::vector<std::string> out;
  for (const Alert& a : alerts) out.push_back(a.rule->title);
  return out;
}

}  // namespace mamori::behavior::rules::testing

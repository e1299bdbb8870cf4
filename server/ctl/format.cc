#include "format.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <ctime>

#include "mamori/common/json.h"

namespace mamori::ctl {

namespace v1 = mamori::v1;

std::string Time(int64_t ns) {
  if (ns == 0) return "-";
  const std::time_t t = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string ToJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(m, &out, o).ok()) return "{}";
  return out;
}

std::string EventSummary(const v1::ConsoleEvent& ce) {
  const v1::Event& e = ce.event();
  const std::string proc =
      e.process().image().empty() ? "" : e.process().image() + "[" + std::to_string(e.process().pid()) + "]";
  switch (e.payload_case()) {
    case v1::Event::kProcessActivity: {
      std::string cmd = e.process().command_line().empty() ? e.process().image() : e.process().command_line();
      return std::to_string(e.process().pid()) + " " + cmd;
    }
    case v1::Event::kFile:
      return proc + " " + e.file().target_filename();
    case v1::Event::kNetwork:
      return proc + " " + e.network().destination_ip() + ":" + std::to_string(e.network().destination_port());
    case v1::Event::kScanFinding:
      return std::string(e.scan_finding().object().empty() ? e.scan_finding().path() : e.scan_finding().object()) +
             " " + e.scan_finding().signature();
    case v1::Event::kOnAccess:
      return proc + " " + e.on_access().path() + " " + e.on_access().signature();
    case v1::Event::kQuarantine:
      return e.quarantine().quarantine_id() + " " + e.quarantine().path() + " " + e.quarantine().signature() +
             (e.quarantine().error().empty() ? "" : " error: " + e.quarantine().error());
    case v1::Event::kBehaviorAlert:
      return e.behavior_alert().rule_id() + " " + proc;
    case v1::Event::kCommandResult:
      return "command " + e.command_result().command_id() + " " +
             v1::CommandResult::Outcome_Name(e.command_result().outcome()) +
             (e.command_result().error().empty() ? "" : ": " + e.command_result().error());
    case v1::Event::kScanRun:
      return std::to_string(e.scan_run().files_scanned()) + " files";
    case v1::Event::kAgentStatus:
      return e.agent_status().message();
    default:
      return proc;
  }
}

std::string EventJson(const v1::ConsoleEvent& e) {
  return "{\"time\":" + json::Quote(Time(e.event().timestamp_ns())) + ",\"agent_id\":" + json::Quote(e.agent_id()) +
         ",\"type\":" + json::Quote(e.type()) + ",\"sequence\":" + std::to_string(e.event().sequence()) +
         ",\"summary\":" + json::Quote(EventSummary(e)) + ",\"event\":" + ToJson(e.event()) + "}";
}

std::string DescribeState(const v1::CommandStatus& s) {
  const std::string& st = s.state();
  if (st == "pending") return s.agent_online() ? "queued" : "queued (agent offline)";
  if (st == "running" && s.result().has_scan()) {
    return "running: " + std::to_string(s.result().scan().files_scanned()) + " files, " +
           std::to_string(s.result().scan().findings()) + " findings";
  }
  if (st == "succeeded" && s.result().has_scan()) {
    return "succeeded: " + std::to_string(s.result().scan().files_scanned()) + " files, " +
           std::to_string(s.result().scan().findings()) + " findings, " + std::to_string(s.result().scan().errors()) +
           " errors";
  }
  if ((st == "failed" || st == "rejected") && !s.error().empty()) return st + ": " + s.error();
  return st;
}

std::string Table::Render() const {
  std::vector<size_t> width;
  for (const auto& r : rows_) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows_) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace mamori::ctl

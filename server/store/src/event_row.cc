#include "mamori/server/event_row.h"

#include <cstdint>
#include <limits>
#include <string>

#include "mamori/common/utf8.h"

namespace mamori::server {
namespace {

using v1::Event;

// Text columns hold valid UTF-8 without NUL (PostgreSQL's text refuses NUL).
size_t TextSequenceLength(std::string_view s, size_t i) {
  return s[i] == '\0' ? 0 : Utf8SequenceLength(s, i);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string Indexed(std::string_view s) { return CleanTextColumn(s, kMaxIndexedColumnBytes); }
std::string Text(std::string_view s) { return CleanTextColumn(s, kMaxTextColumnBytes); }

std::string ProcessTypeName(v1::ProcessActivity::Kind k) {
  switch (k) {
    case v1::ProcessActivity::KIND_EXEC: return "exec";
    case v1::ProcessActivity::KIND_FORK: return "fork";
    case v1::ProcessActivity::KIND_EXIT: return "exit";
    case v1::ProcessActivity::KIND_SETUID: return "setuid";
    case v1::ProcessActivity::KIND_SETGID: return "setgid";
    case v1::ProcessActivity::KIND_PTRACE: return "ptrace";
    case v1::ProcessActivity::KIND_MODULE_LOAD: return "module_load";
    default: return "process";
  }
}

std::string FileTypeName(v1::FileActivity::Kind k) {
  switch (k) {
    case v1::FileActivity::KIND_OPEN_WRITE: return "file_open_write";
    case v1::FileActivity::KIND_CREATE: return "file_create";
    case v1::FileActivity::KIND_RENAME: return "file_rename";
    case v1::FileActivity::KIND_UNLINK: return "file_unlink";
    case v1::FileActivity::KIND_CHMOD: return "file_chmod";
    case v1::FileActivity::KIND_CHOWN: return "file_chown";
    default: return "file";
  }
}

std::string NetworkTypeName(v1::NetworkActivity::Kind k) {
  switch (k) {
    case v1::NetworkActivity::KIND_CONNECT: return "net_connect";
    case v1::NetworkActivity::KIND_ACCEPT: return "net_accept";
    case v1::NetworkActivity::KIND_BIND: return "net_bind";
    default: return "network";
  }
}

std::string OnAccessTypeName(v1::OnAccessDecision::Reason r) {
  switch (r) {
    case v1::OnAccessDecision::REASON_DETECTED: return "onaccess_detection";
    case v1::OnAccessDecision::REASON_TIMEOUT: return "onaccess_timeout";
    case v1::OnAccessDecision::REASON_OVERFLOW: return "onaccess_overflow";
    default: return "onaccess";
  }
}

std::string QuarantineTypeName(v1::QuarantineAction::Action a) {
  switch (a) {
    case v1::QuarantineAction::ACTION_QUARANTINE: return "quarantine";
    case v1::QuarantineAction::ACTION_RESTORE: return "quarantine_restore";
    case v1::QuarantineAction::ACTION_DELETE: return "quarantine_delete";
    default: return "quarantine_action";
  }
}

std::string AgentStatusTypeName(v1::AgentStatus::Trigger t) {
  switch (t) {
    case v1::AgentStatus::TRIGGER_STARTED: return "agent_started";
    case v1::AgentStatus::TRIGGER_STOPPING: return "agent_stopping";
    case v1::AgentStatus::TRIGGER_SIGNATURES_UPDATED: return "agent_signatures_updated";
    case v1::AgentStatus::TRIGGER_CONFIG_RELOADED: return "agent_config_reloaded";
    case v1::AgentStatus::TRIGGER_RELOAD_REFUSED: return "agent_reload_refused";
    case v1::AgentStatus::TRIGGER_ISOLATION_CHANGED: return "agent_isolation_changed";
    default: return "agent_status";
  }
}

std::string ScanRunTypeName(v1::ScanRun::Phase p) {
  switch (p) {
    case v1::ScanRun::PHASE_STARTED: return "scan_started";
    case v1::ScanRun::PHASE_FINISHED: return "scan_finished";
    default: return "scan_run";
  }
}

}  // namespace

bool IsCleanTextColumn(std::string_view bytes, size_t max_bytes) {
  if (bytes.size() > max_bytes) return false;
  for (size_t i = 0; i < bytes.size();) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c != 0 && c < 0x80) {  // the common case: ASCII
      ++i;
      continue;
    }
    const size_t n = TextSequenceLength(bytes, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string CleanTextColumn(std::string_view bytes, size_t max_bytes) {
  if (IsCleanTextColumn(bytes, max_bytes)) return std::string(bytes);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() < max_bytes ? bytes.size() : max_bytes);
  for (size_t i = 0; i < bytes.size();) {
    size_t n = TextSequenceLength(bytes, i);
    if (n == 0) {
      if (out.size() + 4 > max_bytes) break;
      const auto c = static_cast<unsigned char>(bytes[i]);
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
      ++i;
      continue;
    }
    if (out.size() + n > max_bytes) break;  // never cut a character in two
    out.append(bytes.substr(i, n));
    i += n;
  }
  return out;
}

std::string EventTypeName(const Event& e) {
  switch (e.payload_case()) {
    case Event::kProcessActivity: return ProcessTypeName(e.process_activity().kind());
    case Event::kFile: return FileTypeName(e.file().kind());
    case Event::kNetwork: return NetworkTypeName(e.network().kind());
    case Event::kScanFinding: return "scan_finding";
    case Event::kOnAccess: return OnAccessTypeName(e.on_access().reason());
    case Event::kQuarantine: return QuarantineTypeName(e.quarantine().action());
    case Event::kBehaviorAlert: return "behavior_alert";
    case Event::kSensorDrops: return "sensor_drops";
    case Event::kAgentStatus: return AgentStatusTypeName(e.agent_status().trigger());
    case Event::kCommandResult: return "command_result";
    case Event::kScanRun: return ScanRunTypeName(e.scan_run().phase());
    case Event::PAYLOAD_NOT_SET: break;
  }
  return "unknown";
}

Result<EventRow> EventRowFromProto(const Event& e) {
  if (e.sequence() == 0 || e.sequence() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return InvalidArgumentError("event sequence " + std::to_string(e.sequence()) + " out of range [1, 2^63-1]");
  }
  EventRow r;
  r.sequence = e.sequence();
  r.type = EventTypeName(e);
  r.timestamp_ns = e.timestamp_ns();
  r.severity = static_cast<int32_t>(e.severity());
  if (e.has_process()) {
    const v1::ProcessContext& p = e.process();
    r.pid = p.pid();
    r.image = Indexed(p.image());
    r.process_sha256 = Indexed(Lower(p.sha256()));
    if (!p.command_line().empty()) {
      r.command_line = Text(p.command_line());
    } else if (p.argv_size() > 0) {
      std::string joined;
      for (const auto& a : p.argv()) {
        if (!joined.empty()) joined += ' ';
        joined += a;
        if (joined.size() > kMaxTextColumnBytes) break;
      }
      r.command_line = Text(joined);
    }
  }
  switch (e.payload_case()) {
    case Event::kFile:
      r.file_path = Text(e.file().target_filename());
      r.file_sha256 = Indexed(Lower(e.file().sha256()));
      break;
    case Event::kScanFinding:
      r.file_path = Text(e.scan_finding().path());
      r.file_sha256 = Indexed(Lower(e.scan_finding().sha256()));
      r.rule_id = Indexed(e.scan_finding().signature());
      break;
    case Event::kOnAccess:
      r.file_path = Text(e.on_access().path());
      r.file_sha256 = Indexed(Lower(e.on_access().sha256()));
      r.rule_id = Indexed(e.on_access().signature());
      break;
    case Event::kQuarantine:
      r.file_path = Text(e.quarantine().path());
      r.file_sha256 = Indexed(Lower(e.quarantine().sha256()));
      r.rule_id = Indexed(e.quarantine().signature());
      break;
    case Event::kBehaviorAlert:
      r.rule_id = Indexed(e.behavior_alert().rule_id());
      break;
    case Event::kProcessActivity:
      if (e.process_activity().kind() == v1::ProcessActivity::KIND_MODULE_LOAD) {
        r.file_path = Text(e.process_activity().module_name());
      }
      break;
    default:
      break;
  }
  r.payload = e.SerializeAsString();
  return r;
}

}  // namespace mamori::server

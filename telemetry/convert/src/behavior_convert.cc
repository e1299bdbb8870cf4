// behavior::Event and behavior::AlertRecord -> mamori.v1.Event.
#include "mamori/behavior/event.h"
#include "mamori/behavior/monitor.h"
#include "mamori/telemetry/convert.h"

namespace mamori::telemetry {

namespace {

using behavior::EventType;

v1::Severity SeverityFromLevel(std::string_view level) {
  if (level == "informational") return v1::SEVERITY_INFO;
  if (level == "low") return v1::SEVERITY_LOW;
  if (level == "medium") return v1::SEVERITY_MEDIUM;
  if (level == "high") return v1::SEVERITY_HIGH;
  if (level == "critical") return v1::SEVERITY_CRITICAL;
  return v1::SEVERITY_MEDIUM;  // an alert without a level is still an alert
}

v1::ProcessActivity::Kind ProcessKind(EventType t) {
  switch (t) {
    case EventType::kExec:
      return v1::ProcessActivity::KIND_EXEC;
    case EventType::kFork:
      return v1::ProcessActivity::KIND_FORK;
    case EventType::kExit:
      return v1::ProcessActivity::KIND_EXIT;
    case EventType::kSetUid:
      return v1::ProcessActivity::KIND_SETUID;
    case EventType::kSetGid:
      return v1::ProcessActivity::KIND_SETGID;
    case EventType::kPtrace:
      return v1::ProcessActivity::KIND_PTRACE;
    case EventType::kModuleLoad:
      return v1::ProcessActivity::KIND_MODULE_LOAD;
    default:
      return v1::ProcessActivity::KIND_UNSPECIFIED;
  }
}

v1::FileActivity::Kind FileKind(EventType t) {
  switch (t) {
    case EventType::kFileOpenWrite:
      return v1::FileActivity::KIND_OPEN_WRITE;
    case EventType::kFileCreate:
      return v1::FileActivity::KIND_CREATE;
    case EventType::kFileRename:
      return v1::FileActivity::KIND_RENAME;
    case EventType::kFileUnlink:
      return v1::FileActivity::KIND_UNLINK;
    case EventType::kFileChmod:
      return v1::FileActivity::KIND_CHMOD;
    case EventType::kFileChown:
      return v1::FileActivity::KIND_CHOWN;
    default:
      return v1::FileActivity::KIND_UNSPECIFIED;
  }
}

v1::NetworkActivity::Kind NetworkKind(EventType t) {
  switch (t) {
    case EventType::kNetConnect:
      return v1::NetworkActivity::KIND_CONNECT;
    case EventType::kNetAccept:
      return v1::NetworkActivity::KIND_ACCEPT;
    case EventType::kNetBind:
      return v1::NetworkActivity::KIND_BIND;
    default:
      return v1::NetworkActivity::KIND_UNSPECIFIED;
  }
}

// "kill_process 1234: killed 1 process" / "quarantine_image /x/y refused: protected path".
std::string ResponseText(const behavior::ResponseOutcome& o) {
  std::string s = o.action;
  if (!o.target.empty()) s += " " + o.target;
  s += o.done ? ": " : " refused: ";
  s += o.detail.empty() ? (o.done ? "done" : "not done") : o.detail;
  return ValidUtf8(s);
}

}  // namespace

void ToProcessContext(const behavior::ProcessContext& in, v1::ProcessContext* out) {
  out->set_pid(in.pid);
  out->set_tid(in.tid);
  out->set_ppid(in.ppid);
  out->set_uid(in.uid);
  out->set_euid(in.euid);
  out->set_gid(in.gid);
  out->set_egid(in.egid);
  out->set_user(in.user);
  out->set_image(in.image);
  for (const auto& a : in.argv) out->add_argv(a);
  out->set_command_line(in.command_line);
  out->set_cwd(in.cwd);
  out->set_tty(in.tty);
  out->set_cgroup(in.cgroup);
  out->set_start_time_ns(in.start_time_ns);
  out->set_sha256(ValidUtf8(in.sha256));
}

Converted FromBehaviorEvent(const behavior::Event& e, std::string_view sensor) {
  Converted c;
  v1::Event& out = c.event;
  out.set_timestamp_ns(static_cast<int64_t>(e.timestamp_ns));
  if (e.process.known()) ToProcessContext(e.process, out.mutable_process());
  if (e.parent.known()) ToProcessContext(e.parent, out.mutable_parent());
  switch (e.type) {
    case EventType::kExec:
    case EventType::kFork:
    case EventType::kExit:
    case EventType::kSetUid:
    case EventType::kSetGid:
    case EventType::kPtrace:
    case EventType::kModuleLoad: {
      v1::ProcessActivity* p = out.mutable_process_activity();
      p->set_kind(ProcessKind(e.type));
      p->set_exit_code(e.exit_code);
      p->set_new_id(e.new_id);
      p->set_target_pid(e.target_pid);
      p->set_ptrace_request(e.ptrace_request);
      p->set_module_name(e.module_name);
      break;
    }
    case EventType::kFileOpenWrite:
    case EventType::kFileCreate:
    case EventType::kFileRename:
    case EventType::kFileUnlink:
    case EventType::kFileChmod:
    case EventType::kFileChown: {
      v1::FileActivity* f = out.mutable_file();
      f->set_kind(FileKind(e.type));
      f->set_target_filename(e.target_filename);
      f->set_source_filename(e.source_filename);
      f->set_mode(e.mode);
      f->set_owner_uid(e.owner_uid);
      f->set_owner_gid(e.owner_gid);
      break;
    }
    case EventType::kNetConnect:
    case EventType::kNetAccept:
    case EventType::kNetBind: {
      v1::NetworkActivity* n = out.mutable_network();
      n->set_kind(NetworkKind(e.type));
      n->set_protocol(ValidUtf8(e.protocol));
      n->set_source_ip(ValidUtf8(e.source_ip));
      n->set_source_port(e.source_port);
      n->set_destination_ip(ValidUtf8(e.destination_ip));
      n->set_destination_port(e.destination_port);
      n->set_destination_hostname(ValidUtf8(e.destination_hostname));
      n->set_initiated(e.initiated);
      break;
    }
    case EventType::kSensorDrops: {
      v1::SensorDrops* d = out.mutable_sensor_drops();
      d->set_sensor(ValidUtf8(sensor));
      d->set_drop_source(ValidUtf8(e.drop_source));
      d->set_dropped(e.dropped);
      out.set_severity(v1::SEVERITY_MEDIUM);
      break;
    }
  }
  c.priority = PriorityOf(out);
  return c;
}

Converted FromAlert(const behavior::AlertRecord& a, std::span<const uint64_t> related_sequences) {
  Converted c;
  v1::Event& out = c.event;
  const behavior::Event* last = a.alert.events.empty() ? nullptr : &a.alert.events.back();
  uint64_t ts = a.alert.timestamp_ns;
  if (ts == 0 && last != nullptr) ts = last->timestamp_ns;
  out.set_timestamp_ns(static_cast<int64_t>(ts));
  if (!a.ancestry.empty()) {
    ToProcessContext(a.ancestry[0], out.mutable_process());
    if (a.ancestry.size() > 1) ToProcessContext(a.ancestry[1], out.mutable_parent());
  } else if (last != nullptr) {
    if (last->process.known()) ToProcessContext(last->process, out.mutable_process());
    if (last->parent.known()) ToProcessContext(last->parent, out.mutable_parent());
  }
  v1::BehaviorAlert* b = out.mutable_behavior_alert();
  if (a.alert.rule) {
    const auto& rule = *a.alert.rule;
    b->set_rule_id(ValidUtf8(rule.id.empty() ? rule.name : rule.id));
    b->set_rule_title(ValidUtf8(rule.title));
    for (const auto& t : rule.tags) b->add_tags(ValidUtf8(t));
    b->set_description(ValidUtf8(rule.description));
    out.set_severity(SeverityFromLevel(rule.level));
  } else {
    out.set_severity(v1::SEVERITY_MEDIUM);
  }
  for (uint64_t s : related_sequences) {
    if (s != 0) b->add_related_sequences(s);
  }
  for (const auto& r : a.responses) b->add_responses(ResponseText(r));
  c.priority = PriorityOf(out);
  return c;
}

}  // namespace mamori::telemetry

#include "console_convert.h"

#include <google/protobuf/descriptor.h>

#include <charconv>
#include <map>

namespace mamori::server {

namespace v1 = mamori::v1;

void ToProto(const AgentView& v, v1::AgentSummary* out) {
  const AgentRecord& a = v.agent;
  out->set_agent_id(a.agent_id);
  v1::AgentInfo* info = out->mutable_info();
  info->set_hostname(a.hostname);
  info->set_os(a.os);
  info->set_kernel(a.kernel);
  info->set_agent_version(a.agent_version);
  info->set_signature_version(a.signature_version);
  info->set_sensor_mode(a.sensor_mode);
  out->set_enrolled_at_ns(a.enrolled_at_ns);
  out->set_last_seen_ns(a.last_seen_ns);
  out->set_online(v.online);
  out->set_revoked(a.revoked);
  out->set_acked_sequence(v.acked_sequence);
}

void ToProto(const StoredEvent& e, v1::ConsoleEvent* out) {
  out->set_agent_id(e.agent_id);
  out->set_type(e.row.type);
  out->set_received_at_ns(e.received_at_ns);
  if (!out->mutable_event()->ParseFromString(e.row.payload)) {
    // Not expected (the payload was parsed at ingest): keep what the row says.
    out->mutable_event()->set_sequence(e.row.sequence);
    out->mutable_event()->set_timestamp_ns(e.row.timestamp_ns);
  }
}

void CommandToProto(const CommandRecord& c, v1::CommandStatus* out) {
  out->set_command_id(c.command_id);
  out->set_agent_id(c.agent_id);
  out->set_kind(c.kind);
  out->set_state(std::string(CommandStateName(c.state)));
  out->set_requested_by(c.requested_by);
  out->set_created_at_ns(c.created_at_ns);
  out->set_updated_at_ns(c.updated_at_ns);
  out->set_expires_at_ns(c.expires_at_ns);
  if (!c.result.empty()) out->mutable_result()->ParseFromString(c.result);
  out->set_error(c.error);
  out->set_final(CommandStateFinal(c.state) || c.state == CommandState::kExpired ||
                 c.state == CommandState::kCancelled);
}

// ---- filters -------------------------------------------------------------------------

// Page token: "<timestamp_ns>:<sequence>:<agent id>" (opaque to clients).
std::string EncodePageToken(const EventCursor& c) {
  return std::to_string(c.timestamp_ns) + ":" + std::to_string(c.sequence) + ":" + c.agent_id;
}

namespace {

template <typename T>
bool ParseNumber(std::string_view s, T* out) {
  const auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

Result<EventCursor> DecodePageToken(std::string_view token) {
  const size_t a = token.find(':');
  const size_t b = a == std::string_view::npos ? a : token.find(':', a + 1);
  EventCursor c;
  if (b == std::string_view::npos || !ParseNumber(token.substr(0, a), &c.timestamp_ns) ||
      !ParseNumber(token.substr(a + 1, b - a - 1), &c.sequence)) {
    return InvalidArgumentError("page_token '" + std::string(token) + "' is not one this server returned");
  }
  c.agent_id = std::string(token.substr(b + 1));
  return c;
}

}  // namespace

Result<EventQuery> QueryFromFilter(const v1::EventFilter& f, EventQuery::Class cls) {
  EventQuery q;
  q.cls = cls;
  q.agent_id = f.agent_id();
  q.types.assign(f.types().begin(), f.types().end());
  if (f.since_ns() != 0) q.from_ns = f.since_ns();
  if (f.until_ns() != 0) q.to_ns = f.until_ns();
  if (q.from_ns && q.to_ns && *q.from_ns >= *q.to_ns) {
    return InvalidArgumentError("time range: since must be before until");
  }
  q.image = f.process();
  q.sha256 = f.sha256();
  q.rule_id = f.rule_id();
  q.min_severity = f.min_severity();
  q.oldest_first = f.oldest_first();
  if (f.limit() > kMaxEventLimit) {
    return InvalidArgumentError("limit " + std::to_string(f.limit()) + " is above " + std::to_string(kMaxEventLimit));
  }
  q.limit = f.limit();
  if (!f.page_token().empty()) {
    Result<EventCursor> c = DecodePageToken(f.page_token());
    if (!c.ok()) return c.status();
    q.after = *c;
  }
  return q;
}

// ---- commands ------------------------------------------------------------------------

std::string CommandKindName(const v1::Command& c) {
  const google::protobuf::OneofDescriptor* kind = v1::Command::descriptor()->FindOneofByName("kind");
  const google::protobuf::FieldDescriptor* f = c.GetReflection()->GetOneofFieldDescriptor(c, kind);
  return f == nullptr ? std::string() : f->name();
}

std::string CommandDetails(const v1::Command& c) {
  switch (c.kind_case()) {
    case v1::Command::kScan: {
      std::string out = "paths=";
      for (int i = 0; i < c.scan().paths_size(); ++i) out += (i ? "," : "") + c.scan().paths(i);
      return out;
    }
    case v1::Command::kQuarantineRestore:
      return "item=" + c.quarantine_restore().quarantine_id() +
             (c.quarantine_restore().to().empty() ? "" : " to=" + c.quarantine_restore().to()) +
             (c.quarantine_restore().allow_list() ? " allow" : "");
    case v1::Command::kQuarantineDelete:
      return "item=" + c.quarantine_delete().quarantine_id();
    case v1::Command::kSignaturePush:
      return "version=" + c.signature_push().version() + " bytes=" + std::to_string(c.signature_push().bundle().size());
    case v1::Command::kKillProcess:
      return "pid=" + std::to_string(c.kill_process().pid()) + (c.kill_process().tree() ? " tree" : "");
    case v1::Command::kIsolate:
      return c.isolate().enable() ? "enable" : "disable";
    default:
      return "";
  }
}

Status ValidateCommand(v1::Command* c) {
  switch (c->kind_case()) {
    case v1::Command::KIND_NOT_SET:
      return InvalidArgumentError("command has no kind (scan, quarantine_restore, ...)");
    case v1::Command::kScan:
      if (c->scan().paths_size() == 0) return InvalidArgumentError("scan: no paths");
      for (const std::string& p : c->scan().paths()) {
        if (p.empty() || p[0] != '/') return InvalidArgumentError("scan: path '" + p + "' is not absolute");
      }
      return Status::Ok();
    case v1::Command::kQuarantineRestore:
      if (c->quarantine_restore().quarantine_id().empty())
        return InvalidArgumentError("restore: no quarantine item id");
      if (!c->quarantine_restore().to().empty() && c->quarantine_restore().to()[0] != '/') {
        return InvalidArgumentError("restore: --to path is not absolute");
      }
      return Status::Ok();
    case v1::Command::kQuarantineDelete:
      if (c->quarantine_delete().quarantine_id().empty()) return InvalidArgumentError("delete: no quarantine item id");
      return Status::Ok();
    case v1::Command::kSignaturePush:
      if (c->signature_push().source_case() == v1::SignaturePush::SOURCE_NOT_SET ||
          (c->signature_push().has_bundle() && c->signature_push().bundle().empty())) {
        return InvalidArgumentError("signature push: no bundle");
      }
      return Status::Ok();
    case v1::Command::kKillProcess:
      if (c->kill_process().pid() <= 1) {
        return InvalidArgumentError("kill: pid " + std::to_string(c->kill_process().pid()) + " refused (must be > 1)");
      }
      return Status::Ok();
    default:
      return Status::Ok();
  }
}

// ---- quarantine view ------------------------------------------------------------------

Status BuildQuarantineView(Store& store, const std::string& agent_id, v1::ListQuarantineResponse* out) {
  std::map<std::string, v1::QuarantineItem> items;  // by quarantine id
  int64_t as_of = 0;
  CommandQuery cq;
  cq.agent_id = agent_id;
  cq.states = {CommandState::kSucceeded};
  cq.limit = 1000;
  Result<std::vector<CommandRecord>> done = store.ListCommands(cq);
  if (!done.ok()) return done.status();
  for (const CommandRecord& c : *done) {  // newest first
    if (c.kind != "quarantine_list") continue;
    v1::CommandResult r;
    if (!r.ParseFromString(c.result) || !r.has_quarantine_list()) continue;
    as_of = c.updated_at_ns;
    for (const v1::QuarantineEntry& e : r.quarantine_list().entries()) {
      v1::QuarantineItem& item = items[e.quarantine_id()];
      item.set_agent_id(agent_id);
      *item.mutable_entry() = e;
      item.set_source("agent");
      item.set_as_of_ns(as_of);
    }
    break;
  }
  EventQuery q;
  q.agent_id = agent_id;
  q.types = {"quarantine", "quarantine_restore", "quarantine_delete"};
  q.oldest_first = true;
  q.limit = kMaxEventLimit;
  for (;;) {
    Result<EventPage> page = store.QueryEvents(q);
    if (!page.ok()) return page.status();
    for (const StoredEvent& se : page->events) {
      if (se.received_at_ns <= as_of) continue;  // the list result already reflects it
      v1::Event e;
      if (!e.ParseFromString(se.row.payload) || !e.has_quarantine()) continue;
      const v1::QuarantineAction& qa = e.quarantine();
      if (qa.outcome() != v1::QuarantineAction::OUTCOME_SUCCEEDED) continue;
      if (qa.action() == v1::QuarantineAction::ACTION_QUARANTINE) {
        v1::QuarantineItem& item = items[qa.quarantine_id()];
        item.set_agent_id(agent_id);
        item.set_source("events");
        item.set_as_of_ns(se.received_at_ns);
        v1::QuarantineEntry* entry = item.mutable_entry();
        entry->set_quarantine_id(qa.quarantine_id());
        entry->set_state("quarantined");
        entry->set_original_path(qa.path());
        entry->set_sha256(qa.sha256());
        entry->set_detection(qa.signature());
        entry->set_quarantined_at_ns(e.timestamp_ns());
      } else if (qa.action() == v1::QuarantineAction::ACTION_RESTORE ||
                 qa.action() == v1::QuarantineAction::ACTION_DELETE) {
        items.erase(qa.quarantine_id());
      }
    }
    if (!page->next) break;
    q.after = page->next;
  }
  for (auto& [id, item] : items) *out->add_items() = std::move(item);
  return Status::Ok();
}

}  // namespace mamori::server

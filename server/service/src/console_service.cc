#include "console_service.h"

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <set>
#include <thread>

#include "console_convert.h"
#include "mamori/common/file_util.h"
#include "mamori/common/log.h"
#include "mamori/server/ca.h"

namespace mamori::server {

namespace v1 = mamori::v1;

namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(100);
// FollowEvents re-reads this far back in agent time, so events stored late
// (agent clock behind, spool resent after an outage) are still delivered.
constexpr int64_t kFollowLookbackNs = 60'000'000'000;
constexpr uint32_t kDefaultWaitS = 300;

grpc::Status Error(grpc::StatusCode code, std::string message) { return grpc::Status(code, std::move(message)); }

// Store errors the console passes on (names the thing that failed).
grpc::Status StoreError(const Status& s, const std::string& what) {
  switch (s.code()) {
    case StatusCode::kNotFound:
      return Error(grpc::StatusCode::NOT_FOUND, s.message());
    case StatusCode::kInvalidArgument:
      return Error(grpc::StatusCode::INVALID_ARGUMENT, what + ": " + s.message());
    default:
      return Error(grpc::StatusCode::UNAVAILABLE, what + ": store: " + s.message());
  }
}

std::string AuditResult(const grpc::Status& s) {
  if (s.ok()) return "ok";
  if (s.error_code() == grpc::StatusCode::PERMISSION_DENIED) return "denied";
  if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED) return "unauthenticated";
  return "error: " + s.error_message();
}

std::string Sha256Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(md), len));
}

}  // namespace

ConsoleRole ConsoleRoleFromName(std::string_view role) {
  if (role == "admin") return ConsoleRole::kAdmin;
  if (role == "analyst") return ConsoleRole::kAnalyst;
  return ConsoleRole::kNone;
}

bool RoleMayCreate(ConsoleRole role, std::string_view kind) {
  if (role == ConsoleRole::kAdmin) return true;
  if (role == ConsoleRole::kAnalyst) return kind == "scan" || kind == "quarantine_list" || kind == "get_status";
  return false;
}

ConsoleServiceImpl::ConsoleServiceImpl(ServiceContext* svc, std::function<void()> poll_now)
    : svc_(svc), poll_now_(std::move(poll_now)) {}

// ---- auth and audit --------------------------------------------------------------

grpc::Status ConsoleServiceImpl::Authenticate(Ctx* ctx, const std::string& action, const std::string& target,
                                              Caller* caller) {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  std::string why =
      "no API token (send \"authorization: Bearer <token>\"; see mamori-server user add) and no "
      "console user certificate";
  std::vector<grpc::string_ref> pem;
  if (it == md.end() && ctx->auth_context()) pem = ctx->auth_context()->FindPropertyValues("x509_pem_cert");
  if (!pem.empty()) {
    // A client certificate from the server CA: a console user's (CN = name,
    // URI urn:mamori:user:NAME); the role and the disabled flag come from
    // the users table, so `user disable` covers certificates too.
    Result<PeerCertificate> cert = ParsePeerCertificate(std::string_view(pem.front().data(), pem.front().size()));
    bool user_cert = false;
    if (cert.ok()) {
      for (const auto& u : cert->uris) user_cert = user_cert || u == UserUri(cert->common_name);
    }
    if (!user_cert) {
      why = "the client certificate is not a console user certificate (agents cannot use the console)";
    } else {
      Result<UserRecord> user = WithRetry([&] { return svc_->store->GetUser(cert->common_name); });
      if (user.ok() && !user->disabled) {
        caller->name = user->name;
        caller->role = ConsoleRoleFromName(user->role);
        return grpc::Status::OK;
      }
      if (!user.ok() && user.status().code() != StatusCode::kNotFound) {
        return Error(grpc::StatusCode::UNAVAILABLE, "authenticating: store: " + user.status().message());
      }
      why = user.ok() ? "user " + user->name + " is disabled" : "certificate of unknown user " + cert->common_name;
    }
  } else if (it != md.end()) {
    const std::string value(it->second.data(), it->second.size());
    constexpr std::string_view kBearer = "Bearer ";
    if (value.rfind(kBearer, 0) != 0) {
      why = "authorization metadata is not \"Bearer <token>\"";
    } else {
      Result<UserRecord> user =
          WithRetry([&] { return svc_->store->AuthenticateUser(value.substr(kBearer.size()), NowNs()); });
      if (user.ok()) {
        caller->name = user->name;
        caller->role = ConsoleRoleFromName(user->role);
        return grpc::Status::OK;
      }
      if (user.status().code() != StatusCode::kUnauthenticated) {
        return Error(grpc::StatusCode::UNAVAILABLE, "authenticating: store: " + user.status().message());
      }
      why = user.status().message();
    }
  }
  return Done(Caller{}, action, target, Error(grpc::StatusCode::UNAUTHENTICATED, why), why);
}

grpc::Status ConsoleServiceImpl::BeginRead(Ctx* ctx, const std::string& action, const std::string& target,
                                           Caller* caller) {
  grpc::Status s = Authenticate(ctx, action, target, caller);
  if (!s.ok()) return s;
  if (caller->role == ConsoleRole::kNone) {
    return Done(*caller, action, target,
                Error(grpc::StatusCode::PERMISSION_DENIED, "user " + caller->name + " has no console role"));
  }
  return grpc::Status::OK;
}

grpc::Status ConsoleServiceImpl::Done(const Caller& caller, const std::string& action, const std::string& target,
                                      const grpc::Status& status, const std::string& details) {
  AuditEntry e;
  e.at_ns = NowNs();
  e.actor = caller.name.empty() ? "unauthenticated" : caller.name;
  e.action = action;
  e.target = target;
  e.result = AuditResult(status);
  e.details = details;
  Result<int64_t> r = WithRetry([&] { return svc_->store->AppendAudit(e); });
  if (!r.ok())
    MAMORI_LOG(kError, "console audit: " << r.status().message() << " (" << action << " by " << e.actor << ")");
  return status;
}

int64_t ConsoleServiceImpl::OnlineWindowNs() const {
  return 3 * std::chrono::duration_cast<std::chrono::nanoseconds>(svc_->config->heartbeat_interval).count();
}

bool ConsoleServiceImpl::AgentOnline(const AgentRecord& a, int64_t now_ns) const {
  return a.last_seen_ns > 0 && a.last_seen_ns >= now_ns - OnlineWindowNs();
}

// ---- identity, agents ------------------------------------------------------------------

grpc::Status ConsoleServiceImpl::WhoAmI(Ctx* ctx, const v1::WhoAmIRequest*, v1::WhoAmIResponse* resp) {
  Caller c;
  grpc::Status s = BeginRead(ctx, "console.whoami", "", &c);
  if (!s.ok()) return s;
  resp->set_name(c.name);
  resp->set_role(c.role == ConsoleRole::kAdmin ? "admin" : "analyst");
  for (const char* kind : {"scan", "quarantine_list", "get_status", "quarantine_restore", "quarantine_delete",
                           "signature_push", "kill_process", "isolate"}) {
    if (RoleMayCreate(c.role, kind)) resp->add_allowed(kind);
  }
  return Done(c, "console.whoami", "", grpc::Status::OK);
}

grpc::Status ConsoleServiceImpl::ListAgents(Ctx* ctx, const v1::ListAgentsRequest* req, v1::ListAgentsResponse* resp) {
  Caller c;
  grpc::Status s = BeginRead(ctx, "console.agents.list", "", &c);
  if (!s.ok()) return s;
  AgentQuery q;
  q.now_ns = NowNs();
  q.online_window_ns = OnlineWindowNs();
  q.presence = req->online_only() ? AgentQuery::Presence::kOnline : AgentQuery::Presence::kAll;
  Result<std::vector<AgentView>> agents = WithRetry([&] { return svc_->store->ListAgents(q); });
  if (!agents.ok()) return Done(c, "console.agents.list", "", StoreError(agents.status(), "listing agents"));
  for (const AgentView& v : *agents) ToProto(v, resp->add_agents());
  return Done(c, "console.agents.list", "", grpc::Status::OK);
}

grpc::Status ConsoleServiceImpl::GetAgent(Ctx* ctx, const v1::GetAgentRequest* req, v1::AgentSummary* resp) {
  Caller c;
  const std::string& id = req->agent_id();
  grpc::Status s = BeginRead(ctx, "console.agents.show", id, &c);
  if (!s.ok()) return s;
  Result<AgentRecord> a = WithRetry([&] { return svc_->store->GetAgent(id); });
  if (!a.ok()) {
    if (a.status().code() == StatusCode::kNotFound) {
      return Done(c, "console.agents.show", id, Error(grpc::StatusCode::NOT_FOUND, "unknown agent '" + id + "'"));
    }
    return Done(c, "console.agents.show", id, StoreError(a.status(), "agent " + id));
  }
  AgentView v;
  v.agent = *a;
  v.online = AgentOnline(*a, NowNs());
  Result<uint64_t> acked = WithRetry([&] { return svc_->store->AckedSequence(id); });
  if (acked.ok()) v.acked_sequence = *acked;
  ToProto(v, resp);
  return Done(c, "console.agents.show", id, grpc::Status::OK);
}

// ---- events ---------------------------------------------------------------------------

grpc::Status ConsoleServiceImpl::EventsPage(Ctx* ctx, const char* action, EventQuery::Class cls,
                                            const v1::EventFilter& req, v1::EventPageResponse* resp) {
  Caller c;
  const std::string target = req.agent_id();
  grpc::Status s = BeginRead(ctx, action, target, &c);
  if (!s.ok()) return s;
  Result<EventQuery> q = QueryFromFilter(req, cls);
  if (!q.ok()) return Done(c, action, target, Error(grpc::StatusCode::INVALID_ARGUMENT, q.status().message()));
  Result<EventPage> page = WithRetry([&] { return svc_->store->QueryEvents(*q); });
  if (!page.ok()) return Done(c, action, target, StoreError(page.status(), "querying events"));
  for (const StoredEvent& e : page->events) ToProto(e, resp->add_events());
  if (page->next) resp->set_next_page_token(EncodePageToken(*page->next));
  return Done(c, action, target, grpc::Status::OK);
}

grpc::Status ConsoleServiceImpl::QueryEvents(Ctx* ctx, const v1::EventFilter* req, v1::EventPageResponse* resp) {
  return EventsPage(ctx, "console.events", EventQuery::Class::kAll, *req, resp);
}
grpc::Status ConsoleServiceImpl::ListFindings(Ctx* ctx, const v1::EventFilter* req, v1::EventPageResponse* resp) {
  return EventsPage(ctx, "console.findings", EventQuery::Class::kFindings, *req, resp);
}
grpc::Status ConsoleServiceImpl::ListAlerts(Ctx* ctx, const v1::EventFilter* req, v1::EventPageResponse* resp) {
  return EventsPage(ctx, "console.alerts", EventQuery::Class::kAlerts, *req, resp);
}

grpc::Status ConsoleServiceImpl::FollowEvents(Ctx* ctx, const v1::EventFilter* req,
                                              grpc::ServerWriter<v1::ConsoleEvent>* writer) {
  Caller c;
  const char* action = "console.events.follow";
  grpc::Status s = BeginRead(ctx, action, req->agent_id(), &c);
  if (!s.ok()) return s;
  v1::EventFilter filter = *req;
  filter.clear_page_token();
  filter.clear_limit();
  filter.set_oldest_first(true);
  Result<EventQuery> base = QueryFromFilter(filter, EventQuery::Class::kAll);
  if (!base.ok())
    return Done(c, action, req->agent_id(), Error(grpc::StatusCode::INVALID_ARGUMENT, base.status().message()));
  // Only events stored after the call started, found by re-reading a window
  // of agent time and remembering what was sent (pruned as the window moves).
  // The start is taken before the audit row is written: an event stored once
  // the row is visible is always followed.
  const int64_t started = NowNs();
  int64_t high_ts = started;
  Done(c, action, req->agent_id(), grpc::Status::OK, "stream started");
  std::map<std::pair<std::string, uint64_t>, int64_t> sent;  // (agent, seq) -> timestamp
  while (!ctx->IsCancelled() && !stopping_.load()) {
    EventQuery q = *base;
    q.from_ns = std::max(base->from_ns.value_or(std::numeric_limits<int64_t>::min()), high_ts - kFollowLookbackNs);
    q.limit = kMaxEventLimit;
    for (;;) {
      Result<EventPage> page = WithRetry([&] { return svc_->store->QueryEvents(q); });
      if (!page.ok())
        return Error(grpc::StatusCode::UNAVAILABLE, "following events: store: " + page.status().message());
      for (const StoredEvent& e : page->events) {
        if (e.received_at_ns < started) continue;
        if (!sent.emplace(std::make_pair(e.agent_id, e.row.sequence), e.row.timestamp_ns).second) continue;
        v1::ConsoleEvent out;
        ToProto(e, &out);
        if (!writer->Write(out)) return grpc::Status::OK;  // the client went away
        high_ts = std::max(high_ts, e.row.timestamp_ns);
      }
      if (!page->next) break;
      q.after = page->next;
    }
    high_ts = std::max(high_ts, NowNs());
    for (auto it = sent.begin(); it != sent.end();) {
      it = it->second < high_ts - 2 * kFollowLookbackNs ? sent.erase(it) : std::next(it);
    }
    std::this_thread::sleep_for(kPollInterval * 2);
  }
  return grpc::Status::OK;
}

// ---- commands ---------------------------------------------------------------------------

Result<v1::CommandStatus> ConsoleServiceImpl::StatusOf(const CommandRecord& c) {
  v1::CommandStatus out;
  CommandToProto(c, &out);
  Result<AgentRecord> a = WithRetry([&] { return svc_->store->GetAgent(c.agent_id); });
  if (a.ok()) out.set_agent_online(AgentOnline(*a, NowNs()));
  return out;
}

grpc::Status ConsoleServiceImpl::CreateCommand(Ctx* ctx, const v1::CreateCommandRequest* req, v1::CommandStatus* resp) {
  const std::string kind = CommandKindName(req->command());
  const std::string action = "command." + (kind.empty() ? std::string("unknown") : kind);
  const std::string& agent_id = req->agent_id();
  Caller c;
  grpc::Status s = Authenticate(ctx, action, agent_id, &c);
  if (!s.ok()) return s;
  const std::string details = CommandDetails(req->command());
  if (!RoleMayCreate(c.role, kind)) {
    return Done(c, action, agent_id,
                Error(grpc::StatusCode::PERMISSION_DENIED,
                      "user " + c.name + " (" + (c.role == ConsoleRole::kAnalyst ? "analyst" : "no role") +
                          ") may not " + (kind.empty() ? "send this command" : kind) +
                          "; analysts may scan, list quarantine and get status, admins may do everything"),
                details);
  }
  v1::Command cmd = req->command();
  Status valid = ValidateCommand(&cmd);
  if (!valid.ok())
    return Done(c, action, agent_id, Error(grpc::StatusCode::INVALID_ARGUMENT, valid.message()), details);
  if (cmd.has_signature_push() && cmd.signature_push().has_bundle() && cmd.signature_push().sha256().empty()) {
    cmd.mutable_signature_push()->set_sha256(Sha256Hex(cmd.signature_push().bundle()));
  }
  Result<AgentRecord> agent = WithRetry([&] { return svc_->store->GetAgent(agent_id); });
  if (!agent.ok()) {
    if (agent.status().code() == StatusCode::kNotFound) {
      return Done(c, action, agent_id, Error(grpc::StatusCode::NOT_FOUND, "unknown agent '" + agent_id + "'"), details);
    }
    return Done(c, action, agent_id, StoreError(agent.status(), "agent " + agent_id), details);
  }
  if (agent->revoked) {
    return Done(c, action, agent_id,
                Error(grpc::StatusCode::FAILED_PRECONDITION, "agent '" + agent_id + "' is revoked"), details);
  }
  const int64_t now = NowNs();
  const int64_t ttl_ns =
      req->expires_in_s() > 0
          ? int64_t{req->expires_in_s()} * 1'000'000'000
          : std::chrono::duration_cast<std::chrono::nanoseconds>(svc_->config->command_expiry).count();
  cmd.set_issued_at_ns(now);
  cmd.set_expires_at_ns(now + ttl_ns);
  cmd.set_requested_by(c.name);
  NewCommand n;
  n.agent_id = agent_id;
  n.kind = kind;
  n.args = cmd.SerializeAsString();
  n.requested_by = c.name;
  n.created_at_ns = now;
  n.expires_at_ns = now + ttl_ns;
  Result<std::string> id = WithRetry([&] { return svc_->store->CreateCommand(n); });
  if (!id.ok()) return Done(c, action, agent_id, StoreError(id.status(), "creating the command"), details);
  if (poll_now_) poll_now_();
  Result<CommandRecord> rec = WithRetry([&] { return svc_->store->GetCommand(*id); });
  if (!rec.ok()) return Done(c, action, agent_id, StoreError(rec.status(), "reading the command back"), details);
  Result<v1::CommandStatus> st = StatusOf(*rec);
  if (!st.ok()) return Done(c, action, agent_id, StoreError(st.status(), "command status"), details);
  *resp = std::move(*st);
  return Done(c, action, agent_id, grpc::Status::OK, "command " + *id + (details.empty() ? "" : " " + details));
}

grpc::Status ConsoleServiceImpl::GetCommand(Ctx* ctx, const v1::GetCommandRequest* req, v1::CommandStatus* resp) {
  Caller c;
  const std::string& id = req->command_id();
  grpc::Status s = BeginRead(ctx, "console.commands.show", id, &c);
  if (!s.ok()) return s;
  Result<CommandRecord> rec = WithRetry([&] { return svc_->store->GetCommand(id); });
  if (!rec.ok()) {
    if (rec.status().code() == StatusCode::kNotFound) {
      return Done(c, "console.commands.show", id, Error(grpc::StatusCode::NOT_FOUND, "unknown command '" + id + "'"));
    }
    return Done(c, "console.commands.show", id, StoreError(rec.status(), "command " + id));
  }
  Result<v1::CommandStatus> st = StatusOf(*rec);
  if (!st.ok()) return Done(c, "console.commands.show", id, StoreError(st.status(), "command status"));
  *resp = std::move(*st);
  return Done(c, "console.commands.show", id, grpc::Status::OK);
}

grpc::Status ConsoleServiceImpl::ListCommands(Ctx* ctx, const v1::ListCommandsRequest* req,
                                              v1::ListCommandsResponse* resp) {
  Caller c;
  const char* action = "console.commands.list";
  grpc::Status s = BeginRead(ctx, action, req->agent_id(), &c);
  if (!s.ok()) return s;
  CommandQuery q;
  q.agent_id = req->agent_id();
  q.limit = req->limit();
  for (const std::string& name : req->states()) {
    std::optional<CommandState> st = CommandStateFromName(name == "queued" ? "pending" : name);
    if (!st)
      return Done(c, action, req->agent_id(),
                  Error(grpc::StatusCode::INVALID_ARGUMENT, "unknown command state '" + name + "'"));
    q.states.push_back(*st);
  }
  Result<std::vector<CommandRecord>> list = WithRetry([&] { return svc_->store->ListCommands(q); });
  if (!list.ok()) return Done(c, action, req->agent_id(), StoreError(list.status(), "listing commands"));
  const int64_t now = NowNs();
  std::map<std::string, bool> online;
  for (const CommandRecord& r : *list) {
    v1::CommandStatus* out = resp->add_commands();
    CommandToProto(r, out);
    auto it = online.find(r.agent_id);
    if (it == online.end()) {
      Result<AgentRecord> a = WithRetry([&] { return svc_->store->GetAgent(r.agent_id); });
      it = online.emplace(r.agent_id, a.ok() && AgentOnline(*a, now)).first;
    }
    out->set_agent_online(it->second);
  }
  return Done(c, action, req->agent_id(), grpc::Status::OK);
}

grpc::Status ConsoleServiceImpl::WaitCommand(Ctx* ctx, const v1::WaitCommandRequest* req,
                                             grpc::ServerWriter<v1::CommandStatus>* writer) {
  Caller c;
  const std::string& id = req->command_id();
  const char* action = "console.commands.wait";
  grpc::Status s = BeginRead(ctx, action, id, &c);
  if (!s.ok()) return s;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(req->timeout_s() > 0 ? req->timeout_s() : kDefaultWaitS);
  std::string last;  // the last status sent, serialized
  bool audited = false;
  while (!ctx->IsCancelled() && !stopping_.load()) {
    Result<CommandRecord> rec = WithRetry([&] { return svc_->store->GetCommand(id); });
    if (!rec.ok()) {
      grpc::Status e = rec.status().code() == StatusCode::kNotFound
                           ? Error(grpc::StatusCode::NOT_FOUND, "unknown command '" + id + "'")
                           : StoreError(rec.status(), "command " + id);
      return audited ? e : Done(c, action, id, e);
    }
    if (!audited) {
      Done(c, action, id, grpc::Status::OK);
      audited = true;
    }
    Result<v1::CommandStatus> st = StatusOf(*rec);
    if (!st.ok()) return StoreError(st.status(), "command status");
    st->set_agent_online(false);  // compared below without it: it flaps with heartbeats
    const std::string now = st->SerializeAsString();
    if (now != last) {
      last = now;
      Result<v1::CommandStatus> full = StatusOf(*rec);
      if (!writer->Write(full.ok() ? *full : *st)) return grpc::Status::OK;
    }
    if (st->final() || std::chrono::steady_clock::now() >= deadline) return grpc::Status::OK;
    std::this_thread::sleep_for(kPollInterval);
  }
  return grpc::Status::OK;
}

// ---- quarantine, signatures, audit -------------------------------------------------------

grpc::Status ConsoleServiceImpl::ListQuarantine(Ctx* ctx, const v1::ListQuarantineRequest* req,
                                                v1::ListQuarantineResponse* resp) {
  Caller c;
  const char* action = "console.quarantine.list";
  grpc::Status s = BeginRead(ctx, action, req->agent_id(), &c);
  if (!s.ok()) return s;
  std::vector<std::string> agents;
  if (!req->agent_id().empty()) {
    Result<AgentRecord> a = WithRetry([&] { return svc_->store->GetAgent(req->agent_id()); });
    if (!a.ok()) {
      return Done(c, action, req->agent_id(),
                  a.status().code() == StatusCode::kNotFound
                      ? Error(grpc::StatusCode::NOT_FOUND, "unknown agent '" + req->agent_id() + "'")
                      : StoreError(a.status(), "agent"));
    }
    agents.push_back(req->agent_id());
  } else {
    Result<std::vector<AgentView>> all = WithRetry([&] { return svc_->store->ListAgents(AgentQuery{}); });
    if (!all.ok()) return Done(c, action, "", StoreError(all.status(), "listing agents"));
    for (const AgentView& v : *all) agents.push_back(v.agent.agent_id);
  }
  for (const std::string& agent : agents) {
    Status q = BuildQuarantineView(*svc_->store, agent, resp);
    if (!q.ok()) return Done(c, action, req->agent_id(), StoreError(q, "quarantine of " + agent));
  }
  return Done(c, action, req->agent_id(), grpc::Status::OK);
}

grpc::Status ConsoleServiceImpl::SignatureRollout(Ctx* ctx, const v1::SignatureRolloutRequest*,
                                                  v1::SignatureRolloutResponse* resp) {
  Caller c;
  const char* action = "console.signatures.status";
  grpc::Status s = BeginRead(ctx, action, "", &c);
  if (!s.ok()) return s;
  AgentQuery aq;
  aq.now_ns = NowNs();
  aq.online_window_ns = OnlineWindowNs();
  Result<std::vector<AgentView>> agents = WithRetry([&] { return svc_->store->ListAgents(aq); });
  if (!agents.ok()) return Done(c, action, "", StoreError(agents.status(), "listing agents"));
  for (const AgentView& v : *agents) {
    v1::SignatureRolloutEntry* e = resp->add_agents();
    e->set_agent_id(v.agent.agent_id);
    e->set_hostname(v.agent.hostname);
    e->set_signature_version(v.agent.signature_version);
    e->set_online(v.online);
    CommandQuery q;
    q.agent_id = v.agent.agent_id;
    q.limit = 200;
    Result<std::vector<CommandRecord>> cmds = WithRetry([&] { return svc_->store->ListCommands(q); });
    if (!cmds.ok()) return Done(c, action, "", StoreError(cmds.status(), "listing commands"));
    for (const CommandRecord& r : *cmds) {  // newest first
      if (r.kind != "signature_push") continue;
      v1::CommandStatus st;
      CommandToProto(r, &st);
      v1::Command cmd;
      if (cmd.ParseFromString(r.args)) e->set_push_version(cmd.signature_push().version());
      e->set_push_command_id(r.command_id);
      e->set_push_state(st.state());
      e->set_push_error(st.error());
      break;
    }
  }
  return Done(c, action, "", grpc::Status::OK);
}

grpc::Status ConsoleServiceImpl::ListAudit(Ctx* ctx, const v1::ListAuditRequest* req, v1::ListAuditResponse* resp) {
  Caller c;
  const char* action = "console.audit";
  grpc::Status s = BeginRead(ctx, action, req->actor(), &c);
  if (!s.ok()) return s;
  AuditQuery q;
  q.actor = req->actor();
  q.action = req->action();
  q.limit = req->limit();
  q.before_id = req->before_id();
  Result<std::vector<AuditEntry>> list = WithRetry([&] { return svc_->store->ListAudit(q); });
  if (!list.ok()) return Done(c, action, req->actor(), StoreError(list.status(), "listing the audit log"));
  for (const AuditEntry& e : *list) {
    v1::AuditRecord* r = resp->add_records();
    r->set_id(e.id);
    r->set_at_ns(e.at_ns);
    r->set_actor(e.actor);
    r->set_action(e.action);
    r->set_target(e.target);
    r->set_result(e.result);
    r->set_details(e.details);
  }
  return Done(c, action, req->actor(), grpc::Status::OK);
}

}  // namespace mamori::server

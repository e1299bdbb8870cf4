// SqliteStore: the Store over one SQLite file (WAL). Every write is one
// BEGIN IMMEDIATE transaction, so writers from any number of connections,
// Store objects or processes are serialized by SQLite's database lock (each
// waits up to busy_timeout); readers run beside them on their own snapshot.
// Concurrent AppendBatch calls on one store share a transaction (group
// commit, one fsync), each batch inside its own savepoint.
#include "mamori/server/sqlite_store.h"

#include <algorithm>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <variant>

#include "connection_pool.h"
#include "group_commit.h"
#include "sqlite_db.h"
#include "sqlite_schema.h"
#include "store_internal.h"

namespace mamori::server {
namespace {

using internal::BuiltQuery;
using internal::Dialect;
using sqlite::Connection;
using sqlite::Statement;
using sqlite::Transaction;
using Pool = internal::ConnectionPool<Connection>;

constexpr const char* kAgentColumns =
    "agent_id, hostname, os, kernel, agent_version, signature_version, sensor_mode, cert_fingerprint, enrolled_at, "
    "last_seen, revoked, acked_seq, previous_cert_fingerprint";
constexpr const char* kTokenColumns =
    "token_id, secret_sha256, reusable, created_at, expires_at, created_by, description, uses, last_used_at, revoked";

AgentRecord ReadAgent(const Statement& s) {
  AgentRecord a;
  a.agent_id = s.Text(0);
  a.hostname = s.Text(1);
  a.os = s.Text(2);
  a.kernel = s.Text(3);
  a.agent_version = s.Text(4);
  a.signature_version = s.Text(5);
  a.sensor_mode = s.Text(6);
  a.cert_fingerprint = s.Text(7);
  a.enrolled_at_ns = s.Int(8);
  a.last_seen_ns = s.Int(9);
  a.revoked = s.Int(10) != 0;
  a.previous_cert_fingerprint = s.Text(12);
  return a;
}

TokenRecord ReadToken(const Statement& s) {
  TokenRecord t;
  t.token_id = s.Text(0);
  t.secret_sha256 = s.Text(1);
  t.reusable = s.Int(2) != 0;
  t.created_at_ns = s.Int(3);
  t.expires_at_ns = s.Int(4);
  t.created_by = s.Text(5);
  t.description = s.Text(6);
  t.uses = static_cast<uint64_t>(s.Int(7));
  t.last_used_at_ns = s.Int(8);
  t.revoked = s.Int(9) != 0;
  return t;
}

StoredEvent ReadEvent(const Statement& s) {
  StoredEvent e;
  e.agent_id = s.Text(0);
  e.row.sequence = static_cast<uint64_t>(s.Int(1));
  e.row.type = s.Text(2);
  e.row.timestamp_ns = s.Int(3);
  e.received_at_ns = s.Int(4);
  e.row.pid = static_cast<int32_t>(s.Int(5));
  e.row.image = s.Text(6);
  e.row.process_sha256 = s.Text(7);
  e.row.command_line = s.Text(8);
  e.row.file_path = s.Text(9);
  e.row.file_sha256 = s.Text(10);
  e.row.rule_id = s.Text(11);
  e.row.severity = static_cast<int32_t>(s.Int(12));
  e.row.payload = s.Blob(13);
  return e;
}

CommandRecord ReadCommand(const Statement& s) {
  CommandRecord c;
  c.command_id = s.Text(0);
  c.agent_id = s.Text(1);
  c.kind = s.Text(2);
  c.args = s.Blob(3);
  c.requested_by = s.Text(4);
  c.state = CommandStateFromName(s.Text(5)).value_or(CommandState::kPending);
  c.created_at_ns = s.Int(6);
  c.updated_at_ns = s.Int(7);
  c.expires_at_ns = s.Int(8);
  c.result = s.Blob(9);
  c.error = s.Text(10);
  return c;
}

AuditEntry ReadAudit(const Statement& s) {
  AuditEntry a;
  a.id = s.Int(0);
  a.at_ns = s.Int(1);
  a.actor = s.Text(2);
  a.action = s.Text(3);
  a.target = s.Text(4);
  a.details = s.Text(5);
  a.result = s.Text(6);
  return a;
}

UserRecord ReadUser(const Statement& s) {
  UserRecord u;
  u.name = s.Text(0);
  u.role = s.Text(1);
  u.token_sha256 = s.Text(2);
  u.created_at_ns = s.Int(3);
  u.created_by = s.Text(4);
  u.disabled = s.Int(5) != 0;
  u.last_used_at_ns = s.Int(6);
  return u;
}

void BindAll(Statement& s, const std::vector<internal::SqlValue>& params) {
  for (size_t i = 0; i < params.size(); ++i) {
    const int index = static_cast<int>(i + 1);
    if (const auto* n = std::get_if<int64_t>(&params[i])) {
      s.BindInt(index, *n);
    } else if (const auto* t = std::get_if<std::string>(&params[i])) {
      s.BindText(index, *t);
    } else {
      s.BindNull(index);
    }
  }
}

// Runs a built query, reading each row with `read`.
template <typename T, typename Read>
Result<std::vector<T>> RunQuery(Connection& c, const BuiltQuery& q, Read read) {
  Result<Statement> s = c.PrepareUncached(q.sql);
  if (!s.ok()) return s.status();
  BindAll(*s, q.params);
  std::vector<T> out;
  for (;;) {
    Result<bool> row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) return out;
    out.push_back(read(*s));
  }
}

class SqliteStore final : public Store {
 public:
  SqliteStore(SqliteStoreOptions options, Pool::Factory factory)
      : options_(std::move(options)), pool_(options_.max_connections, std::move(factory)) {}

  void AddConnection(std::unique_ptr<Connection> c) { pool_.Add(std::move(c)); }

  std::string_view backend() const override { return "sqlite"; }

  // ---- agents ----

  Status UpsertAgent(const AgentRecord& a) override {
    MAMORI_RETURN_IF_ERROR(internal::ValidateAgentId(a.agent_id));
    return Write([&](Connection& c) -> Status {
      Result<Statement> s = c.Prepare(
          "INSERT INTO agents (agent_id, hostname, os, kernel, agent_version, signature_version, sensor_mode, "
          "cert_fingerprint, enrolled_at, last_seen, revoked) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
          "ON CONFLICT (agent_id) DO UPDATE SET hostname = excluded.hostname, os = excluded.os, "
          "kernel = excluded.kernel, agent_version = excluded.agent_version, "
          "signature_version = excluded.signature_version, sensor_mode = excluded.sensor_mode, "
          "cert_fingerprint = CASE WHEN excluded.cert_fingerprint = '' THEN agents.cert_fingerprint "
          "ELSE excluded.cert_fingerprint END");
      if (!s.ok()) return s.status();
      s->BindText(1, a.agent_id);
      s->BindText(2, a.hostname);
      s->BindText(3, a.os);
      s->BindText(4, a.kernel);
      s->BindText(5, a.agent_version);
      s->BindText(6, a.signature_version);
      s->BindText(7, a.sensor_mode);
      s->BindText(8, a.cert_fingerprint);
      s->BindInt(9, a.enrolled_at_ns);
      s->BindInt(10, a.last_seen_ns);
      s->BindInt(11, a.revoked ? 1 : 0);
      return s->Run();
    });
  }

  Result<AgentRecord> GetAgent(std::string_view agent_id) override {
    return Read<AgentRecord>([&](Connection& c) -> Result<AgentRecord> {
      Result<Statement> s = c.Prepare(std::string("SELECT ") + kAgentColumns + " FROM agents WHERE agent_id = ?1");
      if (!s.ok()) return s.status();
      s->BindText(1, agent_id);
      Result<bool> row = s->Step();
      if (!row.ok()) return row.status();
      if (!*row) return NotFoundError("agent " + std::string(agent_id) + " not found");
      return ReadAgent(*s);
    });
  }

  Status TouchAgent(std::string_view agent_id, int64_t seen_at_ns) override {
    return Write([&](Connection& c) -> Status {
      Result<Statement> s = c.Prepare("UPDATE agents SET last_seen = max(last_seen, ?2) WHERE agent_id = ?1");
      if (!s.ok()) return s.status();
      s->BindText(1, agent_id);
      s->BindInt(2, seen_at_ns);
      MAMORI_RETURN_IF_ERROR(s->Run());
      if (c.Changes() == 0) return NotFoundError("agent " + std::string(agent_id) + " not found");
      return Status::Ok();
    });
  }

  Status SetAgentRevoked(std::string_view agent_id, bool revoked) override {
    return Write([&](Connection& c) -> Status {
      Result<Statement> s = c.Prepare("UPDATE agents SET revoked = ?2 WHERE agent_id = ?1");
      if (!s.ok()) return s.status();
      s->BindText(1, agent_id);
      s->BindInt(2, revoked ? 1 : 0);
      MAMORI_RETURN_IF_ERROR(s->Run());
      if (c.Changes() == 0) return NotFoundError("agent " + std::string(agent_id) + " not found");
      return Status::Ok();
    });
  }

  Status RenewAgentCertificate(std::string_view agent_id, std::string_view presented,
                               std::string_view renewed) override {
    return Write([&](Connection& c) -> Status {
      // SET expressions see the row as it was: presenting the current
      // certificate moves it to previous; presenting the previous keeps it.
      Result<Statement> s = c.Prepare(
          "UPDATE agents SET previous_cert_fingerprint = CASE WHEN cert_fingerprint = ?2 THEN cert_fingerprint "
          "ELSE previous_cert_fingerprint END, cert_fingerprint = ?3 "
          "WHERE agent_id = ?1 AND revoked = 0 AND ?2 <> '' AND (cert_fingerprint = ?2 OR previous_cert_fingerprint = ?2)");
      if (!s.ok()) return s.status();
      s->BindText(1, agent_id);
      s->BindText(2, presented);
      s->BindText(3, renewed);
      MAMORI_RETURN_IF_ERROR(s->Run());
      if (c.Changes() == 1) return Status::Ok();
      Result<Statement> q = c.Prepare("SELECT revoked FROM agents WHERE agent_id = ?1");
      if (!q.ok()) return q.status();
      q->BindText(1, agent_id);
      Result<bool> row = q->Step();
      if (!row.ok()) return row.status();
      return internal::RenewRefusal(agent_id, *row, *row && q->Int(0) != 0);
    });
  }

  Status ForgetPreviousCertificate(std::string_view agent_id, std::string_view current) override {
    return Write([&](Connection& c) -> Status {
      Result<Statement> s = c.Prepare(
          "UPDATE agents SET previous_cert_fingerprint = '' WHERE agent_id = ?1 AND cert_fingerprint = ?2 "
          "AND previous_cert_fingerprint <> ''");
      if (!s.ok()) return s.status();
      s->BindText(1, agent_id);
      s->BindText(2, current);
      return s->Run();
    });
  }

  Result<std::vector<AgentView>> ListAgents(const AgentQuery& q) override {
    internal::SqlBuilder b(Dialect::kSqlite);
    const std::string since = b.Param(q.now_ns - q.online_window_ns);
    if (q.presence == AgentQuery::Presence::kOnline) b.Where("last_seen >= " + since);
    if (q.presence == AgentQuery::Presence::kOffline) b.Where("last_seen < " + since);
    if (!q.include_revoked) b.Where("revoked = 0");
    BuiltQuery bq;
    bq.sql = std::string("SELECT ") + kAgentColumns + ", last_seen >= " + since + " FROM agents" + b.WhereClause() +
             " ORDER BY hostname, agent_id";
    if (q.limit > 0) bq.sql += " LIMIT " + b.Param(int64_t{q.limit});
    bq.params = b.params();
    return Read<std::vector<AgentView>>([&](Connection& c) {
      return RunQuery<AgentView>(c, bq, [](const Statement& s) {
        AgentView v;
        v.agent = ReadAgent(s);
        v.acked_sequence = static_cast<uint64_t>(s.Int(11));
        v.online = s.Int(13) != 0;
        return v;
      });
    });
  }

  // ---- enrollment tokens ----

  Result<NewToken> CreateEnrollmentToken(const TokenSpec& spec) override {
    if (spec.expires_at_ns <= spec.created_at_ns) return InvalidArgumentError("token expires before it is created");
    Result<std::string> id = internal::RandomHex(16);
    Result<std::string> secret = internal::RandomHex(32);
    if (!id.ok()) return id.status();
    if (!secret.ok()) return secret.status();
    NewToken t{*id, std::string(internal::kTokenPrefix) + *secret};
    Status s = Write([&](Connection& c) -> Status {
      Result<Statement> st = c.Prepare(
          "INSERT INTO enrollment_tokens (token_id, secret_sha256, reusable, created_at, expires_at, created_by, "
          "description) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
      if (!st.ok()) return st.status();
      st->BindText(1, t.token_id);
      st->BindText(2, internal::Sha256Hex(t.secret));
      st->BindInt(3, spec.reusable ? 1 : 0);
      st->BindInt(4, spec.created_at_ns);
      st->BindInt(5, spec.expires_at_ns);
      st->BindText(6, spec.created_by);
      st->BindText(7, spec.description);
      return st->Run();
    });
    if (!s.ok()) return s;
    return t;
  }

  Result<TokenRecord> ConsumeEnrollmentToken(std::string_view secret, int64_t now_ns) override {
    const std::string hash = internal::Sha256Hex(secret);
    Result<TokenRecord> out = UnauthenticatedToken("unknown enrollment token");
    Status s = Write([&](Connection& c) -> Status {
      Result<Statement> st = c.Prepare(std::string("UPDATE enrollment_tokens SET uses = uses + 1, last_used_at = ?2 ") +
                                        "WHERE secret_sha256 = ?1 AND revoked = 0 AND expires_at > ?2 AND " +
                                        "(reusable = 1 OR uses = 0) RETURNING " + kTokenColumns);
      if (!st.ok()) return st.status();
      st->BindText(1, hash);
      st->BindInt(2, now_ns);
      Result<bool> row = st->Step();
      if (!row.ok()) return row.status();
      if (*row) {
        out = ReadToken(*st);
        return st->Run();
      }
      Result<Statement> why = c.Prepare(std::string("SELECT ") + kTokenColumns +
                                        " FROM enrollment_tokens WHERE secret_sha256 = ?1");
      if (!why.ok()) return why.status();
      why->BindText(1, hash);
      Result<bool> found = why->Step();
      if (!found.ok()) return found.status();
      if (*found) out = UnusableToken(ReadToken(*why), now_ns);
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return out;
  }

  Status RevokeEnrollmentToken(std::string_view token_id) override {
    return Write([&](Connection& c) -> Status {
      Result<Statement> s = c.Prepare("UPDATE enrollment_tokens SET revoked = 1 WHERE token_id = ?1");
      if (!s.ok()) return s.status();
      s->BindText(1, token_id);
      MAMORI_RETURN_IF_ERROR(s->Run());
      if (c.Changes() == 0) return NotFoundError("enrollment token " + std::string(token_id) + " not found");
      return Status::Ok();
    });
  }

  Result<std::vector<TokenRecord>> ListEnrollmentTokens() override {
    BuiltQuery q{std::string("SELECT ") + kTokenColumns + " FROM enrollment_tokens ORDER BY created_at, token_id", {}};
    return Read<std::vector<TokenRecord>>([&](Connection& c) { return RunQuery<TokenRecord>(c, q, ReadToken); });
  }

  // ---- events ----

  Result<uint64_t> AppendBatch(std::string_view agent_id, std::span<const EventRow> events,
                               std::span<const LostRange> lost, int64_t received_at_ns) override {
    Result<internal::PreparedBatch> batch = internal::PrepareBatch(events, lost);
    if (!batch.ok()) return batch.status();
    IngestRequest r{agent_id, &*batch, received_at_ns, std::max<size_t>(1, batch->events.size())};
    ingest_.Submit(&r, [this](std::span<IngestRequest* const> group) { IngestGroup(group); });
    return r.result;
  }

  Result<uint64_t> AckedSequence(std::string_view agent_id) override {
    return Read<uint64_t>([&](Connection& c) -> Result<uint64_t> {
      Result<Statement> s = c.Prepare("SELECT acked_seq FROM agents WHERE agent_id = ?1");
      if (!s.ok()) return s.status();
      s->BindText(1, agent_id);
      Result<bool> row = s->Step();
      if (!row.ok()) return row.status();
      if (!*row) return NotFoundError("agent " + std::string(agent_id) + " not found");
      return static_cast<uint64_t>(s->Int(0));
    });
  }

  Result<EventPage> QueryEvents(const EventQuery& q) override {
    Result<uint32_t> limit = internal::EffectiveLimit(q.limit);
    if (!limit.ok()) return limit.status();
    BuiltQuery bq = internal::BuildEventQuery(q, *limit, Dialect::kSqlite);
    Result<std::vector<StoredEvent>> rows =
        Read<std::vector<StoredEvent>>([&](Connection& c) { return RunQuery<StoredEvent>(c, bq, ReadEvent); });
    if (!rows.ok()) return rows.status();
    EventPage page;
    page.events = std::move(*rows);
    internal::FinishPage(*limit, &page);
    return page;
  }

  // ---- commands ----

  Result<std::string> CreateCommand(const NewCommand& n) override {
    MAMORI_RETURN_IF_ERROR(internal::ValidateAgentId(n.agent_id));
    if (n.kind.empty()) return InvalidArgumentError("command kind is empty");
    Result<std::string> id = internal::RandomHex(16);
    if (!id.ok()) return id.status();
    Status s = Write([&](Connection& c) -> Status {
      Result<Statement> a = c.Prepare("SELECT 1 FROM agents WHERE agent_id = ?1");
      if (!a.ok()) return a.status();
      a->BindText(1, n.agent_id);
      Result<bool> found = a->Step();
      if (!found.ok()) return found.status();
      if (!*found) return NotFoundError("agent " + n.agent_id + " not found");
      Result<Statement> st = c.Prepare(
          "INSERT INTO commands (command_id, agent_id, kind, args, requested_by, state, created_at, updated_at, "
          "expires_at) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6, ?7)");
      if (!st.ok()) return st.status();
      st->BindText(1, *id);
      st->BindText(2, n.agent_id);
      st->BindText(3, n.kind);
      st->BindBlob(4, n.args);
      st->BindText(5, n.requested_by);
      st->BindInt(6, n.created_at_ns);
      st->BindInt(7, n.expires_at_ns);
      return st->Run();
    });
    if (!s.ok()) return s;
    return *id;
  }

  Result<CommandRecord> GetCommand(std::string_view command_id) override {
    return Read<CommandRecord>([&](Connection& c) { return GetCommandOn(c, command_id); });
  }

  Result<std::vector<CommandRecord>> ListCommands(const CommandQuery& q) override {
    Result<uint32_t> limit = internal::EffectiveLimit(q.limit);
    if (!limit.ok()) return limit.status();
    BuiltQuery bq = internal::BuildCommandQuery(q, *limit, Dialect::kSqlite);
    return Read<std::vector<CommandRecord>>([&](Connection& c) { return RunQuery<CommandRecord>(c, bq, ReadCommand); });
  }

  Result<std::vector<CommandRecord>> PendingCommands(std::string_view agent_id, int64_t now_ns) override {
    BuiltQuery q{std::string("SELECT ") + internal::kCommandColumns +
                     " FROM commands WHERE agent_id = ?1 AND state = 'pending' AND (expires_at = 0 OR expires_at > ?2) "
                     "ORDER BY created_at, command_id",
                 {std::string(agent_id), now_ns}};
    return Read<std::vector<CommandRecord>>([&](Connection& c) { return RunQuery<CommandRecord>(c, q, ReadCommand); });
  }

  Status MarkCommandDelivered(std::string_view command_id, int64_t now_ns) override {
    return Write([&](Connection& c) -> Status {
      Result<Statement> s =
          c.Prepare("UPDATE commands SET state = 'delivered', updated_at = ?2 WHERE command_id = ?1 AND state = 'pending'");
      if (!s.ok()) return s.status();
      s->BindText(1, command_id);
      s->BindInt(2, now_ns);
      MAMORI_RETURN_IF_ERROR(s->Run());
      if (c.Changes() > 0) return Status::Ok();
      return GetCommandOn(c, command_id).status();  // OK when it exists: idempotent
    });
  }

  Status CompleteCommand(std::string_view command_id, CommandState outcome, std::string_view result,
                         std::string_view error, int64_t now_ns) override {
    MAMORI_RETURN_IF_ERROR(internal::ValidateCommandOutcome(outcome));
    return Write([&](Connection& c) -> Status {
      Result<Statement> s = c.Prepare(
          "UPDATE commands SET state = ?2, result = ?3, error = ?4, updated_at = ?5 WHERE command_id = ?1 AND "
          "state NOT IN ('succeeded', 'failed', 'rejected')");  // running included: it is not final
      if (!s.ok()) return s.status();
      s->BindText(1, command_id);
      s->BindText(2, CommandStateName(outcome));
      s->BindBlob(3, result);
      s->BindText(4, error);
      s->BindInt(5, now_ns);
      MAMORI_RETURN_IF_ERROR(s->Run());
      if (c.Changes() > 0) return Status::Ok();
      return GetCommandOn(c, command_id).status();  // first result wins
    });
  }

  Status CancelCommand(std::string_view command_id, int64_t now_ns) override {
    return Write([&](Connection& c) -> Status {
      Result<Statement> s =
          c.Prepare("UPDATE commands SET state = 'cancelled', updated_at = ?2 WHERE command_id = ?1 AND state = 'pending'");
      if (!s.ok()) return s.status();
      s->BindText(1, command_id);
      s->BindInt(2, now_ns);
      MAMORI_RETURN_IF_ERROR(s->Run());
      if (c.Changes() > 0) return Status::Ok();
      Result<CommandRecord> cur = GetCommandOn(c, command_id);
      if (!cur.ok()) return cur.status();
      return FailedPreconditionError("command " + std::string(command_id) + " is " +
                                     std::string(CommandStateName(cur->state)) + "; only pending commands can be cancelled");
    });
  }

  Result<uint64_t> ExpireCommands(int64_t now_ns) override {
    uint64_t n = 0;
    Status s = Write([&](Connection& c) -> Status {
      Result<Statement> st = c.Prepare(
          "UPDATE commands SET state = 'expired', updated_at = ?1 WHERE state IN ('pending', 'delivered') AND "
          "expires_at > 0 AND expires_at <= ?1");
      if (!st.ok()) return st.status();
      st->BindInt(1, now_ns);
      MAMORI_RETURN_IF_ERROR(st->Run());
      n = static_cast<uint64_t>(c.Changes());
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return n;
  }

  // ---- audit ----

  Result<int64_t> AppendAudit(const AuditEntry& e) override {
    int64_t id = 0;
    Status s = Write([&](Connection& c) -> Status {
      Result<Statement> st = c.Prepare(
          "INSERT INTO audit_log (at, actor, action, target, details, result) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
          "RETURNING id");
      if (!st.ok()) return st.status();
      st->BindInt(1, e.at_ns);
      st->BindText(2, e.actor);
      st->BindText(3, e.action);
      st->BindText(4, e.target);
      st->BindText(5, e.details);
      st->BindText(6, e.result);
      Result<bool> row = st->Step();
      if (!row.ok()) return row.status();
      id = st->Int(0);
      return st->Run();
    });
    if (!s.ok()) return s;
    return id;
  }

  Result<std::vector<AuditEntry>> ListAudit(const AuditQuery& q) override {
    Result<uint32_t> limit = internal::EffectiveLimit(q.limit);
    if (!limit.ok()) return limit.status();
    BuiltQuery bq = internal::BuildAuditQuery(q, *limit, Dialect::kSqlite);
    return Read<std::vector<AuditEntry>>([&](Connection& c) { return RunQuery<AuditEntry>(c, bq, ReadAudit); });
  }

  // ---- console users ----

  Result<NewUserToken> CreateUser(const UserSpec& spec) override {
    MAMORI_RETURN_IF_ERROR(internal::ValidateUserSpec(spec));
    Result<std::string> secret = internal::RandomHex(32);
    if (!secret.ok()) return secret.status();
    NewUserToken t{spec.name, std::string(internal::kUserTokenPrefix) + *secret};
    Status s = Write([&](Connection& c) -> Status {
      Result<Statement> exists = c.Prepare("SELECT count(*) FROM users WHERE name = ?1");
      if (!exists.ok()) return exists.status();
      exists->BindText(1, spec.name);
      MAMORI_RETURN_IF_ERROR(exists->Step().status());
      if (exists->Int(0) != 0) return Status(StatusCode::kAlreadyExists, "user " + spec.name + " already exists");
      Result<Statement> st = c.Prepare(
          "INSERT INTO users (name, role, token_sha256, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5)");
      if (!st.ok()) return st.status();
      st->BindText(1, spec.name);
      st->BindText(2, spec.role);
      st->BindText(3, internal::Sha256Hex(t.secret));
      st->BindInt(4, spec.created_at_ns);
      st->BindText(5, spec.created_by);
      return st->Run();
    });
    if (!s.ok()) return s;
    return t;
  }

  Result<UserRecord> AuthenticateUser(std::string_view secret, int64_t now_ns) override {
    Result<UserRecord> out = Status(StatusCode::kUnauthenticated, "unknown API token");
    Status s = Write([&](Connection& c) -> Status {
      Result<Statement> st = c.Prepare(std::string("UPDATE users SET last_used_at = ?2 WHERE token_sha256 = ?1 AND ") +
                                       "disabled = 0 RETURNING " + internal::kUserColumns);
      if (!st.ok()) return st.status();
      st->BindText(1, internal::Sha256Hex(secret));
      st->BindInt(2, now_ns);
      Result<bool> row = st->Step();
      if (!row.ok()) return row.status();
      if (*row) {
        out = ReadUser(*st);
        return st->Run();
      }
      return Status::Ok();
    });
    if (!s.ok()) return s;
    if (!out.ok()) {
      // Say why when the token is known (disabled), without a write.
      Result<std::vector<UserRecord>> all = ListUsers();
      const std::string hash = internal::Sha256Hex(secret);
      if (all.ok()) {
        for (const UserRecord& u : *all) {
          if (u.token_sha256 == hash) return Status(StatusCode::kUnauthenticated, "user " + u.name + " is disabled");
        }
      }
    }
    return out;
  }

  Result<UserRecord> GetUser(std::string_view name) override {
    return Read<UserRecord>([&](Connection& c) -> Result<UserRecord> {
      Result<Statement> s = c.Prepare(std::string("SELECT ") + internal::kUserColumns + " FROM users WHERE name = ?1");
      if (!s.ok()) return s.status();
      s->BindText(1, name);
      Result<bool> row = s->Step();
      if (!row.ok()) return row.status();
      if (!*row) return NotFoundError("user " + std::string(name) + " not found");
      return ReadUser(*s);
    });
  }

  Result<std::vector<UserRecord>> ListUsers() override {
    BuiltQuery q{std::string("SELECT ") + internal::kUserColumns + " FROM users ORDER BY name", {}};
    return Read<std::vector<UserRecord>>([&](Connection& c) { return RunQuery<UserRecord>(c, q, ReadUser); });
  }

  Status SetUserDisabled(std::string_view name, bool disabled) override {
    return Write([&](Connection& c) -> Status {
      Result<Statement> s = c.Prepare("UPDATE users SET disabled = ?2 WHERE name = ?1");
      if (!s.ok()) return s.status();
      s->BindText(1, name);
      s->BindInt(2, disabled ? 1 : 0);
      MAMORI_RETURN_IF_ERROR(s->Run());
      if (c.Changes() == 0) return NotFoundError("user " + std::string(name) + " not found");
      return Status::Ok();
    });
  }

 private:
  static Status UnauthenticatedToken(std::string why) { return Status(StatusCode::kUnauthenticated, std::move(why)); }
  static Status UnusableToken(const TokenRecord& t, int64_t now_ns) {
    if (t.revoked) return UnauthenticatedToken("enrollment token revoked");
    if (now_ns >= t.expires_at_ns) return UnauthenticatedToken("enrollment token expired");
    return UnauthenticatedToken("one-time enrollment token already used");
  }

  // Runs `body` in one IMMEDIATE transaction, committing when it returns OK.
  template <typename Body>
  Status Write(Body&& body) {
    Result<Pool::Lease> lease = pool_.Acquire();
    if (!lease.ok()) return lease.status();
    Connection& c = **lease;
    Result<Transaction> txn = Transaction::Begin(c);
    if (!txn.ok()) return txn.status();
    MAMORI_RETURN_IF_ERROR(body(c));
    return txn->Commit();
  }

  // Runs a read (one statement: its own consistent snapshot).
  template <typename T, typename Body>
  Result<T> Read(Body&& body) {
    Result<Pool::Lease> lease = pool_.Acquire();
    if (!lease.ok()) return lease.status();
    return body(**lease);
  }

  static Result<CommandRecord> GetCommandOn(Connection& c, std::string_view command_id) {
    Result<Statement> s =
        c.Prepare(std::string("SELECT ") + internal::kCommandColumns + " FROM commands WHERE command_id = ?1");
    if (!s.ok()) return s.status();
    s->BindText(1, command_id);
    Result<bool> row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) return NotFoundError("command " + std::string(command_id) + " not found");
    return ReadCommand(*s);
  }

  // Inside the write transaction: the agent's ack, or why it may not ingest.
  static Result<uint64_t> LockAgentForIngest(Connection& c, std::string_view agent_id) {
    Result<Statement> s = c.Prepare("SELECT revoked, acked_seq FROM agents WHERE agent_id = ?1");
    if (!s.ok()) return s.status();
    s->BindText(1, agent_id);
    Result<bool> row = s->Step();
    if (!row.ok()) return row.status();
    if (!*row) return NotFoundError("agent " + std::string(agent_id) + " not found");
    if (s->Int(0) != 0) return PermissionDeniedError("agent " + std::string(agent_id) + " is revoked");
    return static_cast<uint64_t>(s->Int(1));
  }

  // One AppendBatch waiting for (or leading) a group commit.
  struct IngestRequest {
    std::string_view agent_id;
    const internal::PreparedBatch* batch;
    int64_t received_at_ns;
    size_t weight;  // events in the batch
    bool done = false;
    Result<uint64_t> result = InternalError("batch not run");
  };

  // Every batch of the group in one transaction (one fsync), each inside its
  // own savepoint so that one agent's refusal leaves the others' batches in.
  void IngestGroup(std::span<IngestRequest* const> group) {
    Status s = Write([&](Connection& c) -> Status {
      for (IngestRequest* r : group) {
        MAMORI_RETURN_IF_ERROR(c.Exec("SAVEPOINT batch"));
        r->result = IngestOne(c, r->agent_id, *r->batch, r->received_at_ns);
        if (!r->result.ok()) MAMORI_RETURN_IF_ERROR(c.Exec("ROLLBACK TO batch"));
        MAMORI_RETURN_IF_ERROR(c.Exec("RELEASE batch"));
      }
      return Status::Ok();
    });
    if (!s.ok()) {
      for (IngestRequest* r : group) r->result = s;  // nothing of the group was committed
    }
  }

  // Stores one batch inside the caller's transaction; returns the new ack.
  static Result<uint64_t> IngestOne(Connection& c, std::string_view agent_id, const internal::PreparedBatch& batch,
                                    int64_t received_at_ns) {
    uint64_t ack = 0;
    Result<uint64_t> acked = LockAgentForIngest(c, agent_id);
    if (!acked.ok()) return acked.status();
    Result<Statement> ins = c.Prepare(
        "INSERT INTO events (agent_id, seq, type, ts, received_at, pid, image, process_sha256, command_line, "
        "file_path, file_sha256, rule_id, severity, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
        "?12, ?13, ?14) ON CONFLICT (agent_id, seq) DO NOTHING");
    if (!ins.ok()) return ins.status();
    // No-copy binds: agent_id and the rows outlive `ins` (reset and unbound
    // when it goes out of scope, before this returns).
    for (const EventRow* row : batch.events) {
      const EventRow& e = *row;
      ins->BindTextNoCopy(1, agent_id);
      ins->BindInt(2, static_cast<int64_t>(e.sequence));
      ins->BindTextNoCopy(3, e.type);
      ins->BindInt(4, e.timestamp_ns);
      ins->BindInt(5, received_at_ns);
      if (e.pid != 0) {
        ins->BindInt(6, e.pid);
      } else {
        ins->BindNull(6);
      }
      ins->BindTextOrNullNoCopy(7, e.image);
      ins->BindTextOrNullNoCopy(8, e.process_sha256);
      ins->BindTextOrNullNoCopy(9, e.command_line);
      ins->BindTextOrNullNoCopy(10, e.file_path);
      ins->BindTextOrNullNoCopy(11, e.file_sha256);
      ins->BindTextOrNullNoCopy(12, e.rule_id);
      ins->BindInt(13, e.severity);
      ins->BindBlobNoCopy(14, e.payload);
      MAMORI_RETURN_IF_ERROR(ins->Run());
    }
    if (!batch.lost.empty()) {
      Result<Statement> lo = c.Prepare(
          "INSERT INTO sequence_losses (agent_id, first_seq, last_seq, reason, received_at) "
          "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING");
      if (!lo.ok()) return lo.status();
      for (const LostRange& r : batch.lost) {
        lo->BindText(1, agent_id);
        lo->BindInt(2, static_cast<int64_t>(r.first));
        lo->BindInt(3, static_cast<int64_t>(r.last));
        lo->BindText(4, r.reason);
        lo->BindInt(5, received_at_ns);
        MAMORI_RETURN_IF_ERROR(lo->Run());
      }
    }
    Result<uint64_t> advanced = AdvanceAck(c, agent_id, internal::AdvanceOverBatch(*acked, batch));
    if (!advanced.ok()) return advanced.status();
    ack = *advanced;
    if (ack != *acked) {
      Result<Statement> up = c.Prepare("UPDATE agents SET acked_seq = ?2 WHERE agent_id = ?1 AND acked_seq < ?2");
      if (!up.ok()) return up.status();
      up->BindText(1, agent_id);
      up->BindInt(2, static_cast<int64_t>(ack));
      MAMORI_RETURN_IF_ERROR(up->Run());
    }
    return ack;
  }

  // Continues the ack walk in the database: over runs of stored events and
  // over declared-lost ranges, until the next sequence is neither.
  static Result<uint64_t> AdvanceAck(Connection& c, std::string_view agent_id, uint64_t ack) {
    for (;;) {
      const auto next = static_cast<int64_t>(ack + 1);
      Result<Statement> present = c.Prepare("SELECT 1 FROM events WHERE agent_id = ?1 AND seq = ?2");
      if (!present.ok()) return present.status();
      present->BindText(1, agent_id);
      present->BindInt(2, next);
      Result<bool> has = present->Step();
      if (!has.ok()) return has.status();
      if (*has) {
        // The end of the run starting at `next`: the first stored sequence
        // from there whose successor is not stored.
        Result<Statement> end = c.Prepare(
            "SELECT e.seq FROM events e WHERE e.agent_id = ?1 AND e.seq >= ?2 AND NOT EXISTS "
            "(SELECT 1 FROM events n WHERE n.agent_id = ?1 AND n.seq = e.seq + 1) ORDER BY e.seq LIMIT 1");
        if (!end.ok()) return end.status();
        end->BindText(1, agent_id);
        end->BindInt(2, next);
        Result<bool> row = end->Step();
        if (!row.ok()) return row.status();
        ack = static_cast<uint64_t>(end->Int(0));
        continue;
      }
      Result<Statement> lost = c.Prepare(
          "SELECT max(last_seq) FROM sequence_losses WHERE agent_id = ?1 AND first_seq <= ?2 AND last_seq >= ?2");
      if (!lost.ok()) return lost.status();
      lost->BindText(1, agent_id);
      lost->BindInt(2, next);
      Result<bool> row = lost->Step();
      if (!row.ok()) return row.status();
      if (lost->IsNull(0)) return ack;
      ack = static_cast<uint64_t>(lost->Int(0));
    }
  }

  // Concurrent AppendBatch calls share transactions: at most this many
  // events per group (bounds one commit's latency).
  static constexpr size_t kMaxGroupEvents = 20000;

  const SqliteStoreOptions options_;
  Pool pool_;
  internal::GroupCommit<IngestRequest> ingest_{kMaxGroupEvents};
};

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const SqliteStoreOptions& options) {
  if (options.path.empty()) return InvalidArgumentError("sqlite store: empty path");
  Connection::Options co{options.busy_timeout, options.durable_commits};
  Result<std::unique_ptr<Connection>> first = Connection::Open(options.path, co);
  if (!first.ok()) return first.status();
  MAMORI_RETURN_IF_ERROR(sqlite::Migrate(**first, options.path));
  const std::string path = options.path;
  auto store = std::make_unique<SqliteStore>(
      options, [path, co]() -> Result<std::unique_ptr<Connection>> { return Connection::Open(path, co); });
  store->AddConnection(std::move(*first));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace mamori::server

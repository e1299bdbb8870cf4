// PostgresStore: the Store over PostgreSQL (libpqxx), safe for several
// server replicas on one database.
//
// Every operation is one READ COMMITTED transaction. Ingest for an agent
// locks the agent's row first (SELECT ... FOR UPDATE), so batches for one
// agent from any number of replicas are serialized while different agents
// ingest in parallel; INSERT ... ON CONFLICT (agent_id, seq) DO NOTHING makes
// each (agent, sequence) stored once regardless. libpqxx exceptions are
// caught in Txn() and become Status; none leaves this file.
#include "mamori/server/postgres_store.h"

#include <pqxx/pqxx>

#include <memory>
#include <string>
#include <utility>
#include <variant>

#include "connection_pool.h"
#include "mamori/common/file_util.h"
#include "postgres_schema.h"
#include "store_internal.h"

namespace mamori::server {
namespace {

using internal::BuiltQuery;
using internal::Dialect;
using Pool = internal::ConnectionPool<pqxx::connection>;

constexpr const char* kAgentColumns =
    "agent_id, hostname, os, kernel, agent_version, signature_version, sensor_mode, cert_fingerprint, enrolled_at, "
    "last_seen, revoked, acked_seq, previous_cert_fingerprint";
constexpr const char* kTokenColumns =
    "token_id, secret_sha256, reusable, created_at, expires_at, created_by, description, uses, last_used_at, revoked";
constexpr size_t kEventColumnCount = 14;
constexpr size_t kRowsPerInsert = 1000;  // 14,000 parameters per statement (limit 65,535)

std::string Str(const pqxx::field& f) { return f.is_null() ? std::string() : f.c_str(); }
std::string Bytes(const pqxx::field& f) { return f.is_null() ? std::string() : pqxx::binarystring(f).str(); }
int64_t Int(const pqxx::field& f) { return f.is_null() ? 0 : f.as<int64_t>(); }

// bytea parameters travel as text in PostgreSQL's hex input format.
std::string ByteaText(std::string_view bytes) { return "\\x" + HexEncode(bytes); }

AgentRecord ReadAgent(const pqxx::row& r) {
  AgentRecord a;
  a.agent_id = Str(r[0]);
  a.hostname = Str(r[1]);
  a.os = Str(r[2]);
  a.kernel = Str(r[3]);
  a.agent_version = Str(r[4]);
  a.signature_version = Str(r[5]);
  a.sensor_mode = Str(r[6]);
  a.cert_fingerprint = Str(r[7]);
  a.enrolled_at_ns = Int(r[8]);
  a.last_seen_ns = Int(r[9]);
  a.revoked = r[10].as<bool>();
  a.previous_cert_fingerprint = Str(r[12]);
  return a;
}

TokenRecord ReadToken(const pqxx::row& r) {
  TokenRecord t;
  t.token_id = Str(r[0]);
  t.secret_sha256 = Str(r[1]);
  t.reusable = r[2].as<bool>();
  t.created_at_ns = Int(r[3]);
  t.expires_at_ns = Int(r[4]);
  t.created_by = Str(r[5]);
  t.description = Str(r[6]);
  t.uses = static_cast<uint64_t>(Int(r[7]));
  t.last_used_at_ns = Int(r[8]);
  t.revoked = r[9].as<bool>();
  return t;
}

StoredEvent ReadEvent(const pqxx::row& r) {
  StoredEvent e;
  e.agent_id = Str(r[0]);
  e.row.sequence = static_cast<uint64_t>(Int(r[1]));
  e.row.type = Str(r[2]);
  e.row.timestamp_ns = Int(r[3]);
  e.received_at_ns = Int(r[4]);
  e.row.pid = static_cast<int32_t>(Int(r[5]));
  e.row.image = Str(r[6]);
  e.row.process_sha256 = Str(r[7]);
  e.row.command_line = Str(r[8]);
  e.row.file_path = Str(r[9]);
  e.row.file_sha256 = Str(r[10]);
  e.row.rule_id = Str(r[11]);
  e.row.severity = static_cast<int32_t>(Int(r[12]));
  e.row.payload = Bytes(r[13]);
  return e;
}

CommandRecord ReadCommand(const pqxx::row& r) {
  CommandRecord c;
  c.command_id = Str(r[0]);
  c.agent_id = Str(r[1]);
  c.kind = Str(r[2]);
  c.args = Bytes(r[3]);
  c.requested_by = Str(r[4]);
  c.state = CommandStateFromName(Str(r[5])).value_or(CommandState::kPending);
  c.created_at_ns = Int(r[6]);
  c.updated_at_ns = Int(r[7]);
  c.expires_at_ns = Int(r[8]);
  c.result = Bytes(r[9]);
  c.error = Str(r[10]);
  return c;
}

AuditEntry ReadAudit(const pqxx::row& r) {
  AuditEntry a;
  a.id = Int(r[0]);
  a.at_ns = Int(r[1]);
  a.actor = Str(r[2]);
  a.action = Str(r[3]);
  a.target = Str(r[4]);
  a.details = Str(r[5]);
  a.result = Str(r[6]);
  return a;
}

UserRecord ReadUser(const pqxx::row& r) {
  UserRecord u;
  u.name = Str(r[0]);
  u.role = Str(r[1]);
  u.token_sha256 = Str(r[2]);
  u.created_at_ns = Int(r[3]);
  u.created_by = Str(r[4]);
  u.disabled = r[5].as<bool>();
  u.last_used_at_ns = Int(r[6]);
  return u;
}

// Parameters as text (NULL = nullptr), for statements built at run time.
class TextParams {
 public:
  void Add(const internal::SqlValue& v) {
    if (const auto* n = std::get_if<int64_t>(&v)) {
      Add(std::to_string(*n));
    } else if (const auto* t = std::get_if<std::string>(&v)) {
      Add(*t);
    } else {
      AddNull();
    }
  }
  void Add(std::string v) {
    values_.push_back(std::move(v));
    null_.push_back(false);
  }
  void AddOrNull(std::string_view v) {
    if (v.empty()) {
      AddNull();
    } else {
      Add(std::string(v));
    }
  }
  void AddNull() {
    values_.emplace_back();
    null_.push_back(true);
  }
  // Valid until the next Add.
  std::vector<const char*> Pointers() const {
    std::vector<const char*> p;
    p.reserve(values_.size());
    for (size_t i = 0; i < values_.size(); ++i) p.push_back(null_[i] ? nullptr : values_[i].c_str());
    return p;
  }

 private:
  std::vector<std::string> values_;
  std::vector<bool> null_;
};

pqxx::result ExecBuilt(pqxx::work& w, const BuiltQuery& q) {
  TextParams p;
  for (const auto& v : q.params) p.Add(v);
  const std::vector<const char*> ptrs = p.Pointers();
  return w.exec_params(q.sql, pqxx::prepare::make_dynamic_params(ptrs));
}

template <typename T, typename ReadRow>
std::vector<T> ReadAll(const pqxx::result& r, ReadRow read) {
  std::vector<T> out;
  out.reserve(r.size());
  for (const pqxx::row& row : r) out.push_back(read(row));
  return out;
}

Status Unauthenticated(std::string why) { return Status(StatusCode::kUnauthenticated, std::move(why)); }

class PostgresStore final : public Store {
 public:
  PostgresStore(PostgresStoreOptions options, Pool::Factory factory)
      : options_(std::move(options)), pool_(options_.max_connections, std::move(factory)) {}

  void AddConnection(std::unique_ptr<pqxx::connection> c) { pool_.Add(std::move(c)); }

  std::string_view backend() const override { return "postgres"; }

  // ---- agents ----

  Status UpsertAgent(const AgentRecord& a) override {
    MAMORI_RETURN_IF_ERROR(internal::ValidateAgentId(a.agent_id));
    return Txn([&](pqxx::work& w) -> Status {
      w.exec_params(
          "INSERT INTO agents (agent_id, hostname, os, kernel, agent_version, signature_version, sensor_mode, "
          "cert_fingerprint, enrolled_at, last_seen, revoked) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
          "ON CONFLICT (agent_id) DO UPDATE SET hostname = excluded.hostname, os = excluded.os, "
          "kernel = excluded.kernel, agent_version = excluded.agent_version, "
          "signature_version = excluded.signature_version, sensor_mode = excluded.sensor_mode, "
          "cert_fingerprint = CASE WHEN excluded.cert_fingerprint = '' THEN agents.cert_fingerprint "
          "ELSE excluded.cert_fingerprint END",
          a.agent_id, a.hostname, a.os, a.kernel, a.agent_version, a.signature_version, a.sensor_mode,
          a.cert_fingerprint, a.enrolled_at_ns, a.last_seen_ns, a.revoked);
      return Status::Ok();
    });
  }

  Result<AgentRecord> GetAgent(std::string_view agent_id) override {
    AgentRecord out;
    Status s = Txn([&](pqxx::work& w) -> Status {
      pqxx::result r =
          w.exec_params(std::string("SELECT ") + kAgentColumns + " FROM agents WHERE agent_id = $1", std::string(agent_id));
      if (r.empty()) return NotFoundError("agent " + std::string(agent_id) + " not found");
      out = ReadAgent(r[0]);
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return out;
  }

  Status TouchAgent(std::string_view agent_id, int64_t seen_at_ns) override {
    return Txn([&](pqxx::work& w) -> Status {
      pqxx::result r = w.exec_params("UPDATE agents SET last_seen = GREATEST(last_seen, $2) WHERE agent_id = $1",
                                     std::string(agent_id), seen_at_ns);
      if (r.affected_rows() == 0) return NotFoundError("agent " + std::string(agent_id) + " not found");
      return Status::Ok();
    });
  }

  Status SetAgentRevoked(std::string_view agent_id, bool revoked) override {
    return Txn([&](pqxx::work& w) -> Status {
      pqxx::result r =
          w.exec_params("UPDATE agents SET revoked = $2 WHERE agent_id = $1", std::string(agent_id), revoked);
      if (r.affected_rows() == 0) return NotFoundError("agent " + std::string(agent_id) + " not found");
      return Status::Ok();
    });
  }

  Status RenewAgentCertificate(std::string_view agent_id, std::string_view presented,
                               std::string_view renewed) override {
    return Txn([&](pqxx::work& w) -> Status {
      // SET expressions see the row as it was: presenting the current
      // certificate moves it to previous; presenting the previous keeps it.
      pqxx::result r = w.exec_params(
          "UPDATE agents SET previous_cert_fingerprint = CASE WHEN cert_fingerprint = $2 THEN cert_fingerprint "
          "ELSE previous_cert_fingerprint END, cert_fingerprint = $3 "
          "WHERE agent_id = $1 AND NOT revoked AND $2 <> '' AND (cert_fingerprint = $2 OR previous_cert_fingerprint = $2)",
          std::string(agent_id), std::string(presented), std::string(renewed));
      if (r.affected_rows() == 1) return Status::Ok();
      pqxx::result q = w.exec_params("SELECT revoked FROM agents WHERE agent_id = $1", std::string(agent_id));
      return internal::RenewRefusal(agent_id, !q.empty(), !q.empty() && q[0][0].as<bool>());
    });
  }

  Status ForgetPreviousCertificate(std::string_view agent_id, std::string_view current) override {
    return Txn([&](pqxx::work& w) -> Status {
      w.exec_params(
          "UPDATE agents SET previous_cert_fingerprint = '' WHERE agent_id = $1 AND cert_fingerprint = $2 "
          "AND previous_cert_fingerprint <> ''",
          std::string(agent_id), std::string(current));
      return Status::Ok();
    });
  }

  Result<std::vector<AgentView>> ListAgents(const AgentQuery& q) override {
    internal::SqlBuilder b(Dialect::kPostgres);
    const std::string since = b.Param(q.now_ns - q.online_window_ns);
    if (q.presence == AgentQuery::Presence::kOnline) b.Where("last_seen >= " + since);
    if (q.presence == AgentQuery::Presence::kOffline) b.Where("last_seen < " + since);
    if (!q.include_revoked) b.Where("NOT revoked");
    BuiltQuery bq;
    bq.sql = std::string("SELECT ") + kAgentColumns + ", last_seen >= " + since + " FROM agents" + b.WhereClause() +
             " ORDER BY hostname, agent_id";
    if (q.limit > 0) bq.sql += " LIMIT " + b.Param(int64_t{q.limit});
    bq.params = b.params();
    std::vector<AgentView> out;
    Status s = Txn([&](pqxx::work& w) -> Status {
      out = ReadAll<AgentView>(ExecBuilt(w, bq), [](const pqxx::row& r) {
        AgentView v;
        v.agent = ReadAgent(r);
        v.acked_sequence = static_cast<uint64_t>(Int(r[11]));
        v.online = r[13].as<bool>();
        return v;
      });
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return out;
  }

  // ---- enrollment tokens ----

  Result<NewToken> CreateEnrollmentToken(const TokenSpec& spec) override {
    if (spec.expires_at_ns <= spec.created_at_ns) return InvalidArgumentError("token expires before it is created");
    Result<std::string> id = internal::RandomHex(16);
    Result<std::string> secret = internal::RandomHex(32);
    if (!id.ok()) return id.status();
    if (!secret.ok()) return secret.status();
    NewToken t{*id, std::string(internal::kTokenPrefix) + *secret};
    Status s = Txn([&](pqxx::work& w) -> Status {
      w.exec_params(
          "INSERT INTO enrollment_tokens (token_id, secret_sha256, reusable, created_at, expires_at, created_by, "
          "description) VALUES ($1, $2, $3, $4, $5, $6, $7)",
          t.token_id, internal::Sha256Hex(t.secret), spec.reusable, spec.created_at_ns, spec.expires_at_ns,
          spec.created_by, spec.description);
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return t;
  }

  Result<TokenRecord> ConsumeEnrollmentToken(std::string_view secret, int64_t now_ns) override {
    const std::string hash = internal::Sha256Hex(secret);
    Result<TokenRecord> out = Unauthenticated("unknown enrollment token");
    Status s = Txn([&](pqxx::work& w) -> Status {
      // Under READ COMMITTED a concurrent consumer of a one-time token waits
      // for this row lock, then re-checks `uses = 0` and matches nothing.
      pqxx::result r = w.exec_params(std::string("UPDATE enrollment_tokens SET uses = uses + 1, last_used_at = $2 ") +
                                         "WHERE secret_sha256 = $1 AND NOT revoked AND expires_at > $2 AND " +
                                         "(reusable OR uses = 0) RETURNING " + kTokenColumns,
                                     hash, now_ns);
      if (!r.empty()) {
        out = ReadToken(r[0]);
        return Status::Ok();
      }
      pqxx::result why = w.exec_params(
          std::string("SELECT ") + kTokenColumns + " FROM enrollment_tokens WHERE secret_sha256 = $1", hash);
      if (why.empty()) {
        out = Unauthenticated("unknown enrollment token");
      } else {
        const TokenRecord t = ReadToken(why[0]);
        out = t.revoked                 ? Unauthenticated("enrollment token revoked")
              : now_ns >= t.expires_at_ns ? Unauthenticated("enrollment token expired")
                                          : Unauthenticated("one-time enrollment token already used");
      }
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return out;
  }

  Status RevokeEnrollmentToken(std::string_view token_id) override {
    return Txn([&](pqxx::work& w) -> Status {
      pqxx::result r =
          w.exec_params("UPDATE enrollment_tokens SET revoked = TRUE WHERE token_id = $1", std::string(token_id));
      if (r.affected_rows() == 0) return NotFoundError("enrollment token " + std::string(token_id) + " not found");
      return Status::Ok();
    });
  }

  Result<std::vector<TokenRecord>> ListEnrollmentTokens() override {
    std::vector<TokenRecord> out;
    Status s = Txn([&](pqxx::work& w) -> Status {
      out = ReadAll<TokenRecord>(
          w.exec(std::string("SELECT ") + kTokenColumns + " FROM enrollment_tokens ORDER BY created_at, token_id"),
          ReadToken);
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return out;
  }

  // ---- events ----

  Result<uint64_t> AppendBatch(std::string_view agent_id, std::span<const EventRow> events,
                               std::span<const LostRange> lost, int64_t received_at_ns) override {
    Result<internal::PreparedBatch> batch = internal::PrepareBatch(events, lost);
    if (!batch.ok()) return batch.status();
    const std::string agent(agent_id);
    uint64_t ack = 0;
    Status s = Txn([&](pqxx::work& w) -> Status {
      pqxx::result a = w.exec_params("SELECT revoked, acked_seq FROM agents WHERE agent_id = $1 FOR UPDATE", agent);
      if (a.empty()) return NotFoundError("agent " + agent + " not found");
      if (a[0][0].as<bool>()) return PermissionDeniedError("agent " + agent + " is revoked");
      const auto acked = static_cast<uint64_t>(Int(a[0][1]));
      for (size_t start = 0; start < batch->events.size(); start += kRowsPerInsert) {
        const size_t end = std::min(batch->events.size(), start + kRowsPerInsert);
        InsertEvents(w, agent, std::span<const EventRow* const>(batch->events).subspan(start, end - start),
                     received_at_ns);
      }
      for (const LostRange& r : batch->lost) {
        w.exec_params(
            "INSERT INTO sequence_losses (agent_id, first_seq, last_seq, reason, received_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            agent, static_cast<int64_t>(r.first), static_cast<int64_t>(r.last), r.reason, received_at_ns);
      }
      ack = AdvanceAck(w, agent, internal::AdvanceOverBatch(acked, *batch));
      if (ack != acked) {
        w.exec_params("UPDATE agents SET acked_seq = $2 WHERE agent_id = $1 AND acked_seq < $2", agent,
                      static_cast<int64_t>(ack));
      }
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return ack;
  }

  Result<uint64_t> AckedSequence(std::string_view agent_id) override {
    uint64_t out = 0;
    Status s = Txn([&](pqxx::work& w) -> Status {
      pqxx::result r = w.exec_params("SELECT acked_seq FROM agents WHERE agent_id = $1", std::string(agent_id));
      if (r.empty()) return NotFoundError("agent " + std::string(agent_id) + " not found");
      out = static_cast<uint64_t>(Int(r[0][0]));
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return out;
  }

  Result<EventPage> QueryEvents(const EventQuery& q) override {
    Result<uint32_t> limit = internal::EffectiveLimit(q.limit);
    if (!limit.ok()) return limit.status();
    BuiltQuery bq = internal::BuildEventQuery(q, *limit, Dialect::kPostgres);
    EventPage page;
    Status s = Txn([&](pqxx::work& w) -> Status {
      page.events = ReadAll<StoredEvent>(ExecBuilt(w, bq), ReadEvent);
      return Status::Ok();
    });
    if (!s.ok()) return s;
    internal::FinishPage(*limit, &page);
    return page;
  }

  // ---- commands ----

  Result<std::string> CreateCommand(const NewCommand& n) override {
    MAMORI_RETURN_IF_ERROR(internal::ValidateAgentId(n.agent_id));
    if (n.kind.empty()) return InvalidArgumentError("command kind is empty");
    Result<std::string> id = internal::RandomHex(16);
    if (!id.ok()) return id.status();
    Status s = Txn([&](pqxx::work& w) -> Status {
      if (w.exec_params("SELECT 1 FROM agents WHERE agent_id = $1", n.agent_id).empty()) {
        return NotFoundError("agent " + n.agent_id + " not found");
      }
      w.exec_params(
          "INSERT INTO commands (command_id, agent_id, kind, args, requested_by, state, created_at, updated_at, "
          "expires_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6, $7)",
          *id, n.agent_id, n.kind, ByteaText(n.args), n.requested_by, n.created_at_ns, n.expires_at_ns);
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return *id;
  }

  Result<CommandRecord> GetCommand(std::string_view command_id) override {
    CommandRecord out;
    Status s = Txn([&](pqxx::work& w) -> Status {
      Result<CommandRecord> c = GetCommandIn(w, command_id);
      if (!c.ok()) return c.status();
      out = std::move(*c);
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return out;
  }

  Result<std::vector<CommandRecord>> ListCommands(const CommandQuery& q) override {
    Result<uint32_t> limit = internal::EffectiveLimit(q.limit);
    if (!limit.ok()) return limit.status();
    BuiltQuery bq = internal::BuildCommandQuery(q, *limit, Dialect::kPostgres);
    std::vector<CommandRecord> out;
    Status s = Txn([&](pqxx::work& w) -> Status {
      out = ReadAll<CommandRecord>(ExecBuilt(w, bq), ReadCommand);
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return out;
  }

  Result<std::vector<CommandRecord>> PendingCommands(std::string_view agent_id, int64_t now_ns) override {
    std::vector<CommandRecord> out;
    Status s = Txn([&](pqxx::work& w) -> Status {
      out = ReadAll<CommandRecord>(
          w.exec_params(std::string("SELECT ") + internal::kCommandColumns +
                            " FROM commands WHERE agent_id = $1 AND state = 'pending' AND "
                            "(expires_at = 0 OR expires_at > $2) ORDER BY created_at, command_id",
                        std::string(agent_id), now_ns),
          ReadCommand);
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return out;
  }

  Status MarkCommandDelivered(std::string_view command_id, int64_t now_ns) override {
    return Txn([&](pqxx::work& w) -> Status {
      pqxx::result r = w.exec_params(
          "UPDATE commands SET state = 'delivered', updated_at = $2 WHERE command_id = $1 AND state = 'pending'",
          std::string(command_id), now_ns);
      if (r.affected_rows() > 0) return Status::Ok();
      return GetCommandIn(w, command_id).status();  // OK when it exists: idempotent
    });
  }

  Status CompleteCommand(std::string_view command_id, CommandState outcome, std::string_view result,
                         std::string_view error, int64_t now_ns) override {
    MAMORI_RETURN_IF_ERROR(internal::ValidateCommandOutcome(outcome));
    return Txn([&](pqxx::work& w) -> Status {
      pqxx::result r = w.exec_params(
          "UPDATE commands SET state = $2, result = $3, error = $4, updated_at = $5 WHERE command_id = $1 AND "
          "state NOT IN ('succeeded', 'failed', 'rejected')",
          std::string(command_id), std::string(CommandStateName(outcome)), ByteaText(result), std::string(error),
          now_ns);
      if (r.affected_rows() > 0) return Status::Ok();
      return GetCommandIn(w, command_id).status();  // first result wins
    });
  }

  Status CancelCommand(std::string_view command_id, int64_t now_ns) override {
    return Txn([&](pqxx::work& w) -> Status {
      pqxx::result r = w.exec_params(
          "UPDATE commands SET state = 'cancelled', updated_at = $2 WHERE command_id = $1 AND state = 'pending'",
          std::string(command_id), now_ns);
      if (r.affected_rows() > 0) return Status::Ok();
      Result<CommandRecord> cur = GetCommandIn(w, command_id);
      if (!cur.ok()) return cur.status();
      return FailedPreconditionError("command " + std::string(command_id) + " is " +
                                     std::string(CommandStateName(cur->state)) + "; only pending commands can be cancelled");
    });
  }

  Result<uint64_t> ExpireCommands(int64_t now_ns) override {
    uint64_t n = 0;
    Status s = Txn([&](pqxx::work& w) -> Status {
      pqxx::result r = w.exec_params(
          "UPDATE commands SET state = 'expired', updated_at = $1 WHERE state IN ('pending', 'delivered') AND "
          "expires_at > 0 AND expires_at <= $1",
          now_ns);
      n = static_cast<uint64_t>(r.affected_rows());
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return n;
  }

  // ---- audit ----

  Result<int64_t> AppendAudit(const AuditEntry& e) override {
    int64_t id = 0;
    Status s = Txn([&](pqxx::work& w) -> Status {
      id = w.exec_params1(
                "INSERT INTO audit_log (at, actor, action, target, details, result) VALUES ($1, $2, $3, $4, $5, $6) "
                "RETURNING id",
                e.at_ns, e.actor, e.action, e.target, e.details, e.result)[0]
               .as<int64_t>();
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return id;
  }

  Result<std::vector<AuditEntry>> ListAudit(const AuditQuery& q) override {
    Result<uint32_t> limit = internal::EffectiveLimit(q.limit);
    if (!limit.ok()) return limit.status();
    BuiltQuery bq = internal::BuildAuditQuery(q, *limit, Dialect::kPostgres);
    std::vector<AuditEntry> out;
    Status s = Txn([&](pqxx::work& w) -> Status {
      out = ReadAll<AuditEntry>(ExecBuilt(w, bq), ReadAudit);
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return out;
  }

  // ---- console users ----

  Result<NewUserToken> CreateUser(const UserSpec& spec) override {
    MAMORI_RETURN_IF_ERROR(internal::ValidateUserSpec(spec));
    Result<std::string> secret = internal::RandomHex(32);
    if (!secret.ok()) return secret.status();
    NewUserToken t{spec.name, std::string(internal::kUserTokenPrefix) + *secret};
    Status s = Txn([&](pqxx::work& w) -> Status {
      pqxx::result r = w.exec_params(
          "INSERT INTO users (name, role, token_sha256, created_at, created_by) VALUES ($1, $2, $3, $4, $5) "
          "ON CONFLICT (name) DO NOTHING",
          spec.name, spec.role, internal::Sha256Hex(t.secret), spec.created_at_ns, spec.created_by);
      if (r.affected_rows() == 0) return Status(StatusCode::kAlreadyExists, "user " + spec.name + " already exists");
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return t;
  }

  Result<UserRecord> AuthenticateUser(std::string_view secret, int64_t now_ns) override {
    const std::string hash = internal::Sha256Hex(secret);
    Result<UserRecord> out = Status(StatusCode::kUnauthenticated, "unknown API token");
    Status s = Txn([&](pqxx::work& w) -> Status {
      pqxx::result r = w.exec_params(std::string("UPDATE users SET last_used_at = $2 WHERE token_sha256 = $1 AND ") +
                                         "NOT disabled RETURNING " + internal::kUserColumns,
                                     hash, now_ns);
      if (!r.empty()) {
        out = ReadUser(r[0]);
        return Status::Ok();
      }
      pqxx::result why = w.exec_params("SELECT name FROM users WHERE token_sha256 = $1", hash);
      out = why.empty() ? Status(StatusCode::kUnauthenticated, "unknown API token")
                        : Status(StatusCode::kUnauthenticated, "user " + Str(why[0][0]) + " is disabled");
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return out;
  }

  Result<UserRecord> GetUser(std::string_view name) override {
    Result<UserRecord> out = NotFoundError("user " + std::string(name) + " not found");
    Status s = Txn([&](pqxx::work& w) -> Status {
      pqxx::result r = w.exec_params(std::string("SELECT ") + internal::kUserColumns + " FROM users WHERE name = $1",
                                     std::string(name));
      if (!r.empty()) out = ReadUser(r[0]);
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return out;
  }

  Result<std::vector<UserRecord>> ListUsers() override {
    std::vector<UserRecord> out;
    Status s = Txn([&](pqxx::work& w) -> Status {
      out = ReadAll<UserRecord>(w.exec(std::string("SELECT ") + internal::kUserColumns + " FROM users ORDER BY name"),
                                ReadUser);
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return out;
  }

  Status SetUserDisabled(std::string_view name, bool disabled) override {
    return Txn([&](pqxx::work& w) -> Status {
      pqxx::result r =
          w.exec_params("UPDATE users SET disabled = $2 WHERE name = $1", std::string(name), disabled);
      if (r.affected_rows() == 0) return NotFoundError("user " + std::string(name) + " not found");
      return Status::Ok();
    });
  }

 private:
  // Runs `body` in one transaction on a pooled connection, committing when it
  // returns OK. Retries serialization failures and deadlocks (the body must
  // be safe to run again: it only writes through the transaction).
  template <typename Body>
  Status Txn(Body&& body) {
    for (unsigned attempt = 1;; ++attempt) {
      Result<Pool::Lease> lease = pool_.Acquire();
      if (!lease.ok()) return lease.status();
      try {
        pqxx::work w(**lease);
        Status s = body(w);
        if (!s.ok()) return s;  // the transaction aborts
        w.commit();
        return Status::Ok();
      } catch (const pqxx::in_doubt_error& e) {
        lease->Discard();
        return UnavailableError(std::string("postgres: commit outcome unknown: ") + e.what());
      } catch (const pqxx::broken_connection& e) {
        lease->Discard();
        return UnavailableError(std::string("postgres: connection lost: ") + e.what());
      } catch (const pqxx::transaction_rollback& e) {
        if (attempt < options_.max_attempts) continue;
        return Status(StatusCode::kAborted, std::string("postgres: transaction rolled back: ") + e.what());
      } catch (const pqxx::unique_violation& e) {
        return Status(StatusCode::kAlreadyExists, std::string("postgres: ") + e.what());
      } catch (const pqxx::data_exception& e) {
        return InvalidArgumentError(std::string("postgres: ") + e.what());
      } catch (const pqxx::insufficient_resources& e) {
        return ResourceExhaustedError(std::string("postgres: ") + e.what());
      } catch (const pqxx::sql_error& e) {
        return InternalError("postgres: " + e.sqlstate() + ": " + e.what());
      } catch (const std::exception& e) {
        return InternalError(std::string("postgres: ") + e.what());
      }
    }
  }

  static Result<CommandRecord> GetCommandIn(pqxx::work& w, std::string_view command_id) {
    pqxx::result r = w.exec_params(
        std::string("SELECT ") + internal::kCommandColumns + " FROM commands WHERE command_id = $1",
        std::string(command_id));
    if (r.empty()) return NotFoundError("command " + std::string(command_id) + " not found");
    return ReadCommand(r[0]);
  }

  static void InsertEvents(pqxx::work& w, const std::string& agent, std::span<const EventRow* const> rows,
                           int64_t received_at_ns) {
    std::string sql =
        "INSERT INTO events (agent_id, seq, type, ts, received_at, pid, image, process_sha256, command_line, "
        "file_path, file_sha256, rule_id, severity, payload) VALUES ";
    TextParams p;
    size_t n = 0;
    for (const EventRow* row : rows) {
      const EventRow& e = *row;
      sql += n == 0 ? "(" : ", (";
      for (size_t c = 0; c < kEventColumnCount; ++c) {
        sql += (c == 0 ? "$" : ", $") + std::to_string(n * kEventColumnCount + c + 1);
      }
      sql += ")";
      ++n;
      p.Add(agent);
      p.Add(std::to_string(e.sequence));
      p.Add(e.type);
      p.Add(std::to_string(e.timestamp_ns));
      p.Add(std::to_string(received_at_ns));
      if (e.pid != 0) {
        p.Add(std::to_string(e.pid));
      } else {
        p.AddNull();
      }
      p.AddOrNull(e.image);
      p.AddOrNull(e.process_sha256);
      p.AddOrNull(e.command_line);
      p.AddOrNull(e.file_path);
      p.AddOrNull(e.file_sha256);
      p.AddOrNull(e.rule_id);
      p.Add(std::to_string(e.severity));
      p.Add(ByteaText(e.payload));
    }
    sql += " ON CONFLICT (agent_id, seq) DO NOTHING";
    const std::vector<const char*> ptrs = p.Pointers();
    w.exec_params(sql, pqxx::prepare::make_dynamic_params(ptrs));
  }

  // Continues the ack walk in the database (see SqliteStore::AdvanceAck).
  static uint64_t AdvanceAck(pqxx::work& w, const std::string& agent, uint64_t ack) {
    for (;;) {
      const auto next = static_cast<int64_t>(ack + 1);
      if (!w.exec_params("SELECT 1 FROM events WHERE agent_id = $1 AND seq = $2", agent, next).empty()) {
        ack = static_cast<uint64_t>(
            w.exec_params1("SELECT e.seq FROM events e WHERE e.agent_id = $1 AND e.seq >= $2 AND NOT EXISTS "
                           "(SELECT 1 FROM events n WHERE n.agent_id = $1 AND n.seq = e.seq + 1) ORDER BY e.seq LIMIT 1",
                           agent, next)[0]
                .as<int64_t>());
        continue;
      }
      pqxx::row lost = w.exec_params1(
          "SELECT max(last_seq) FROM sequence_losses WHERE agent_id = $1 AND first_seq <= $2 AND last_seq >= $2", agent,
          next);
      if (lost[0].is_null()) return ack;
      ack = static_cast<uint64_t>(lost[0].as<int64_t>());
    }
  }

  const PostgresStoreOptions options_;
  Pool pool_;
};

Result<std::unique_ptr<pqxx::connection>> Connect(const std::string& conninfo, const std::string& schema) {
  try {
    auto c = std::make_unique<pqxx::connection>(conninfo);
    // Kept by libpqxx and set again if it ever reconnects this connection.
    c->set_variable("search_path", schema);
    return c;
  } catch (const pqxx::broken_connection& e) {
    return UnavailableError(std::string("postgres: cannot connect: ") + e.what());
  } catch (const std::exception& e) {
    return InternalError(std::string("postgres: ") + e.what());
  }
}

}  // namespace

Result<std::unique_ptr<Store>> OpenPostgresStore(const PostgresStoreOptions& options) {
  if (!postgres::ValidSchemaName(options.schema)) {
    return InvalidArgumentError("postgres store: schema name '" + options.schema + "' is not [a-z_][a-z0-9_]{0,62}");
  }
  Result<std::unique_ptr<pqxx::connection>> first = Connect(options.conninfo, options.schema);
  if (!first.ok()) return first.status();
  try {
    MAMORI_RETURN_IF_ERROR(postgres::Migrate(**first, options.schema));
  } catch (const pqxx::broken_connection& e) {
    return UnavailableError(std::string("postgres: connection lost while migrating: ") + e.what());
  } catch (const pqxx::transaction_rollback& e) {
    return Status(StatusCode::kAborted, std::string("postgres: migration rolled back: ") + e.what());
  } catch (const pqxx::insufficient_privilege& e) {
    return PermissionDeniedError(std::string("postgres: migrating schema ") + options.schema + ": " + e.what());
  } catch (const std::exception& e) {
    return InternalError(std::string("postgres: migrating schema ") + options.schema + ": " + e.what());
  }
  const std::string conninfo = options.conninfo;
  const std::string schema = options.schema;
  auto store = std::make_unique<PostgresStore>(
      options, [conninfo, schema]() { return Connect(conninfo, schema); });
  store->AddConnection(std::move(*first));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace mamori::server

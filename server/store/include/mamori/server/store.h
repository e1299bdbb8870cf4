// Store: everything mamori-server keeps — inventory, enrollment tokens,
// events, commands, audit log. Two implementations pass one conformance
// suite (server/store/tests/conformance.h):
//   sqlite_store.h    embedded default, one file, WAL
//   postgres_store.h  shared by several server replicas
//
// Thread safety: a Store is thread-safe; every method may be called from any
// thread concurrently. Several Store objects (in one process or in several)
// may share one database: every operation that must be atomic is one
// database transaction, and ingest stays exactly-once across them.
//
// Errors (mamori::Status codes): kInvalidArgument (bad input, never retry),
// kNotFound, kAlreadyExists, kFailedPrecondition (state does not allow it,
// e.g. schema newer than this build), kPermissionDenied (revoked agent),
// kUnauthenticated (bad enrollment token), kUnavailable / kAborted (database
// busy, connection lost, serialization conflict: retrying may help),
// kDataLoss (corrupt database), kInternal. No exception leaves a Store.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mamori/common/status.h"
#include "mamori/server/store_records.h"

namespace mamori::server {

// Version of the schema this build writes. Opening a database whose
// schema_version is higher fails with kFailedPrecondition; a lower one is
// migrated forward in place (docs/server-store.md).
inline constexpr int kStoreSchemaVersion = 3;

class Store {
 public:
  virtual ~Store() = default;

  // "sqlite" or "postgres".
  virtual std::string_view backend() const = 0;

  // ---- agents ----

  // Inserts the agent, or updates its descriptive fields (hostname, os,
  // kernel, versions, sensor mode; cert_fingerprint when non-empty). An update
  // keeps enrolled_at, last_seen, revoked and the ack. REQUIRES: agent_id non-empty.
  virtual Status UpsertAgent(const AgentRecord& agent) = 0;
  virtual Result<AgentRecord> GetAgent(std::string_view agent_id) = 0;
  // last_seen = max(last_seen, seen_at_ns). kNotFound for an unknown agent.
  virtual Status TouchAgent(std::string_view agent_id, int64_t seen_at_ns) = 0;
  virtual Status SetAgentRevoked(std::string_view agent_id, bool revoked) = 0;
  // Certificate renewal, atomically: the agent presented `presented` (its
  // current or, after a renewal it did not store, its previous
  // certificate); `renewed` becomes current. Presenting the current one
  // moves it to previous; presenting the previous one replaces the current
  // (never used) one. kNotFound for an unknown agent; kPermissionDenied when
  // revoked; kUnauthenticated when `presented` is neither.
  virtual Status RenewAgentCertificate(std::string_view agent_id, std::string_view presented,
                                       std::string_view renewed) = 0;
  // `current` was used: the previous certificate is refused from now on. A
  // no-op when `current` is no longer the agent's current one (a renewal
  // came in between: its previous certificate must stay accepted).
  virtual Status ForgetPreviousCertificate(std::string_view agent_id, std::string_view current) = 0;
  // Ordered by hostname, then agent id.
  virtual Result<std::vector<AgentView>> ListAgents(const AgentQuery& query) = 0;

  // ---- enrollment tokens ----

  // Generates a random secret, stores only its SHA-256, returns the secret once.
  virtual Result<NewToken> CreateEnrollmentToken(const TokenSpec& spec) = 0;
  // Atomically checks and uses a token (one-time tokens: exactly one caller
  // wins, across replicas). kUnauthenticated when the secret is unknown,
  // expired (now >= expires_at), revoked or an already used one-time token.
  virtual Result<TokenRecord> ConsumeEnrollmentToken(std::string_view secret, int64_t now_ns) = 0;
  virtual Status RevokeEnrollmentToken(std::string_view token_id) = 0;
  // Ordered by creation time, then id.
  virtual Result<std::vector<TokenRecord>> ListEnrollmentTokens() = 0;

  // ---- events ----

  // Idempotent ingest, atomic (all of the batch or nothing; one transaction,
  // possibly shared with other agents' batches): stores each (agent_id, sequence)
  // of `events` at most once — repeated or overlapping batches are a no-op
  // for the part already stored (the first stored copy wins) — records `lost`
  // ranges, and returns the ack: the highest h such that every sequence 1..h
  // of this agent is stored or declared lost (0 if sequence 1 is missing).
  // Events above a gap are stored but not acknowledged until the gap fills.
  // The ack never decreases. `events` may be in any order and may repeat.
  // kNotFound: unknown agent; kPermissionDenied: revoked agent;
  // kInvalidArgument: sequence 0 or > INT64_MAX, bad range (nothing stored).
  virtual Result<uint64_t> AppendBatch(std::string_view agent_id, std::span<const EventRow> events,
                                       std::span<const LostRange> lost, int64_t received_at_ns) = 0;
  // The agent's current ack (what AppendBatch last returned, across replicas).
  virtual Result<uint64_t> AckedSequence(std::string_view agent_id) = 0;
  virtual Result<EventPage> QueryEvents(const EventQuery& query) = 0;

  // ---- commands ----

  // Stores a pending command; returns its new id (32 hex digits).
  // kNotFound: unknown agent.
  virtual Result<std::string> CreateCommand(const NewCommand& command) = 0;
  virtual Result<CommandRecord> GetCommand(std::string_view command_id) = 0;
  // Newest first.
  virtual Result<std::vector<CommandRecord>> ListCommands(const CommandQuery& query) = 0;
  // Pending commands of the agent not expired at now_ns, oldest first: what to
  // send when the agent connects.
  virtual Result<std::vector<CommandRecord>> PendingCommands(std::string_view agent_id, int64_t now_ns) = 0;
  // pending -> delivered (the agent's CommandAck). Idempotent: OK when already
  // delivered or terminal. kNotFound for an unknown id.
  virtual Status MarkCommandDelivered(std::string_view command_id, int64_t now_ns) = 0;
  // Records the agent's result. REQUIRES: outcome is kRunning, kSucceeded,
  // kFailed or kRejected. The first final result wins; a repeated result is
  // OK and a no-op. kRunning (progress, not final) replaces the state and
  // result unless a final result is in (then it is OK and a no-op).
  virtual Status CompleteCommand(std::string_view command_id, CommandState outcome, std::string_view result,
                                 std::string_view error, int64_t now_ns) = 0;
  // pending -> cancelled; kFailedPrecondition from any other state.
  virtual Status CancelCommand(std::string_view command_id, int64_t now_ns) = 0;
  // pending | delivered with 0 < expires_at <= now -> expired. Returns how many.
  virtual Result<uint64_t> ExpireCommands(int64_t now_ns) = 0;

  // ---- audit log (append-only) ----

  // Returns the new entry's id (ignores entry.id).
  virtual Result<int64_t> AppendAudit(const AuditEntry& entry) = 0;
  // Newest (highest id) first.
  virtual Result<std::vector<AuditEntry>> ListAudit(const AuditQuery& query) = 0;

  // ---- console users ----

  // Creates the user with a new random API token, returned once (only its
  // SHA-256 is stored). kInvalidArgument: bad name or role; kAlreadyExists.
  virtual Result<NewUserToken> CreateUser(const UserSpec& spec) = 0;
  // The enabled user whose token this is; records last_used_at.
  // kUnauthenticated when the token is unknown or the user disabled.
  virtual Result<UserRecord> AuthenticateUser(std::string_view secret, int64_t now_ns) = 0;
  virtual Result<UserRecord> GetUser(std::string_view name) = 0;
  // Ordered by name.
  virtual Result<std::vector<UserRecord>> ListUsers() = 0;
  // kNotFound for an unknown user.
  virtual Status SetUserDisabled(std::string_view name, bool disabled) = 0;
};

}  // namespace mamori::server

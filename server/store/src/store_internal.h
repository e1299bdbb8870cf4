// Shared by the SQLite and PostgreSQL stores: validation, secrets and ids,
// the ack walk over a batch, and the SQL text of queries whose shape depends
// on their filters. Internal to server/store.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "mamori/common/status.h"
#include "mamori/server/store_records.h"

namespace mamori::server::internal {

// ---- ids, secrets --------------------------------------------------------------

// `bytes` random bytes (OpenSSL RAND_bytes) as lowercase hex.
Result<std::string> RandomHex(size_t bytes);
// Lowercase hex SHA-256.
std::string Sha256Hex(std::string_view data);
inline constexpr std::string_view kTokenPrefix = "mmt_";
inline constexpr std::string_view kUserTokenPrefix = "mmu_";

// ---- validation ----------------------------------------------------------------

// The batch sorted by sequence with repeats dropped (the first copy wins),
// text columns cleaned as EventRowFromProto does. kInvalidArgument for a
// sequence out of [1, INT64_MAX] or a bad range.
struct PreparedBatch {
  // Point into the caller's rows, or into `cleaned` for rows that needed
  // cleaning (rare: rows from EventRowFromProto are clean). Valid while the
  // caller's rows are.
  std::vector<const EventRow*> events;
  std::deque<EventRow> cleaned;
  std::vector<LostRange> lost;
};
Result<PreparedBatch> PrepareBatch(std::span<const EventRow> events, std::span<const LostRange> lost);

// The ack after this batch, as far as the batch alone tells: starting from
// `acked`, walk over sequences that the batch (now stored) or its lost
// ranges cover. The store continues the walk in the database.
uint64_t AdvanceOverBatch(uint64_t acked, const PreparedBatch& batch);

Status ValidateAgentId(std::string_view agent_id);
// Why RenewAgentCertificate changed nothing, from whether the agent exists
// and is revoked (shared by both backends).
Status RenewRefusal(std::string_view agent_id, bool exists, bool revoked);
// 0 -> default; > kMaxEventLimit -> kInvalidArgument.
Result<uint32_t> EffectiveLimit(uint32_t limit);
Status ValidateCommandOutcome(CommandState s);
Status ValidateUserSpec(const UserSpec& spec);

// ---- SQL text ------------------------------------------------------------------

enum class Dialect { kSqlite, kPostgres };

using SqlValue = std::variant<std::monostate, int64_t, std::string>;

// Collects parameters and ANDed conditions; placeholders ?N (SQLite) or $N (PostgreSQL).
class SqlBuilder {
 public:
  explicit SqlBuilder(Dialect d) : dialect_(d) {}
  // Appends a parameter, returns its placeholder.
  std::string Param(SqlValue v);
  void Where(std::string condition) { conditions_.push_back(std::move(condition)); }
  // "" or " WHERE c1 AND c2 ...".
  std::string WhereClause() const;
  const std::vector<SqlValue>& params() const { return params_; }

 private:
  Dialect dialect_;
  std::vector<SqlValue> params_;
  std::vector<std::string> conditions_;
};

struct BuiltQuery {
  std::string sql;
  std::vector<SqlValue> params;
};

// Columns of every event query, in this order.
inline constexpr const char* kEventColumns =
    "agent_id, seq, type, ts, received_at, pid, image, process_sha256, command_line, file_path, file_sha256, "
    "rule_id, severity, payload";

// SELECT kEventColumns FROM events ... ORDER BY ... LIMIT limit+1 (one more
// row than asked tells whether there is a next page).
// REQUIRES: EffectiveLimit(q.limit) ok.
BuiltQuery BuildEventQuery(const EventQuery& q, uint32_t limit, Dialect d);
BuiltQuery BuildCommandQuery(const CommandQuery& q, uint32_t limit, Dialect d);
BuiltQuery BuildAuditQuery(const AuditQuery& q, uint32_t limit, Dialect d);
// Columns of command and audit queries, in this order.
inline constexpr const char* kCommandColumns =
    "command_id, agent_id, kind, args, requested_by, state, created_at, updated_at, expires_at, result, error";
inline constexpr const char* kAuditColumns = "id, at, actor, action, target, details, result";
inline constexpr const char* kUserColumns = "name, role, token_sha256, created_at, created_by, disabled, last_used_at";

// Fills EventPage::next from the limit+1 rows a BuildEventQuery returned.
void FinishPage(uint32_t limit, EventPage* page);

}  // namespace mamori::server::internal

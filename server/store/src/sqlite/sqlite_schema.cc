#include "sqlite_schema.h"

#include <iterator>

#include "mamori/server/store.h"

namespace mamori::server::sqlite {
namespace {

// kMigrations[i] takes the schema from version i to i + 1. Never edit a
// published migration: append a new one (docs/server-store.md).
constexpr const char* kMigrations[] = {
    // 0 -> 1: the initial schema.
    R"sql(
CREATE TABLE agents (
  agent_id TEXT PRIMARY KEY,
  hostname TEXT NOT NULL DEFAULT '',
  os TEXT NOT NULL DEFAULT '',
  kernel TEXT NOT NULL DEFAULT '',
  agent_version TEXT NOT NULL DEFAULT '',
  signature_version TEXT NOT NULL DEFAULT '',
  sensor_mode TEXT NOT NULL DEFAULT '',
  cert_fingerprint TEXT NOT NULL DEFAULT '',
  enrolled_at INTEGER NOT NULL,
  last_seen INTEGER NOT NULL DEFAULT 0,
  revoked INTEGER NOT NULL DEFAULT 0,
  acked_seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX agents_hostname ON agents (hostname, agent_id);
CREATE INDEX agents_last_seen ON agents (last_seen);

CREATE TABLE enrollment_tokens (
  token_id TEXT PRIMARY KEY,
  secret_sha256 TEXT NOT NULL UNIQUE,
  reusable INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  description TEXT NOT NULL,
  uses INTEGER NOT NULL DEFAULT 0,
  last_used_at INTEGER NOT NULL DEFAULT 0,
  revoked INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE events (
  agent_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  type TEXT NOT NULL,
  ts INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  pid INTEGER,
  image TEXT,
  process_sha256 TEXT,
  command_line TEXT,
  file_path TEXT,
  file_sha256 TEXT,
  rule_id TEXT,
  severity INTEGER NOT NULL DEFAULT 0,
  payload BLOB NOT NULL,
  PRIMARY KEY (agent_id, seq)
);
CREATE INDEX events_time ON events (ts, agent_id, seq);
CREATE INDEX events_agent_time ON events (agent_id, ts, seq);
CREATE INDEX events_type_time ON events (type, ts);
CREATE INDEX events_image ON events (image, ts) WHERE image IS NOT NULL;
CREATE INDEX events_process_sha256 ON events (process_sha256, ts) WHERE process_sha256 IS NOT NULL;
CREATE INDEX events_file_sha256 ON events (file_sha256, ts) WHERE file_sha256 IS NOT NULL;
CREATE INDEX events_rule ON events (rule_id, ts) WHERE rule_id IS NOT NULL;
CREATE VIEW findings AS SELECT * FROM events WHERE type IN ('scan_finding', 'onaccess_detection');
CREATE VIEW alerts AS SELECT * FROM events WHERE type = 'behavior_alert';

CREATE TABLE sequence_losses (
  agent_id TEXT NOT NULL,
  first_seq INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  reason TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (agent_id, first_seq, last_seq)
);

CREATE TABLE commands (
  command_id TEXT PRIMARY KEY,
  agent_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  args BLOB NOT NULL,
  requested_by TEXT NOT NULL,
  state TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  result BLOB,
  error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX commands_agent_state ON commands (agent_id, state, created_at);
CREATE INDEX commands_created ON commands (created_at, command_id);

CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  details TEXT NOT NULL
);
CREATE INDEX audit_actor ON audit_log (actor, id);
CREATE INDEX audit_action ON audit_log (action, id);
)sql",
    // 1 -> 2: console users (API tokens stored hashed); audit entries gain a
    // result; commands gain the 'running' state (a text value: no DDL).
    R"sql(
CREATE TABLE users (
  name TEXT PRIMARY KEY,
  role TEXT NOT NULL,
  token_sha256 TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0,
  last_used_at INTEGER NOT NULL DEFAULT 0
);
ALTER TABLE audit_log ADD COLUMN result TEXT NOT NULL DEFAULT '';
)sql",
    // 2 -> 3: certificate renewal keeps the replaced certificate until the
    // new one is first used.
    R"sql(
ALTER TABLE agents ADD COLUMN previous_cert_fingerprint TEXT NOT NULL DEFAULT '';
)sql",
};

static_assert(std::size(kMigrations) == kStoreSchemaVersion, "one SQLite migration per schema version");

Result<int> CurrentVersion(Connection& c, const std::string& path) {
  Result<Statement> has = c.Prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'");
  if (!has.ok()) return has.status();
  MAMORI_RETURN_IF_ERROR(has->Step());
  if (has->Int(0) == 0) {
    Result<Statement> any = c.Prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table'");
    if (!any.ok()) return any.status();
    MAMORI_RETURN_IF_ERROR(any->Step());
    if (any->Int(0) != 0) {
      return FailedPreconditionError(path + " holds tables but no schema_version: not a Mamori server store");
    }
    return 0;
  }
  Result<Statement> v = c.Prepare("SELECT max(version) FROM schema_version");
  if (!v.ok()) return v.status();
  MAMORI_RETURN_IF_ERROR(v->Step());
  return static_cast<int>(v->Int(0));
}

}  // namespace

int MigrationCount() { return static_cast<int>(std::size(kMigrations)); }

Status Migrate(Connection& c, const std::string& path) {
  Result<Transaction> txn = Transaction::Begin(c);
  if (!txn.ok()) return txn.status().WithContext("migrate " + path);
  Result<int> version = CurrentVersion(c, path);
  if (!version.ok()) return version.status();
  if (*version > kStoreSchemaVersion) {
    return FailedPreconditionError(path + " has store schema version " + std::to_string(*version) +
                                   ", newer than the " + std::to_string(kStoreSchemaVersion) +
                                   " this mamori-server supports; upgrade mamori-server (or restore a backup)");
  }
  if (*version == kStoreSchemaVersion) return Status::Ok();  // the transaction rolls back: nothing written
  if (*version == 0) MAMORI_RETURN_IF_ERROR(c.Exec("CREATE TABLE schema_version (version INTEGER NOT NULL)"));
  for (int v = *version; v < kStoreSchemaVersion; ++v) {
    MAMORI_RETURN_IF_ERROR(c.Exec(kMigrations[v]).WithContext("migration to schema " + std::to_string(v + 1)));
  }
  MAMORI_RETURN_IF_ERROR(c.Exec("DELETE FROM schema_version"));
  Result<Statement> set = c.Prepare("INSERT INTO schema_version (version) VALUES (?1)");
  if (!set.ok()) return set.status();
  set->BindInt(1, kStoreSchemaVersion);
  MAMORI_RETURN_IF_ERROR(set->Run());
  return txn->Commit();
}

}  // namespace mamori::server::sqlite

#include "postgres_schema.h"

#include <cstdint>
#include <iterator>

#include "mamori/server/store.h"

namespace mamori::server::postgres {
namespace {

// kMigrations[i] takes the schema from version i to i + 1. Never edit a
// published migration: append a new one (docs/server-store.md). Text
// columns that order results use the "C" collation so that both backends
// sort the same way whatever the database's locale.
constexpr const char* kMigrations[] = {
    // 0 -> 1: the initial schema.
    R"sql(
CREATE TABLE agents (
  agent_id TEXT COLLATE "C" PRIMARY KEY,
  hostname TEXT COLLATE "C" NOT NULL DEFAULT '',
  os TEXT NOT NULL DEFAULT '',
  kernel TEXT NOT NULL DEFAULT '',
  agent_version TEXT NOT NULL DEFAULT '',
  signature_version TEXT NOT NULL DEFAULT '',
  sensor_mode TEXT NOT NULL DEFAULT '',
  cert_fingerprint TEXT NOT NULL DEFAULT '',
  enrolled_at BIGINT NOT NULL,
  last_seen BIGINT NOT NULL DEFAULT 0,
  revoked BOOLEAN NOT NULL DEFAULT FALSE,
  acked_seq BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX agents_hostname ON agents (hostname, agent_id);
CREATE INDEX agents_last_seen ON agents (last_seen);

CREATE TABLE enrollment_tokens (
  token_id TEXT COLLATE "C" PRIMARY KEY,
  secret_sha256 TEXT NOT NULL UNIQUE,
  reusable BOOLEAN NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  created_by TEXT NOT NULL,
  description TEXT NOT NULL,
  uses BIGINT NOT NULL DEFAULT 0,
  last_used_at BIGINT NOT NULL DEFAULT 0,
  revoked BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE events (
  agent_id TEXT COLLATE "C" NOT NULL,
  seq BIGINT NOT NULL,
  type TEXT COLLATE "C" NOT NULL,
  ts BIGINT NOT NULL,
  received_at BIGINT NOT NULL,
  pid INTEGER,
  image TEXT COLLATE "C",
  process_sha256 TEXT COLLATE "C",
  command_line TEXT,
  file_path TEXT,
  file_sha256 TEXT COLLATE "C",
  rule_id TEXT COLLATE "C",
  severity INTEGER NOT NULL DEFAULT 0,
  payload BYTEA NOT NULL,
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
  agent_id TEXT COLLATE "C" NOT NULL,
  first_seq BIGINT NOT NULL,
  last_seq BIGINT NOT NULL,
  reason TEXT NOT NULL,
  received_at BIGINT NOT NULL,
  PRIMARY KEY (agent_id, first_seq, last_seq)
);

CREATE TABLE commands (
  command_id TEXT COLLATE "C" PRIMARY KEY,
  agent_id TEXT COLLATE "C" NOT NULL,
  kind TEXT NOT NULL,
  args BYTEA NOT NULL,
  requested_by TEXT NOT NULL,
  state TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  result BYTEA,
  error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX commands_agent_state ON commands (agent_id, state, created_at);
CREATE INDEX commands_created ON commands (created_at, command_id);

CREATE TABLE audit_log (
  id BIGSERIAL PRIMARY KEY,
  at BIGINT NOT NULL,
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
  name TEXT COLLATE "C" PRIMARY KEY,
  role TEXT NOT NULL,
  token_sha256 TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL,
  created_by TEXT NOT NULL,
  disabled BOOLEAN NOT NULL DEFAULT FALSE,
  last_used_at BIGINT NOT NULL DEFAULT 0
);
ALTER TABLE audit_log ADD COLUMN result TEXT NOT NULL DEFAULT '';
)sql",
    // 2 -> 3: certificate renewal keeps the replaced certificate until the
    // new one is first used.
    R"sql(
ALTER TABLE agents ADD COLUMN previous_cert_fingerprint TEXT NOT NULL DEFAULT '';
)sql",
};

static_assert(std::size(kMigrations) == kStoreSchemaVersion, "one PostgreSQL migration per schema version");

// FNV-1a: a stable advisory-lock key per schema.
int64_t LockKey(const std::string& schema) {
  uint64_t h = 1469598103934665603ull;
  for (char c : "mamori-store:" + schema) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return static_cast<int64_t>(h);
}

}  // namespace

bool ValidSchemaName(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

int MigrationCount() { return static_cast<int>(std::size(kMigrations)); }

Status Migrate(pqxx::connection& c, const std::string& schema) {
  pqxx::work w(c);
  w.exec_params("SELECT pg_advisory_xact_lock($1)", LockKey(schema));
  w.exec("CREATE SCHEMA IF NOT EXISTS " + schema);
  const bool has_version =
      w.exec_params1("SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'schema_version'", schema)[0]
          .as<int64_t>() > 0;
  int version = 0;
  if (has_version) {
    pqxx::row r = w.exec1("SELECT coalesce(max(version), 0) FROM " + schema + ".schema_version");
    version = r[0].as<int>();
  } else if (w.exec_params1("SELECT count(*) FROM pg_tables WHERE schemaname = $1", schema)[0].as<int64_t>() > 0) {
    return FailedPreconditionError("schema " + schema + " holds tables but no schema_version: not a Mamori server store");
  }
  if (version > kStoreSchemaVersion) {
    return FailedPreconditionError("schema " + schema + " has store schema version " + std::to_string(version) +
                                   ", newer than the " + std::to_string(kStoreSchemaVersion) +
                                   " this mamori-server supports; upgrade mamori-server (or restore a backup)");
  }
  if (version == kStoreSchemaVersion) return Status::Ok();  // w aborts: nothing written
  w.exec("SET LOCAL search_path TO " + schema);
  if (!has_version) w.exec("CREATE TABLE schema_version (version INTEGER NOT NULL)");
  for (int v = version; v < kStoreSchemaVersion; ++v) w.exec(kMigrations[v]);
  w.exec("DELETE FROM schema_version");
  w.exec_params("INSERT INTO schema_version (version) VALUES ($1)", kStoreSchemaVersion);
  w.commit();
  return Status::Ok();
}

}  // namespace mamori::server::postgres

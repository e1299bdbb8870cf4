// The shared Store: PostgreSQL (libpqxx), for several server replicas over
// one database. Ingest for one agent through two replicas at once stays
// exactly-once (primary key (agent_id, seq), INSERT ... ON CONFLICT DO NOTHING,
// the agent's row locked while its ack advances).
#pragma once

#include <memory>
#include <string>

#include "mamori/common/status.h"
#include "mamori/server/store.h"

namespace mamori::server {

struct PostgresStoreOptions {
  // libpq connection string, e.g. "host=127.0.0.1 port=55432 dbname=mamori user=mamori".
  std::string conninfo;
  // Schema holding Mamori's tables; created if missing. [a-z_][a-z0-9_]{0,62}.
  std::string schema = "mamori";
  // Connections kept open; callers beyond this wait for one.
  unsigned max_connections = 4;
  // Attempts of a transaction that failed on a serialization conflict or
  // deadlock before kAborted is returned.
  unsigned max_attempts = 3;
};

// Connects, creates or migrates the schema (one replica at a time, under an
// advisory lock). kFailedPrecondition when the schema is newer than
// kStoreSchemaVersion; kUnavailable when the server cannot be reached.
Result<std::unique_ptr<Store>> OpenPostgresStore(const PostgresStoreOptions& options);

}  // namespace mamori::server

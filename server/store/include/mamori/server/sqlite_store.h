// The embedded Store: one SQLite file in WAL mode. The default backend.
//
// Several SqliteStore objects (threads, processes) may open the same file:
// writers take the database lock up front (BEGIN IMMEDIATE) and wait up to
// busy_timeout for each other; readers never block writers.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "mamori/common/status.h"
#include "mamori/server/store.h"

namespace mamori::server {

struct SqliteStoreOptions {
  std::string path;  // database file; created (mode 0600) with its schema if missing
  // How long a writer waits for another writer before kUnavailable.
  std::chrono::milliseconds busy_timeout{10000};
  // Connections kept open; concurrent readers beyond this wait for one.
  unsigned max_connections = 4;
  // true: every commit is on disk before AppendBatch returns its ack
  // (synchronous=FULL). false: synchronous=NORMAL, faster; a power loss may
  // lose the last acknowledged batches (never corrupts).
  bool durable_commits = true;
};

// Opens (creating or migrating) the database. kFailedPrecondition when its
// schema is newer than kStoreSchemaVersion; kDataLoss when it is not a Mamori
// store or is corrupt.
Result<std::unique_ptr<Store>> OpenSqliteStore(const SqliteStoreOptions& options);

}  // namespace mamori::server

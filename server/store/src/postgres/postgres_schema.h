// Schema of the PostgreSQL store and its migrations. Internal.
#pragma once

#include <pqxx/pqxx>

#include <string>

#include "mamori/common/status.h"

namespace mamori::server::postgres {

// true for [a-z_][a-z0-9_]{0,62}: a schema name safe to splice into SQL.
bool ValidSchemaName(const std::string& schema);

// Creates `schema` if missing and brings it to kStoreSchemaVersion, in one
// transaction under an advisory lock keyed by the schema name, so that
// replicas starting together migrate once. kFailedPrecondition when the
// schema version is newer, or the schema holds tables but no schema_version.
// Throws pqxx exceptions (the caller converts them).
Status Migrate(pqxx::connection& c, const std::string& schema);

int MigrationCount();

}  // namespace mamori::server::postgres

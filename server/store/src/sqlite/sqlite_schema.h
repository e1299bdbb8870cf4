// Schema of the SQLite store and its migrations. Internal.
#pragma once

#include <string>

#include "mamori/common/status.h"
#include "sqlite_db.h"

namespace mamori::server::sqlite {

// Brings the database to kStoreSchemaVersion in one IMMEDIATE transaction
// (safe when several stores open the file at once). kFailedPrecondition when
// the database's schema is newer, or the file holds tables but no
// schema_version (not a Mamori store). `path` is for messages.
Status Migrate(Connection& c, const std::string& path);

// Number of migrations this build knows (== kStoreSchemaVersion).
int MigrationCount();

}  // namespace mamori::server::sqlite

// Store factories for the conformance suite (conformance.h):
// each gives a fresh, private database for one test case and can open any
// number of Store objects on it. Test-only raw access (setting the schema
// version, dumping a table) uses the database's own client library here, so
// that no test hook lives in the production code.
//
// PostgresFactory needs a server: MAMORI_TEST_PG holds a libpq connection
// string (scripts/start-postgres prints one). Unset: the case FAILS when the
// CI environment variable is set, and is skipped with a warning otherwise.
#pragma once

#include <memory>
#include <string>

#include "mamori/common/status.h"
#include "mamori/server/store.h"

namespace mamori::server::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class SqliteFactory {
 public:
  SqliteFactory();
  SqliteFactory(const SqliteFactory&) = delete;
  SqliteFactory& operator=(const SqliteFactory&) = delete;

  static constexpr const char* kName = "sqlite";
  bool Available() { return true; }
  // Another Store object on this case's database.
  Result<std::unique_ptr<Store>> Open();
  // Overwrites schema_version (as a newer mamori-server would have).
  Status SetSchemaVersion(int version);
  // Runs SQL on this case's database (turning it into an older schema).
  Status Exec(const std::string& sql);
  // Every value of every row of `table`, as text, concatenated.
  Result<std::string> DumpTable(const std::string& table);

  const std::string& path() const { return path_; }

 private:
  TempDir dir_;
  std::string path_;
};

class PostgresFactory {
 public:
  PostgresFactory();
  ~PostgresFactory();  // drops this case's schema
  PostgresFactory(const PostgresFactory&) = delete;
  PostgresFactory& operator=(const PostgresFactory&) = delete;

  static constexpr const char* kName = "postgres";
  // false (after a Catch WARN) when MAMORI_TEST_PG is unset outside CI;
  // FAILs the case when it is unset in CI.
  bool Available();
  Result<std::unique_ptr<Store>> Open();
  Status SetSchemaVersion(int version);
  // Runs SQL with this case's schema as the search path.
  Status Exec(const std::string& sql);
  Result<std::string> DumpTable(const std::string& table);

  const std::string& conninfo() const { return conninfo_; }
  const std::string& schema() const { return schema_; }

 private:
  std::string conninfo_;
  std::string schema_;  // unique per case: t_<random hex>
  bool opened_ = false;
};

// MAMORI_TEST_PG, or "" when unset.
std::string TestPostgresConninfo();

}  // namespace mamori::server::testing

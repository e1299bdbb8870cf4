// Behavior specific to one backend (files, connections); everything the
// Store interface promises is in the conformance suite (conformance.h).
#include <sqlite3.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <fstream>

#include "mamori/server/postgres_store.h"
#include "mamori/server/sqlite_store.h"
#include "store_factories.h"

namespace mamori::server {

TEST_CASE("sqlite: the database file is created private (0600)", "[sqlite]") {
  testing::TempDir dir;
  SqliteStoreOptions o;
  o.path = dir.path() + "/server.db";
  Result<std::unique_ptr<Store>> s = OpenSqliteStore(o);
  REQUIRE(s.ok());
  struct stat st {};
  REQUIRE(::stat(o.path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("sqlite: a file that is not a database is refused as data loss", "[sqlite]") {
  testing::TempDir dir;
  SqliteStoreOptions o;
  o.path = dir.path() + "/server.db";
  std::ofstream(o.path) << "this is not an SQLite database, just some text that is long enough to have a header";
  Result<std::unique_ptr<Store>> s = OpenSqliteStore(o);
  REQUIRE_FALSE(s.ok());
  CHECK(s.status().code() == StatusCode::kDataLoss);
}

TEST_CASE("sqlite: another application's database is refused", "[sqlite]") {
  testing::TempDir dir;
  SqliteStoreOptions o;
  o.path = dir.path() + "/other.db";
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(o.path.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "CREATE TABLE notes (body TEXT)", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  Result<std::unique_ptr<Store>> s = OpenSqliteStore(o);
  REQUIRE_FALSE(s.ok());
  CHECK(s.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(s.status().message(), Catch::Contains("not a Mamori server store"));
}

TEST_CASE("sqlite: a missing directory is a clear error", "[sqlite]") {
  SqliteStoreOptions o;
  o.path = "/nonexistent-mamori-dir/server.db";
  Result<std::unique_ptr<Store>> s = OpenSqliteStore(o);
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.status().message(), Catch::Contains("/nonexistent-mamori-dir/server.db"));
}

TEST_CASE("postgres: a bad schema name is refused before connecting", "[postgres]") {
  PostgresStoreOptions o;
  o.conninfo = "host=127.0.0.1 port=1";
  for (const char* bad : {"", "Public", "a-b", "1abc", "x; DROP TABLE y"}) {
    o.schema = bad;
    CHECK(OpenPostgresStore(o).status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("postgres: an unreachable server is unavailable (retry may help)", "[postgres]") {
  PostgresStoreOptions o;
  o.conninfo = "host=127.0.0.1 port=1 connect_timeout=2";
  Result<std::unique_ptr<Store>> s = OpenPostgresStore(o);
  REQUIRE_FALSE(s.ok());
  CHECK(s.status().code() == StatusCode::kUnavailable);
}

}  // namespace mamori::server

#include "store_factories.h"

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "mamori/server/postgres_store.h"
#include "mamori/server/sqlite_store.h"
#include "store_internal.h"

namespace mamori::server::testing {

std::string TestPostgresConninfo() {
  const char* v = std::getenv("MAMORI_TEST_PG");
  return v == nullptr ? std::string() : std::string(v);
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/mamori-store-test.XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) FAIL("mkdtemp " << tmpl << " failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

// ---- SQLite --------------------------------------------------------------------

namespace {

// Runs `sql` on a raw connection to `path`; rows (every column as text) appended to *out.
Status RawSqlite(const std::string& path, const std::string& sql, std::string* out) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_close(db);
    return InternalError("raw open " + path);
  }
  sqlite3_busy_timeout(db, 10000);
  auto callback = [](void* arg, int n, char** values, char**) -> int {
    auto* text = static_cast<std::string*>(arg);
    for (int i = 0; i < n; ++i) {
      if (text != nullptr && values[i] != nullptr) *text += std::string(values[i]) + "|";
    }
    return 0;
  };
  char* err = nullptr;
  rc = sqlite3_exec(db, sql.c_str(), callback, out, &err);
  std::string msg = err != nullptr ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  if (rc != SQLITE_OK) return InternalError("raw sql: " + msg);
  return Status::Ok();
}

}  // namespace

SqliteFactory::SqliteFactory() : path_(dir_.path() + "/server.db") {}

Result<std::unique_ptr<Store>> SqliteFactory::Open() {
  SqliteStoreOptions o;
  o.path = path_;
  return OpenSqliteStore(o);
}

Status SqliteFactory::SetSchemaVersion(int version) {
  return RawSqlite(path_, "UPDATE schema_version SET version = " + std::to_string(version), nullptr);
}

Status SqliteFactory::Exec(const std::string& sql) { return RawSqlite(path_, sql, nullptr); }

Result<std::string> SqliteFactory::DumpTable(const std::string& table) {
  std::string out;
  MAMORI_RETURN_IF_ERROR(RawSqlite(path_, "SELECT * FROM " + table, &out));
  return out;
}

// ---- PostgreSQL ----------------------------------------------------------------

PostgresFactory::PostgresFactory() : conninfo_(TestPostgresConninfo()) {
  Result<std::string> suffix = internal::RandomHex(6);
  schema_ = "t_" + (suffix.ok() ? *suffix : std::string("fallback"));
}

PostgresFactory::~PostgresFactory() {
  if (!opened_) return;
  try {
    pqxx::connection c(conninfo_);
    pqxx::work w(c);
    w.exec("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
    w.commit();
  } catch (const std::exception& e) {
    WARN("could not drop test schema " << schema_ << ": " << e.what());
  }
}

bool PostgresFactory::Available() {
  if (!conninfo_.empty()) return true;
  if (std::getenv("CI") != nullptr) {
    FAIL("MAMORI_TEST_PG is not set but CI is: the PostgreSQL conformance cases must run in CI. "
         "Start a server with scripts/start-postgres and export the connection string it prints.");
  }
  WARN("SKIPPED (PostgreSQL): MAMORI_TEST_PG is not set. Run `eval \"$(scripts/start-postgres --env)\"` to test "
       "the PostgreSQL store.");
  return false;
}

Result<std::unique_ptr<Store>> PostgresFactory::Open() {
  opened_ = true;
  PostgresStoreOptions o;
  o.conninfo = conninfo_;
  o.schema = schema_;
  return OpenPostgresStore(o);
}

Status PostgresFactory::SetSchemaVersion(int version) {
  try {
    pqxx::connection c(conninfo_);
    pqxx::work w(c);
    w.exec("UPDATE " + schema_ + ".schema_version SET version = " + std::to_string(version));
    w.commit();
    return Status::Ok();
  } catch (const std::exception& e) {
    return InternalError(e.what());
  }
}

Status PostgresFactory::Exec(const std::string& sql) {
  try {
    pqxx::connection c(conninfo_);
    pqxx::work w(c);
    w.exec("SET LOCAL search_path TO " + schema_);
    w.exec(sql);
    w.commit();
    return Status::Ok();
  } catch (const std::exception& e) {
    return InternalError(e.what());
  }
}

Result<std::string> PostgresFactory::DumpTable(const std::string& table) {
  try {
    pqxx::connection c(conninfo_);
    pqxx::work w(c);
    std::string out;
    for (const pqxx::row& r : w.exec("SELECT * FROM " + schema_ + "." + table)) {
      for (const pqxx::field& f : r) {
        if (!f.is_null()) out += std::string(f.c_str()) + "|";
      }
    }
    return out;
  } catch (const std::exception& e) {
    return InternalError(e.what());
  }
}

}  // namespace mamori::server::testing

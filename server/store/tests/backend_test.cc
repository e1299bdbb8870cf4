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

namespace {

int64_t PageSize(const std::string& path) {
  sqlite3* db = nullptr;
  int64_t size = -1;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
      size = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return size;
}

EventRow ExecRow(uint64_t seq) {
  EventRow r;
  r.sequence = seq;
  r.type = "exec";
  r.timestamp_ns = 1'700'000'000'000'000'000 + static_cast<int64_t>(seq);
  r.image = "/usr/bin/true";
  r.payload = "payload " + std::to_string(seq);
  return r;
}

}  // namespace

TEST_CASE("sqlite: a new database gets 16 KiB pages", "[sqlite]") {
  testing::TempDir dir;
  SqliteStoreOptions o;
  o.path = dir.path() + "/server.db";
  REQUIRE(OpenSqliteStore(o).ok());
  CHECK(PageSize(o.path) == 16384);
}

TEST_CASE("sqlite: an existing database keeps its page size and its events", "[sqlite]") {
  testing::TempDir dir;
  SqliteStoreOptions o;
  o.path = dir.path() + "/server.db";
  {  // a database made with 4 KiB pages, as before 16 KiB became the default
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(o.path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "PRAGMA page_size=4096; PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  AgentRecord agent;
  agent.agent_id = "agent-1";
  agent.enrolled_at_ns = 1;
  const std::vector<EventRow> rows = {ExecRow(1), ExecRow(2), ExecRow(3)};
  {
    Result<std::unique_ptr<Store>> s = OpenSqliteStore(o);
    REQUIRE(s.ok());
    REQUIRE((*s)->UpsertAgent(agent).ok());
    Result<uint64_t> ack = (*s)->AppendBatch("agent-1", rows, {}, 5);
    REQUIRE(ack.ok());
    CHECK(*ack == 3);
  }
  CHECK(PageSize(o.path) == 4096);
  Result<std::unique_ptr<Store>> s = OpenSqliteStore(o);
  REQUIRE(s.ok());
  EventQuery q;
  q.agent_id = "agent-1";
  q.oldest_first = true;
  Result<EventPage> page = (*s)->QueryEvents(q);
  REQUIRE(page.ok());
  REQUIRE(page->events.size() == 3);
  CHECK(page->events[2].row.payload == "payload 3");
  CHECK(PageSize(o.path) == 4096);
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

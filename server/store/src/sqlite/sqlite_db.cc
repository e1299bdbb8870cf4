#include "sqlite_db.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>

namespace mamori::server::sqlite {

Status SqliteStatus(sqlite3* db, int rc, std::string_view what) {
  std::string msg = std::string(what) + ": " + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xFF) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return UnavailableError(msg + " (database busy; retry)");
    case SQLITE_CONSTRAINT:
      return Status(StatusCode::kAlreadyExists, msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return DataLossError(msg);
    case SQLITE_FULL:
      return ResourceExhaustedError(msg);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return FailedPreconditionError(msg);
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
      return InvalidArgumentError(msg);
    default:
      return InternalError(msg);
  }
}

Statement::~Statement() {
  if (stmt_ != nullptr && owned_) {
    sqlite3_finalize(stmt_);
  } else if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

void Statement::BindInt(int index, int64_t v) { sqlite3_bind_int64(stmt_, index, v); }
void Statement::BindText(int index, std::string_view v) {
  sqlite3_bind_text64(stmt_, index, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}
void Statement::BindTextOrNull(int index, std::string_view v) {
  if (v.empty()) {
    sqlite3_bind_null(stmt_, index);
  } else {
    BindText(index, v);
  }
}
void Statement::BindBlob(int index, std::string_view v) {
  // A zero-length blob, not NULL: the column may be NOT NULL.
  sqlite3_bind_blob64(stmt_, index, v.empty() ? "" : v.data(), v.size(), SQLITE_TRANSIENT);
}
void Statement::BindNull(int index) { sqlite3_bind_null(stmt_, index); }
void Statement::BindTextNoCopy(int index, std::string_view v) {
  sqlite3_bind_text64(stmt_, index, v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8);
}
void Statement::BindTextOrNullNoCopy(int index, std::string_view v) {
  if (v.empty()) {
    sqlite3_bind_null(stmt_, index);
  } else {
    BindTextNoCopy(index, v);
  }
}
void Statement::BindBlobNoCopy(int index, std::string_view v) {
  sqlite3_bind_blob64(stmt_, index, v.empty() ? "" : v.data(), v.size(), SQLITE_STATIC);
}

Result<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteStatus(db_, rc, "sqlite step");
}

Status Statement::Run() {
  for (;;) {
    Result<bool> r = Step();
    if (!r.ok()) {
      sqlite3_reset(stmt_);
      return r.status();
    }
    if (!*r) {
      sqlite3_reset(stmt_);
      return Status::Ok();
    }
  }
}

bool Statement::IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
int64_t Statement::Int(int col) const { return sqlite3_column_int64(stmt_, col); }
std::string Statement::Text(int col) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  return p == nullptr ? std::string() : std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}
std::string Statement::Blob(int col) const {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
  return p == nullptr ? std::string() : std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& path, const Options& options) {
  // Create the file ourselves so that it is 0600 (SQLite would use 0644).
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError(errno, "open " + path);
  ::close(fd);
  // No memory statistics: with them every sqlite3_malloc/free takes a
  // process-wide mutex (a few % of the ingest CPU in perf). Possible only
  // before SQLite initializes; if something else initialized it first, the
  // call fails harmlessly and the statistics stay on.
  static std::once_flag memstatus_off;
  std::call_once(memstatus_off, [] { (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status s = SqliteStatus(db, rc, "open " + path);
    sqlite3_close(db);
    return s;
  }
  std::unique_ptr<Connection> c(new Connection(db));
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, static_cast<int>(options.busy_timeout.count()));
  // 16 KiB pages for a new database (a no-op on an existing one, which keeps
  // its page size): fewer, fuller B-tree pages per stored event; in the
  // telemetry benchmark ~20 % less server CPU per event than 4 KiB
  // (docs/server-store.md, "Backend options"). Before journal_mode=WAL, which
  // writes the header.
  MAMORI_RETURN_IF_ERROR(c->Exec("PRAGMA page_size=16384").WithContext(path));
  // journal_mode=WAL is persistent in the file; asking again is cheap. It
  // fails with SQLITE_NOTADB on a file that is not a database.
  Result<Statement> wal = c->Prepare("PRAGMA journal_mode=WAL");
  if (!wal.ok()) return wal.status().WithContext(path);
  Result<bool> row = wal->Step();
  if (!row.ok()) return row.status().WithContext(path);
  if (!*row || wal->Text(0) != "wal") return FailedPreconditionError(path + ": cannot switch to WAL journal mode");
  MAMORI_RETURN_IF_ERROR(c->Exec(options.durable_commits ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
  MAMORI_RETURN_IF_ERROR(c->Exec("PRAGMA foreign_keys=OFF; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-32000"));
  return c;
}

Connection::~Connection() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

Status Connection::Exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    Status s = SqliteStatus(db_, rc, err != nullptr ? err : sql);
    sqlite3_free(err);
    return s;
  }
  return Status::Ok();
}

Result<Statement> Connection::Prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt,
                                nullptr);
    if (rc != SQLITE_OK) return SqliteStatus(db_, rc, "prepare");
    it = cache_.emplace(sql, stmt).first;
  }
  return Statement(db_, it->second, false);
}

Result<Statement> Connection::PrepareUncached(const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(db_, rc, "prepare");
  return Statement(db_, stmt, true);
}

int64_t Connection::Changes() const { return sqlite3_changes64(db_); }

Result<Transaction> Transaction::Begin(Connection& c) {
  MAMORI_RETURN_IF_ERROR(c.Exec("BEGIN IMMEDIATE"));
  return Transaction(&c);
}

Transaction::~Transaction() {
  if (c_ != nullptr) (void)c_->Exec("ROLLBACK");
}

Status Transaction::Commit() {
  Status s = c_->Exec("COMMIT");
  if (s.ok()) c_ = nullptr;  // else: the destructor rolls back
  return s;
}

}  // namespace mamori::server::sqlite

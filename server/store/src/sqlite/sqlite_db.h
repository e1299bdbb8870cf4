// Thin RAII over the SQLite C API for the SQLite store: a connection with a
// statement cache, statements that reset themselves, an IMMEDIATE
// transaction, and SQLite result codes mapped to Status. Internal.
//
// Thread safety: none; a Connection (and its statements) is used by one
// thread at a time (the store's pool guarantees it).
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "mamori/common/status.h"

namespace mamori::server::sqlite {

// Maps an SQLite result code to a Status: BUSY/LOCKED -> kUnavailable,
// CONSTRAINT -> kAlreadyExists, CORRUPT/NOTADB -> kDataLoss, FULL ->
// kResourceExhausted, CANTOPEN/PERM/READONLY -> kFailedPrecondition, else kInternal.
Status SqliteStatus(sqlite3* db, int rc, std::string_view what);

// A cached prepared statement, borrowed: reset and unbound on destruction.
class Statement {
 public:
  // owned: finalized on destruction (PrepareUncached); else reset for reuse.
  Statement(sqlite3* db, sqlite3_stmt* stmt, bool owned) : db_(db), stmt_(stmt), owned_(owned) {}
  Statement(Statement&& o) noexcept : db_(o.db_), stmt_(std::exchange(o.stmt_, nullptr)), owned_(o.owned_) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&&) = delete;
  ~Statement();

  // Parameter indexes are the N of ?N, from 1.
  void BindInt(int index, int64_t v);
  void BindText(int index, std::string_view v);
  void BindTextOrNull(int index, std::string_view v);  // empty -> NULL
  void BindBlob(int index, std::string_view v);
  void BindNull(int index);
  // Unlike the above, these do not copy: `v` must stay valid and unchanged
  // until the parameter is bound again or the Statement is destroyed (the
  // hot ingest path binds its rows this way, ~6 fewer copies per event).
  void BindTextNoCopy(int index, std::string_view v);
  void BindTextOrNullNoCopy(int index, std::string_view v);  // empty -> NULL
  void BindBlobNoCopy(int index, std::string_view v);

  // true: a row is available; false: done. Errors map through SqliteStatus.
  Result<bool> Step();
  // Runs to completion, ignoring rows, then resets (bindings kept) so the
  // statement can be bound and run again.
  Status Run();

  bool IsNull(int col) const;
  int64_t Int(int col) const;
  std::string Text(int col) const;  // "" for NULL
  std::string Blob(int col) const;  // "" for NULL

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  bool owned_;
};

class Connection {
 public:
  struct Options {
    std::chrono::milliseconds busy_timeout{10000};
    bool durable_commits = true;
  };
  // Opens (creating) the file and applies the per-connection pragmas; the
  // first connection also switches the file to WAL.
  static Result<std::unique_ptr<Connection>> Open(const std::string& path, const Options& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one or more statements without parameters or rows.
  Status Exec(const char* sql);
  // Prepares (once per distinct text) and borrows the statement.
  Result<Statement> Prepare(const std::string& sql);
  // For statements whose text varies with their filters: not cached.
  Result<Statement> PrepareUncached(const std::string& sql);
  // Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t Changes() const;

  sqlite3* db() { return db_; }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

// BEGIN IMMEDIATE (waits for other writers up to the busy timeout);
// rolled back on destruction unless committed.
class Transaction {
 public:
  static Result<Transaction> Begin(Connection& c);
  Transaction(Transaction&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  Status Commit();

 private:
  explicit Transaction(Connection* c) : c_(c) {}
  Connection* c_;
};

}  // namespace mamori::server::sqlite

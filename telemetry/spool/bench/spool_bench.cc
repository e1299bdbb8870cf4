// mamori_spool_bench: how fast does the spool take and give back records?
//
//   mamori_spool_bench [--records N] [--size BYTES] [--threads T] [--batch B]
//                      [--sync-ms MS] [--dir DIR] [--backend spool|sqlite|all]
//
// Phases (each on a fresh spool under DIR, default a temporary folder):
//   append      T threads append N records of ~BYTES (group commit every MS)
//   read+ack    one thread reads batches of B and acknowledges each, until
//               all N are out; ends with the commit that deletes segments
//   concurrent  T appenders and the reader at the same time (the pipeline)
// With libsqlite3 at build time, --backend sqlite|all runs the same append and
// read+ack workload on SQLite in WAL mode with synchronous=NORMAL (each
// append its own transaction: like Spool::Append it returns once the record
// is in the page cache, kill -9 safe), and once more with 1000 appends per
// transaction for reference. Not a test: prints figures only.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mamori/telemetry/spool.h"

#ifdef MAMORI_SPOOL_BENCH_SQLITE
#include <sqlite3.h>
#endif

namespace {

using mamori::telemetry::Priority;
using mamori::telemetry::Spool;
using mamori::telemetry::SpoolOptions;
using Clock = std::chrono::steady_clock;

struct Args {
  uint64_t records = 1000000;
  size_t size = 300;
  unsigned threads = 2;
  size_t batch = 5000;
  int sync_ms = 50;
  std::string dir;
  std::string backend = "spool";
};

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

void Report(const char* backend, const char* phase, const Args& a, double secs, const std::string& extra = "") {
  double mb = static_cast<double>(a.records) * static_cast<double>(a.size) / 1e6;
  std::printf("%-22s %-11s %8llu x %zu B: %6.2f s  %10.0f records/s  %7.1f MB/s%s\n", backend, phase,
              static_cast<unsigned long long>(a.records), a.size, secs, static_cast<double>(a.records) / secs,
              mb / secs, extra.c_str());
  std::fflush(stdout);
}

// Payloads vary a little in content and length (size +- 10%) like real events.
std::string MakePayload(uint64_t key, size_t size) {
  size_t n = size - size / 10 + static_cast<size_t>(key % (size / 5 + 1));
  std::string p(n, 'e');
  for (size_t i = 0; i + 8 <= n; i += 64) std::memcpy(&p[i], &key, 8);
  return p;
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) total += e.is_regular_file() ? e.file_size() : 0;
  return total;
}

std::unique_ptr<Spool> OpenSpool(const Args& a, const std::string& dir) {
  std::filesystem::remove_all(dir);
  SpoolOptions o;
  o.dir = dir;
  o.max_bytes = uint64_t{8} << 30;  // nothing is dropped in the bench
  o.sync_interval = std::chrono::milliseconds(a.sync_ms);
  auto s = Spool::Open(o);
  if (!s.ok()) {
    std::fprintf(stderr, "open: %s\n", s.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*s);
}

void AppendAll(Spool& spool, const Args& a) {
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < a.threads; ++t) {
    threads.emplace_back([&, t] {
      uint64_t per = a.records / a.threads + (t < a.records % a.threads ? 1 : 0);
      for (uint64_t i = 0; i < per; ++i) {
        uint64_t key = uint64_t{t} << 40 | i;
        auto r = spool.Append(static_cast<Priority>(i % 3 == 0 ? 1 : 0), MakePayload(key, a.size));
        if (!r.ok() || *r == Spool::kDropped) {
          std::fprintf(stderr, "append: %s\n", r.status().ToString().c_str());
          std::exit(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
}

// Reads and acknowledges until `total` records came out.
uint64_t ReadAckAll(Spool& spool, const Args& a, uint64_t total) {
  uint64_t got = 0, batches = 0;
  while (got < total) {
    auto b = spool.ReadBatch(a.batch, 4 << 20, std::chrono::milliseconds(200));
    if (!b.ok()) {
      std::fprintf(stderr, "read: %s\n", b.status().ToString().c_str());
      std::exit(1);
    }
    if (b->empty()) continue;
    got += b->size();
    ++batches;
    if (auto s = spool.Ack(b->last_sequence()); !s.ok()) {
      std::fprintf(stderr, "ack: %s\n", s.ToString().c_str());
      std::exit(1);
    }
  }
  return batches;
}

void BenchSpool(const Args& a, const std::string& root) {
  const std::string dir = root + "/spool";
  {
    auto spool = OpenSpool(a, dir);
    auto t0 = Clock::now();
    AppendAll(*spool, a);
    auto t1 = Clock::now();
    if (auto s = spool->Sync(); !s.ok()) std::fprintf(stderr, "sync: %s\n", s.ToString().c_str());
    auto t2 = Clock::now();
    auto st = spool->GetStats();
    char extra[160];
    std::snprintf(extra, sizeof extra, "  (+%.0f ms to commit the tail; %llu commits; %.0f MB on disk)",
                  Seconds(t1, t2) * 1e3, static_cast<unsigned long long>(st.commits), DirBytes(dir) / 1e6);
    Report("spool", "append", a, Seconds(t0, t1), extra);

    t0 = Clock::now();
    uint64_t batches = ReadAckAll(*spool, a, a.records);
    if (auto s = spool->Sync(); !s.ok()) std::fprintf(stderr, "sync: %s\n", s.ToString().c_str());
    t1 = Clock::now();
    std::snprintf(extra, sizeof extra, "  (%llu batches; %.1f MB left on disk)",
                  static_cast<unsigned long long>(batches), DirBytes(dir) / 1e6);
    Report("spool", "read+ack", a, Seconds(t0, t1), extra);
  }
  {
    auto spool = OpenSpool(a, dir);
    auto t0 = Clock::now();
    std::thread producers([&] { AppendAll(*spool, a); });
    ReadAckAll(*spool, a, a.records);
    producers.join();
    auto t1 = Clock::now();
    Report("spool", "concurrent", a, Seconds(t0, t1), "  (appenders + reader/acker at once)");
  }
  std::filesystem::remove_all(dir);
}

#ifdef MAMORI_SPOOL_BENCH_SQLITE
void Check(int rc, sqlite3* db, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    std::fprintf(stderr, "sqlite %s: %s\n", what, sqlite3_errmsg(db));
    std::exit(1);
  }
}

void Exec(sqlite3* db, const char* sql) { Check(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), db, sql); }

void BenchSqlite(const Args& a, const std::string& root, int per_txn) {
  const std::string path = root + "/spool.db";
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  sqlite3* db = nullptr;
  Check(sqlite3_open(path.c_str(), &db), db, "open");
  Exec(db, "PRAGMA journal_mode=WAL");
  Exec(db, "PRAGMA synchronous=NORMAL");
  Exec(db, "CREATE TABLE spool(seq INTEGER PRIMARY KEY, priority INTEGER NOT NULL, payload BLOB NOT NULL)");
  sqlite3_stmt* insert = nullptr;
  Check(sqlite3_prepare_v2(db, "INSERT INTO spool(priority, payload) VALUES(?, ?)", -1, &insert, nullptr), db,
        "prepare");
  std::mutex mu;  // one writer at a time, as SQLite would anyway
  int in_txn = 0;
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < a.threads; ++t) {
    threads.emplace_back([&, t] {
      uint64_t per = a.records / a.threads + (t < a.records % a.threads ? 1 : 0);
      for (uint64_t i = 0; i < per; ++i) {
        std::string payload = MakePayload(uint64_t{t} << 40 | i, a.size);
        std::lock_guard lk(mu);
        if (per_txn > 1 && in_txn == 0) Exec(db, "BEGIN");
        sqlite3_bind_int(insert, 1, i % 3 == 0 ? 1 : 0);
        sqlite3_bind_blob(insert, 2, payload.data(), static_cast<int>(payload.size()), SQLITE_TRANSIENT);
        Check(sqlite3_step(insert), db, "insert");
        sqlite3_reset(insert);
        if (per_txn > 1 && ++in_txn == per_txn) {
          Exec(db, "COMMIT");
          in_txn = 0;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  if (in_txn > 0) Exec(db, "COMMIT");
  auto t1 = Clock::now();
  const std::string name = per_txn > 1 ? "sqlite-wal (1000/txn)" : "sqlite-wal";
  char extra[128];
  std::snprintf(extra, sizeof extra, "  (%.0f MB on disk)", DirBytes(root) / 1e6);
  Report(name.c_str(), "append", a, Seconds(t0, t1), extra);

  sqlite3_stmt* select = nullptr;
  sqlite3_stmt* del = nullptr;
  Check(sqlite3_prepare_v2(db, "SELECT seq, priority, payload FROM spool WHERE seq > ? ORDER BY seq LIMIT ?", -1,
                           &select, nullptr),
        db, "prepare");
  Check(sqlite3_prepare_v2(db, "DELETE FROM spool WHERE seq <= ?", -1, &del, nullptr), db, "prepare");
  t0 = Clock::now();
  int64_t cursor = 0;
  uint64_t got = 0;
  std::vector<std::string> batch;
  while (got < a.records) {
    batch.clear();
    sqlite3_bind_int64(select, 1, cursor);
    sqlite3_bind_int64(select, 2, static_cast<int64_t>(a.batch));
    int rc;
    while ((rc = sqlite3_step(select)) == SQLITE_ROW) {
      cursor = sqlite3_column_int64(select, 0);
      const void* blob = sqlite3_column_blob(select, 2);
      batch.emplace_back(static_cast<const char*>(blob), static_cast<size_t>(sqlite3_column_bytes(select, 2)));
    }
    Check(rc, db, "select");
    sqlite3_reset(select);
    got += batch.size();
    sqlite3_bind_int64(del, 1, cursor);  // the ack
    Check(sqlite3_step(del), db, "delete");
    sqlite3_reset(del);
  }
  Exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  t1 = Clock::now();
  Report(name.c_str(), "read+ack", a, Seconds(t0, t1));
  sqlite3_finalize(insert);
  sqlite3_finalize(select);
  sqlite3_finalize(del);
  sqlite3_close(db);
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", k.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (k == "--records")
      a.records = std::stoull(next());
    else if (k == "--size")
      a.size = std::stoul(next());
    else if (k == "--threads")
      a.threads = static_cast<unsigned>(std::stoul(next()));
    else if (k == "--batch")
      a.batch = std::stoul(next());
    else if (k == "--sync-ms")
      a.sync_ms = std::stoi(next());
    else if (k == "--dir")
      a.dir = next();
    else if (k == "--backend")
      a.backend = next();
    else {
      std::fprintf(stderr,
                   "usage: %s [--records N] [--size BYTES] [--threads T] [--batch B] [--sync-ms MS] [--dir DIR] "
                   "[--backend spool|sqlite|all]\n",
                   argv[0]);
      return 2;
    }
  }
  if (a.threads == 0 || a.size < 10 || a.records == 0) return 2;
  bool temp = a.dir.empty();
  if (temp) {
    char tmpl[] = "/tmp/mamori-spool-bench-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return 1;
    a.dir = tmpl;
  }
  std::filesystem::create_directories(a.dir);
  if (a.backend == "spool" || a.backend == "all") BenchSpool(a, a.dir);
#ifdef MAMORI_SPOOL_BENCH_SQLITE
  if (a.backend == "sqlite" || a.backend == "all") {
    BenchSqlite(a, a.dir, 1);
    BenchSqlite(a, a.dir, 1000);
  }
#else
  if (a.backend != "spool") std::fprintf(stderr, "built without libsqlite3: no sqlite backend\n");
#endif
  if (temp) std::filesystem::remove_all(a.dir);
  return 0;
}

// mamori_store_bench: how fast can each Store backend ingest? Inserts N
// events (exec events with realistic image, argv and hash, built through
// EventRowFromProto beforehand) in batches of B, one AppendBatch per batch as
// the server does, then sends every batch again (the duplicate path after an
// agent reconnects). Prints events/s per backend and phase.
//
//   mamori_store_bench [--events N] [--batch B] [--agents K] [--backend sqlite|postgres|all]
//                      [--sqlite-path FILE] [--sqlite-fast] [--postgres CONNINFO] [--unique-hashes PCT]
//                      [--sequential]
//
// Each agent's batches are sent in order by its own thread (a server has one
// stream per agent); --sequential sends them round-robin from one thread.
// --unique-hashes: the share of events (percent, default 2) whose image hash
// was never seen before; the rest reuse one hash per image, as real hosts do.
// 100 is the worst case for the hash index (every insert lands on its own page).
//
// PostgreSQL runs when --postgres or MAMORI_TEST_PG gives a connection string;
// it works in a throwaway schema (bench_<random>) that it drops at the end.
#include <pqxx/pqxx>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "mamori/server/event_row.h"
#include "mamori/server/postgres_store.h"
#include "mamori/server/sqlite_store.h"

namespace {

using mamori::server::EventRow;
using mamori::server::Store;

struct Options {
  uint64_t events = 200000;
  uint64_t batch = 500;
  unsigned agents = 4;
  std::string backend = "all";
  std::string sqlite_path;
  bool sqlite_fast = false;
  std::string postgres;
  unsigned unique_hash_percent = 2;  // events whose image hash is new (the rest: one hash per image)
  bool sequential = false;           // one thread round-robin over agents, instead of one thread per agent
};

std::string Hex(std::mt19937_64& rng, size_t digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < digits; ++i) s += kHex[rng() & 15];
  return s;
}

// batches[agent][i]: the i-th batch of that agent's events.
std::vector<std::vector<std::vector<EventRow>>> MakeBatches(const Options& o) {
  std::mt19937_64 rng(42);
  // A host runs the same few binaries over and over: one hash per image,
  // plus a small share of never-seen hashes (downloads, builds).
  const char* images[] = {"/usr/bin/bash", "/usr/bin/curl", "/usr/lib/systemd/systemd-journald", "/usr/bin/python3.11",
                          "/opt/app/bin/worker"};
  std::vector<std::string> image_hashes;
  for (size_t i = 0; i < 5; ++i) image_hashes.push_back(Hex(rng, 64));
  std::vector<std::vector<std::vector<EventRow>>> out(o.agents);
  const uint64_t per_agent = o.events / o.agents;
  const int64_t t0 = 1'700'000'000'000'000'000;
  for (unsigned a = 0; a < o.agents; ++a) {
    for (uint64_t seq = 1; seq <= per_agent; ++seq) {
      if ((seq - 1) % o.batch == 0) out[a].emplace_back();
      mamori::v1::Event e;
      e.set_sequence(seq);
      e.set_timestamp_ns(t0 + static_cast<int64_t>(seq) * 1000);
      auto* p = e.mutable_process();
      p->set_pid(static_cast<int32_t>(1000 + rng() % 30000));
      p->set_ppid(1);
      p->set_uid(1000);
      p->set_euid(1000);
      p->set_user("builder");
      const size_t which = rng() % 5;
      const char* image = images[which];
      p->set_image(image);
      p->add_argv(image);
      p->add_argv("--flag=" + Hex(rng, 8));
      p->add_argv("/home/builder/work/" + Hex(rng, 12) + ".txt");
      p->set_cwd("/home/builder/work");
      p->set_sha256(rng() % 100 < o.unique_hash_percent ? Hex(rng, 64) : image_hashes[which]);
      p->set_start_time_ns(static_cast<uint64_t>(t0));
      e.mutable_parent()->set_pid(1);
      e.mutable_parent()->set_image("/usr/lib/systemd/systemd");
      e.mutable_process_activity()->set_kind(mamori::v1::ProcessActivity::KIND_EXEC);
      out[a].back().push_back(*mamori::server::EventRowFromProto(e));
    }
  }
  return out;
}

bool Run(const std::string& name, Store& store, const Options& o,
         const std::vector<std::vector<std::vector<EventRow>>>& batches) {
  for (unsigned a = 0; a < o.agents; ++a) {
    mamori::server::AgentRecord r;
    r.agent_id = "bench-agent-" + std::to_string(a);
    r.hostname = "bench-" + std::to_string(a);
    if (!store.UpsertAgent(r).ok()) return false;
  }
  size_t payload_bytes = 0;
  uint64_t total = 0;
  for (const auto& agent : batches) {
    for (const auto& b : agent) {
      total += b.size();
      for (const auto& e : b) payload_bytes += e.payload.size();
    }
  }
  for (const char* phase : {"insert", "duplicate"}) {
    const auto start = std::chrono::steady_clock::now();
    std::atomic<bool> failed{false};
    auto send = [&](unsigned a, size_t i) {
      auto ack = store.AppendBatch("bench-agent-" + std::to_string(a), batches[a][i], {}, 0);
      if (!ack.ok()) {
        std::cerr << name << ": " << ack.status().ToString() << "\n";
        failed = true;
      }
    };
    const size_t rounds = batches.empty() ? 0 : batches[0].size();
    if (o.sequential) {
      // Round-robin over agents, one batch at a time, from one thread.
      for (size_t i = 0; i < rounds && !failed; ++i) {
        for (unsigned a = 0; a < o.agents; ++a) send(a, i);
      }
    } else {
      // One thread per agent, as a server has one stream per agent.
      std::vector<std::thread> threads;
      for (unsigned a = 0; a < o.agents; ++a) {
        threads.emplace_back([&, a] {
          for (size_t i = 0; i < rounds && !failed; ++i) send(a, i);
        });
      }
      for (auto& t : threads) t.join();
    }
    if (failed) return false;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%-22s %-9s %8llu events  batch %4llu  %u agents%s  %7.3f s  %10.0f events/s  (payload avg %zu B)\n",
                name.c_str(), phase, static_cast<unsigned long long>(total),
                static_cast<unsigned long long>(o.batch), o.agents, o.sequential ? " (1 thread)" : "", secs,
                static_cast<double>(total) / secs, total == 0 ? 0 : payload_bytes / total);
  }
  return true;
}

int Usage() {
  std::cerr << "usage: mamori_store_bench [--events N] [--batch B] [--agents K] [--backend sqlite|postgres|all]\n"
               "                          [--sqlite-path FILE] [--sqlite-fast] [--postgres CONNINFO]\n"
               "                          [--unique-hashes PCT] [--sequential]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (const char* pg = std::getenv("MAMORI_TEST_PG")) o.postgres = pg;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--events") {
      o.events = std::strtoull(next().c_str(), nullptr, 10);
    } else if (a == "--batch") {
      o.batch = std::strtoull(next().c_str(), nullptr, 10);
    } else if (a == "--agents") {
      o.agents = static_cast<unsigned>(std::strtoul(next().c_str(), nullptr, 10));
    } else if (a == "--backend") {
      o.backend = next();
    } else if (a == "--sqlite-path") {
      o.sqlite_path = next();
    } else if (a == "--sqlite-fast") {
      o.sqlite_fast = true;
    } else if (a == "--sequential") {
      o.sequential = true;
    } else if (a == "--unique-hashes") {
      o.unique_hash_percent = static_cast<unsigned>(std::strtoul(next().c_str(), nullptr, 10));
    } else if (a == "--postgres") {
      o.postgres = next();
    } else {
      return Usage();
    }
  }
  if (o.events == 0 || o.batch == 0 || o.agents == 0) return Usage();
  std::printf("building %llu events for %u agents...\n", static_cast<unsigned long long>(o.events), o.agents);
  const auto batches = MakeBatches(o);
  int rc = 0;

  if (o.backend == "all" || o.backend == "sqlite") {
    std::string dir;
    mamori::server::SqliteStoreOptions so;
    so.path = o.sqlite_path;
    if (so.path.empty()) {
      std::string tmpl = std::filesystem::temp_directory_path().string() + "/mamori-store-bench.XXXXXX";
      if (::mkdtemp(tmpl.data()) == nullptr) return 1;
      dir = tmpl;
      so.path = dir + "/bench.db";
    }
    so.durable_commits = !o.sqlite_fast;
    auto store = mamori::server::OpenSqliteStore(so);
    if (!store.ok()) {
      std::cerr << "sqlite: " << store.status().ToString() << "\n";
      rc = 1;
    } else if (!Run(o.sqlite_fast ? "sqlite (synchronous=N)" : "sqlite (synchronous=F)", **store, o, batches)) {
      rc = 1;
    }
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }

  if (o.backend == "all" || o.backend == "postgres") {
    if (o.postgres.empty()) {
      std::printf("postgres: skipped (no --postgres and no MAMORI_TEST_PG)\n");
    } else {
      mamori::server::PostgresStoreOptions po;
      po.conninfo = o.postgres;
      std::mt19937_64 rng(std::random_device{}());
      po.schema = "bench_" + Hex(rng, 8);
      {
        auto store = mamori::server::OpenPostgresStore(po);
        if (!store.ok()) {
          std::cerr << "postgres: " << store.status().ToString() << "\n";
          rc = 1;
        } else if (!Run("postgres", **store, o, batches)) {
          rc = 1;
        }
      }
      try {
        pqxx::connection c(po.conninfo);
        pqxx::work w(c);
        w.exec("DROP SCHEMA IF EXISTS " + po.schema + " CASCADE");
        w.commit();
      } catch (const std::exception& e) {
        std::cerr << "postgres: dropping " << po.schema << ": " << e.what() << "\n";
      }
    }
  }
  return rc;
}

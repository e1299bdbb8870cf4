// kill -9 of the real mamori-agent PROCESS mid-stream, end to end: the agent
// (replay sensor: a steady, countable stream of behavior events, each with a
// unique pid as its marker) enrolled to the real mamori-server on 127.0.0.1,
// data in a temp dir. Killed twice while it streams (the first time while the
// replay is still appending, so group commits are pending), restarted on the
// same data dir, and finally drained. Then, in the server's database: every
// sequence 1..N stored exactly once, no gaps, the server's ack == the last
// sequence of the agent's spool == N, and no replayed event stored twice.
//
// What the agent had not appended to its spool at a kill (events still in the
// sensor -> monitor queue) never got a sequence and was never acknowledged to
// anyone: it leaves no gap. What Append returned survives (page cache) and is
// committed at the next Open (docs/telemetry-spool.md, Durability).
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <thread>

#include "mamori/common/file_util.h"
#include "mamori/telemetry/spool.h"
#include "server_process.h"
#include "test_util.h"
#include "uplink_test_util.h"

namespace mamori::telemetry {
namespace {

using std::chrono::milliseconds;
using testing::ServerProcess;
using testing::WaitFor;

constexpr uint64_t kReplayEvents = 40000;  // per replay file
constexpr int64_t kFirstMarker = 1'000'000;
constexpr int64_t kSecondMarker = 2'000'000;

// A replay file of `n` exec events of harmless /usr/bin/true runs, pids
// `first_pid`.. (the markers), 1 ms apart.
std::string WriteReplay(const std::string& path, int64_t first_pid, uint64_t n) {
  std::ofstream out(path);
  const int64_t t0 = 1'795'703'600'000'000'000;
  for (uint64_t i = 0; i < n; ++i) {
    const int64_t pid = first_pid + static_cast<int64_t>(i);
    out << R"({"type":"exec","timestamp_ns":)" << t0 + static_cast<int64_t>(i) * 1'000'000
        << R"(,"process":{"pid":)" << pid
        << R"(,"ppid":1,"user":"root","image":"/usr/bin/true","argv":["true","marker-)" << pid
        << R"("],"cwd":"/"},"parent":{"pid":1,"ppid":0,"user":"root","image":"/usr/lib/systemd/systemd",)"
        << R"("argv":["/sbin/init"],"cwd":"/"}})" << '\n';
  }
  REQUIRE(out.good());
  return path;
}

// The real mamori-agent as a child process; kill -9 or SIGTERM.
class Agent {
 public:
  Agent(const std::string& config, const std::string& log) {
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a crashed test leaves no agent behind
      ::execl(MAMORI_AGENT_BINARY, MAMORI_AGENT_BINARY, "--config", config.c_str(), nullptr);
      ::_exit(127);
    }
  }
  ~Agent() { Kill9(); }
  void Kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  bool alive() {
    return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0;
  }

 private:
  pid_t pid_ = -1;
};

std::string AgentYaml(const std::string& dir, const std::string& server, const std::string& sensor,
                      const std::string& replay) {
  return "data_dir: " + dir + "/agent\n"
         "control_socket: " + dir + "/agent.sock\n"
         "signatures: [" MAMORI_SOURCE_DIR "/signatures/default]\n"
         "onaccess:\n  enabled: false\n"
         "behavior:\n"
         "  sensor: " + sensor + "\n" +
         (replay.empty() ? "" : "  replay_file: " + replay + "\n") +
         "  rules: [" MAMORI_SOURCE_DIR "/signatures/behavior]\n"
         "telemetry:\n"
         "  servers: [" + server + "]\n"
         "  ca_cert: " + dir + "/ca.pem\n"
         "  enrollment_token_file: " + dir + "/token\n";
}

// One integer from the server's database (read-only; the server may run).
int64_t QueryInt(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  int64_t v = -1;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(db, 2000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
      v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return v;
}

int64_t Acked(const std::string& db) { return QueryInt(db, "SELECT coalesce(max(acked_seq), 0) FROM agents"); }

// The last sequence of the agent's spool (the agent must not run): opening it
// recovers exactly what the restarted agent would.
uint64_t SpoolLast(const std::string& dir) {
  SpoolOptions o;
  o.dir = dir;
  o.sync_interval = milliseconds(0);
  auto spool = Spool::Open(o);
  INFO(spool.status().ToString());
  REQUIRE(spool.ok());
  return (*spool)->GetStats().next_sequence - 1;
}

TEST_CASE("agent e2e: kill -9 of the mamori-agent process mid-stream twice then a drain: each sequence stored once") {
  ::mamori::testing::TempDir dir;
  const std::string data = dir.path() + "/server";
  REQUIRE(MakeDirs(data, 0700).ok());
  ServerProcess server(MAMORI_SERVER_BINARY, data);
  Status started = server.Start();
  INFO(started.ToString());
  REQUIRE(started.ok());
  auto ca = server.CaCertificate();
  auto token = server.CreateToken();
  REQUIRE(ca.ok());
  REQUIRE(token.ok());
  REQUIRE(WriteFileAtomically(dir.path() + "/ca.pem", *ca, 0600).ok());
  REQUIRE(WriteFileAtomically(dir.path() + "/token", *token, 0600).ok());
  const std::string db = server.db_path();
  const std::string spool = dir.path() + "/agent/spool";
  const std::string log = dir.path() + "/agent.log";
  const std::string replay1 = WriteReplay(dir.path() + "/replay1.jsonl", kFirstMarker, kReplayEvents);
  const std::string replay2 = WriteReplay(dir.path() + "/replay2.jsonl", kSecondMarker, kReplayEvents);
  const std::string config = dir.path() + "/agent.yaml";
  auto configure = [&](const std::string& sensor, const std::string& replay) {
    REQUIRE(WriteFileAtomically(config, AgentYaml(dir.path(), server.address(), sensor, replay), 0600).ok());
  };
  INFO("agent log: " << log << ", server log: " << server.log_path());

  // 1. Enrolls, replays, streams; killed at the first acknowledgement, while
  //    the replay is still appending (group commits pending).
  configure("replay", replay1);
  {
    Agent agent(config, log);
    REQUIRE(WaitFor([&] { return Acked(db) >= 1 || !agent.alive(); }, milliseconds(60000)));
    REQUIRE(agent.alive());
    agent.Kill9();
  }
  const int64_t acked1 = Acked(db);
  const uint64_t last1 = SpoolLast(spool);
  INFO("after kill 1: server acked " << acked1 << ", spool last " << last1);
  REQUIRE(acked1 >= 1);
  CHECK(static_cast<uint64_t>(acked1) <= last1);

  // 2. Restarted on the same data dir with a second replay: drains what the
  //    first run left, streams the new events; killed mid-stream.
  configure("replay", replay2);
  int64_t acked_at_kill2 = 0;
  {
    Agent agent(config, log);
    REQUIRE(WaitFor([&] { return Acked(db) >= static_cast<int64_t>(last1) + 1000 || !agent.alive(); },
                    milliseconds(60000)));
    REQUIRE(agent.alive());
    agent.Kill9();
    acked_at_kill2 = Acked(db);
  }
  const uint64_t last2 = SpoolLast(spool);
  INFO("after kill 2: server acked " << acked_at_kill2 << ", spool last " << last2);
  REQUIRE(static_cast<uint64_t>(acked_at_kill2) > last1);
  REQUIRE(static_cast<uint64_t>(acked_at_kill2) < last2);  // mid-stream: the agent still had events to send

  // 3. Restarted without a sensor: drains. Done when the server's ack has
  //    stood still for 2 s (the idle agent appends nothing more).
  configure("none", "");
  {
    Agent agent(config, log);
    int64_t prev = -1;
    auto still = std::chrono::steady_clock::now();
    REQUIRE(WaitFor(
        [&] {
          const int64_t a = Acked(db);
          const auto now = std::chrono::steady_clock::now();
          if (a != prev) {
            prev = a;
            still = now;
          }
          return a >= static_cast<int64_t>(last2) && now - still >= std::chrono::seconds(2);
        },
        milliseconds(60000)));
    REQUIRE(agent.alive());
    agent.Kill9();
  }
  const uint64_t n = SpoolLast(spool);
  REQUIRE(server.Stop().ok());

  // Every sequence 1..N exactly once; the ack is the spool's last sequence.
  REQUIRE(QueryInt(db, "SELECT count(*) FROM agents") == 1);
  CHECK(QueryInt(db, "SELECT acked_seq FROM agents") == static_cast<int64_t>(n));
  CHECK(QueryInt(db, "SELECT count(*) FROM events") == static_cast<int64_t>(n));
  CHECK(QueryInt(db, "SELECT count(DISTINCT seq) FROM events") == static_cast<int64_t>(n));
  CHECK(QueryInt(db, "SELECT min(seq) FROM events") == 1);
  CHECK(QueryInt(db, "SELECT max(seq) FROM events") == static_cast<int64_t>(n));
  CHECK(QueryInt(db, "SELECT count(*) FROM sequence_losses") == 0);

  // No replayed event stored twice (a resend under a new sequence would be).
  for (int64_t first : {kFirstMarker, kSecondMarker}) {
    const std::string range = " FROM events WHERE pid >= " + std::to_string(first) + " AND pid < " +
                              std::to_string(first + static_cast<int64_t>(kReplayEvents));
    const int64_t rows = QueryInt(db, "SELECT count(*)" + range);
    INFO("replayed events with markers from " << first << ": " << rows << " stored");
    CHECK(rows > 0);
    CHECK(rows <= static_cast<int64_t>(kReplayEvents));
    CHECK(QueryInt(db, "SELECT count(DISTINCT pid)" + range) == rows);
  }
}

}  // namespace
}  // namespace mamori::telemetry

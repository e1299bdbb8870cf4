// kill -9 of the agent: a child process appends in a loop and reports each
// sequence it got; it is killed at a random moment, several times over the
// same spool. Every reported record must be there, byte for byte, with
// gapless sequences and no duplicates, and sequences must continue across
// the kills.
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <random>
#include <set>
#include <string>

#include "mamori/telemetry/spool.h"
#include "spool_test_util.h"
#include "test_util.h"

extern char** environ;

namespace mamori::telemetry {
namespace {

using mamori::testing::TempDir;
using testing::OpenOrDie;
using testing::Payload;

struct ChildRun {
  std::vector<uint64_t> reported;
  int status = 0;
};

// Runs the child for `ms` milliseconds, SIGKILLs it and collects what it reported.
ChildRun RunAndKill(const std::string& dir, int ms) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  std::string exe = MAMORI_SPOOL_CRASH_CHILD;
  char* argv[] = {exe.data(), const_cast<char*>(dir.c_str()), nullptr};
  pid_t pid = 0;
  REQUIRE(::posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv, environ) == 0);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);

  ChildRun run;
  std::string buf;
  char chunk[1 << 16];
  // The clock starts with the first report (sanitizer builds start slowly).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  bool started = false;
  bool killed = false;
  for (;;) {
    if (!started && !buf.empty()) {
      started = true;
      deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (!killed && left.count() <= 0) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
    pollfd p{fds[0], POLLIN, 0};
    ::poll(&p, 1, killed ? 1000 : static_cast<int>(std::max<int64_t>(left.count(), 1)));
    if ((p.revents & (POLLIN | POLLHUP)) == 0) continue;
    ssize_t n = ::read(fds[0], chunk, sizeof chunk);
    if (n <= 0) break;  // EOF: the child is gone
    buf.append(chunk, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  REQUIRE(::waitpid(pid, &run.status, 0) == pid);
  size_t pos = 0;
  while (pos < buf.size()) {
    size_t nl = buf.find('\n', pos);
    if (nl == std::string::npos) break;  // a line cut by the kill
    run.reported.push_back(std::stoull(buf.substr(pos, nl - pos)));
    pos = nl + 1;
  }
  return run;
}

TEST_CASE("kill -9 of an appending process loses and duplicates nothing that Append returned") {
  TempDir dir;
  const std::string spool_dir = dir.path() + "/spool";
  std::random_device rd;
  const unsigned seed = rd();
  INFO("seed " << seed);
  std::mt19937 rng(seed);

  uint64_t next_expected = 1;  // first sequence the next child run must produce
  uint64_t acked = 0;
  uint64_t total_reported = 0;
  for (int round = 0; round < 4; ++round) {
    INFO("round " << round);
    ChildRun run = RunAndKill(spool_dir, 40 + static_cast<int>(rng() % 160));
    REQUIRE(WIFSIGNALED(run.status));
    REQUIRE(WTERMSIG(run.status) == SIGKILL);
    REQUIRE(!run.reported.empty());
    total_reported += run.reported.size();
    std::set<uint64_t> reported(run.reported.begin(), run.reported.end());
    CHECK(reported.size() == run.reported.size());  // no sequence handed out twice
    CHECK(*reported.begin() == next_expected);      // continues right after the last run

    SpoolOptions options;  // as in crash_child.cc
    options.dir = spool_dir;
    options.max_bytes = 256 << 20;
    options.segment_bytes = 256 << 10;
    options.sync_interval = std::chrono::milliseconds(0);
    auto spool = OpenOrDie(options);
    auto stats = spool->GetStats();
    CHECK(stats.acked_sequence == acked);
    CHECK(stats.next_sequence > *reported.rbegin());
    std::set<uint64_t> present;
    uint64_t expect = acked + 1;
    for (;;) {
      auto b = spool->ReadBatch(5000, 8 << 20);
      REQUIRE(b.ok());
      if (b->empty()) break;
      CHECK(b->lost().empty());
      for (size_t i = 0; i < b->size(); ++i) {
        auto r = (*b)[i];
        REQUIRE(r.sequence == expect);  // gapless, in order, no duplicates
        ++expect;
        // The payload names its key; every byte must match.
        std::string_view p = r.payload;
        REQUIRE(p.substr(0, 6) == "event-");
        uint64_t key = std::stoull(std::string(p.substr(6, p.find(':') - 6)));
        REQUIRE(p == Payload(key, 50 + key % 350));
        CHECK(static_cast<uint64_t>(r.priority) == (key & ((uint64_t{1} << 40) - 1)) % 3);
        present.insert(r.sequence);
      }
    }
    CHECK(expect == stats.next_sequence);
    for (uint64_t s : reported) {
      if (s > acked) CHECK(present.count(s) == 1);
    }
    // The server stored about half; the rest stays for the next round.
    uint64_t last = expect - 1;
    acked = acked + (last - acked) / 2;
    REQUIRE(spool->Ack(acked).ok());
    REQUIRE(spool->Close().ok());
    next_expected = last + 1;
  }
  CHECK(total_reported > 0);
}

}  // namespace
}  // namespace mamori::telemetry

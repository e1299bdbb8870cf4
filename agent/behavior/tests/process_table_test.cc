#include <unistd.h>

#include <catch2/catch.hpp>

#include "mamori/behavior/process_table.h"
#include "mamori/common/file_util.h"
#include "mamori/scanner/hasher.h"
#include "test_util.h"

namespace mamori::behavior {
namespace {

constexpr uint64_t kSecond = 1000000000ull;

// A table fed only by events (no /proc), as with replayed fixtures.
ProcessTable::Options EventsOnly() {
  ProcessTable::Options o;
  o.proc_root = "";
  return o;
}

Event Exec(int32_t pid, int32_t ppid, std::string image, std::vector<std::string> argv, uint64_t ts) {
  Event e;
  e.type = EventType::kExec;
  e.timestamp_ns = ts;
  e.process.pid = pid;
  e.process.ppid = ppid;
  e.process.image = std::move(image);
  e.process.argv = std::move(argv);
  return e;
}

Event Fork(int32_t child, int32_t parent, uint64_t ts) {
  Event e;
  e.type = EventType::kFork;
  e.timestamp_ns = ts;
  e.process.pid = child;
  e.process.ppid = parent;
  return e;
}

Event Simple(EventType type, int32_t pid, uint64_t ts) {
  Event e;
  e.type = type;
  e.timestamp_ns = ts;
  e.process.pid = pid;
  return e;
}

TEST_CASE("Snapshot reads this test process from /proc with image, argv and user") {
  ImageHasher hasher;
  ProcessTable table({}, &hasher);
  auto n = table.Snapshot();
  REQUIRE(n.ok());
  CHECK(*n > 1);
  auto self = table.Get(getpid());
  REQUIRE(self.has_value());
  char exe[4096];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe);
  REQUIRE(len > 0);
  CHECK(self->image == std::string(exe, static_cast<size_t>(len)));
  CHECK(self->ppid == getppid());
  CHECK(!self->argv.empty());
  CHECK(self->sha256.size() == 64);
  CHECK(self->start_time_ns > 0);
  if (getuid() == 0) CHECK(self->user == "root");
}

TEST_CASE("Events carry their process and parent context through fork and exec") {
  ProcessTable table(EventsOnly(), nullptr);
  uint64_t t = 100 * kSecond;
  Event shell = Exec(100, 1, "/usr/sbin/nginx", {"nginx", "-g", "daemon off;"}, t);
  table.Apply(&shell);
  Event fork = Fork(200, 100, t + 1);
  table.Apply(&fork);
  CHECK(fork.process.image == "/usr/sbin/nginx");  // a fork runs its parent's image
  CHECK(fork.parent.pid == 100);

  Event exec = Exec(200, 0, "/bin/sh", {"sh", "-c", "id"}, t + 2);
  table.Apply(&exec);
  CHECK(exec.process.ppid == 100);  // kept from the fork
  CHECK(exec.process.command_line == "sh -c id");
  CHECK(exec.parent.image == "/usr/sbin/nginx");
  CHECK(exec.parent.command_line == "nginx -g daemon off;");

  Event write = Simple(EventType::kFileOpenWrite, 200, t + 3);
  write.target_filename = "/tmp/x";
  table.Apply(&write);
  CHECK(write.process.image == "/bin/sh");
  CHECK(write.process.command_line == "sh -c id");
  CHECK(write.parent.image == "/usr/sbin/nginx");

  auto chain = table.Ancestry(200);
  REQUIRE(chain.size() == 2);
  CHECK(chain[0].image == "/bin/sh");
  CHECK(chain[1].image == "/usr/sbin/nginx");
  CHECK(table.Descendants(100) == std::vector<int32_t>{200});
}

TEST_CASE("An exited process keeps its context for late events, then ages out") {
  ProcessTable::Options o = EventsOnly();
  o.exited_ttl = std::chrono::seconds(5);
  ProcessTable table(o, nullptr);
  uint64_t t = 1000 * kSecond;
  Event exec = Exec(300, 1, "/usr/bin/curl", {"curl", "http://127.0.0.1/"}, t);
  table.Apply(&exec);
  Event exit = Simple(EventType::kExit, 300, t + kSecond);
  exit.exit_code = 3;
  table.Apply(&exit);
  CHECK(exit.process.image == "/usr/bin/curl");

  Event late = Simple(EventType::kNetConnect, 300, t + 2 * kSecond);
  table.Apply(&late);
  CHECK(late.process.image == "/usr/bin/curl");
  CHECK(table.Descendants(1).empty());  // exited: no longer a live child

  Event much_later = Simple(EventType::kNetConnect, 301, t + 10 * kSecond);
  table.Apply(&much_later);
  CHECK(!table.Get(300).has_value());
}

TEST_CASE("The table stays bounded, evicting exited processes before live ones") {
  ProcessTable::Options o = EventsOnly();
  o.max_processes = 64;
  ProcessTable table(o, nullptr);
  uint64_t t = 5000 * kSecond;
  Event root = Exec(10, 1, "/usr/bin/make", {"make"}, t);
  table.Apply(&root);
  for (int32_t pid = 1000; pid < 2000; ++pid) {
    Event f = Fork(pid, 10, t + static_cast<uint64_t>(pid));
    table.Apply(&f);
    if (pid % 2 == 0) {
      Event x = Simple(EventType::kExit, pid, t + static_cast<uint64_t>(pid));
      table.Apply(&x);
    }
  }
  auto s = table.stats();
  CHECK(s.size <= 64);
  CHECK(s.evicted_live > 0);
  CHECK(s.evicted_live < 1000);  // exited entries went first
  CHECK(table.Get(1999).has_value());  // the newest survive
}

TEST_CASE("Exec images are hashed once per file version") {
  mamori::testing::TempDir dir;
  std::string bin = dir.Write("tool", "#!/bin/sh\nexit 0\n");
  ImageHasher hasher;
  ProcessTable table(EventsOnly(), &hasher);
  std::string want = scanner::Hasher::Of("#!/bin/sh\nexit 0\n").hex(scanner::DigestKind::kSha256);
  for (int32_t pid = 2; pid < 102; ++pid) {
    Event e = Exec(pid, 1, bin, {"tool"}, kSecond * static_cast<uint64_t>(pid));
    table.Apply(&e);
    REQUIRE(e.process.sha256 == want);
  }
  CHECK(hasher.hashed() == 1);
  REQUIRE(WriteFileAtomically(bin, "#!/bin/sh\nexit 1\n", 0755).ok());
  Event e = Exec(500, 1, bin, {"tool"}, kSecond * 500);
  table.Apply(&e);
  CHECK(e.process.sha256 == scanner::Hasher::Of("#!/bin/sh\nexit 1\n").hex(scanner::DigestKind::kSha256));
  CHECK(hasher.hashed() == 2);
}

TEST_CASE("Events of unknown processes pass through unchanged and are counted") {
  ProcessTable table(EventsOnly(), nullptr);
  Event e = Simple(EventType::kFileUnlink, 4242, kSecond);
  e.target_filename = "/tmp/a";
  table.Apply(&e);
  CHECK(e.process.pid == 4242);
  CHECK(e.process.image.empty());
  CHECK(!e.parent.known());
  CHECK(table.stats().unknown_pids >= 1);
}

}  // namespace
}  // namespace mamori::behavior

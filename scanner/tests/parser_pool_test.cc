// The parser sandbox: containers and mail opened in confined worker processes
// must give exactly the reports of the in-process scan, and a worker that
// crashes, hangs, lies or is confined wrongly must never make an object clean.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "linux/parser_sandbox.h"
#include "mamori/scanner/hasher.h"
#include "mamori/scanner/parser_pool.h"
#include "mamori/scanner/scanner.h"
#include "test_util.h"

namespace mamori::scanner {
namespace {

using testing::Eicar;
using testing::MakeArchive;
using testing::MakeCompressed;

std::shared_ptr<ParserPool> SharedPool() {
  static std::shared_ptr<ParserPool> pool = [] {
    auto p = ParserPool::Start({});
    REQUIRE(p.ok());
    return *p;
  }();
  return pool;
}

// A pool of its own for a test that kills, stops or replaces workers.
std::shared_ptr<ParserPool> StartPool(int workers) {
  ParserPoolOptions po;
  po.workers = workers;
  auto pool = ParserPool::Start(po);
  REQUIRE(pool.ok());
  REQUIRE((*pool)->worker_pids().size() == static_cast<size_t>(workers));
  for (pid_t pid : (*pool)->worker_pids()) REQUIRE(pid > 0);  // they get signals from the tests
  return *pool;
}

std::unique_ptr<Scanner> Make(ScanOptions o, std::shared_ptr<const SignatureSet> sigs = testing::TestSignatures()) {
  auto s = Scanner::Create(std::move(sigs), o);
  REQUIRE(s.ok());
  return std::move(*s);
}

std::string Describe(const ScanReport& r) {
  std::ostringstream o;
  o << "verdict " << VerdictName(r.verdict) << " sha256 " << r.sha256 << " allowed " << r.allowed << " error '"
    << r.error << "'\n";
  for (const auto& f : r.findings) o << "  finding " << f.object << " " << f.signature << " " << f.sha256 << "\n";
  for (const auto& i : r.incomplete) o << "  incomplete " << i << "\n";
  return o.str();
}

std::string ProcStatusField(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::string v = line.substr(field.size() + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return "";
}

std::string Mail(const std::string& attachment_name, const std::string& content) {
  static const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string b64;
  size_t i = 0;
  for (; i + 2 < content.size(); i += 3) {
    uint32_t v = (uint8_t(content[i]) << 16) | (uint8_t(content[i + 1]) << 8) | uint8_t(content[i + 2]);
    for (int s = 18; s >= 0; s -= 6) b64 += kB64[(v >> s) & 63];
  }
  if (i < content.size()) {
    uint32_t v = uint8_t(content[i]) << 16;
    if (i + 1 < content.size()) v |= uint8_t(content[i + 1]) << 8;
    b64 += kB64[(v >> 18) & 63];
    b64 += kB64[(v >> 12) & 63];
    b64 += i + 1 < content.size() ? kB64[(v >> 6) & 63] : '=';
    b64 += '=';
  }
  return "From: a@example.org\nTo: b@example.org\nSubject: invoice\nMIME-Version: 1.0\n"
         "Content-Type: multipart/mixed; boundary=\"XX\"\n\n--XX\nContent-Type: text/plain\n\nsee attached\n"
         "--XX\nContent-Type: application/octet-stream; name=\"" +
         attachment_name + "\"\nContent-Transfer-Encoding: base64\n\n" + b64 + "\n--XX--\n";
}

struct Sample {
  std::string name;
  std::string bytes;
  ScanLimits limits;
};

std::vector<Sample> Corpus() {
  std::vector<Sample> c;
  auto add = [&](std::string name, std::string bytes, ScanLimits l = {}) {
    c.push_back({std::move(name), std::move(bytes), l});
  };
  const std::string inner = MakeArchive("zip", {{"readme.txt", "hello"}, {"eicar.com", Eicar()}});
  add("plain.zip", MakeArchive("zip", {{"a.txt", "alpha"}, {"b/c.txt", "gamma"}}));
  add("eicar.zip", inner);
  add("nested.tar.gz", MakeArchive("tar", {{"docs/inner.zip", inner}, {"x.txt", "x"}}, "gzip"));
  add("stream.gz", MakeCompressed("gzip", Eicar()));
  add("seven.7z", MakeArchive("7zip", {{"e.com", Eicar()}, {"n.txt", "n"}}));
  add("mail.eml", Mail("invoice.zip", inner));
  add("mail-in-zip.zip", MakeArchive("zip", {{"saved.eml", Mail("e.com", Eicar())}}));
  add("encrypted.zip", MakeArchive("zip", {{"secret.com", Eicar()}}, "", "infected"));
  std::string corrupt = inner;
  corrupt.resize(corrupt.size() / 2);
  add("corrupt.zip", corrupt);
  ScanLimits shallow;
  shallow.max_depth = 1;
  add("too-deep.tar.gz", MakeArchive("tar", {{"inner.zip", inner}}, "gzip"), shallow);
  ScanLimits few;
  few.max_members = 2;
  add("many.zip", MakeArchive("zip", {{"1", "1"}, {"2", "2"}, {"3", Eicar()}, {"4", "4"}}), few);
  ScanLimits small;
  small.max_member_size = 4;
  add("big-member.zip", MakeArchive("zip", {{"big.txt", std::string(100, 'b')}, {"e.com", Eicar()}}), small);
  add("names.zip", MakeArchive("zip", {{"../../escape.com", Eicar()}, {"new\nline\x01.com", "x"}}));
  return c;
}

TEST_CASE("Parser workers give the in-process report for archives, mail, nesting, limits and defects") {
  auto pool = SharedPool();
  const uint64_t requests_before = pool->stats().requests;
  testing::TempDir dir;
  const std::vector<Sample> corpus = Corpus();
  for (const Sample& s : corpus) {
    ScanOptions in_process;
    in_process.limits = s.limits;
    ScanOptions sandboxed = in_process;
    sandboxed.parser_pool = pool;
    const ScanReport expected = Make(in_process)->ScanBuffer(s.bytes, s.name);
    const ScanReport got = Make(sandboxed)->ScanBuffer(s.bytes, s.name);
    INFO(s.name << "\nin process:\n" << Describe(expected) << "sandboxed:\n" << Describe(got));
    CHECK(Describe(got) == Describe(expected));
    // From a file too, and from a file streamed by descriptor (the worker reads it itself).
    const std::string path = dir.Write(s.name, s.bytes);
    CHECK(Describe(Make(sandboxed)->ScanFile(path)) == Describe(Make(in_process)->ScanFile(path)));
    ScanOptions streamed_in = in_process, streamed_sandboxed = sandboxed;
    streamed_in.limits.max_in_memory = streamed_sandboxed.limits.max_in_memory = 16;
    CHECK(Describe(Make(streamed_sandboxed)->ScanFile(path)) == Describe(Make(streamed_in)->ScanFile(path)));
  }
  CHECK(pool->stats().workers_lost == 0);
  // Every sample went through a worker three times (the compressed stream and
  // the big-member zip too: all are containers or mail).
  CHECK(pool->stats().requests - requests_before == 3 * corpus.size());
}

TEST_CASE("Parser workers leave members under an allow-listed member unscanned as in process") {
  const std::string inner = MakeArchive("zip", {{"eicar.com", Eicar()}});
  testing::TempDir dir;
  dir.Write("sigs/test.mhdb", Hasher::Of(Eicar()).hex(DigestKind::kSha256) + ":68:Test.EICAR.Hash\n");
  dir.Write("sigs/vendor.allow", "sha256:" + Hasher::Of(inner).hex(DigestKind::kSha256) + "  # the vendor's zip\n");
  auto loaded = LoadSignatureDir(dir.path() + "/sigs");
  REQUIRE(loaded.ok());
  std::shared_ptr<const SignatureSet> sigs = *loaded;
  const std::string outer = MakeArchive("zip", {{"vendor.zip", inner}, {"loose.com", Eicar()}});
  ScanOptions sandboxed;
  sandboxed.parser_pool = SharedPool();
  auto got = Make(sandboxed, sigs)->ScanBuffer(outer, "outer.zip");
  auto expected = Make({}, sigs)->ScanBuffer(outer, "outer.zip");
  INFO(Describe(got));
  CHECK(Describe(got) == Describe(expected));
  REQUIRE(got.findings.size() == 1);
  CHECK(got.findings[0].object == "outer.zip!loose.com");
}

TEST_CASE("Parser workers run with no capabilities under no_new_privs and a seccomp filter") {
  auto pool = SharedPool();
  auto pids = pool->worker_pids();
  REQUIRE(pids.size() == 2);
  for (pid_t pid : pids) {
    INFO("worker " << pid);
    CHECK(ProcStatusField(pid, "CapEff") == "0000000000000000");
    CHECK(ProcStatusField(pid, "CapPrm") == "0000000000000000");
    CHECK(ProcStatusField(pid, "CapInh") == "0000000000000000");
    CHECK(ProcStatusField(pid, "CapAmb") == "0000000000000000");
    if (::geteuid() == 0) CHECK(ProcStatusField(pid, "CapBnd") == "0000000000000000");
    CHECK(ProcStatusField(pid, "NoNewPrivs") == "1");
    CHECK(ProcStatusField(pid, "Seccomp") == "2");  // filter mode
    // Only the request socket (3) and stdio are open.
    int fds = 0;
    for (int fd = 0; fd < 64; ++fd) {
      struct stat st {};
      if (::stat(("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd)).c_str(), &st) == 0) ++fds;
    }
    CHECK(fds <= 4);
  }
}

// Runs `attempt` in a child confined like a worker; returns its wait status.
template <typename Fn>
int InConfinedChild(Fn attempt) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (!internal::DropWorkerPrivileges().ok() || !internal::InstallWorkerSeccompFilter().ok()) ::_exit(90);
    ::_exit(attempt());
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return status;
}

TEST_CASE("The worker filter fails opens with EACCES and kills network, exec, fork, kill and file changes") {
  // Allowed: what parsing needs. Opening a path is refused softly.
  int status = InConfinedChild([] {
    int fd = ::open("/proc/self/status", O_RDONLY);
    if (fd >= 0 || errno != EACCES) return 1;
    std::string big(1 << 20, 'x');  // memory
    struct timespec ts {};
    const bool ok = ::clock_gettime(CLOCK_MONOTONIC, &ts) == 0 && ::getpid() > 0 && ::write(2, big.data(), 0) == 0;
    return ok ? 0 : 2;
  });
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);

  struct Forbidden {
    const char* what;
    int (*attempt)();
  };
  const Forbidden forbidden[] = {
      {"socket", [] { return ::socket(AF_INET, SOCK_STREAM, 0) >= 0 ? 10 : 11; }},
      {"execve", [] {
         char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
         ::execve("/bin/true", argv, nullptr);
         return 12;
       }},
      {"fork", [] { return static_cast<int>(::syscall(SYS_fork)) >= 0 ? 13 : 14; }},
      {"clone", [] { return static_cast<int>(::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0)) >= 0 ? 15 : 16; }},
      {"kill of the parent", [] { return ::kill(::getppid(), 0) == 0 ? 17 : 18; }},
      {"unlink", [] { return ::unlink("/nonexistent-mamori-test-path") == 0 ? 19 : 20; }},
      {"ptrace", [] { return static_cast<int>(::syscall(SYS_ptrace, 0, 0, 0, 0)) >= 0 ? 21 : 22; }},
      {"setuid", [] { return ::setuid(0) == 0 ? 23 : 24; }},
      {"sendmsg", [] { return static_cast<int>(::syscall(SYS_sendmsg, 3, nullptr, 0)) >= 0 ? 25 : 26; }},
  };
  for (const Forbidden& f : forbidden) {
    INFO(f.what);
    int st = InConfinedChild(f.attempt);
    CHECK(WIFSIGNALED(st));
    if (WIFSIGNALED(st)) CHECK(WTERMSIG(st) == SIGSYS);
  }
}

bool IsZombieOrGone(pid_t pid) {
  auto state = ProcStatusField(pid, "State");
  return state.empty() || state[0] == 'Z';
}

TEST_CASE("A parser worker that dies during a request leaves the object incomplete and is replaced") {
  auto pool = StartPool(1);
  ScanOptions o;
  o.parser_pool = pool;
  auto scanner = Make(o);
  const std::string zip = MakeArchive("zip", {{"e.com", Eicar()}});
  REQUIRE(scanner->ScanBuffer(zip, "first.zip").verdict == Verdict::kFound);

  auto pids = pool->worker_pids();
  // Stopped, the worker looks alive when leased; it dies with the request in its socket.
  REQUIRE(::kill(pids[0], SIGSTOP) == 0);
  const uint64_t requests_before = pool->stats().requests;
  ScanReport r;
  std::thread scan([&] { r = scanner->ScanBuffer(zip, "second.zip"); });
  // The pool counts a request in the same critical section that leases the
  // idle worker: once counted, the stopped worker is this scan's.
  while (pool->stats().requests == requests_before) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(::kill(pids[0], SIGKILL) == 0);  // our own child
  scan.join();
  INFO(Describe(r));
  CHECK(r.verdict == Verdict::kIncomplete);
  CHECK(r.incomplete == std::vector<std::string>{"parser-worker-crashed (second.zip)"});
  CHECK(pool->stats().workers_lost == 1);

  // A replacement takes over.
  auto again = scanner->ScanBuffer(zip, "third.zip");
  CHECK(again.verdict == Verdict::kFound);
  CHECK(pool->worker_pids() != pids);
}

TEST_CASE("A parser worker that died while idle is replaced before it gets an object") {
  auto pool = StartPool(2);
  auto pids = pool->worker_pids();
  for (pid_t pid : pids) REQUIRE(::kill(pid, SIGKILL) == 0);  // our own children
  for (pid_t pid : pids) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!IsZombieOrGone(pid) && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ScanOptions o;
  o.parser_pool = pool;
  auto r = Make(o)->ScanBuffer(MakeArchive("zip", {{"e.com", Eicar()}}), "after.zip");
  INFO(Describe(r));
  CHECK(r.verdict == Verdict::kFound);
  CHECK(r.incomplete.empty());
  CHECK(pool->stats().workers_lost == 2);
}

TEST_CASE("A parser worker that hangs is killed at the scan time limit and the object is incomplete time") {
  auto pool = StartPool(1);
  auto pids = pool->worker_pids();
  REQUIRE(::kill(pids[0], SIGSTOP) == 0);  // stands in for a parser stuck in a loop
  ScanOptions o;
  o.parser_pool = pool;
  o.limits.max_scan_time = std::chrono::milliseconds(300);
  auto start = std::chrono::steady_clock::now();
  auto r = Make(o)->ScanBuffer(MakeArchive("zip", {{"a.txt", "a"}}), "stuck.zip");
  auto took = std::chrono::steady_clock::now() - start;
  INFO(Describe(r));
  CHECK(r.verdict == Verdict::kIncomplete);
  CHECK(r.incomplete == std::vector<std::string>{"time (stuck.zip)"});
  CHECK(took < std::chrono::seconds(10));
  CHECK(pool->stats().workers_lost == 1);
  CHECK(::kill(pids[0], 0) != 0);  // killed and reaped
}

// A stand-in for a compromised worker: says hello, then sends `frames` (shell
// printf escapes) in answer to the first request.
std::shared_ptr<ParserPool> LyingPool(const testing::TempDir& dir, const std::string& frames) {
  const std::string script = dir.Write("liar.sh",
                                       "#!/bin/sh\n"
                                       "printf 'H\\0\\0\\0\\0\\0\\0\\0\\0' >&3\n"
                                       "head -c 9 <&3 >/dev/null\n"
                                       "printf '" + frames + "' >&3\n"
                                       "exec sleep 30\n");
  REQUIRE(::chmod(script.c_str(), 0700) == 0);
  ParserPoolOptions po;
  po.workers = 1;
  po.executable = script;
  auto pool = ParserPool::Start(po);
  REQUIRE(pool.ok());
  return *pool;
}

TEST_CASE("A parser worker that breaks the protocol is killed and the object is incomplete") {
  testing::TempDir dir;
  struct Lie {
    const char* what;
    std::string frames;
  };
  const Lie lies[] = {
      // A member of 1 TiB: more than max_member_size.
      {"oversized member", "M\\0\\0\\0\\0\\0\\1\\0\\0\\1\\0\\0\\0\\5\\0\\0\\0"},
      // A member named outside the object: path "other!x" (7 bytes), 1 data byte.
      {"foreign member", "M\\20\\0\\0\\0\\0\\0\\0\\0\\1\\0\\0\\0\\7\\0\\0\\0other!xZ"},
      // Depth 0 is the object itself, never a member.
      {"depth zero", "M\\20\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\7\\0\\0\\0liar!xyZ"},
      {"unknown frame", "Q\\0\\0\\0\\0\\0\\0\\0\\0"},
  };
  for (const Lie& lie : lies) {
    INFO(lie.what);
    auto pool = LyingPool(dir, lie.frames);
    ScanOptions o;
    o.parser_pool = pool;
    o.limits.max_scan_time = std::chrono::seconds(10);
    auto start = std::chrono::steady_clock::now();
    auto r = Make(o)->ScanBuffer(MakeArchive("zip", {{"a.txt", "a"}}), "liar");
    INFO(Describe(r));
    CHECK(r.verdict == Verdict::kIncomplete);
    CHECK(r.incomplete == std::vector<std::string>{"parser-worker-protocol (liar)"});
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
    CHECK(pool->stats().workers_lost == 1);
  }
}

TEST_CASE("A parser pool whose executable cannot serve fails to start with a clear error") {
  testing::TempDir dir;
  const std::string script = dir.Write("mute.sh", "#!/bin/sh\nexit 3\n");
  REQUIRE(::chmod(script.c_str(), 0700) == 0);
  ParserPoolOptions po;
  po.executable = script;
  auto pool = ParserPool::Start(po);
  REQUIRE(!pool.ok());
  CHECK(pool.status().message().find("did not start: exited with status 3") != std::string::npos);
  po.executable = dir.path() + "/missing";
  pool = ParserPool::Start(po);
  REQUIRE(!pool.ok());
  CHECK(pool.status().message().find("missing") != std::string::npos);
}

TEST_CASE("Several threads share one parser pool and each gets its own answers") {
  auto pool = SharedPool();
  // Samples and signatures are made up front: the helpers use Catch's
  // assertions, which are not thread-safe.
  auto sigs = testing::TestSignatures();
  std::vector<std::vector<std::string>> samples(4);
  for (int t = 0; t < 4; ++t) {
    for (int i = 0; i < 20; ++i) {
      const bool bad = (i + t) % 2 == 0;
      samples[t].push_back(MakeArchive("zip", {{"m", bad ? Eicar() : "clean " + std::to_string(t * 100 + i)}}));
    }
  }
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      ScanOptions o;
      o.parser_pool = pool;
      auto s = Scanner::Create(sigs, o);
      if (!s.ok()) {
        ++wrong;
        return;
      }
      for (int i = 0; i < 20; ++i) {
        const bool bad = (i + t) % 2 == 0;
        std::string name = "t" + std::to_string(t) + "-" + std::to_string(i) + ".zip";
        auto r = (*s)->ScanBuffer(samples[t][i], name);
        if (r.verdict != (bad ? Verdict::kFound : Verdict::kClean)) ++wrong;
        if (bad && (r.findings.empty() || r.findings[0].object != name + "!m")) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(wrong == 0);
}

}  // namespace
}  // namespace mamori::scanner

namespace mamori::scanner {
namespace {

TEST_CASE("Compression formats that need an external program are not decoded and start no process") {
  // libarchive decodes lrzip, lzop (without liblzo2) and grzip by running an
  // external program on the bytes. A scanner must never do that: in a parser
  // worker the filter would kill it (SIGSYS), in process it would be the agent
  // executing a program on attacker input.
  auto pool = SharedPool();
  const uint64_t lost_before = pool->stats().workers_lost;
  const std::string magics[] = {std::string("LRZI\0\6", 6), std::string("\x89LZO\0\r\n\x1a\n", 9), "GRZipII"};
  for (const std::string& magic : magics) {
    INFO("magic " << magic.substr(1, 3));
    const std::string gz = MakeCompressed("gzip", magic + std::string(300, '\2'));
    ScanOptions sandboxed;
    sandboxed.parser_pool = pool;
    auto r = Make(sandboxed)->ScanBuffer(gz, "layered.gz");
    INFO(Describe(r));
    CHECK(r.verdict == Verdict::kClean);
    CHECK(pool->stats().workers_lost == lost_before);
  }
}

}  // namespace
}  // namespace mamori::scanner

namespace mamori::scanner {
namespace {

TEST_CASE("Worker pids can be read from another thread while workers are replaced") {
  // `mamori status` reads them while the spawner replaces dead workers.
  auto pool = StartPool(2);
  const auto first = pool->worker_pids();
  std::atomic<bool> reading{true};
  std::atomic<size_t> reads{0};
  std::thread reader([&] {
    while (reading) {
      reads += pool->worker_pids().size() <= 2 ? 1 : 0;
    }
  });
  for (pid_t pid : first) REQUIRE(::kill(pid, SIGKILL) == 0);  // our own children
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (pool->stats().workers_started < 4 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  reading = false;
  reader.join();
  CHECK(pool->stats().workers_started == 4);
  CHECK(reads > 0);
  for (pid_t pid : pool->worker_pids()) CHECK(std::find(first.begin(), first.end(), pid) == first.end());
}

}  // namespace
}  // namespace mamori::scanner

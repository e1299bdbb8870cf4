// The agent's command handler against real components: the quarantine
// vault, the scanner, signed bundles from mamori-sig, the behavior
// responder's pidfd kill (only ever aimed at this test's own children).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include "command_handler.h"
#include "mamori/behavior/responder.h"
#include "mamori/common/file_util.h"
#include "mamori/scanner/hasher.h"
#include "mamori/scanner/signature_holder.h"
#include "mamori/signatures/bundle.h"
#include "test_util.h"

namespace mamori::agent {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;
using v1::CommandResult;

std::string ReadAll(const std::string& path) {
  auto s = ReadFileToString(path);
  return s.ok() ? *s : std::string();
}

// The handler with real components behind its operations.
struct Fixture {
  TempDir dir;
  std::string data = dir.path() + "/data";
  std::unique_ptr<EventLog> events;
  std::unique_ptr<quarantine::Vault> vault;
  scanner::SignatureHolder sigs{testing::TestSignatures()};
  std::vector<std::string> trusted_keys;
  behavior::Responder responder{behavior::Responder::Options{}, nullptr,
                                [](const std::string&, const std::string&) -> Result<std::string> {
                                  return Status(StatusCode::kUnimplemented, "unused");
                                }};
  std::mutex mu;
  std::condition_variable cv;
  std::vector<CommandResult> results;  // guarded by mu
  std::atomic<int> info_calls{0};
  std::function<void(scanner::TreeScanProgress*)> scan_hook;  // runs inside the scan operation when set
  std::unique_ptr<CommandHandler> handler;

  Fixture() {
    REQUIRE(MakeDirs(data, 0700).ok());
    auto e = EventLog::Open(data + "/events.jsonl");
    REQUIRE(e.ok());
    events = std::move(*e);
    auto v = quarantine::Vault::Open(data + "/quarantine");
    REQUIRE(v.ok());
    vault = std::move(*v);
    Open();
  }

  CommandOps Ops() {
    CommandOps ops;
    ops.scan = [this](const std::vector<std::string>& paths, bool apply_policy, const std::string& command_id,
                      scanner::TreeScanProgress* progress) -> Result<v1::ScanSummary> {
      if (scan_hook) scan_hook(progress);
      scanner::TreeScanOptions o;
      o.threads = 1;
      o.scan.size_prefilter = false;
      Status s = scanner::ScanTree(sigs.Current(), paths, o, [&](const scanner::ScanReport& r) {
        if (r.verdict != scanner::Verdict::kFound) return;
        events->Append(Event("scan_finding").Str("path", r.path).Str("command_id", command_id));
        if (apply_policy) (void)vault->Quarantine(r.path, -1, r.findings.front().signature, sigs.Current()->version);
      }, progress);
      if (!s.ok()) return s;
      v1::ScanSummary sum;
      sum.set_files_scanned(progress->files);
      sum.set_findings(progress->found);
      sum.set_exit_code(progress->found > 0 ? 1 : 0);
      return sum;
    };
    ops.quarantine_list = [this] { return vault->List(); };
    ops.quarantine_restore = [this](const std::string& id, const std::string& to, bool) {
      quarantine::RestoreOptions o;
      o.to = to;
      return vault->Restore(id, o);
    };
    ops.quarantine_delete = [this](const std::string& id) { return vault->Delete(id); };
    ops.install_bundle = [this](const std::string& path) {
      uint64_t current = sigs.version();
      auto keys = trusted_keys;
      return sigs.InstallInBackground([path, keys, current] {
                   return signatures::LoadSignatureSources({path}, keys, current);
                 }).get();
    };
    ops.info = [this] {
      ++info_calls;
      v1::AgentInfo i;
      i.set_signature_version(sigs.Current()->version);
      i.set_bundle_version(sigs.Current()->bundle_version);
      return i;
    };
    ops.kill = [this](pid_t pid, uint64_t start_time_ns, bool tree) -> Status {
      if (responder.Protected(pid)) return Status(StatusCode::kPermissionDenied, "protected process");
      auto out = tree ? responder.KillTree(pid, start_time_ns) : responder.KillProcess(pid, start_time_ns);
      return out.done ? Status::Ok() : Status(StatusCode::kFailedPrecondition, out.detail);
    };
    return ops;
  }

  void Open() {
    CommandHandlerOptions o;
    o.data_dir = data;
    o.progress_interval = 50ms;
    auto h = CommandHandler::Create(o, Ops(), events.get(), [this](const CommandResult& r) {
      {
        std::lock_guard<std::mutex> lock(mu);
        results.push_back(r);
      }
      cv.notify_all();
      return Status::Ok();
    });
    REQUIRE(h.ok());
    handler = std::move(*h);
    REQUIRE(handler->Start().ok());
  }

  // The final result of `id` (waits up to 10 s); outcome UNSPECIFIED if none.
  CommandResult Final(const std::string& id) {
    std::unique_lock<std::mutex> lock(mu);
    CommandResult out;
    cv.wait_for(lock, 10s, [&] {
      for (const auto& r : results) {
        if (r.command_id() == id && r.outcome() != CommandResult::OUTCOME_RUNNING) {
          out = r;
          return true;
        }
      }
      return false;
    });
    return out;
  }
  size_t Count(const std::string& id, CommandResult::Outcome o) {
    std::lock_guard<std::mutex> lock(mu);
    size_t n = 0;
    for (const auto& r : results) n += r.command_id() == id && r.outcome() == o ? 1 : 0;
    return n;
  }
};

v1::Command Cmd(const std::string& id) {
  v1::Command c;
  c.set_command_id(id);
  c.set_requested_by("alice");
  return c;
}

TEST_CASE("command journal: drops finished entries past retention and a torn last line and keeps the rest") {
  TempDir dir;
  const int64_t now = 100LL * 24 * 3600 * 1'000'000'000;
  const int64_t day = 24LL * 3600 * 1'000'000'000;
  const std::string path = dir.path() + "/commands.journal";
  const std::string result = HexEncode("result-bytes");
  REQUIRE(WriteFileAtomically(path, "A old " + std::to_string(now - 40 * day) + "\n" +
                                        "D old " + std::to_string(now - 40 * day) + " " + result + "\n" +
                                        "A stuck " + std::to_string(now - 40 * day) + "\n" +
                                        "A recent " + std::to_string(now - day) + "\n" +
                                        "D recent " + std::to_string(now - day) + " -\n" +
                                        "garbage line\n" +
                                        "A torn 12").ok());
  auto j = CommandJournal::Open(path, {}, now);
  REQUIRE(j.ok());
  CHECK_FALSE((*j)->Find("old"));
  CHECK_FALSE((*j)->Find("torn"));
  REQUIRE((*j)->Find("recent"));
  CHECK((*j)->Find("recent")->done);
  CHECK((*j)->Find("recent")->result.empty());
  // Unfinished entries stay whatever their age: they still owe a result.
  REQUIRE((*j)->Find("stuck"));
  CHECK((*j)->Unfinished() == std::vector<std::string>{"stuck"});
  CHECK((*j)->Accept("recent", now).code() == StatusCode::kAlreadyExists);
  REQUIRE((*j)->Finish("stuck", "r", now).ok());
  const std::string text = ReadAll(path);
  CHECK(text.find("old") == std::string::npos);
  CHECK(text.find("torn") == std::string::npos);
  CHECK(text.find("garbage") == std::string::npos);
  CHECK(text.find("D stuck " + std::to_string(now - 40 * day) + " " + HexEncode("r") + "\n") != std::string::npos);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("command handler: a command runs at most once across a restart of the handler on the same data dir") {
  Fixture f;
  v1::Command c = Cmd("c1");
  c.mutable_get_status();
  REQUIRE(f.handler->OnCommand(c));
  CHECK(f.Final("c1").outcome() == CommandResult::OUTCOME_SUCCEEDED);
  CHECK(f.info_calls == 1);
  // The result is reported before the journal records it: wait for both.
  for (int i = 0; i < 500 && f.handler->finished() < 1; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(f.handler->finished() == 1);
  // Delivered again (a lost ack): acknowledged, the stored result re-reported, not run.
  REQUIRE(f.handler->OnCommand(c));
  CHECK(f.Count("c1", CommandResult::OUTCOME_SUCCEEDED) == 2);
  CHECK(f.info_calls == 1);
  // A new handler on the same data dir (an agent restart) remembers it.
  f.handler.reset();
  f.Open();
  REQUIRE(f.handler->OnCommand(c));
  std::this_thread::sleep_for(200ms);
  CHECK(f.info_calls == 1);
  CHECK(f.Count("c1", CommandResult::OUTCOME_SUCCEEDED) == 3);
}

TEST_CASE("command handler: a command interrupted by a restart is reported failed and never run again") {
  Fixture f;
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool in_scan = false, release = false;
  f.scan_hook = [&](scanner::TreeScanProgress*) {
    std::unique_lock<std::mutex> lock(gate_mu);
    in_scan = true;
    gate_cv.notify_all();
    gate_cv.wait(lock, [&] { return release; });
  };
  f.handler.reset();
  f.Open();
  TempDir target;
  target.Write("a.txt", "clean");
  v1::Command c = Cmd("scan-1");
  c.mutable_scan()->add_paths(target.path());
  REQUIRE(f.handler->OnCommand(c));
  {
    std::unique_lock<std::mutex> lock(gate_mu);
    REQUIRE(gate_cv.wait_for(lock, 10s, [&] { return in_scan; }));
  }
  // The journal holds the accepted command: what a crash right now leaves behind.
  const std::string journal = ReadAll(f.data + "/commands.journal");
  CHECK(journal.find("A scan-1 ") != std::string::npos);
  {
    std::lock_guard<std::mutex> lock(gate_mu);
    release = true;
  }
  gate_cv.notify_all();
  CHECK(f.Final("scan-1").outcome() == CommandResult::OUTCOME_SUCCEEDED);
  // Restart from the journal as it was mid-scan.
  f.handler.reset();
  REQUIRE(WriteFileAtomically(f.data + "/commands.journal", journal).ok());
  f.results.clear();
  f.scan_hook = [](scanner::TreeScanProgress*) { FAIL("the interrupted scan ran again"); };
  f.Open();
  CommandResult r = f.Final("scan-1");
  CHECK(r.outcome() == CommandResult::OUTCOME_FAILED);
  CHECK(r.error_code() == static_cast<int>(StatusCode::kAborted));
  CHECK(r.error().find("interrupted") != std::string::npos);
  REQUIRE(f.handler->OnCommand(c));
  std::this_thread::sleep_for(200ms);
  CHECK(f.Count("scan-1", CommandResult::OUTCOME_RUNNING) == 0);
}

TEST_CASE("command handler: expired and unknown commands and bad arguments are rejected with their code") {
  Fixture f;
  struct Case {
    std::string id;
    std::function<void(v1::Command*)> build;
    StatusCode code;
    std::string why;
  };
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  std::vector<Case> cases = {
      {"expired", [&](v1::Command* c) { c->mutable_get_status(); c->set_expires_at_ns(now - 1'000'000'000); },
       StatusCode::kDeadlineExceeded, "expired"},
      {"unknown", [](v1::Command*) {}, StatusCode::kUnimplemented, "unknown command kind"},
      {"isolate", [](v1::Command* c) { c->mutable_isolate()->set_enable(true); }, StatusCode::kUnimplemented, "isolation"},
      {"scan-none", [](v1::Command* c) { c->mutable_scan(); }, StatusCode::kInvalidArgument, "no paths"},
      {"scan-rel", [](v1::Command* c) { c->mutable_scan()->add_paths("etc"); }, StatusCode::kInvalidArgument, "not absolute"},
      {"restore-id", [](v1::Command* c) { c->mutable_quarantine_restore()->set_quarantine_id("../x"); },
       StatusCode::kInvalidArgument, "32 hex digits"},
      {"delete-id", [](v1::Command* c) { c->mutable_quarantine_delete(); }, StatusCode::kInvalidArgument, "32 hex digits"},
      {"push-url", [](v1::Command* c) { c->mutable_signature_push()->set_url("https://example.invalid/b"); },
       StatusCode::kUnimplemented, "url"},
      {"push-empty", [](v1::Command* c) { c->mutable_signature_push(); }, StatusCode::kInvalidArgument, "no bundle"},
      {"kill-0", [](v1::Command* c) { c->mutable_kill_process()->set_pid(0); }, StatusCode::kInvalidArgument, "pid 0"},
      {"kill-sig", [](v1::Command* c) { c->mutable_kill_process()->set_pid(12345); c->mutable_kill_process()->set_signal(15); },
       StatusCode::kInvalidArgument, "signal 15"},
  };
  for (const auto& k : cases) {
    INFO(k.id);
    v1::Command c = Cmd(k.id);
    k.build(&c);
    REQUIRE(f.handler->OnCommand(c));
    CommandResult r = f.Final(k.id);
    CHECK(r.outcome() == CommandResult::OUTCOME_REJECTED);
    CHECK(r.error_code() == static_cast<int>(k.code));
    CHECK(r.error().find(k.why) != std::string::npos);
  }
  // A command id the journal cannot hold is not acknowledged.
  v1::Command bad = Cmd("bad id/with slash");
  bad.mutable_get_status();
  CHECK_FALSE(f.handler->OnCommand(bad));
}

TEST_CASE("command handler: a remote scan reports progress and a summary and quarantines only with apply_policy") {
  Fixture f;
  TempDir target;
  for (int i = 0; i < 20; ++i) target.Write("clean" + std::to_string(i) + ".txt", "nothing here " + std::to_string(i));
  const std::string eicar = target.Write("sub/eicar.com", testing::Eicar());
  v1::Command report_only = Cmd("scan-report");
  report_only.mutable_scan()->add_paths(target.path());
  REQUIRE(f.handler->OnCommand(report_only));
  CommandResult r = f.Final("scan-report");
  REQUIRE(r.outcome() == CommandResult::OUTCOME_SUCCEEDED);
  CHECK(r.scan().files_scanned() == 21);
  CHECK(r.scan().findings() == 1);
  CHECK(r.scan().exit_code() == 1);
  CHECK(f.Count("scan-report", CommandResult::OUTCOME_RUNNING) >= 1);
  CHECK(::access(eicar.c_str(), F_OK) == 0);
  CHECK(ReadAll(f.data + "/events.jsonl").find("\"command_id\":\"scan-report\"") != std::string::npos);

  v1::Command apply = Cmd("scan-apply");
  apply.mutable_scan()->add_paths(target.path());
  apply.mutable_scan()->set_apply_policy(true);
  REQUIRE(f.handler->OnCommand(apply));
  CHECK(f.Final("scan-apply").outcome() == CommandResult::OUTCOME_SUCCEEDED);
  CHECK(::access(eicar.c_str(), F_OK) != 0);
  auto items = f.vault->List();
  REQUIRE(items.ok());
  CHECK(items->size() == 1);
}

TEST_CASE("command handler: a long scan does not hold up a kill of the test's own child") {
  Fixture f;
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool release = false;
  f.scan_hook = [&](scanner::TreeScanProgress*) {
    std::unique_lock<std::mutex> lock(gate_mu);
    gate_cv.wait_for(lock, 20s, [&] { return release; });
  };
  TempDir target;
  target.Write("a.txt", "clean");
  v1::Command scan = Cmd("long-scan");
  scan.mutable_scan()->add_paths(target.path());
  REQUIRE(f.handler->OnCommand(scan));

  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::alarm(30);
    for (;;) ::pause();
  }
  v1::Command kill = Cmd("kill-child");
  kill.mutable_kill_process()->set_pid(child);
  REQUIRE(f.handler->OnCommand(kill));
  CommandResult r = f.Final("kill-child");
  CHECK(r.outcome() == CommandResult::OUTCOME_SUCCEEDED);
  int st = 0;
  REQUIRE(::waitpid(child, &st, 0) == child);
  CHECK(WIFSIGNALED(st));
  CHECK(WTERMSIG(st) == SIGKILL);
  CHECK(f.Count("long-scan", CommandResult::OUTCOME_SUCCEEDED) == 0);  // still running
  const std::string log = ReadAll(f.data + "/events.jsonl");
  CHECK(log.find("\"type\":\"command_kill\"") != std::string::npos);
  CHECK(log.find("\"requested_by\":\"alice\"") != std::string::npos);
  {
    std::lock_guard<std::mutex> lock(gate_mu);
    release = true;
  }
  gate_cv.notify_all();
  CHECK(f.Final("long-scan").outcome() == CommandResult::OUTCOME_SUCCEEDED);
}

TEST_CASE("command handler: kill with tree takes the test's own child and its grandchild") {
  Fixture f;
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::alarm(30);
    pid_t grandchild = ::fork();
    if (grandchild == 0) {
      ::alarm(30);
      for (;;) ::pause();
    }
    (void)!::write(fds[1], &grandchild, sizeof grandchild);
    for (;;) ::pause();
  }
  ::close(fds[1]);
  pid_t grandchild = 0;
  REQUIRE(::read(fds[0], &grandchild, sizeof grandchild) == static_cast<ssize_t>(sizeof grandchild));
  ::close(fds[0]);
  REQUIRE(grandchild > 0);
  v1::Command c = Cmd("kill-tree");
  c.mutable_kill_process()->set_pid(child);
  c.mutable_kill_process()->set_tree(true);
  REQUIRE(f.handler->OnCommand(c));
  CHECK(f.Final("kill-tree").outcome() == CommandResult::OUTCOME_SUCCEEDED);
  int st = 0;
  REQUIRE(::waitpid(child, &st, 0) == child);
  CHECK(WIFSIGNALED(st));
  // The grandchild (reparented when its parent died) is gone too.
  bool gone = false;
  for (int i = 0; i < 1000 && !gone; ++i) {
    gone = ::kill(grandchild, 0) != 0 || ReadAll("/proc/" + std::to_string(grandchild) + "/stat").find(") Z") != std::string::npos;
    if (!gone) std::this_thread::sleep_for(10ms);
  }
  CHECK(gone);
}

TEST_CASE("command handler: kill refuses the agent itself and PID 1 and kernel threads and a reused pid") {
  Fixture f;
  struct Case {
    std::string id;
    pid_t pid;
  };
  // Refused before any signal is sent: the agent (this process), init, kthreadd.
  for (const Case& k : {Case{"self", ::getpid()}, Case{"init", 1}, Case{"kthreadd", 2}}) {
    INFO(k.id);
    v1::Command c = Cmd(k.id);
    c.mutable_kill_process()->set_pid(k.pid);
    REQUIRE(f.handler->OnCommand(c));
    CommandResult r = f.Final(k.id);
    CHECK(r.outcome() == CommandResult::OUTCOME_REJECTED);
    CHECK(r.error_code() == static_cast<int>(StatusCode::kPermissionDenied));
  }
  // Our own child, named with a start time it does not have: not touched.
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::alarm(30);
    for (;;) ::pause();
  }
  v1::Command c = Cmd("reused");
  c.mutable_kill_process()->set_pid(child);
  c.mutable_kill_process()->set_start_time_ns(1'000'000'000);  // 1970
  REQUIRE(f.handler->OnCommand(c));
  CommandResult r = f.Final("reused");
  CHECK(r.outcome() == CommandResult::OUTCOME_FAILED);
  CHECK(r.error().find("start time") != std::string::npos);
  CHECK(::waitpid(child, nullptr, WNOHANG) == 0);  // alive
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  // A child that is gone.
  v1::Command gone = Cmd("gone");
  gone.mutable_kill_process()->set_pid(child);
  REQUIRE(f.handler->OnCommand(gone));
  CHECK(f.Final("gone").outcome() == CommandResult::OUTCOME_FAILED);
}

TEST_CASE("command handler: quarantine list restore and delete act on the vault and are logged locally") {
  Fixture f;
  TempDir target;
  const std::string path = target.Write("bad.com", testing::Eicar());
  REQUIRE(::chmod(path.c_str(), 0640) == 0);
  timespec times[2] = {{1'600'000'000, 0}, {1'600'000'000, 123'000'000}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
  auto rec = f.vault->Quarantine(path, -1, "Eicar-Test", "v1");
  REQUIRE(rec.ok());
  REQUIRE(::access(path.c_str(), F_OK) != 0);

  v1::Command list = Cmd("list");
  list.mutable_quarantine_list();
  REQUIRE(f.handler->OnCommand(list));
  CommandResult l = f.Final("list");
  REQUIRE(l.outcome() == CommandResult::OUTCOME_SUCCEEDED);
  REQUIRE(l.quarantine_list().entries_size() == 1);
  CHECK(l.quarantine_list().entries(0).quarantine_id() == rec->id);
  CHECK(l.quarantine_list().entries(0).original_path() == path);

  v1::Command restore = Cmd("restore");
  restore.mutable_quarantine_restore()->set_quarantine_id(rec->id);
  REQUIRE(f.handler->OnCommand(restore));
  CommandResult r = f.Final("restore");
  REQUIRE(r.outcome() == CommandResult::OUTCOME_SUCCEEDED);
  CHECK(r.quarantine_entry().quarantine_id() == rec->id);
  CHECK(ReadAll(path) == testing::Eicar());
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);
  CHECK(st.st_mtim.tv_sec == 1'600'000'000);
  CHECK(st.st_mtim.tv_nsec == 123'000'000);

  v1::Command again = Cmd("restore-again");
  again.mutable_quarantine_restore()->set_quarantine_id(rec->id);
  REQUIRE(f.handler->OnCommand(again));
  CommandResult a = f.Final("restore-again");
  CHECK(a.outcome() == CommandResult::OUTCOME_FAILED);
  CHECK(a.error_code() == static_cast<int>(StatusCode::kNotFound));

  auto rec2 = f.vault->Quarantine(path, -1, "Eicar-Test", "v1");
  REQUIRE(rec2.ok());
  v1::Command del = Cmd("delete");
  del.mutable_quarantine_delete()->set_quarantine_id(rec2->id);
  REQUIRE(f.handler->OnCommand(del));
  CommandResult d = f.Final("delete");
  CHECK(d.outcome() == CommandResult::OUTCOME_SUCCEEDED);
  CHECK(d.quarantine_entry().original_path() == path);
  CHECK(f.vault->List()->empty());
  v1::Command del2 = Cmd("delete-again");
  del2.mutable_quarantine_delete()->set_quarantine_id(rec2->id);
  REQUIRE(f.handler->OnCommand(del2));
  CHECK(f.Final("delete-again").outcome() == CommandResult::OUTCOME_FAILED);

  const std::string log = ReadAll(f.data + "/events.jsonl");
  CHECK(log.find("\"type\":\"quarantine_restore\"") != std::string::npos);
  CHECK(log.find("\"type\":\"quarantine_delete\"") != std::string::npos);
  CHECK(log.find("\"command_id\":\"restore\"") != std::string::npos);
  CHECK(log.find("\"command_id\":\"delete\"") != std::string::npos);
  CHECK(log.find("\"requested_by\":\"alice\"") != std::string::npos);
}

TEST_CASE("command handler: signature push installs a signed bundle and refuses forged and downgraded ones") {
  Fixture f;
  const std::string sig = MAMORI_SIG_BINARY;
  const std::string d = f.dir.path();
  f.dir.Write("b/yara/one.yar", "rule PushedOne { strings: $a = \"MAMORI-PUSHED-ONE\" condition: $a }\n");
  REQUIRE(std::system((sig + " keygen " + d + "/pub > /dev/null").c_str()) == 0);
  REQUIRE(std::system((sig + " keygen " + d + "/other > /dev/null").c_str()) == 0);
  for (const char* v : {"1", "2"}) {
    REQUIRE(std::system((sig + " build " + d + "/b -o " + d + "/v" + v + ".mbundle --version " + v + " --key " + d +
                         "/pub.key > /dev/null").c_str()) == 0);
  }
  REQUIRE(std::system((sig + " build " + d + "/b -o " + d + "/forged.mbundle --version 9 --key " + d +
                       "/other.key > /dev/null").c_str()) == 0);
  f.trusted_keys = {d + "/pub.pub"};
  auto push = [&](const std::string& id, const std::string& file, std::string sha = "") {
    v1::Command c = Cmd(id);
    std::string bytes = ReadAll(file);
    c.mutable_signature_push()->set_bundle(bytes);
    c.mutable_signature_push()->set_sha256(sha.empty() ? scanner::Hasher::Of(bytes).hex(scanner::DigestKind::kSha256) : sha);
    REQUIRE(f.handler->OnCommand(c));
    return f.Final(id);
  };
  CommandResult v2 = push("push-2", d + "/v2.mbundle");
  REQUIRE(v2.outcome() == CommandResult::OUTCOME_SUCCEEDED);
  CHECK(v2.status().bundle_version() == 2);
  CHECK(f.sigs.version() == 2);

  CommandResult down = push("push-1", d + "/v1.mbundle");
  CHECK(down.outcome() == CommandResult::OUTCOME_FAILED);
  CHECK(down.error().find("downgrade or replay refused") != std::string::npos);

  CommandResult forged = push("push-forged", d + "/forged.mbundle");
  CHECK(forged.outcome() == CommandResult::OUTCOME_FAILED);
  CHECK(forged.error().find("bundle refused") != std::string::npos);
  CHECK(forged.error().find("not among the trusted keys") != std::string::npos);
  CHECK(forged.error_code() == static_cast<int>(StatusCode::kPermissionDenied));
  CHECK(f.sigs.version() == 2);

  CommandResult bad_sum = push("push-sum", d + "/v2.mbundle", std::string(64, '0'));
  CHECK(bad_sum.outcome() == CommandResult::OUTCOME_FAILED);
  CHECK(bad_sum.error_code() == static_cast<int>(StatusCode::kDataLoss));
  CHECK(bad_sum.error().find("sha256") != std::string::npos);
  // Pushed bundle copies are not left behind.
  CHECK(std::filesystem::is_empty(f.data + "/bundles"));
}

TEST_CASE("command handler: stopping cancels a running scan and fails the commands still queued") {
  Fixture f;
  std::atomic<bool> in_scan{false};
  f.scan_hook = [&](scanner::TreeScanProgress* progress) {
    in_scan = true;
    for (int i = 0; i < 1000 && !progress->cancel; ++i) std::this_thread::sleep_for(10ms);
  };
  TempDir target;
  target.Write("a.txt", "clean");
  v1::Command first = Cmd("scan-a");
  first.mutable_scan()->add_paths(target.path());
  v1::Command second = Cmd("scan-b");
  second.mutable_scan()->add_paths(target.path());
  REQUIRE(f.handler->OnCommand(first));
  REQUIRE(f.handler->OnCommand(second));
  for (int i = 0; i < 1000 && !in_scan; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(in_scan);  // the stop must find scan-a running
  f.handler->Stop();
  CommandResult a = f.Final("scan-a");
  CommandResult b = f.Final("scan-b");
  CHECK(a.outcome() == CommandResult::OUTCOME_FAILED);
  CHECK(a.error_code() == static_cast<int>(StatusCode::kAborted));
  CHECK(a.error().find("cancelled") != std::string::npos);
  CHECK(b.outcome() == CommandResult::OUTCOME_FAILED);
  CHECK(b.error().find("stopped before running it") != std::string::npos);
  // A stopped handler acknowledges nothing: the server sends it again later.
  v1::Command late = Cmd("late");
  late.mutable_get_status();
  CHECK_FALSE(f.handler->OnCommand(late));
}

}  // namespace
}  // namespace mamori::agent

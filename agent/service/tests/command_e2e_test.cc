// Server commands end to end: the real mamori-server (SQLite store, mTLS on
// 127.0.0.1) and the real mamori-agent (enrolled with a token). Commands are
// inserted through the server's Store API, exactly as the console does, and
// checked in the store: states, results, findings carrying the command id.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "agent_test_util.h"
#include "mamori/common/file_util.h"
#include "mamori/scanner/hasher.h"
#include "mamori/server/sqlite_store.h"
#include "mamori/v1/command.pb.h"
#include "mamori/v1/event.pb.h"
#include "server_process.h"

namespace mamori::agent {
namespace {

using namespace std::chrono_literals;
using server::CommandRecord;
using server::CommandState;
using testing::AgentProcess;
using testing::TempDir;
using testing::WaitFor;
using v1::CommandResult;

std::string ReadAll(const std::string& path) {
  auto s = ReadFileToString(path);
  return s.ok() ? *s : std::string();
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Setup {
  TempDir dir;
  std::string sig = MAMORI_SIG_BINARY;
  std::string sock = dir.path() + "/agent.sock";
  std::string config;
  std::unique_ptr<telemetry::testing::ServerProcess> server;
  std::unique_ptr<server::Store> store;
  std::unique_ptr<AgentProcess> agent;
  std::string agent_id;

  // `extra_telemetry`: more lines of the agent's telemetry section.
  explicit Setup(const std::string& extra_telemetry = "") {
    const std::string d = dir.path();
    // Signed bundles: version 1 at start (EICAR), version 2 pushed later, one signed by a stranger.
    testing::MakeSignedTestBundles(dir);

    REQUIRE(MakeDirs(d + "/server", 0700).ok());
    server = std::make_unique<telemetry::testing::ServerProcess>(
        MAMORI_SERVER_BINARY, d + "/server", "stream:\n  heartbeat_interval: 1s\n  command_poll_interval: 100ms\n");
    Status s = server->Start();
    INFO(s.ToString());
    REQUIRE(s.ok());
    auto ca = server->CaCertificate();
    auto token = server->CreateToken();
    REQUIRE(ca.ok());
    REQUIRE(token.ok());
    dir.Write("ca.crt", *ca);
    dir.Write("token", *token);
    config = dir.Write("agent.yaml", "data_dir: " + d + "/agent\ncontrol_socket: " + sock + "\nsignatures: [" + d +
                                         "/v1.mbundle]\ntrusted_keys: [" + d + "/pub.pub]\n"
                                         "onaccess:\n  enabled: false\n  action: quarantine\nbehavior:\n  enabled: false\n"
                                         "telemetry:\n  servers: [" + server->address() + "]\n  ca_cert: " + d +
                                         "/ca.crt\n  enrollment_token_file: " + d + "/token\n" + extra_telemetry);
    server::SqliteStoreOptions so;
    so.path = server->db_path();
    auto st = server::OpenSqliteStore(so);
    REQUIRE(st.ok());
    store = std::move(*st);
    StartAgent();
    REQUIRE(WaitFor([&] {
      auto agents = store->ListAgents({});
      if (!agents.ok() || agents->empty()) return false;
      agent_id = agents->front().agent.agent_id;
      return true;
    }, 20s));
  }

  void StartAgent() { agent = std::make_unique<AgentProcess>(config, sock, dir.path() + "/agent.log"); }
  // The agent's exit status after SIGTERM (0 = clean); its log on failure.
  void StopAgent() {
    int code = agent->Stop();
    INFO("agent log:\n" << ReadAll(dir.path() + "/agent.log"));
    CHECK(code == 0);
  }

  std::string Queue(v1::Command c) {
    server::NewCommand n;
    n.agent_id = agent_id;
    n.kind = c.kind_case() == v1::Command::kScan ? "scan" : "other";
    n.requested_by = "e2e-admin";
    n.created_at_ns = NowNs();
    n.expires_at_ns = n.created_at_ns + 600'000'000'000;
    n.args = c.SerializeAsString();
    auto id = store->CreateCommand(n);
    REQUIRE(id.ok());
    return *id;
  }

  // Waits (20 s at most) for a final state; returns the record and its result.
  CommandRecord Wait(const std::string& id, CommandResult* result) {
    CommandRecord rec;
    bool final = WaitFor([&] {
      auto r = store->GetCommand(id);
      if (!r.ok()) return false;
      rec = *r;
      return server::CommandStateFinal(rec.state);
    }, 20s);
    INFO("command " << id << " state " << server::CommandStateName(rec.state) << "; agent log:\n"
                    << ReadAll(dir.path() + "/agent.log"));
    REQUIRE(final);
    REQUIRE(result->ParseFromString(rec.result));
    return rec;
  }
};

TEST_CASE("commands e2e: remote scan quarantines EICAR and restore brings the file back") {
  Setup s;
  TempDir target;
  const std::string bad = target.Write("sub/eicar.com", testing::Eicar());
  target.Write("clean.txt", "nothing to see");
  REQUIRE(::chmod(bad.c_str(), 0640) == 0);
  timespec times[2] = {{1'600'000'000, 0}, {1'600'000'000, 250'000'000}};
  REQUIRE(::utimensat(AT_FDCWD, bad.c_str(), times, 0) == 0);

  v1::Command scan;
  scan.mutable_scan()->add_paths(target.path());
  scan.mutable_scan()->set_apply_policy(true);
  const std::string scan_id = s.Queue(scan);
  CommandResult r;
  CommandRecord rec = s.Wait(scan_id, &r);
  CHECK(rec.state == CommandState::kSucceeded);
  CHECK(r.scan().files_scanned() == 2);
  CHECK(r.scan().findings() == 1);
  CHECK(r.scan().exit_code() == 1);
  // The finding is stored with the command id.
  REQUIRE(WaitFor([&] {
    server::EventQuery q;
    q.agent_id = s.agent_id;
    q.types = {"scan_finding"};
    auto page = s.store->QueryEvents(q);
    if (!page.ok()) return false;
    for (const auto& e : page->events) {
      v1::Event ev;
      if (ev.ParseFromString(e.row.payload) && ev.scan_finding().command_id() == scan_id &&
          ev.scan_finding().path() == bad) {
        return true;
      }
    }
    return false;
  }, 10s));
  // Quarantined (the action runs right after the finding).
  REQUIRE(WaitFor([&] { return ::access(bad.c_str(), F_OK) != 0; }, 10s));
  v1::Command list;
  list.mutable_quarantine_list();
  CommandResult lr;
  CHECK(s.Wait(s.Queue(list), &lr).state == CommandState::kSucceeded);
  REQUIRE(lr.quarantine_list().entries_size() == 1);
  const std::string qid = lr.quarantine_list().entries(0).quarantine_id();
  CHECK(lr.quarantine_list().entries(0).original_path() == bad);

  v1::Command restore;
  restore.mutable_quarantine_restore()->set_quarantine_id(qid);
  restore.mutable_quarantine_restore()->set_allow_list(true);
  CommandResult rr;
  const std::string restore_id = s.Queue(restore);
  CHECK(s.Wait(restore_id, &rr).state == CommandState::kSucceeded);
  CHECK(rr.quarantine_entry().quarantine_id() == qid);
  CHECK(ReadAll(bad) == testing::Eicar());
  struct stat st {};
  REQUIRE(::stat(bad.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);
  CHECK(st.st_mtim.tv_sec == 1'600'000'000);
  CHECK(st.st_mtim.tv_nsec == 250'000'000);
  // The server has the restore as a QuarantineAction from this command.
  CHECK(WaitFor([&] {
    server::EventQuery q;
    q.agent_id = s.agent_id;
    q.types = {"quarantine_restore"};
    auto page = s.store->QueryEvents(q);
    if (!page.ok()) return false;
    for (const auto& e : page->events) {
      v1::Event ev;
      if (ev.ParseFromString(e.row.payload) && ev.quarantine().command_id() == restore_id &&
          ev.quarantine().source() == "command" && ev.quarantine().quarantine_id() == qid) {
        return true;
      }
    }
    return false;
  }, 10s));
  // Allow-listed: a second scan neither reports nor takes it again.
  CommandResult r2;
  CHECK(s.Wait(s.Queue(scan), &r2).state == CommandState::kSucceeded);
  CHECK(r2.scan().files_scanned() == 2);
  CHECK(r2.scan().findings() == 0);
  CHECK(r2.scan().exit_code() == 0);
  std::this_thread::sleep_for(300ms);
  CHECK(::access(bad.c_str(), F_OK) == 0);
  // The agent's own log names who asked.
  const std::string log = ReadAll(s.dir.path() + "/agent/events.jsonl");
  CHECK(log.find("\"type\":\"quarantine_restore\"") != std::string::npos);
  CHECK(log.find("\"requested_by\":\"e2e-admin\"") != std::string::npos);
  s.StopAgent();
}

TEST_CASE("commands e2e: a command queued while the agent is down runs after it reconnects") {
  Setup s;
  s.StopAgent();
  v1::Command status;
  status.mutable_get_status();
  const std::string id = s.Queue(status);
  std::this_thread::sleep_for(300ms);
  auto pending = s.store->GetCommand(id);
  REQUIRE(pending.ok());
  CHECK(pending->state == CommandState::kPending);
  s.StartAgent();
  CommandResult r;
  CHECK(s.Wait(id, &r).state == CommandState::kSucceeded);
  CHECK(r.status().bundle_version() == 1);
  CHECK(!r.status().hostname().empty());
  s.StopAgent();
}

TEST_CASE("commands e2e: a signed bundle push is installed and reported and a forged one is refused with the reason") {
  Setup s;
  auto push = [&](const std::string& file) {
    v1::Command c;
    std::string bytes = ReadAll(file);
    c.mutable_signature_push()->set_bundle(bytes);
    c.mutable_signature_push()->set_sha256(scanner::Hasher::Of(bytes).hex(scanner::DigestKind::kSha256));
    return s.Queue(c);
  };
  CommandResult ok;
  CommandRecord rec = s.Wait(push(s.dir.path() + "/v2.mbundle"), &ok);
  CHECK(rec.state == CommandState::kSucceeded);
  CHECK(ok.status().bundle_version() == 2);
  const std::string version = ok.status().signature_version();
  CHECK(!version.empty());
  // Heartbeats carry the version in use to the inventory.
  CHECK(WaitFor([&] {
    auto a = s.store->GetAgent(s.agent_id);
    return a.ok() && a->signature_version == version;
  }, 10s));
  // The new rules are in use.
  TempDir target;
  target.Write("two.txt", "MAMORI-PUSHED-TWO");
  v1::Command scan;
  scan.mutable_scan()->add_paths(target.path());
  CommandResult sr;
  CHECK(s.Wait(s.Queue(scan), &sr).state == CommandState::kSucceeded);
  CHECK(sr.scan().findings() == 1);

  CommandResult forged;
  CommandRecord frec = s.Wait(push(s.dir.path() + "/forged.mbundle"), &forged);
  CHECK(frec.state == CommandState::kFailed);
  CHECK(frec.error.find("not among the trusted keys") != std::string::npos);
  CHECK(forged.error_code() == static_cast<int>(StatusCode::kPermissionDenied));
  auto a = s.store->GetAgent(s.agent_id);
  REQUIRE(a.ok());
  CHECK(a->signature_version == version);
  // The pushed bundle outlives a restart of the agent.
  s.StopAgent();
  s.StartAgent();
  v1::Command status;
  status.mutable_get_status();
  CommandResult after;
  CHECK(s.Wait(s.Queue(status), &after).state == CommandState::kSucceeded);
  CHECK(after.status().bundle_version() == 2);
  CHECK(after.status().signature_version() == version);
  s.StopAgent();
}

TEST_CASE("commands e2e: the agent renews its client certificate and keeps streaming and taking commands") {
  Setup s("  renew_certificate_at_percent: 0\n");  // always due: renewed at the first connect (then hourly at most)
  server::AuditQuery q;
  q.action = "agent.renew";
  REQUIRE(WaitFor([&] {
    auto trail = s.store->ListAudit(q);
    return trail.ok() && !trail->empty() && trail->front().target == s.agent_id;
  }, 20s));
  // The agent reconnected with the new certificate: the replaced one is refused from now on.
  REQUIRE(WaitFor([&] {
    auto a = s.store->GetAgent(s.agent_id);
    return a.ok() && a->previous_cert_fingerprint.empty();
  }, 20s));
  v1::Command status;
  status.mutable_get_status();
  CommandResult r;
  CHECK(s.Wait(s.Queue(status), &r).state == CommandState::kSucceeded);
  const testing::CommandResult st = testing::RunCommand(std::string(MAMORI_BINARY) + " status --socket " + s.sock + " 2>&1");
  INFO(st.out);
  CHECK(st.out.find("(renewed 1x)") != std::string::npos);
  CHECK(st.out.find("certificate valid 36") != std::string::npos);  // 365 days from now, less the 5 min backdating
  auto trail = s.store->ListAudit(q);
  REQUIRE(trail.ok());
  CHECK(trail->size() == 1);  // at most one renewal an hour, however often it is due
  s.StopAgent();
}

}  // namespace
}  // namespace mamori::agent

// The mamorictl binary end to end against an in-process mamori-server over
// TLS: connection settings, tables and --json output, exit codes and the
// error messages people see.
#include <catch2/catch.hpp>
#include <fstream>
#include <thread>

#include "console_test_util.h"
#include "mamori/common/json.h"

namespace mamori::server::testing {
namespace {

struct Ctl {
  TestServer& ts;
  std::string ca_file;
  std::string token;
  // Runs mamorictl with the connection settings and `args`; stderr kept too when `with_stderr`.
  mamori::testing::CommandResult Run(const std::string& args, bool with_stderr = false) const {
    const std::string cmd = std::string("MAMORI_TOKEN='") + token + "' " + MAMORICTL_BINARY + " --server " +
                            ts.target() + " --ca " + ca_file + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
    return mamori::testing::RunCommand(cmd);
  }
};

std::string WriteCa(TestServer& ts) {
  const std::string path = ts.dir() + "/ca.pem";
  std::ofstream(path) << ts.ca_pem();
  return path;
}

std::vector<json::Value> JsonLines(const std::string& out) {
  std::vector<json::Value> v;
  size_t start = 0;
  while (start < out.size()) {
    size_t end = out.find('\n', start);
    if (end == std::string::npos) end = out.size();
    if (end > start) {
      Result<json::Value> j = json::Parse(out.substr(start, end - start));
      INFO(out.substr(start, end - start));
      REQUIRE(j.ok());
      v.push_back(std::move(*j));
    }
    start = end + 1;
  }
  return v;
}

std::string Str(const json::Value& v, const char* key) {
  const json::Value* f = v.Find(key);
  return f == nullptr ? std::string() : f->AsString();
}

TEST_CASE("mamorictl: whoami agents and commands as tables and json with documented exit codes", "[console]") {
  TestServer ts;
  const EnrolledAgent agent = EnrollNew(ts);
  Ctl admin{ts, WriteCa(ts), AddUser(ts.store(), "alice", "admin")};
  Ctl analyst{ts, admin.ca_file, AddUser(ts.store(), "bob", "analyst")};

  auto r = admin.Run("whoami");
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("alice (admin)") != std::string::npos);
  r = analyst.Run("--json whoami");
  REQUIRE(r.exit_code == 0);
  auto who = JsonLines(r.out);
  REQUIRE(who.size() == 1);
  CHECK(Str(who[0], "role") == "analyst");

  r = admin.Run("agents list");
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("AGENT") == 0);
  CHECK(r.out.find(agent.agent_id) != std::string::npos);
  r = admin.Run("--json agents list");
  auto agents = JsonLines(r.out);
  REQUIRE(agents.size() == 1);
  CHECK(Str(agents[0], "agent_id") == agent.agent_id);

  // Offline agent: the command is queued, and the output says so.
  r = admin.Run("kill " + agent.agent_id + " 4242 --tree");
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("queued (agent offline)") != std::string::npos);
  r = admin.Run("--json commands " + agent.agent_id);
  REQUIRE(r.exit_code == 0);
  auto cmds = JsonLines(r.out);
  REQUIRE(cmds.size() == 1);
  CHECK(Str(cmds[0], "kind") == "kill_process");
  CHECK(Str(cmds[0], "state") == "pending");
  CHECK(Str(cmds[0], "requested_by") == "alice");

  // Refusals: permission, unknown agent, bad token, usage: exit 2 with a clear message.
  r = analyst.Run("quarantine restore " + agent.agent_id + " " + std::string(32, 'a'), true);
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("permission denied") != std::string::npos);
  r = admin.Run("scan no-such-agent /tmp", true);
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("not found") != std::string::npos);
  CHECK(r.out.find("no-such-agent") != std::string::npos);
  Ctl nobody{ts, admin.ca_file, "mmu_" + std::string(64, '7')};
  r = nobody.Run("agents list", true);
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("unauthenticated") != std::string::npos);
  r = admin.Run("frobnicate", true);
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("unknown command") != std::string::npos);

  // The audit trail, as the admin reads it.
  r = admin.Run("--json audit --actor bob");
  REQUIRE(r.exit_code == 0);
  auto audit = JsonLines(r.out);
  REQUIRE_FALSE(audit.empty());
  CHECK(Str(audit[0], "action") == "command.quarantine_restore");
  CHECK(Str(audit[0], "result") == "denied");
}

TEST_CASE("mamorictl: scan --wait shows progress and exits with the scan result", "[console]") {
  TestServer ts;
  const EnrolledAgent agent = EnrollNew(ts);
  Ctl analyst{ts, WriteCa(ts), AddUser(ts.store(), "bob", "analyst")};
  Stream s(TlsChannel(ts.target(), ts.ca_pem(), agent.key_pem, agent.cert_pem));
  mamori::v1::Welcome w;
  REQUIRE(s.Hello(&w));

  // Plays the agent: acknowledges the scan, reports progress, then one finding.
  std::thread agent_side([&] {
    mamori::v1::ServerMessage m;
    if (!s.Read(&m) || !m.has_command()) return;
    const std::string id = m.command().command_id();
    mamori::v1::AgentMessage ack;
    ack.mutable_command_ack()->set_command_id(id);
    s.Write(ack);
    // Progress once mamorictl waits (its WaitCommand is audited when it
    // starts), held for ten of the server's 100 ms polls.
    if (!WaitForAudit(ts.store(), "bob", "console.commands.wait")) return;
    mamori::v1::AgentMessage running = MakeBatch(1, 1);
    auto* r = running.mutable_batch()->mutable_events(0)->mutable_command_result();
    r->set_command_id(id);
    r->set_outcome(mamori::v1::CommandResult::OUTCOME_RUNNING);
    r->mutable_scan()->set_files_scanned(7);
    s.SendBatch(running);
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    mamori::v1::AgentMessage done = MakeBatch(2, 3);
    auto* f = done.mutable_batch()->mutable_events(0)->mutable_scan_finding();
    f->set_path("/srv/eicar.com");
    f->set_signature("Eicar-Test-Signature");
    f->set_command_id(id);
    r = done.mutable_batch()->mutable_events(1)->mutable_command_result();
    r->set_command_id(id);
    r->set_outcome(mamori::v1::CommandResult::OUTCOME_SUCCEEDED);
    r->mutable_scan()->set_files_scanned(12);
    r->mutable_scan()->set_findings(1);
    r->mutable_scan()->set_exit_code(1);
    s.SendBatch(done);
  });
  auto r = analyst.Run("scan " + agent.agent_id + " /srv --wait");
  agent_side.join();
  CHECK(r.exit_code == 1);  // found
  CHECK(r.out.find("running: 7 files") != std::string::npos);
  CHECK(r.out.find("succeeded: 12 files, 1 findings") != std::string::npos);

  r = analyst.Run("findings");
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("/srv/eicar.com Eicar-Test-Signature") != std::string::npos);
  r = analyst.Run("--json findings --agent " + agent.agent_id);
  auto findings = JsonLines(r.out);
  REQUIRE(findings.size() == 1);
  CHECK(Str(findings[0], "type") == "scan_finding");
  CHECK(Str(findings[0], "agent_id") == agent.agent_id);
  CHECK(s.Finish().ok());
}

}  // namespace
}  // namespace mamori::server::testing

namespace mamori::server::testing {
namespace {

TEST_CASE("mamorictl: a console user certificate from the server CA authenticates and agent certificates do not",
          "[console]") {
  TestServer ts;
  AddUser(ts.store(), "carol", "analyst");
  const KeyAndCsr kc = MakeKeyAndCsr("whatever");  // the CSR's subject is ignored
  const std::string csr = ts.dir() + "/carol.csr";
  std::ofstream(csr) << kc.csr_pem;
  const std::string admin = std::string(MAMORI_SERVER_BINARY) + " --data-dir " + ts.dir() + "/data user cert ";
  auto issued = mamori::testing::RunCommand(admin + "carol --csr " + csr + " 2>/dev/null");
  REQUIRE(issued.exit_code == 0);
  REQUIRE(issued.out.find("BEGIN CERTIFICATE") != std::string::npos);
  CHECK(mamori::testing::RunCommand(admin + "dave --csr " + csr + " 2>/dev/null").exit_code == 1);  // no such user

  auto stub = mamori::v1::ConsoleService::NewStub(TlsChannel(ts.target(), ts.ca_pem(), kc.key_pem, issued.out));
  mamori::v1::WhoAmIResponse who;
  grpc::Status s = stub->WhoAmI(Ctx("").get(), {}, &who);
  REQUIRE(s.ok());
  CHECK(who.name() == "carol");
  CHECK(who.role() == "analyst");

  // mamorictl with --cert/--key instead of a token.
  const std::string cert_file = ts.dir() + "/carol.crt", key_file = ts.dir() + "/carol.key";
  std::ofstream(cert_file) << issued.out;
  std::ofstream(key_file) << kc.key_pem;
  Ctl ctl{ts, WriteCa(ts), ""};
  auto r = ctl.Run("--cert " + cert_file + " --key " + key_file + " whoami");
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("carol (analyst)") != std::string::npos);

  // An agent's certificate is not a console credential.
  const EnrolledAgent agent = EnrollNew(ts);
  auto as_agent =
      mamori::v1::ConsoleService::NewStub(TlsChannel(ts.target(), ts.ca_pem(), agent.key_pem, agent.cert_pem));
  s = as_agent->WhoAmI(Ctx("").get(), {}, &who);
  CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(s.error_message().find("not a console user certificate") != std::string::npos);

  // Disabling the user covers its certificates.
  REQUIRE(ts.store().SetUserDisabled("carol", true).ok());
  s = stub->WhoAmI(Ctx("").get(), {}, &who);
  CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(s.error_message().find("disabled") != std::string::npos);
}

}  // namespace
}  // namespace mamori::server::testing

namespace mamori::server::testing {
namespace {

TEST_CASE("mamorictl: signatures push is admin only and status shows each agent's refusal reason", "[console]") {
  TestServer ts;
  const EnrolledAgent agent = EnrollNew(ts);
  Ctl admin{ts, WriteCa(ts), AddUser(ts.store(), "alice", "admin")};
  Ctl analyst{ts, admin.ca_file, AddUser(ts.store(), "bob", "analyst")};
  const std::string bundle = ts.dir() + "/forged.mbundle";
  std::ofstream(bundle) << "not really a signed bundle";

  auto r = analyst.Run("signatures push " + bundle, true);
  CHECK(r.exit_code == 2);
  CHECK(r.out.find("permission denied") != std::string::npos);
  r = admin.Run("signatures push " + bundle + " --version 2026.11.27 --agents " + agent.agent_id);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("signature_push") != std::string::npos);

  // The agent refuses the forged bundle (as the real agent would), with its reason.
  Stream s(TlsChannel(ts.target(), ts.ca_pem(), agent.key_pem, agent.cert_pem));
  mamori::v1::Welcome w;
  REQUIRE(s.Hello(&w));
  mamori::v1::ServerMessage m;
  REQUIRE(s.Read(&m));
  REQUIRE(m.command().has_signature_push());
  CHECK(m.command().signature_push().bundle() == "not really a signed bundle");
  CHECK(m.command().signature_push().sha256().size() == 64);  // filled in by the server
  mamori::v1::AgentMessage result = MakeBatch(1, 1);
  auto* res = result.mutable_batch()->mutable_events(0)->mutable_command_result();
  res->set_command_id(m.command().command_id());
  res->set_outcome(mamori::v1::CommandResult::OUTCOME_REJECTED);
  res->set_error("bundle signature does not verify");
  REQUIRE(s.SendBatch(result) == 1);

  r = analyst.Run("--json signatures status");
  REQUIRE(r.exit_code == 0);
  auto rows = JsonLines(r.out);
  REQUIRE(rows.size() == 1);
  CHECK(Str(rows[0], "agent_id") == agent.agent_id);
  CHECK(Str(rows[0], "push_version") == "2026.11.27");
  CHECK(Str(rows[0], "push_state") == "rejected");
  CHECK(Str(rows[0], "push_error") == "bundle signature does not verify");
  r = analyst.Run("signatures status");
  CHECK(r.out.find("bundle signature does not verify") != std::string::npos);
  CHECK(s.Finish().ok());
}

}  // namespace
}  // namespace mamori::server::testing

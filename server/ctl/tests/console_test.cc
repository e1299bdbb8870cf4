// ConsoleService against an in-process mamori-server over TLS: token auth,
// roles and their audit trail, queued commands for offline agents, command
// states driven by a test agent stream, and live event following.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "console_test_util.h"

namespace mamori::server::testing {
namespace {

using mamori::v1::AgentMessage;
using mamori::v1::ConsoleService;

TEST_CASE("a valid token authenticates and wrong or disabled tokens are UNAUTHENTICATED", "[console]") {
  TestServer ts;
  const std::string alice = AddUser(ts.store(), "alice", "admin");
  auto stub = ConsoleService::NewStub(TlsChannel(ts.target(), ts.ca_pem()));

  mamori::v1::WhoAmIResponse who;
  grpc::Status s = stub->WhoAmI(Ctx(alice).get(), {}, &who);
  REQUIRE(s.ok());
  CHECK(who.name() == "alice");
  CHECK(who.role() == "admin");

  s = stub->WhoAmI(Ctx("mmu_" + std::string(64, '1')).get(), {}, &who);
  CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  s = stub->WhoAmI(Ctx("").get(), {}, &who);
  CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(s.error_message().find("Bearer") != std::string::npos);

  REQUIRE(ts.store().SetUserDisabled("alice", true).ok());
  s = stub->WhoAmI(Ctx(alice).get(), {}, &who);
  CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(s.error_message().find("disabled") != std::string::npos);

  const std::vector<AuditEntry> refused = AuditOf(ts.store(), "unauthenticated");
  REQUIRE(refused.size() == 3);
  for (const AuditEntry& e : refused) CHECK(e.result == "unauthenticated");
  CHECK(refused[0].details.find("disabled") != std::string::npos);  // newest first
  const std::vector<AuditEntry> ok = AuditOf(ts.store(), "alice");
  REQUIRE(ok.size() == 1);
  CHECK(ok[0].action == "console.whoami");
  CHECK(ok[0].result == "ok");
}

TEST_CASE("analysts may scan but restore kill and push are PERMISSION_DENIED and audited", "[console]") {
  TestServer ts;
  const std::string bob = AddUser(ts.store(), "bob", "analyst");
  const EnrolledAgent agent = EnrollNew(ts);
  auto stub = ConsoleService::NewStub(TlsChannel(ts.target(), ts.ca_pem()));

  mamori::v1::CommandStatus st;
  mamori::v1::CreateCommandRequest scan = Request(agent.agent_id);
  scan.mutable_command()->mutable_scan()->add_paths("/tmp/x");
  REQUIRE(stub->CreateCommand(Ctx(bob).get(), scan, &st).ok());
  CHECK(st.state() == "pending");

  mamori::v1::CreateCommandRequest restore = Request(agent.agent_id);
  restore.mutable_command()->mutable_quarantine_restore()->set_quarantine_id(std::string(32, 'a'));
  grpc::Status s = stub->CreateCommand(Ctx(bob).get(), restore, &st);
  CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(s.error_message().find("analyst") != std::string::npos);

  mamori::v1::CreateCommandRequest kill = Request(agent.agent_id);
  kill.mutable_command()->mutable_kill_process()->set_pid(4242);
  CHECK(stub->CreateCommand(Ctx(bob).get(), kill, &st).error_code() == grpc::StatusCode::PERMISSION_DENIED);

  mamori::v1::CreateCommandRequest push = Request(agent.agent_id);
  push.mutable_command()->mutable_signature_push()->set_bundle("bundle bytes");
  CHECK(stub->CreateCommand(Ctx(bob).get(), push, &st).error_code() == grpc::StatusCode::PERMISSION_DENIED);

  // Nothing was queued for the refused ones.
  CommandQuery q;
  q.agent_id = agent.agent_id;
  Result<std::vector<CommandRecord>> cmds = ts.store().ListCommands(q);
  REQUIRE(cmds.ok());
  REQUIRE(cmds->size() == 1);
  CHECK((*cmds)[0].kind == "scan");

  const std::vector<AuditEntry> trail = AuditOf(ts.store(), "bob");
  REQUIRE(trail.size() == 4);  // newest first
  CHECK(trail[0].action == "command.signature_push");
  CHECK(trail[0].result == "denied");
  CHECK(trail[1].action == "command.kill_process");
  CHECK(trail[1].result == "denied");
  CHECK(trail[1].details == "pid=4242");
  CHECK(trail[2].action == "command.quarantine_restore");
  CHECK(trail[2].result == "denied");
  CHECK(trail[2].target == agent.agent_id);
  CHECK(trail[3].action == "command.scan");
  CHECK(trail[3].result == "ok");

  // The analyst reads the audit log through the console too.
  mamori::v1::ListAuditRequest areq;
  areq.set_actor("bob");
  mamori::v1::ListAuditResponse aresp;
  REQUIRE(stub->ListAudit(Ctx(bob).get(), areq, &aresp).ok());
  REQUIRE(aresp.records_size() == 4);
  CHECK(aresp.records(0).result() == "denied");
}

TEST_CASE("a command for an offline agent is queued with the configured expiry", "[console]") {
  TestServer ts([](ServerConfig& c) { c.command_expiry = std::chrono::hours(2); });
  const std::string alice = AddUser(ts.store(), "alice", "admin");
  const EnrolledAgent agent = EnrollNew(ts);
  auto stub = ConsoleService::NewStub(TlsChannel(ts.target(), ts.ca_pem()));

  mamori::v1::CreateCommandRequest kill = Request(agent.agent_id);
  kill.mutable_command()->mutable_kill_process()->set_pid(4242);
  kill.mutable_command()->mutable_kill_process()->set_tree(true);
  mamori::v1::CommandStatus st;
  REQUIRE(stub->CreateCommand(Ctx(alice).get(), kill, &st).ok());
  CHECK(st.state() == "pending");
  CHECK_FALSE(st.agent_online());
  CHECK_FALSE(st.final());
  CHECK(st.requested_by() == "alice");
  const int64_t ttl = st.expires_at_ns() - st.created_at_ns();
  CHECK(ttl == int64_t{2} * 3600 * 1'000'000'000);
  Result<CommandRecord> rec = ts.store().GetCommand(st.command_id());
  REQUIRE(rec.ok());
  mamori::v1::Command sent;
  REQUIRE(sent.ParseFromString(rec->args));
  CHECK(sent.kill_process().tree());
  CHECK(sent.requested_by() == "alice");
  CHECK(sent.expires_at_ns() == st.expires_at_ns());

  grpc::Status s = stub->CreateCommand(Ctx(alice).get(), Request("no-such-agent", kill.command()), &st);
  CHECK(s.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(s.error_message().find("no-such-agent") != std::string::npos);
  mamori::v1::CreateCommandRequest empty = Request(agent.agent_id);
  CHECK(stub->CreateCommand(Ctx(alice).get(), empty, &st).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  const std::vector<AuditEntry> trail = AuditOf(ts.store(), "alice");
  REQUIRE(trail.size() == 3);
  CHECK(trail[1].result.find("error") == 0);
  CHECK(trail[2].details.find("pid=4242 tree") != std::string::npos);
}

TEST_CASE("WaitCommand streams running then succeeded from the agent results", "[console]") {
  TestServer ts;
  const std::string bob = AddUser(ts.store(), "bob", "analyst");
  const EnrolledAgent agent = EnrollNew(ts);
  auto stub = ConsoleService::NewStub(TlsChannel(ts.target(), ts.ca_pem()));
  Stream s(TlsChannel(ts.target(), ts.ca_pem(), agent.key_pem, agent.cert_pem));
  mamori::v1::Welcome w;
  REQUIRE(s.Hello(&w));

  mamori::v1::CreateCommandRequest scan = Request(agent.agent_id);
  scan.mutable_command()->mutable_scan()->add_paths("/srv/data");
  mamori::v1::CommandStatus st;
  REQUIRE(stub->CreateCommand(Ctx(bob).get(), scan, &st).ok());
  CHECK(st.agent_online());
  const std::string id = st.command_id();
  mamori::v1::ServerMessage m;
  REQUIRE(s.Read(&m));  // delivered at once (the console pokes the housekeeper)
  REQUIRE(m.has_command());
  CHECK(m.command().command_id() == id);
  AgentMessage ack;
  ack.mutable_command_ack()->set_command_id(id);
  REQUIRE(s.Write(ack));

  mamori::v1::WaitCommandRequest wreq;
  wreq.set_command_id(id);
  wreq.set_timeout_s(20);
  auto wctx = Ctx(bob);
  auto reader = stub->WaitCommand(wctx.get(), wreq);
  std::vector<std::string> seen;
  mamori::v1::CommandStatus last;
  // The server polls the command every 100 ms: each state is held until the
  // waiter has seen it (at most 10 s), so a busy machine cannot skip one.
  std::atomic<bool> saw_delivered{false}, saw_running{false};
  auto hold_until = [](const std::atomic<bool>& seen_it) {
    for (int i = 0; i < 1000 && !seen_it; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  };
  std::thread agent_side([&] {
    // The agent reports progress, then the final result, as sequenced events.
    hold_until(saw_delivered);
    AgentMessage running = MakeBatch(1, 1);
    auto* r = running.mutable_batch()->mutable_events(0)->mutable_command_result();
    r->set_command_id(id);
    r->set_outcome(mamori::v1::CommandResult::OUTCOME_RUNNING);
    r->mutable_scan()->set_files_scanned(10);
    s.SendBatch(running);
    hold_until(saw_running);
    AgentMessage done = MakeBatch(2, 2);
    r = done.mutable_batch()->mutable_events(0)->mutable_command_result();
    r->set_command_id(id);
    r->set_outcome(mamori::v1::CommandResult::OUTCOME_SUCCEEDED);
    r->mutable_scan()->set_files_scanned(25);
    r->mutable_scan()->set_findings(1);
    r->mutable_scan()->set_exit_code(1);
    s.SendBatch(done);
  });
  while (reader->Read(&st)) {
    if (seen.empty() || seen.back() != st.state()) seen.push_back(st.state());
    if (st.state() == "delivered") saw_delivered = true;
    if (st.state() == "running") saw_running = true;
    last = st;
  }
  agent_side.join();
  CHECK(reader->Finish().ok());
  REQUIRE(seen.size() >= 2);
  CHECK(std::find(seen.begin(), seen.end(), "running") != seen.end());
  CHECK(seen.back() == "succeeded");
  CHECK(last.final());
  CHECK(last.result().scan().files_scanned() == 25);
  CHECK(last.result().scan().exit_code() == 1);
  CHECK(s.Finish().ok());
}

TEST_CASE("FollowEvents delivers an event ingested after it started", "[console]") {
  TestServer ts;
  const std::string bob = AddUser(ts.store(), "bob", "analyst");
  const EnrolledAgent agent = EnrollNew(ts);
  auto stub = ConsoleService::NewStub(TlsChannel(ts.target(), ts.ca_pem()));
  Stream s(TlsChannel(ts.target(), ts.ca_pem(), agent.key_pem, agent.cert_pem));
  mamori::v1::Welcome w;
  REQUIRE(s.Hello(&w));
  REQUIRE(s.SendBatch(MakeBatch(1, 3)) == 3);  // before the follow: not delivered

  mamori::v1::EventFilter f;
  f.set_agent_id(agent.agent_id);
  auto fctx = Ctx(bob);
  fctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
  auto reader = stub->FollowEvents(fctx.get(), f);
  // The follow has started once its audit row exists (the server takes its
  // start time before writing it).
  REQUIRE(WaitForAudit(ts.store(), "bob", "console.events.follow"));
  AgentMessage live = MakeBatch(4, 4);  // a live event carries the agent's current time
  live.mutable_batch()->mutable_events(0)->set_timestamp_ns(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  REQUIRE(s.SendBatch(live) == 4);
  mamori::v1::ConsoleEvent e;
  REQUIRE(reader->Read(&e));
  CHECK(e.agent_id() == agent.agent_id);
  CHECK(e.event().sequence() == 4);
  CHECK_FALSE(e.type().empty());
  fctx->TryCancel();
  while (reader->Read(&e)) {
  }
  reader->Finish();
  CHECK(s.Finish().ok());

  // QueryEvents sees all four, with paging.
  mamori::v1::EventFilter q;
  q.set_agent_id(agent.agent_id);
  q.set_limit(3);
  q.set_oldest_first(true);
  mamori::v1::EventPageResponse page;
  REQUIRE(stub->QueryEvents(Ctx(bob).get(), q, &page).ok());
  REQUIRE(page.events_size() == 3);
  REQUIRE_FALSE(page.next_page_token().empty());
  q.set_page_token(page.next_page_token());
  REQUIRE(stub->QueryEvents(Ctx(bob).get(), q, &page).ok());
  REQUIRE(page.events_size() == 1);
  CHECK(page.events(0).event().sequence() == 4);
  q.set_page_token("garbage");
  CHECK(stub->QueryEvents(Ctx(bob).get(), q, &page).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_CASE("the quarantine view follows quarantine events and the agent's list result", "[console]") {
  TestServer ts;
  const std::string bob = AddUser(ts.store(), "bob", "analyst");
  const EnrolledAgent agent = EnrollNew(ts);
  auto stub = ConsoleService::NewStub(TlsChannel(ts.target(), ts.ca_pem()));
  Stream s(TlsChannel(ts.target(), ts.ca_pem(), agent.key_pem, agent.cert_pem));
  mamori::v1::Welcome w;
  REQUIRE(s.Hello(&w));
  AgentMessage b = MakeBatch(1, 3);
  for (int i = 0; i < 3; ++i) {
    auto* qa = b.mutable_batch()->mutable_events(i)->mutable_quarantine();
    qa->set_action(i < 2 ? mamori::v1::QuarantineAction::ACTION_QUARANTINE
                         : mamori::v1::QuarantineAction::ACTION_RESTORE);
    qa->set_outcome(mamori::v1::QuarantineAction::OUTCOME_SUCCEEDED);
    qa->set_quarantine_id(i == 1 ? std::string(32, 'b') : std::string(32, 'a'));
    qa->set_path(i == 1 ? "/tmp/b.exe" : "/tmp/a.exe");
    qa->set_signature("Eicar-Test-Signature");
  }
  REQUIRE(s.SendBatch(b) == 3);
  mamori::v1::ListQuarantineRequest req;
  req.set_agent_id(agent.agent_id);
  mamori::v1::ListQuarantineResponse resp;
  REQUIRE(stub->ListQuarantine(Ctx(bob).get(), req, &resp).ok());
  REQUIRE(resp.items_size() == 1);  // a was restored
  CHECK(resp.items(0).entry().quarantine_id() == std::string(32, 'b'));
  CHECK(resp.items(0).entry().original_path() == "/tmp/b.exe");
  CHECK(resp.items(0).source() == "events");
  req.set_agent_id("nobody");
  CHECK(stub->ListQuarantine(Ctx(bob).get(), req, &resp).error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(s.Finish().ok());
}

}  // namespace
}  // namespace mamori::server::testing

namespace mamori::server::testing {
namespace {

TEST_CASE("server.yaml sets the command expiry and refuses a bad one with file and line", "[console]") {
  Result<ServerConfig> c = ParseServerConfig("console:\n  command_expiry: 2h\n", "server.yaml");
  REQUIRE(c.ok());
  CHECK(c->command_expiry == std::chrono::hours(2));
  CHECK(ParseServerConfig("", "server.yaml")->command_expiry == std::chrono::hours(7 * 24));
  Result<ServerConfig> bad = ParseServerConfig("console:\n  command_expiry: 1s\n", "server.yaml");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("server.yaml:2") != std::string::npos);
  CHECK_FALSE(ParseServerConfig("console:\n  command_expiry_typo: 2h\n", "server.yaml").ok());
}

}  // namespace
}  // namespace mamori::server::testing

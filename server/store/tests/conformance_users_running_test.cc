// Store conformance: console users and the 'running' command state (see conformance.h).
#include <catch2/catch.hpp>

#include "conformance.h"

namespace mamori::server::conformance {

TEMPLATE_TEST_CASE("commands: running is progress and never overrides a final result", "[conformance]",
                   MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto store = OpenOrFail(f);
  REQUIRE(store->UpsertAgent(Agent("a1")).ok());
  NewCommand n;
  n.agent_id = "a1";
  n.kind = "scan";
  n.args = "x";
  n.created_at_ns = kT0;
  n.expires_at_ns = kT0 + 100;
  Result<std::string> id = store->CreateCommand(n);
  REQUIRE(id.ok());
  REQUIRE(store->MarkCommandDelivered(*id, kT0 + 1).ok());
  REQUIRE(store->CompleteCommand(*id, CommandState::kRunning, "progress-1", "", kT0 + 2).ok());
  CHECK(store->GetCommand(*id)->state == CommandState::kRunning);
  REQUIRE(store->CompleteCommand(*id, CommandState::kRunning, "progress-2", "", kT0 + 3).ok());
  CHECK(store->GetCommand(*id)->result == "progress-2");
  // A late ack does not move running back to delivered; running is not pending.
  REQUIRE(store->MarkCommandDelivered(*id, kT0 + 4).ok());
  CHECK(store->GetCommand(*id)->state == CommandState::kRunning);
  Result<std::vector<CommandRecord>> pending = store->PendingCommands("a1", kT0 + 4);
  REQUIRE(pending.ok());
  CHECK(pending->empty());
  // A running command is being executed: expiry leaves it alone.
  REQUIRE(store->ExpireCommands(kT0 + 200).ok());
  CHECK(store->GetCommand(*id)->state == CommandState::kRunning);
  CommandQuery q;
  q.states = {CommandState::kRunning};
  Result<std::vector<CommandRecord>> running = store->ListCommands(q);
  REQUIRE(running.ok());
  REQUIRE(running->size() == 1);

  REQUIRE(store->CompleteCommand(*id, CommandState::kSucceeded, "final", "", kT0 + 5).ok());
  REQUIRE(store->CompleteCommand(*id, CommandState::kRunning, "late-progress", "", kT0 + 6).ok());  // no-op
  Result<CommandRecord> done = store->GetCommand(*id);
  REQUIRE(done.ok());
  CHECK(done->state == CommandState::kSucceeded);
  CHECK(done->result == "final");
  CHECK(done->updated_at_ns == kT0 + 5);
  CHECK(CommandStateName(CommandState::kRunning) == "running");
  CHECK(CommandStateFromName("running") == CommandState::kRunning);
  CHECK_FALSE(CommandStateFinal(CommandState::kRunning));
  CHECK(CommandStateFinal(CommandState::kRejected));
}

TEMPLATE_TEST_CASE("users: token shown once and stored hashed, authenticate, disable", "[conformance]",
                   MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto store = OpenOrFail(f);
  UserSpec spec;
  spec.name = "alice";
  spec.role = "admin";
  spec.created_at_ns = kT0;
  spec.created_by = "root";
  Result<NewUserToken> alice = store->CreateUser(spec);
  REQUIRE(alice.ok());
  CHECK(alice->secret.rfind("mmu_", 0) == 0);
  CHECK(alice->secret.size() == 4 + 64);
  CHECK(store->CreateUser(spec).status().code() == StatusCode::kAlreadyExists);
  spec.name = "bob";
  spec.role = "analyst";
  Result<NewUserToken> bob = store->CreateUser(spec);
  REQUIRE(bob.ok());
  CHECK(bob->secret != alice->secret);

  Result<UserRecord> who = store->AuthenticateUser(alice->secret, kT0 + 5);
  REQUIRE(who.ok());
  CHECK(who->name == "alice");
  CHECK(who->role == "admin");
  CHECK(who->token_sha256 == Sha256Hex(alice->secret));
  CHECK(who->last_used_at_ns == kT0 + 5);
  CHECK(store->GetUser("alice")->last_used_at_ns == kT0 + 5);
  CHECK(store->AuthenticateUser("mmu_" + std::string(64, '0'), kT0).status().code() == StatusCode::kUnauthenticated);
  CHECK(store->AuthenticateUser("", kT0).status().code() == StatusCode::kUnauthenticated);

  Result<std::vector<UserRecord>> users = store->ListUsers();
  REQUIRE(users.ok());
  REQUIRE(users->size() == 2);
  CHECK((*users)[0].name == "alice");
  CHECK((*users)[1].name == "bob");
  CHECK((*users)[1].role == "analyst");
  CHECK((*users)[1].created_by == "root");
  for (const UserRecord& u : *users) CHECK(u.token_sha256.find(alice->secret.substr(4)) == std::string::npos);

  REQUIRE(store->SetUserDisabled("bob", true).ok());
  Result<UserRecord> denied = store->AuthenticateUser(bob->secret, kT0 + 6);
  CHECK(denied.status().code() == StatusCode::kUnauthenticated);
  CHECK(denied.status().message().find("disabled") != std::string::npos);
  CHECK(store->GetUser("bob")->disabled);
  REQUIRE(store->SetUserDisabled("bob", false).ok());
  CHECK(store->AuthenticateUser(bob->secret, kT0 + 7).ok());
  CHECK(store->SetUserDisabled("carol", true).code() == StatusCode::kNotFound);
  CHECK(store->GetUser("carol").status().code() == StatusCode::kNotFound);
}

TEMPLATE_TEST_CASE("users: bad names and roles are refused", "[conformance]", MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto store = OpenOrFail(f);
  UserSpec spec;
  spec.created_at_ns = kT0;
  spec.role = "admin";
  for (const char* bad : {"", "with space", "semi;colon", "quote'"}) {
    spec.name = bad;
    CHECK(store->CreateUser(spec).status().code() == StatusCode::kInvalidArgument);
  }
  spec.name = std::string(65, 'a');
  CHECK(store->CreateUser(spec).status().code() == StatusCode::kInvalidArgument);
  spec.name = "carol";
  spec.role = "root";
  Result<NewUserToken> r = store->CreateUser(spec);
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  CHECK(r.status().message().find("admin or analyst") != std::string::npos);
  CHECK(store->ListUsers()->empty());
}

}  // namespace mamori::server::conformance

namespace mamori::server::conformance {

TEMPLATE_TEST_CASE("audit: each entry keeps its result", "[conformance]", MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto store = OpenOrFail(f);
  AuditEntry e;
  e.at_ns = kT0;
  e.actor = "bob";
  e.action = "command.quarantine_restore";
  e.target = "agent-1";
  e.result = "denied";
  REQUIRE(store->AppendAudit(e).ok());
  e.actor = "alice";
  e.result = "ok";
  REQUIRE(store->AppendAudit(e).ok());
  AuditQuery q;
  q.actor = "bob";
  Result<std::vector<AuditEntry>> bob = store->ListAudit(q);
  REQUIRE(bob.ok());
  REQUIRE(bob->size() == 1);
  CHECK((*bob)[0].result == "denied");
  CHECK((*bob)[0].target == "agent-1");
  q.actor.clear();
  CHECK(store->ListAudit(q)->front().result == "ok");
}

}  // namespace mamori::server::conformance

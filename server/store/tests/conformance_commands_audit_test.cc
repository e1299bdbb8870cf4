// Store conformance: commands and the audit log (see conformance.h).
#include <catch2/catch.hpp>

#include <set>
#include <algorithm>
#include <tuple>

#include "conformance.h"

namespace mamori::server::conformance {

// ---- commands -------------------------------------------------------------------

TEMPLATE_TEST_CASE("commands: pending, delivered, completed, and the first result wins", "[conformance]",
                   MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto store = OpenOrFail(f);
  NewCommand n;
  n.agent_id = "a1";
  n.kind = "scan";
  n.args = std::string("\x0a\x05/home\x00", 8);  // opaque bytes, NUL included
  n.requested_by = "alice";
  n.created_at_ns = kT0;
  CHECK(store->CreateCommand(n).status().code() == StatusCode::kNotFound);  // no such agent
  REQUIRE(store->UpsertAgent(Agent("a1")).ok());
  Result<std::string> id = store->CreateCommand(n);
  REQUIRE(id.ok());
  CHECK(id->size() == 32);
  n.kind = "get_status";
  n.created_at_ns = kT0 + 1;
  Result<std::string> id2 = store->CreateCommand(n);
  REQUIRE(id2.ok());

  Result<std::vector<CommandRecord>> pending = store->PendingCommands("a1", kT0 + 2);
  REQUIRE(pending.ok());
  REQUIRE(pending->size() == 2);
  CHECK((*pending)[0].command_id == *id);  // oldest first
  CHECK((*pending)[0].args == std::string("\x0a\x05/home\x00", 8));
  CHECK((*pending)[0].state == CommandState::kPending);
  CHECK((*pending)[0].requested_by == "alice");

  REQUIRE(store->MarkCommandDelivered(*id, kT0 + 3).ok());
  REQUIRE(store->MarkCommandDelivered(*id, kT0 + 4).ok());  // idempotent
  CHECK(store->GetCommand(*id)->state == CommandState::kDelivered);
  CHECK(store->GetCommand(*id)->updated_at_ns == kT0 + 3);
  pending = store->PendingCommands("a1", kT0 + 5);
  REQUIRE(pending.ok());
  REQUIRE(pending->size() == 1);
  CHECK((*pending)[0].command_id == *id2);

  REQUIRE(store->CompleteCommand(*id, CommandState::kSucceeded, "result-1", "", kT0 + 6).ok());
  REQUIRE(store->CompleteCommand(*id, CommandState::kFailed, "result-2", "late", kT0 + 7).ok());  // no-op
  Result<CommandRecord> done = store->GetCommand(*id);
  REQUIRE(done.ok());
  CHECK(done->state == CommandState::kSucceeded);
  CHECK(done->result == "result-1");
  CHECK(done->updated_at_ns == kT0 + 6);
  CHECK(store->CancelCommand(*id, kT0 + 8).code() == StatusCode::kFailedPrecondition);

  REQUIRE(store->CancelCommand(*id2, kT0 + 8).ok());
  CHECK(store->GetCommand(*id2)->state == CommandState::kCancelled);
  // The agent ran it anyway (the cancel raced the delivery): the result wins.
  REQUIRE(store->CompleteCommand(*id2, CommandState::kRejected, "", "unsupported", kT0 + 9).ok());
  CHECK(store->GetCommand(*id2)->state == CommandState::kRejected);
  CHECK(store->GetCommand(*id2)->error == "unsupported");

  CHECK(store->CompleteCommand(*id, CommandState::kPending, "", "", kT0).code() == StatusCode::kInvalidArgument);
  CHECK(store->GetCommand("nope").status().code() == StatusCode::kNotFound);
  CHECK(store->MarkCommandDelivered("nope", kT0).code() == StatusCode::kNotFound);
  CHECK(store->CompleteCommand("nope", CommandState::kFailed, "", "", kT0).code() == StatusCode::kNotFound);
  CHECK(store->CancelCommand("nope", kT0).code() == StatusCode::kNotFound);
}

TEMPLATE_TEST_CASE("commands: expiry and listing", "[conformance]", MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto store = OpenOrFail(f);
  REQUIRE(store->UpsertAgent(Agent("a1")).ok());
  REQUIRE(store->UpsertAgent(Agent("a2")).ok());
  auto create = [&](const std::string& agent, int64_t at, int64_t expires) {
    NewCommand n;
    n.agent_id = agent;
    n.kind = "kill_process";
    n.created_at_ns = at;
    n.expires_at_ns = expires;
    Result<std::string> id = store->CreateCommand(n);
    REQUIRE(id.ok());
    return *id;
  };
  const std::string c1 = create("a1", kT0 + 1, kT0 + 100);
  const std::string c2 = create("a1", kT0 + 2, kT0 + 100);
  const std::string c3 = create("a1", kT0 + 3, 0);  // never expires
  const std::string c4 = create("a2", kT0 + 4, kT0 + 100);
  REQUIRE(store->MarkCommandDelivered(c2, kT0 + 5).ok());
  REQUIRE(store->CompleteCommand(c4, CommandState::kSucceeded, "", "", kT0 + 6).ok());

  CHECK(store->ExpireCommands(kT0 + 99).value() == 0);
  Result<std::vector<CommandRecord>> pending = store->PendingCommands("a1", kT0 + 100);  // c1 past its time
  REQUIRE(pending.ok());
  REQUIRE(pending->size() == 1);
  CHECK((*pending)[0].command_id == c3);
  CHECK(store->ExpireCommands(kT0 + 100).value() == 2);  // c1 pending, c2 delivered; not c3, not c4 (done)
  CHECK(store->GetCommand(c1)->state == CommandState::kExpired);
  CHECK(store->GetCommand(c2)->state == CommandState::kExpired);
  CHECK(store->GetCommand(c4)->state == CommandState::kSucceeded);

  CommandQuery q;
  auto ids = [&](const CommandQuery& cq) {
    Result<std::vector<CommandRecord>> r = store->ListCommands(cq);
    REQUIRE(r.ok());
    std::vector<std::string> out;
    for (const auto& c : *r) out.push_back(c.command_id);
    return out;
  };
  CHECK(ids(q) == std::vector<std::string>{c4, c3, c2, c1});  // newest first
  q.agent_id = "a1";
  CHECK(ids(q) == std::vector<std::string>{c3, c2, c1});
  q.states = {CommandState::kExpired};
  CHECK(ids(q) == std::vector<std::string>{c2, c1});
  q.limit = 1;
  CHECK(ids(q) == std::vector<std::string>{c2});
}

// ---- audit ---------------------------------------------------------------------

TEMPLATE_TEST_CASE("audit: an append-only log listed newest first, by actor, action and time", "[conformance]",
                   MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto store = OpenOrFail(f);
  std::vector<int64_t> ids;
  const char* actions[] = {"token.create", "command.create", "agent.revoke", "command.create"};
  for (int i = 0; i < 4; ++i) {
    AuditEntry e;
    e.at_ns = kT0 + i;
    e.actor = i % 2 == 0 ? "alice" : "bob";
    e.action = actions[i];
    e.target = "a" + std::to_string(i);
    e.details = "{\"i\":" + std::to_string(i) + "}";
    Result<int64_t> id = store->AppendAudit(e);
    REQUIRE(id.ok());
    ids.push_back(*id);
  }
  CHECK(std::is_sorted(ids.begin(), ids.end()));
  CHECK(std::set<int64_t>(ids.begin(), ids.end()).size() == 4);
  auto list = [&](const AuditQuery& q) {
    Result<std::vector<AuditEntry>> r = store->ListAudit(q);
    REQUIRE(r.ok());
    std::vector<std::string> out;
    for (const auto& e : *r) out.push_back(e.target);
    return out;
  };
  AuditQuery q;
  CHECK(list(q) == std::vector<std::string>{"a3", "a2", "a1", "a0"});
  Result<std::vector<AuditEntry>> full = store->ListAudit(q);
  CHECK((*full)[0].details == "{\"i\":3}");
  CHECK((*full)[0].actor == "bob");
  CHECK((*full)[0].at_ns == kT0 + 3);
  q.actor = "alice";
  CHECK(list(q) == std::vector<std::string>{"a2", "a0"});
  q = AuditQuery{};
  q.action = "command.create";
  CHECK(list(q) == std::vector<std::string>{"a3", "a1"});
  q = AuditQuery{};
  q.from_ns = kT0 + 1;
  q.to_ns = kT0 + 3;
  CHECK(list(q) == std::vector<std::string>{"a2", "a1"});
  q = AuditQuery{};
  q.limit = 2;
  CHECK(list(q) == std::vector<std::string>{"a3", "a2"});
  q.before_id = ids[2];  // the next page
  CHECK(list(q) == std::vector<std::string>{"a1", "a0"});
}

}  // namespace mamori::server::conformance

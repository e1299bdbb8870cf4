// Helpers of the console tests: users with tokens, authorized contexts.
// Thread safety: none needed (test thread).
#pragma once

#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "mamori/v1/console.grpc.pb.h"
#include "test_client.h"

namespace mamori::server::testing {

// Creates a console user; returns its API token.
inline std::string AddUser(Store& store, const std::string& name, const std::string& role) {
  UserSpec spec;
  spec.name = name;
  spec.role = role;
  spec.created_at_ns = 1;
  spec.created_by = "test";
  Result<NewUserToken> t = store.CreateUser(spec);
  REQUIRE(t.ok());
  return t->secret;
}

// A context with "authorization: Bearer <token>" (none when empty) and a 10 s deadline.
inline std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return ctx;
}

// The audit trail of one actor, newest first.
inline std::vector<AuditEntry> AuditOf(Store& store, const std::string& actor) {
  AuditQuery q;
  q.actor = actor;
  Result<std::vector<AuditEntry>> r = store.ListAudit(q);
  REQUIRE(r.ok());
  return *r;
}

// Waits (10 s at most) until `actor` has an audit row for `action`: a
// streaming call is audited once it has started. No Catch assertions, so
// any thread may call it.
inline bool WaitForAudit(Store& store, const std::string& actor, const std::string& action) {
  AuditQuery q;
  q.actor = actor;
  q.action = action;
  return WaitFor([&] {
    Result<std::vector<AuditEntry>> r = store.ListAudit(q);
    return r.ok() && !r->empty();
  });
}

inline mamori::v1::CreateCommandRequest Request(const std::string& agent_id, const mamori::v1::Command& command = {}) {
  mamori::v1::CreateCommandRequest r;
  r.set_agent_id(agent_id);
  *r.mutable_command() = command;
  return r;
}

}  // namespace mamori::server::testing

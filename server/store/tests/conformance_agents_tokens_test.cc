// Store conformance: agents (upsert, inventory) and enrollment tokens (see conformance.h).
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "conformance.h"

namespace mamori::server::conformance {

// ---- agents ------------------------------------------------------------------

TEMPLATE_TEST_CASE("agents: upsert inserts, then updates only the descriptive fields", "[conformance]",
                   MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto store = OpenOrFail(f);
  REQUIRE(store->UpsertAgent(Agent("a1", "alpha")).ok());
  Result<AgentRecord> got = store->GetAgent("a1");
  REQUIRE(got.ok());
  CHECK(got->hostname == "alpha");
  CHECK(got->os == "debian 12");
  CHECK(got->sensor_mode == "ebpf");
  CHECK(got->cert_fingerprint == std::string(64, 'f'));
  CHECK(got->enrolled_at_ns == kT0);
  CHECK(got->last_seen_ns == 0);
  CHECK_FALSE(got->revoked);

  REQUIRE(store->TouchAgent("a1", kT0 + 50).ok());
  REQUIRE(store->TouchAgent("a1", kT0 + 10).ok());  // older: ignored
  REQUIRE(store->SetAgentRevoked("a1", true).ok());
  AgentRecord again = Agent("a1", "alpha-renamed");
  again.enrolled_at_ns = kT0 + 999;
  again.cert_fingerprint = "";
  again.agent_version = "0.2.0";
  REQUIRE(store->UpsertAgent(again).ok());
  got = store->GetAgent("a1");
  REQUIRE(got.ok());
  CHECK(got->hostname == "alpha-renamed");
  CHECK(got->agent_version == "0.2.0");
  CHECK(got->enrolled_at_ns == kT0);                    // kept
  CHECK(got->last_seen_ns == kT0 + 50);                 // kept, never decreases
  CHECK(got->revoked);                                  // kept
  CHECK(got->cert_fingerprint == std::string(64, 'f')); // empty does not erase

  CHECK(store->GetAgent("nope").status().code() == StatusCode::kNotFound);
  CHECK(store->TouchAgent("nope", kT0).code() == StatusCode::kNotFound);
  CHECK(store->SetAgentRevoked("nope", true).code() == StatusCode::kNotFound);
  CHECK(store->UpsertAgent(Agent("")).code() == StatusCode::kInvalidArgument);
}

TEMPLATE_TEST_CASE("agents: a certificate renewal keeps the replaced certificate until the new one is used",
                   "[conformance]", MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto store = OpenOrFail(f);
  const std::string first(64, 'f'), second(64, 'a'), third(64, 'b'), fourth(64, 'c');
  REQUIRE(store->UpsertAgent(Agent("a1", "alpha")).ok());  // enrolled with `first`
  auto fingerprints = [&] {
    Result<AgentRecord> got = store->GetAgent("a1");
    REQUIRE(got.ok());
    return std::make_pair(got->cert_fingerprint, got->previous_cert_fingerprint);
  };
  CHECK(fingerprints() == std::make_pair(first, std::string()));

  // Renewed with the current certificate: it becomes the previous one.
  REQUIRE(store->RenewAgentCertificate("a1", first, second).ok());
  CHECK(fingerprints() == std::make_pair(second, first));
  // The agent did not store `second` and renews again with `first`: the
  // unused `second` is replaced, `first` stays previous.
  REQUIRE(store->RenewAgentCertificate("a1", first, third).ok());
  CHECK(fingerprints() == std::make_pair(third, first));
  // Neither current nor previous.
  CHECK(store->RenewAgentCertificate("a1", second, fourth).code() == StatusCode::kUnauthenticated);
  CHECK(store->RenewAgentCertificate("a1", "", fourth).code() == StatusCode::kUnauthenticated);
  CHECK(fingerprints() == std::make_pair(third, first));
  // A late confirmation of a certificate that is no longer current changes nothing.
  REQUIRE(store->ForgetPreviousCertificate("a1", second).ok());
  CHECK(fingerprints() == std::make_pair(third, first));
  // `third` was used: `first` is refused from now on.
  REQUIRE(store->ForgetPreviousCertificate("a1", third).ok());
  CHECK(fingerprints() == std::make_pair(third, std::string()));
  CHECK(store->RenewAgentCertificate("a1", first, fourth).code() == StatusCode::kUnauthenticated);
  // An upsert (heartbeat, re-enrollment without a fingerprint) keeps both.
  REQUIRE(store->RenewAgentCertificate("a1", third, fourth).ok());
  AgentRecord hb = Agent("a1", "alpha");
  hb.cert_fingerprint = "";
  REQUIRE(store->UpsertAgent(hb).ok());
  CHECK(fingerprints() == std::make_pair(fourth, third));

  REQUIRE(store->SetAgentRevoked("a1", true).ok());
  CHECK(store->RenewAgentCertificate("a1", fourth, first).code() == StatusCode::kPermissionDenied);
  CHECK(fingerprints() == std::make_pair(fourth, third));
  CHECK(store->RenewAgentCertificate("nope", first, second).code() == StatusCode::kNotFound);
}

TEMPLATE_TEST_CASE("agents: inventory splits online and offline by the last-seen window", "[conformance]",
                   MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto store = OpenOrFail(f);
  const int64_t now = kT0 + 3600 * kSecond;
  const int64_t window = 60 * kSecond;
  REQUIRE(store->UpsertAgent(Agent("id-b", "b-host")).ok());
  REQUIRE(store->UpsertAgent(Agent("id-a", "a-host")).ok());
  REQUIRE(store->UpsertAgent(Agent("id-c", "c-host")).ok());
  REQUIRE(store->UpsertAgent(Agent("id-d", "d-host")).ok());
  REQUIRE(store->TouchAgent("id-b", now - 10 * kSecond).ok());
  REQUIRE(store->TouchAgent("id-a", now - 600 * kSecond).ok());
  REQUIRE(store->TouchAgent("id-d", now - window).ok());  // exactly at the edge: online
  // id-c never seen.

  auto list = [&](AgentQuery::Presence p, bool include_revoked = true, uint32_t limit = 0) {
    AgentQuery q;
    q.now_ns = now;
    q.online_window_ns = window;
    q.presence = p;
    q.include_revoked = include_revoked;
    q.limit = limit;
    Result<std::vector<AgentView>> r = store->ListAgents(q);
    REQUIRE(r.ok());
    std::vector<std::string> out;
    for (const auto& v : *r) out.push_back(v.agent.hostname + (v.online ? ":on" : ":off"));
    return out;
  };
  using P = AgentQuery::Presence;
  CHECK(list(P::kAll) == std::vector<std::string>{"a-host:off", "b-host:on", "c-host:off", "d-host:on"});
  CHECK(list(P::kOnline) == std::vector<std::string>{"b-host:on", "d-host:on"});
  CHECK(list(P::kOffline) == std::vector<std::string>{"a-host:off", "c-host:off"});
  CHECK(list(P::kAll, true, 2) == std::vector<std::string>{"a-host:off", "b-host:on"});
  REQUIRE(store->SetAgentRevoked("id-c", true).ok());
  CHECK(list(P::kAll, false) == std::vector<std::string>{"a-host:off", "b-host:on", "d-host:on"});
}

// ---- enrollment tokens ---------------------------------------------------------

TEMPLATE_TEST_CASE("tokens: a one-time token enrolls once", "[conformance]", MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto store = OpenOrFail(f);
  TokenSpec spec;
  spec.created_at_ns = kT0;
  spec.expires_at_ns = kT0 + 3600 * kSecond;
  spec.created_by = "admin";
  spec.description = "lab machines";
  Result<NewToken> t = store->CreateEnrollmentToken(spec);
  REQUIRE(t.ok());
  CHECK(t->secret.rfind("mmt_", 0) == 0);
  CHECK(t->secret.size() == 4 + 64);

  Result<TokenRecord> used = store->ConsumeEnrollmentToken(t->secret, kT0 + kSecond);
  REQUIRE(used.ok());
  CHECK(used->token_id == t->token_id);
  CHECK(used->uses == 1);
  CHECK(used->last_used_at_ns == kT0 + kSecond);
  CHECK(used->created_by == "admin");

  Result<TokenRecord> twice = store->ConsumeEnrollmentToken(t->secret, kT0 + 2 * kSecond);
  CHECK(twice.status().code() == StatusCode::kUnauthenticated);
  CHECK_THAT(twice.status().message(), Catch::Contains("already used"));
  Result<TokenRecord> unknown = store->ConsumeEnrollmentToken("mmt_" + std::string(64, '0'), kT0);
  CHECK(unknown.status().code() == StatusCode::kUnauthenticated);
  CHECK_THAT(unknown.status().message(), Catch::Contains("unknown"));
}

TEMPLATE_TEST_CASE("tokens: a reusable token enrolls until it expires or is revoked", "[conformance]",
                   MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto store = OpenOrFail(f);
  TokenSpec spec;
  spec.reusable = true;
  spec.created_at_ns = kT0;
  spec.expires_at_ns = kT0 + 100;
  Result<NewToken> t = store->CreateEnrollmentToken(spec);
  REQUIRE(t.ok());
  for (int i = 0; i < 3; ++i) REQUIRE(store->ConsumeEnrollmentToken(t->secret, kT0 + i).ok());
  Result<TokenRecord> expired = store->ConsumeEnrollmentToken(t->secret, kT0 + 100);  // now == expires_at
  CHECK(expired.status().code() == StatusCode::kUnauthenticated);
  CHECK_THAT(expired.status().message(), Catch::Contains("expired"));

  Result<NewToken> t2 = store->CreateEnrollmentToken(spec);
  REQUIRE(t2.ok());
  REQUIRE(store->RevokeEnrollmentToken(t2->token_id).ok());
  Result<TokenRecord> revoked = store->ConsumeEnrollmentToken(t2->secret, kT0);
  CHECK(revoked.status().code() == StatusCode::kUnauthenticated);
  CHECK_THAT(revoked.status().message(), Catch::Contains("revoked"));
  CHECK(store->RevokeEnrollmentToken("nope").code() == StatusCode::kNotFound);

  Result<std::vector<TokenRecord>> list = store->ListEnrollmentTokens();
  REQUIRE(list.ok());
  REQUIRE(list->size() == 2);
  const auto& first = (*list)[0].token_id == t->token_id ? (*list)[0] : (*list)[1];
  CHECK(first.uses == 3);
  CHECK(first.reusable);

  TokenSpec bad = spec;
  bad.expires_at_ns = bad.created_at_ns;
  CHECK(store->CreateEnrollmentToken(bad).status().code() == StatusCode::kInvalidArgument);
}

TEMPLATE_TEST_CASE("tokens: only the SHA-256 of a secret is stored", "[conformance]", MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto store = OpenOrFail(f);
  TokenSpec spec;
  spec.created_at_ns = kT0;
  spec.expires_at_ns = kT0 + kSecond;
  Result<NewToken> t = store->CreateEnrollmentToken(spec);
  REQUIRE(t.ok());
  Result<std::vector<TokenRecord>> list = store->ListEnrollmentTokens();
  REQUIRE(list.ok());
  REQUIRE(list->size() == 1);
  CHECK((*list)[0].secret_sha256 == Sha256Hex(t->secret));
  Result<std::string> raw = f.DumpTable("enrollment_tokens");
  REQUIRE(raw.ok());
  CHECK_THAT(*raw, Catch::Contains(Sha256Hex(t->secret)));
  CHECK(raw->find(t->secret.substr(4)) == std::string::npos);  // not even the random part
}

TEMPLATE_TEST_CASE("tokens: concurrent enrollments with one one-time token: exactly one wins", "[conformance]",
                   MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto a = OpenOrFail(f);
  auto b = OpenOrFail(f);
  TokenSpec spec;
  spec.created_at_ns = kT0;
  spec.expires_at_ns = kT0 + kSecond;
  Result<NewToken> t = a->CreateEnrollmentToken(spec);
  REQUIRE(t.ok());
  std::atomic<int> wins{0}, refusals{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    Store* s = i % 2 == 0 ? a.get() : b.get();
    threads.emplace_back([&, s] {
      Result<TokenRecord> r = s->ConsumeEnrollmentToken(t->secret, kT0 + 1);
      if (r.ok()) {
        ++wins;
      } else if (r.status().code() == StatusCode::kUnauthenticated) {
        ++refusals;
      } else {
        ++other;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(wins == 1);
  CHECK(refusals == 7);
  CHECK(other == 0);
}

}  // namespace mamori::server::conformance

// Enrollment and the identity checks on Connect, over real TLS on 127.0.0.1.
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <catch2/catch.hpp>

#include "mamori/server/ca.h"
#include "mamori/v1/version.h"
#include "test_client.h"

namespace mamori::server {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): test helpers

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST_CASE("enroll: a valid token gives a certificate for a new agent id that verifies against the CA") {
  TestServer ts;
  EnrolledAgent a;
  grpc::Status st = Enroll(ts.target(), ts.ca_pem(), ts.Token(), &a);
  REQUIRE(st.ok());
  CHECK(IsAgentId(a.agent_id));
  CHECK(a.ca_pem == ts.ca_pem());
  Result<PeerCertificate> peer = ParsePeerCertificate(a.cert_pem);
  REQUIRE(peer.ok());
  CHECK(peer->common_name == a.agent_id);
  CHECK(peer->uris == std::vector<std::string>{AgentUri(a.agent_id)});

  // Verifies against the returned CA.
  BIO* cb = BIO_new_mem_buf(a.ca_pem.data(), static_cast<int>(a.ca_pem.size()));
  X509* ca = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
  BIO_free(cb);
  BIO* lb = BIO_new_mem_buf(a.cert_pem.data(), static_cast<int>(a.cert_pem.size()));
  X509* leaf = PEM_read_bio_X509(lb, nullptr, nullptr, nullptr);
  BIO_free(lb);
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf, nullptr);
  X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
  CHECK(X509_verify_cert(ctx) == 1);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  X509_free(leaf);
  X509_free(ca);

  // The store knows the agent and the certificate's fingerprint.
  Result<AgentRecord> rec = ts.store().GetAgent(a.agent_id);
  REQUIRE(rec.ok());
  CHECK(rec->cert_fingerprint == peer->fingerprint_sha256);
  CHECK(rec->hostname == "test-host");
  CHECK_FALSE(rec->revoked);
  Result<std::vector<AuditEntry>> audit = ts.store().ListAudit(AuditQuery{});
  REQUIRE(audit.ok());
  REQUIRE_FALSE(audit->empty());
  CHECK(audit->front().action == "agent.enroll");
  CHECK(audit->front().target == a.agent_id);
}

TEST_CASE("enroll: used one-time, expired and unknown tokens are UNAUTHENTICATED - reusable tokens are reusable") {
  TestServer ts;
  EnrolledAgent a;
  const std::string once = ts.Token();
  REQUIRE(Enroll(ts.target(), ts.ca_pem(), once, &a).ok());
  CHECK(Enroll(ts.target(), ts.ca_pem(), once, &a).error_code() == grpc::StatusCode::UNAUTHENTICATED);

  TokenSpec spec;
  spec.created_at_ns = Now() - 7'200'000'000'000;
  spec.expires_at_ns = Now() - 3'600'000'000'000;
  Result<NewToken> expired = ts.store().CreateEnrollmentToken(spec);
  REQUIRE(expired.ok());
  grpc::Status st = Enroll(ts.target(), ts.ca_pem(), expired->secret, &a);
  CHECK(st.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK_THAT(st.error_message(), Catch::Contains("expired"));

  CHECK(Enroll(ts.target(), ts.ca_pem(), "mmt_" + std::string(64, '0'), &a).error_code() ==
        grpc::StatusCode::UNAUTHENTICATED);
  CHECK(Enroll(ts.target(), ts.ca_pem(), "", &a).error_code() == grpc::StatusCode::UNAUTHENTICATED);

  const std::string many = ts.Token(/*reusable=*/true);
  EnrolledAgent b, c;
  REQUIRE(Enroll(ts.target(), ts.ca_pem(), many, &b).ok());
  REQUIRE(Enroll(ts.target(), ts.ca_pem(), many, &c).ok());
  CHECK(b.agent_id != c.agent_id);
}

TEST_CASE("enroll: a bad CSR is INVALID_ARGUMENT and does not use up the token") {
  TestServer ts;
  const std::string token = ts.Token();
  EnrolledAgent a;
  grpc::Status st = Enroll(ts.target(), ts.ca_pem(), token, &a,
                           "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                           "-----END CERTIFICATE REQUEST-----\n",
                           "x");
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  REQUIRE(Enroll(ts.target(), ts.ca_pem(), token, &a).ok());
}

TEST_CASE("enroll: another protocol major is FAILED_PRECONDITION") {
  TestServer ts;
  auto stub = mamori::v1::AgentService::NewStub(TlsChannel(ts.target(), ts.ca_pem()));
  mamori::v1::EnrollRequest req;
  req.set_token(ts.Token());
  req.set_csr_pem(MakeKeyAndCsr().csr_pem);
  req.set_protocol_version("2.0.0");
  mamori::v1::EnrollResponse resp;
  grpc::ClientContext ctx;
  CHECK(stub->Enroll(&ctx, req, &resp).error_code() == grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_CASE("connect: without a client certificate is UNAUTHENTICATED") {
  TestServer ts;
  Stream s(TlsChannel(ts.target(), ts.ca_pem()));
  s.Write(MakeHello());
  grpc::Status st = s.Finish();
  CHECK(st.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK_THAT(st.error_message(), Catch::Contains("client certificate"));
}

TEST_CASE("connect: a certificate from another CA is refused at the TLS handshake") {
  TestServer ts;
  TempDir other;
  auto rogue = CertificateAuthority::Open({other.path() + "/ca", {}, 0});
  REQUIRE(rogue.ok());
  // Even for a real agent id of this server.
  const EnrolledAgent real = EnrollNew(ts);
  const auto kc = MakeKeyAndCsr();
  Result<IssuedCertificate> forged =
      (*rogue)->IssueClientCertificate(kc.csr_pem, real.agent_id, 0, std::chrono::hours(1));
  REQUIRE(forged.ok());
  Stream s(TlsChannel(ts.target(), ts.ca_pem(), kc.key_pem, forged->certificate_pem), std::chrono::seconds(5));
  s.Write(MakeHello());
  grpc::Status st = s.Finish();
  CHECK(st.error_code() == grpc::StatusCode::UNAVAILABLE);  // the handshake failed; no RPC ran
  // The real agent still gets in.
  Stream ok(TlsChannel(ts.target(), ts.ca_pem(), real.key_pem, real.cert_pem));
  mamori::v1::Welcome w;
  CHECK(ok.Hello(&w));
}

TEST_CASE("connect: a revoked agent is PERMISSION_DENIED - an unknown or replaced certificate UNAUTHENTICATED") {
  TestServer ts;
  const EnrolledAgent a = EnrollNew(ts);
  REQUIRE(ts.store().SetAgentRevoked(a.agent_id, true).ok());
  {
    Stream s(TlsChannel(ts.target(), ts.ca_pem(), a.key_pem, a.cert_pem));
    mamori::v1::Welcome w;
    CHECK_FALSE(s.Hello(&w));
    grpc::Status st = s.Finish();
    CHECK(st.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  }
  // A certificate for this agent id that is not the enrolled one (same CA).
  REQUIRE(ts.store().SetAgentRevoked(a.agent_id, false).ok());
  {
    auto ca = CertificateAuthority::Open({ts.config().data_dir + "/ca", {}, 0});
    REQUIRE(ca.ok());
    const auto kc = MakeKeyAndCsr();
    auto second = (*ca)->IssueClientCertificate(kc.csr_pem, a.agent_id, 0, std::chrono::hours(1));
    REQUIRE(second.ok());
    Stream s(TlsChannel(ts.target(), ts.ca_pem(), kc.key_pem, second->certificate_pem));
    s.Write(MakeHello());
    CHECK(s.Finish().error_code() == grpc::StatusCode::UNAUTHENTICATED);
    // And one for an id the store never heard of.
    auto stranger = (*ca)->IssueClientCertificate(kc.csr_pem, *NewAgentId(), 0, std::chrono::hours(1));
    REQUIRE(stranger.ok());
    Stream u(TlsChannel(ts.target(), ts.ca_pem(), kc.key_pem, stranger->certificate_pem));
    u.Write(MakeHello());
    CHECK(u.Finish().error_code() == grpc::StatusCode::UNAUTHENTICATED);
  }
}

TEST_CASE("connect: revoking an agent ends its open stream at the next batch") {
  TestServer ts;
  const EnrolledAgent a = EnrollNew(ts);
  Stream s(TlsChannel(ts.target(), ts.ca_pem(), a.key_pem, a.cert_pem));
  mamori::v1::Welcome w;
  REQUIRE(s.Hello(&w));
  REQUIRE(s.SendBatch(MakeBatch(1, 5)) == 5);
  REQUIRE(ts.store().SetAgentRevoked(a.agent_id, true).ok());
  CHECK(s.SendBatch(MakeBatch(6, 10)) == -1);
  CHECK(s.Finish().error_code() == grpc::StatusCode::PERMISSION_DENIED);
}

// Renew with the given client certificate; the new key's CSR is made here.
grpc::Status Renew(TestServer& ts, const std::string& key_pem, const std::string& cert_pem, KeyAndCsr* fresh,
                   mamori::v1::EnrollResponse* resp, const std::string& version = mamori::v1::kProtocolVersion) {
  *fresh = MakeKeyAndCsr("ignored-cn");
  auto stub = mamori::v1::AgentService::NewStub(TlsChannel(ts.target(), ts.ca_pem(), key_pem, cert_pem));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  mamori::v1::RenewRequest req;
  req.set_csr_pem(fresh->csr_pem);
  req.set_protocol_version(version);
  return stub->Renew(&ctx, req, resp);
}

bool Connects(TestServer& ts, const std::string& key_pem, const std::string& cert_pem) {
  Stream s(TlsChannel(ts.target(), ts.ca_pem(), key_pem, cert_pem));
  mamori::v1::Welcome w;
  const bool ok = s.Hello(&w);
  s.Finish();
  return ok;
}

TEST_CASE("renew: a new certificate for the same agent, and the replaced one works until the new one is used") {
  TestServer ts;
  const EnrolledAgent a = EnrollNew(ts);
  KeyAndCsr fresh;
  mamori::v1::EnrollResponse r;
  grpc::Status st = Renew(ts, a.key_pem, a.cert_pem, &fresh, &r);
  INFO(st.error_message());
  REQUIRE(st.ok());
  CHECK(r.agent_id() == a.agent_id);
  CHECK(r.certificate_pem() != a.cert_pem);
  CHECK(r.certificate_expires_at_ns() > Now());
  // The CN is the agent id whatever the CSR asked for, and it is for the new key.
  X509* cert = nullptr;
  {
    BIO* bio = BIO_new_mem_buf(r.certificate_pem().data(), static_cast<int>(r.certificate_pem().size()));
    cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
  }
  REQUIRE(cert != nullptr);
  char cn[128] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  CHECK(std::string(cn) == a.agent_id);
  X509_free(cert);
  Result<AgentRecord> rec = ts.store().GetAgent(a.agent_id);
  REQUIRE(rec.ok());
  CHECK(!rec->previous_cert_fingerprint.empty());
  CHECK(rec->previous_cert_fingerprint != rec->cert_fingerprint);

  // An agent that crashed before storing the new certificate still gets in with the old one.
  CHECK(Connects(ts, a.key_pem, a.cert_pem));
  // The new one is used: from then on the old one is refused.
  CHECK(Connects(ts, fresh.key_pem, r.certificate_pem()));
  CHECK(ts.store().GetAgent(a.agent_id)->previous_cert_fingerprint.empty());
  CHECK_FALSE(Connects(ts, a.key_pem, a.cert_pem));
  KeyAndCsr again;
  mamori::v1::EnrollResponse r2;
  CHECK(Renew(ts, a.key_pem, a.cert_pem, &again, &r2).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  // Renewed again with the current one: the chain goes on.
  REQUIRE(Renew(ts, fresh.key_pem, r.certificate_pem(), &again, &r2).ok());
  CHECK(Connects(ts, again.key_pem, r2.certificate_pem()));

  bool audited = false;
  AuditQuery q;
  q.action = "agent.renew";
  Result<std::vector<AuditEntry>> trail = ts.store().ListAudit(q);
  REQUIRE(trail.ok());
  for (const AuditEntry& e : *trail) audited = audited || (e.target == a.agent_id && e.actor == "agent:" + a.agent_id);
  CHECK(audited);
}

TEST_CASE("renew: refused without a certificate, for a revoked agent, a bad CSR or another protocol major") {
  TestServer ts;
  const EnrolledAgent a = EnrollNew(ts);
  KeyAndCsr fresh;
  mamori::v1::EnrollResponse r;
  CHECK(Renew(ts, "", "", &fresh, &r).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(Renew(ts, a.key_pem, a.cert_pem, &fresh, &r, "2.0.0").error_code() ==
        grpc::StatusCode::FAILED_PRECONDITION);
  {
    auto stub = mamori::v1::AgentService::NewStub(TlsChannel(ts.target(), ts.ca_pem(), a.key_pem, a.cert_pem));
    grpc::ClientContext ctx;
    mamori::v1::RenewRequest req;
    req.set_csr_pem("-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n-----END CERTIFICATE REQUEST-----\n");
    req.set_protocol_version(mamori::v1::kProtocolVersion);
    CHECK(stub->Renew(&ctx, req, &r).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  }
  CHECK(ts.store().GetAgent(a.agent_id)->previous_cert_fingerprint.empty());  // nothing changed
  REQUIRE(ts.store().SetAgentRevoked(a.agent_id, true).ok());
  CHECK(Renew(ts, a.key_pem, a.cert_pem, &fresh, &r).error_code() == grpc::StatusCode::PERMISSION_DENIED);
}

TEST_CASE("server: a second server on a port in use fails to start instead of sharing it") {
  TestServer first;
  TempDir dir;
  ServerConfig c = first.config();
  c.data_dir = dir.path() + "/data";
  c.listen = first.target();
  auto store = OpenConfiguredStore(c);
  REQUIRE(store.ok());
  std::shared_ptr<Store> shared = std::move(*store);
  auto second = Server::Start(c, shared);
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().code() == StatusCode::kUnavailable);
  CHECK(second.status().message().find("cannot listen on " + first.target()) != std::string::npos);
}

}  // namespace
}  // namespace mamori::server

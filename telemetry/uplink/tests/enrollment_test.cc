// Key, CSR and stored-credential checks (the network part of enrollment is
// in e2e_test.cc, against the real server).
#include "mamori/telemetry/enrollment.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

#include "mamori/common/file_util.h"
#include "mamori/server/ca.h"
#include "mamori/telemetry/convert.h"
#include "test_util.h"
#include "x509.h"

namespace mamori::telemetry {
namespace {

struct Issued {
  std::string key, cert, ca, id;
};

Issued IssueFrom(const server::CertificateAuthority& ca, std::chrono::seconds validity = std::chrono::hours(24)) {
  Issued i;
  auto key = x509::GenerateKeyPem();
  REQUIRE(key.ok());
  i.key = *key;
  auto csr = x509::MakeCsrPem(i.key, "host\xff");  // the server ignores the CSR subject
  REQUIRE(csr.ok());
  auto id = server::NewAgentId();
  REQUIRE(id.ok());
  i.id = *id;
  auto cert = ca.IssueClientCertificate(*csr, i.id, NowNs(), validity);
  REQUIRE(cert.ok());
  i.cert = cert->certificate_pem;
  i.ca = ca.ca_certificate_pem();
  return i;
}

void Store(const std::string& dir, const Issued& i) {
  REQUIRE(MakeDirs(dir, 0700).ok());
  REQUIRE(WriteFileAtomically(dir + "/agent.key", i.key, 0600).ok());
  REQUIRE(WriteFileAtomically(dir + "/agent.crt", i.cert, 0644).ok());
  REQUIRE(WriteFileAtomically(dir + "/ca.crt", i.ca, 0644).ok());
}

TEST_CASE("enrollment: stored credentials load only when key, certificate and CA fit together") {
  ::mamori::testing::TempDir dir;
  auto ca = server::CertificateAuthority::Open(server::CaOptions{dir.path() + "/ca", {}, 0});
  REQUIRE(ca.ok());
  auto other = server::CertificateAuthority::Open(server::CaOptions{dir.path() + "/other", {}, 0});
  REQUIRE(other.ok());
  const Issued good = IssueFrom(**ca);
  const std::string keys = dir.path() + "/keys";

  CHECK(LoadCredentials(keys).status().code() == StatusCode::kNotFound);
  Store(keys, good);
  auto c = LoadCredentials(keys);
  REQUIRE(c.ok());
  CHECK(c->agent_id == good.id);
  CHECK(c->not_after_ns > NowNs());
  CHECK(c->not_before_ns < NowNs());
  CHECK(c->not_before_ns > NowNs() - int64_t{3600} * 1'000'000'000);
  CHECK(c->key_pem == good.key);

  SECTION("another key") {
    Issued mixed = good;
    mixed.key = *x509::GenerateKeyPem();
    Store(keys, mixed);
    CHECK(LoadCredentials(keys).status().code() == StatusCode::kFailedPrecondition);
  }
  SECTION("a certificate from another CA") {
    Issued foreign = IssueFrom(**other);
    foreign.ca = good.ca;
    Store(keys, foreign);
    CHECK(LoadCredentials(keys).status().code() == StatusCode::kFailedPrecondition);
  }
  SECTION("a key others can read") {
    REQUIRE(::chmod((keys + "/agent.key").c_str(), 0644) == 0);
    CHECK(LoadCredentials(keys).status().code() == StatusCode::kFailedPrecondition);
  }
  SECTION("garbage") {
    REQUIRE(WriteFileAtomically(keys + "/agent.crt", "not a certificate", 0644).ok());
    CHECK(LoadCredentials(keys).status().code() == StatusCode::kDataLoss);
  }
}

// A second certificate for the same agent id and a new key (what a renewal gets).
Issued RenewedFrom(const server::CertificateAuthority& ca, const Issued& first) {
  Issued i = first;
  i.key = *x509::GenerateKeyPem();
  auto csr = x509::MakeCsrPem(i.key, "renewed");
  REQUIRE(csr.ok());
  auto cert = ca.IssueClientCertificate(*csr, first.id, NowNs(), std::chrono::hours(24));
  REQUIRE(cert.ok());
  i.cert = cert->certificate_pem;
  return i;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// Leaves `keys` as a crash would: `files` (name -> content) written, then
// loads; the load must succeed, and no renewal file is left behind.
AgentCredentials LoadAfterCrash(const std::string& keys, const std::vector<std::pair<std::string, std::string>>& files) {
  for (const auto& [name, content] : files) {
    REQUIRE(WriteFileAtomically(keys + "/" + name, content, name.ends_with(".key") ? 0600 : 0644).ok());
  }
  auto c = LoadCredentials(keys);
  INFO(c.status().ToString());
  REQUIRE(c.ok());
  CHECK_FALSE(Exists(keys + "/renew.key"));
  CHECK_FALSE(Exists(keys + "/renew.crt"));
  return *c;
}

TEST_CASE("enrollment: a renewal cut short by a crash is finished or dropped when the credentials load") {
  ::mamori::testing::TempDir dir;
  auto ca = server::CertificateAuthority::Open(server::CaOptions{dir.path() + "/ca", {}, 0});
  REQUIRE(ca.ok());
  const Issued first = IssueFrom(**ca);
  const Issued renewed = RenewedFrom(**ca, first);
  const std::string keys = dir.path() + "/keys";
  Store(keys, first);

  SECTION("crashed after the new key, before the server answered: the old credentials stay") {
    const AgentCredentials c = LoadAfterCrash(keys, {{"renew.key", renewed.key}});
    CHECK(c.certificate_pem == first.cert);
    CHECK(c.key_pem == first.key);
  }
  SECTION("crashed with the new certificate stored: it is moved into place") {
    const AgentCredentials c = LoadAfterCrash(keys, {{"renew.key", renewed.key}, {"renew.crt", renewed.cert}});
    CHECK(c.agent_id == first.id);
    CHECK(c.certificate_pem == renewed.cert);
    CHECK(c.key_pem == renewed.key);
    struct stat st {};
    REQUIRE(::stat((keys + "/agent.key").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
  SECTION("crashed between moving the key and the certificate: finished") {
    const AgentCredentials c = LoadAfterCrash(keys, {{"agent.key", renewed.key}, {"renew.crt", renewed.cert}});
    CHECK(c.certificate_pem == renewed.cert);
  }
  SECTION("a renewal certificate that does not fit is dropped, the old credentials stay") {
    const AgentCredentials c = LoadAfterCrash(keys, {{"renew.key", *x509::GenerateKeyPem()}, {"renew.crt", renewed.cert}});
    CHECK(c.certificate_pem == first.cert);
  }
  SECTION("one for another agent id is dropped too") {
    const Issued stranger = IssueFrom(**ca);
    const AgentCredentials c = LoadAfterCrash(keys, {{"renew.key", stranger.key}, {"renew.crt", stranger.cert}});
    CHECK(c.agent_id == first.id);
    CHECK(c.certificate_pem == first.cert);
  }
}

TEST_CASE("enrollment: renewal is due after the given share of the validity") {
  AgentCredentials c;
  c.not_before_ns = 1'000;
  c.not_after_ns = 4'000;
  CHECK(RenewalDueAtNs(c, 2.0 / 3.0) == 3'000);
  CHECK(RenewalDueAtNs(c, 0) == 1'000);
  CHECK(RenewalDueAtNs(c, 1) == 4'000);
  CHECK(RenewalDueAtNs(c, 7) == 4'000);  // clamped
}

TEST_CASE("enrollment: the CSR is signed by the new P-256 key") {
  auto key = x509::GenerateKeyPem();
  REQUIRE(key.ok());
  CHECK(key->find("BEGIN PRIVATE KEY") != std::string::npos);  // PKCS#8
  auto csr = x509::MakeCsrPem(*key, "h");
  REQUIRE(csr.ok());
  CHECK(csr->find("BEGIN CERTIFICATE REQUEST") != std::string::npos);
  CHECK(x509::MakeCsrPem("junk", "h").status().code() == StatusCode::kDataLoss);
}

TEST_CASE("enrollment: arguments and insecure mode are checked before any network call") {
  ::mamori::testing::TempDir dir;
  EnrollOptions o;
  o.server = "192.0.2.1:8443";
  o.token = "t";
  o.key_dir = dir.path() + "/keys";
  CHECK(Enroll(o).status().code() == StatusCode::kInvalidArgument);  // no CA to pin
  o.insecure = true;
  CHECK(Enroll(o).status().code() == StatusCode::kFailedPrecondition);  // plaintext off loopback
  o.token.clear();
  CHECK(Enroll(o).status().code() == StatusCode::kInvalidArgument);
  CHECK(IsLoopbackAddress("127.0.0.1:1"));
  CHECK(IsLoopbackAddress("127.3.2.1:1"));
  CHECK(IsLoopbackAddress("[::1]:8443"));
  CHECK(IsLoopbackAddress("localhost:8443"));
  CHECK_FALSE(IsLoopbackAddress("10.0.0.1:8443"));
  CHECK_FALSE(IsLoopbackAddress("[::ffff:10.0.0.1]:8443"));
  CHECK_FALSE(IsLoopbackAddress("example.org:443"));
  CHECK_FALSE(IsLoopbackAddress("127.0.0.1"));
}

}  // namespace
}  // namespace mamori::telemetry

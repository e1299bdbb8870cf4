// The enrollment CA: creation and file modes, reuse, chains that verify with
// OpenSSL, client certificates from CSRs, refusal of bad CSRs.
#include "mamori/server/ca.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "mamori/common/file_util.h"
#include "test_client.h"

namespace mamori::server {
namespace {

using testing::MakeKeyAndCsr;
using testing::TempDir;

X509* ReadCert(const std::string& pem) {
  BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  return x;
}

// X509_verify_cert of `leaf` against `ca` alone, for `purpose`; "" when it verifies.
std::string Verify(const std::string& ca_pem, const std::string& leaf_pem, int purpose) {
  X509* ca = ReadCert(ca_pem);
  X509* leaf = ReadCert(leaf_pem);
  REQUIRE(ca != nullptr);
  REQUIRE(leaf != nullptr);
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf, nullptr);
  X509_STORE_CTX_set_purpose(ctx, purpose);
  const int ok = X509_verify_cert(ctx);
  std::string err = ok == 1 ? "" : X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  X509_free(leaf);
  X509_free(ca);
  return err;
}

unsigned Mode(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

TEST_CASE("ca: first start creates the CA (key 0600) and a server certificate that verifies") {
  TempDir dir;
  const std::string ca_dir = dir.path() + "/ca";
  Result<std::unique_ptr<CertificateAuthority>> ca =
      CertificateAuthority::Open({ca_dir, {"mamori.example.org", "10.1.2.3"}, 0});
  REQUIRE(ca.ok());
  CHECK(Mode(ca_dir) == 0700);
  CHECK(Mode(ca_dir + "/ca.key") == 0600);
  CHECK(Mode(ca_dir + "/server.key") == 0600);
  CHECK(Mode(ca_dir + "/ca.crt") == 0644);

  const ServerTlsMaterial& tls = (*ca)->server_tls();
  CHECK(Verify(tls.ca_certificate_pem, tls.server_certificate_pem, X509_PURPOSE_SSL_SERVER) == "");
  X509* server = ReadCert(tls.server_certificate_pem);
  for (const char* host : {"localhost", "mamori.example.org"}) {
    CHECK(X509_check_host(server, host, 0, 0, nullptr) == 1);
  }
  for (const char* ip : {"127.0.0.1", "::1", "10.1.2.3"}) CHECK(X509_check_ip_asc(server, ip, 0) == 1);
  CHECK(X509_check_host(server, "other.example.org", 0, 0, nullptr) != 1);
  X509_free(server);

  // The CA certificate: CA:TRUE, about 10 years.
  X509* cacert = ReadCert(tls.ca_certificate_pem);
  CHECK(X509_check_ca(cacert) >= 1);
  int days = 0, secs = 0;
  REQUIRE(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cacert), X509_get0_notAfter(cacert)) == 1);
  CHECK(days >= 3650);
  X509_free(cacert);

  // ca export reads the same certificate.
  CHECK(*CertificateAuthority::ReadCaCertificate(ca_dir) == tls.ca_certificate_pem);
}

TEST_CASE("ca: a second start keeps the CA - new names reissue the server certificate only") {
  TempDir dir;
  const std::string ca_dir = dir.path() + "/ca";
  auto first = CertificateAuthority::Open({ca_dir, {}, 0});
  REQUIRE(first.ok());
  auto again = CertificateAuthority::Open({ca_dir, {}, 0});
  REQUIRE(again.ok());
  CHECK((*again)->ca_certificate_pem() == (*first)->ca_certificate_pem());
  CHECK((*again)->server_tls().server_certificate_pem == (*first)->server_tls().server_certificate_pem);
  auto renamed = CertificateAuthority::Open({ca_dir, {"new.example.org"}, 0});
  REQUIRE(renamed.ok());
  CHECK((*renamed)->ca_certificate_pem() == (*first)->ca_certificate_pem());
  CHECK((*renamed)->server_tls().server_certificate_pem != (*first)->server_tls().server_certificate_pem);
}

TEST_CASE("ca: refuses a CA key readable by others, and a key without its certificate") {
  TempDir dir;
  const std::string ca_dir = dir.path() + "/ca";
  REQUIRE(CertificateAuthority::Open({ca_dir, {}, 0}).ok());
  REQUIRE(::chmod((ca_dir + "/ca.key").c_str(), 0644) == 0);
  auto loose = CertificateAuthority::Open({ca_dir, {}, 0});
  REQUIRE_FALSE(loose.ok());
  CHECK(loose.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(loose.status().message(), Catch::Contains("chmod 600"));
  REQUIRE(::chmod((ca_dir + "/ca.key").c_str(), 0600) == 0);
  REQUIRE(::unlink((ca_dir + "/ca.crt").c_str()) == 0);
  auto orphan = CertificateAuthority::Open({ca_dir, {}, 0});
  REQUIRE_FALSE(orphan.ok());
  CHECK(orphan.status().code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("ca: client certificates carry the agent id and verify for client auth") {
  TempDir dir;
  auto ca = CertificateAuthority::Open({dir.path() + "/ca", {}, 0});
  REQUIRE(ca.ok());
  Result<std::string> id = NewAgentId();
  REQUIRE(id.ok());
  CHECK(IsAgentId(*id));
  CHECK((*id)[14] == '4');
  const auto kc = MakeKeyAndCsr("whatever the agent asks for");
  Result<IssuedCertificate> cert = (*ca)->IssueClientCertificate(kc.csr_pem, *id, 0, std::chrono::hours(24 * 365));
  REQUIRE(cert.ok());
  CHECK(Verify((*ca)->ca_certificate_pem(), cert->certificate_pem, X509_PURPOSE_SSL_CLIENT) == "");
  CHECK(Verify((*ca)->ca_certificate_pem(), cert->certificate_pem, X509_PURPOSE_SSL_SERVER) != "");
  Result<PeerCertificate> peer = ParsePeerCertificate(cert->certificate_pem);
  REQUIRE(peer.ok());
  CHECK(peer->common_name == *id);
  REQUIRE(peer->uris.size() == 1);
  CHECK(peer->uris[0] == "urn:mamori:agent:" + *id);
  CHECK(peer->fingerprint_sha256 == cert->fingerprint_sha256);
  CHECK(cert->fingerprint_sha256.size() == 64);
  // About a year.
  const int64_t now_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  CHECK(cert->not_after_ns / 1'000'000'000 - now_s > 364 * 86400);
  CHECK(cert->not_after_ns / 1'000'000'000 - now_s <= 365 * 86400 + 5);
}

TEST_CASE("ca: malformed, tampered and unaccepted CSRs are INVALID_ARGUMENT") {
  TempDir dir;
  auto ca = CertificateAuthority::Open({dir.path() + "/ca", {}, 0});
  REQUIRE(ca.ok());
  const std::string id = *NewAgentId();
  const auto kc = MakeKeyAndCsr();
  auto issue = [&](const std::string& csr) {
    return (*ca)->IssueClientCertificate(csr, id, 0, std::chrono::hours(1)).status();
  };
  CHECK(issue("not a csr").code() == StatusCode::kInvalidArgument);
  CHECK(issue(kc.key_pem).code() == StatusCode::kInvalidArgument);
  // Flip one character inside the base64 body near the end (the signature).
  std::string tampered = kc.csr_pem;
  const size_t end = tampered.find("-----END");
  REQUIRE(end != std::string::npos);
  char& c = tampered[end - 6];
  c = c == 'A' ? 'B' : 'A';
  CHECK(issue(tampered).code() == StatusCode::kInvalidArgument);
  // A 1024-bit RSA key is refused.
  EVP_PKEY* weak = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(1024));
  REQUIRE(weak != nullptr);
  X509_REQ* req = X509_REQ_new();
  X509_REQ_set_pubkey(req, weak);
  REQUIRE(X509_REQ_sign(req, weak, EVP_sha256()) > 0);
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509_REQ(b, req);
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  const std::string weak_csr(data, static_cast<size_t>(n));
  BIO_free(b);
  X509_REQ_free(req);
  EVP_PKEY_free(weak);
  Status s = issue(weak_csr);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("RSA"));
}

}  // namespace
}  // namespace mamori::server

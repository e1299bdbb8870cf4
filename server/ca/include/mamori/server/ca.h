// The server's enrollment CA: one EC P-256 key pair and a self-signed CA
// certificate, a server certificate for TLS, and client certificates issued
// to agents at enrollment (docs/server.md, "TLS and identity").
//
// Files in the CA directory (created 0700 at first start):
//   ca.key      CA private key, PKCS#8 PEM, mode 0600 (refused if group/other can read it)
//   ca.crt      CA certificate, 10 years; agents pin it (`mamori-server ca export`)
//   server.key  TLS server key (EC P-256), mode 0600
//   server.crt  TLS server certificate signed by the CA, 1 year; reissued at
//               start when missing, not from this CA, expiring within 30 days,
//               or when the configured names changed
//   lock        flock(2) held while creating, so replicas sharing the directory
//               create the CA once
//
// Client certificates: subject CN = the agent id (UUID v4), SAN URI
// urn:mamori:agent:<id>, extendedKeyUsage clientAuth, CA:FALSE. Their key is
// the agent's (from its PKCS#10 CSR); only EC P-256/P-384/P-521, Ed25519 and
// RSA >= 2048 keys are accepted.
//
// Thread safety: a CertificateAuthority is immutable after Open and may be
// used from any thread (issuing is serialized inside).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::server {

struct CaOptions {
  std::string dir;
  // DNS names and IP addresses for the server certificate, in addition to
  // 127.0.0.1, ::1 and localhost (always included).
  std::vector<std::string> server_names;
  int64_t now_ns = 0;  // 0: the system clock
};

// What a TLS server needs, PEM encoded.
struct ServerTlsMaterial {
  std::string ca_certificate_pem;
  std::string server_certificate_pem;
  std::string server_key_pem;
};

struct IssuedCertificate {
  std::string certificate_pem;
  std::string fingerprint_sha256;  // lowercase hex SHA-256 of the DER certificate
  int64_t not_after_ns = 0;
};

class CertificateAuthority {
 public:
  // Loads the CA from options.dir, creating the CA key and certificate the
  // first time, and (re)issues the server certificate as described above.
  // kFailedPrecondition when ca.key is readable by group/others or does not
  // match ca.crt; kDataLoss when a file is not valid PEM.
  static Result<std::unique_ptr<CertificateAuthority>> Open(const CaOptions& options);

  // The CA certificate of an existing CA directory (no key needed).
  // kNotFound before the first start created it.
  static Result<std::string> ReadCaCertificate(const std::string& dir);

  ~CertificateAuthority();
  CertificateAuthority(const CertificateAuthority&) = delete;
  CertificateAuthority& operator=(const CertificateAuthority&) = delete;

  const std::string& ca_certificate_pem() const;
  const ServerTlsMaterial& server_tls() const;

  // Checks a PKCS#10 CSR without signing anything: PEM, self-signature, key
  // type. kInvalidArgument when it would be refused by IssueClientCertificate.
  static Status VerifyCsr(std::string_view csr_pem);

  // Verifies the PKCS#10 CSR's self-signature and key type, and issues a
  // client certificate for `agent_id` valid from now - 5 min to now + validity.
  // The CSR's subject is ignored. kInvalidArgument for a malformed CSR, a bad
  // signature or an unaccepted key.
  Result<IssuedCertificate> IssueClientCertificate(std::string_view csr_pem, std::string_view agent_id, int64_t now_ns,
                                                   std::chrono::seconds validity) const;
  // The same for a console user (docs/console.md): CN = user name, SAN URI
  // UserUri(name); never accepted as an agent (IsAgentId fails on the CN).
  // kInvalidArgument for an empty name or a bad CSR.
  Result<IssuedCertificate> IssueUserCertificate(std::string_view csr_pem, std::string_view user_name, int64_t now_ns,
                                                 std::chrono::seconds validity) const;

  struct Impl;

 private:
  explicit CertificateAuthority(std::unique_ptr<Impl> impl);
  // Signs a client certificate for the checked CSR: CN, O, one SAN URI.
  Result<IssuedCertificate> IssueClient(std::string_view csr_pem, std::string common_name, std::string organization,
                                        std::string uri, int64_t now_ns, std::chrono::seconds validity) const;
  std::unique_ptr<Impl> impl_;
};

// The identity in a client certificate presented on Connect.
struct PeerCertificate {
  std::string common_name;         // subject CN
  std::vector<std::string> uris;   // SAN URIs
  std::string fingerprint_sha256;  // lowercase hex SHA-256 of the DER certificate
};
// Parses one PEM certificate (the peer's leaf). kInvalidArgument when it is not one.
Result<PeerCertificate> ParsePeerCertificate(std::string_view pem);

// A random UUID v4, lowercase ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx").
Result<std::string> NewAgentId();
// true for the form NewAgentId produces.
bool IsAgentId(std::string_view s);
// "urn:mamori:agent:" + agent_id.
std::string AgentUri(std::string_view agent_id);
// "urn:mamori:user:" + user_name (console users' client certificates).
std::string UserUri(std::string_view user_name);

}  // namespace mamori::server

// OpenSSL 3 helpers for the CA: owning pointers, PEM in and out, names,
// fingerprints, times. Internal to mamori_server_ca.
//
// Thread safety: free functions without shared state; an object passed in
// must not be modified concurrently.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "mamori/common/status.h"

namespace mamori::server::x509 {

struct KeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct CertFree {
  void operator()(X509* p) const { X509_free(p); }
};
struct ReqFree {
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
using CertPtr = std::unique_ptr<X509, CertFree>;
using ReqPtr = std::unique_ptr<X509_REQ, ReqFree>;

// The OpenSSL error queue as text (and cleared), for messages.
std::string OpenSslErrors();

Result<KeyPtr> GenerateEcP256Key();
Result<std::string> KeyToPem(EVP_PKEY* key);  // PKCS#8, unencrypted
Result<std::string> CertToPem(X509* cert);
Result<KeyPtr> KeyFromPem(std::string_view pem);
Result<CertPtr> CertFromPem(std::string_view pem);
Result<ReqPtr> ReqFromPem(std::string_view pem);

// Lowercase hex SHA-256 of the DER encoding.
Result<std::string> Fingerprint(X509* cert);

// Seconds since the epoch of notAfter.
Result<int64_t> NotAfter(X509* cert);

// What a new certificate needs besides its key.
struct CertSpec {
  std::string common_name;
  std::string organization;  // empty: none
  int64_t not_before_s = 0;
  int64_t not_after_s = 0;
  bool is_ca = false;
  enum class Usage { kCa, kServer, kClient } usage = Usage::kClient;
  std::set<std::string> dns_names;     // SAN DNS
  std::set<std::string> ip_addresses;  // SAN IP, printed form
  std::set<std::string> uris;          // SAN URI
};

// Builds and signs a certificate for `subject_key` (public part) with
// `issuer_key`. issuer == nullptr: self-signed.
Result<CertPtr> MakeCertificate(const CertSpec& spec, EVP_PKEY* subject_key, X509* issuer, EVP_PKEY* issuer_key);

// SAN entries of a certificate, normalized: "dns:<lowercase>", "ip:<inet_ntop>", "uri:<text>".
std::set<std::string> SubjectAltNames(X509* cert);
// Subject CN ("" when none).
std::string CommonName(X509* cert);
// The IP address in canonical printed form, or "" when `s` is not one.
std::string CanonicalIp(const std::string& s);

}  // namespace mamori::server::x509

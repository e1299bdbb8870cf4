// OpenSSL pieces of enrollment: the agent key, the CSR, and checking stored
// credentials. Internal to mamori_telemetry_uplink.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "mamori/common/status.h"

namespace mamori::telemetry::x509 {

// A new EC P-256 private key as PKCS#8 PEM.
Result<std::string> GenerateKeyPem();

// A PKCS#10 request (PEM) for the key, signed with it; subject CN = common_name.
Result<std::string> MakeCsrPem(const std::string& key_pem, const std::string& common_name);

struct CertificateInfo {
  std::string common_name;
  int64_t not_before_ns = 0;
  int64_t not_after_ns = 0;
};

// Checks that `cert_pem` is for `key_pem`, verifies against `ca_pem` (as the
// only trust anchor) at `now`, and returns its subject CN and expiry.
// kFailedPrecondition when they do not fit or the certificate is not valid
// now; kDataLoss when a PEM does not parse.
Result<CertificateInfo> CheckCertificate(const std::string& key_pem, const std::string& cert_pem,
                                         const std::string& ca_pem, int64_t now_ns);

// Subject CN of a PEM certificate.
Result<std::string> CommonName(const std::string& cert_pem);

}  // namespace mamori::telemetry::x509

// Enrollment: turning a one-time token into the agent's identity, and
// loading that identity for the uplink (docs/telemetry-uplink.md).
//
// Files in key_dir (created 0700):
//   agent.key  EC P-256 private key, PKCS#8 PEM, mode 0600; made here, never sent
//   agent.crt  client certificate from the server (subject CN = agent id)
//   ca.crt     the server CA the agent pins (the one given to Enroll)
//   renew.key, renew.crt  a renewal under way (see RenewCredentials)
// Each is written atomically (temporary file, fsync, rename).
//
// Thread safety: functions without shared state; one process (the agent)
// owns a key_dir: two must not enroll, renew or load into it at the same time.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "mamori/common/status.h"
#include "mamori/v1/common.pb.h"

namespace mamori::telemetry {

struct AgentCredentials {
  std::string agent_id;            // the certificate's CN
  std::string key_pem;             // agent private key
  std::string certificate_pem;     // client certificate
  std::string ca_certificate_pem;  // pinned server CA
  int64_t not_after_ns = 0;        // certificate expiry
  int64_t not_before_ns = 0;       // start of its validity
};

// Reads key_dir and checks that the certificate matches the key, is signed
// by ca.crt and has not expired. A renewal cut short by a crash is finished
// first (renew.crt that fits its key is moved into place) or dropped
// (renew.key alone: the server still accepts the old certificate).
// kNotFound when not enrolled (files missing); kFailedPrecondition when
// they do not fit together or expired; kDataLoss for unreadable PEM.
Result<AgentCredentials> LoadCredentials(const std::string& key_dir);

// When a certificate should be renewed: once `fraction` (0..1) of its
// validity has passed. The agent uses 2/3: a 365-day certificate is renewed
// after ~243 days, leaving four months to reach a server before it expires.
int64_t RenewalDueAtNs(const AgentCredentials& c, double fraction);

struct RenewOptions {
  std::string server;        // "host:port"
  std::string key_dir;       // where `current` was loaded from
  AgentCredentials current;  // presented to the server (mTLS)
  std::chrono::milliseconds timeout{30'000};
};

// Renews the certificate: a new key (renew.key, 0600) and CSR, then
// AgentService.Renew over mTLS with the current certificate; the answer must
// be a certificate for the new key, same agent id, signed by the pinned CA.
// It is stored as renew.crt, then both move into place (agent.key, then
// agent.crt; LoadCredentials finishes this after a crash). Returns the new
// credentials. Errors carry the server's code (kUnauthenticated,
// kPermissionDenied: revoked, kFailedPrecondition, kUnavailable: retry later).
Result<AgentCredentials> RenewCredentials(const RenewOptions& options);

struct EnrollOptions {
  std::string server;              // "host:port"
  std::string ca_certificate_pem;  // the server CA (`mamori-server ca export`); required unless insecure
  std::string token;               // `mamori-server token create`
  std::string key_dir;
  v1::AgentInfo agent;  // sent with the request (hostname, versions...)
  // Plaintext, loopback servers only (kFailedPrecondition otherwise); the CA
  // returned by the server is then trusted as is. Logged loudly.
  bool insecure = false;
  // Enroll even when key_dir already holds valid credentials.
  bool force = false;
  std::chrono::milliseconds timeout{30'000};
};

struct Enrollment {
  std::string agent_id;
  bool enrolled_now = false;  // false: valid credentials were already there
  int64_t not_after_ns = 0;
};

// Idempotent: returns the existing identity when key_dir already holds valid
// credentials (unless force). Otherwise makes a new key (agent.key, 0600) and
// a CSR, calls AgentService.Enroll over TLS verified against the given CA,
// checks the answer (certificate for our key, CN = agent id) and stores it.
// Errors carry the server's code: kUnauthenticated (token refused),
// kInvalidArgument, kFailedPrecondition (protocol), kUnavailable (retry).
Result<Enrollment> Enroll(const EnrollOptions& options);

// true for 127.0.0.0/8, ::1 and "localhost" (the host of "host:port").
bool IsLoopbackAddress(const std::string& host_port);

}  // namespace mamori::telemetry

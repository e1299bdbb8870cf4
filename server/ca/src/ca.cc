#include "mamori/server/ca.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <mutex>

#include "mamori/common/file_util.h"
#include "mamori/common/log.h"
#include "x509_util.h"

namespace mamori::server {

namespace {

constexpr int64_t kDay = 86400;
constexpr int64_t kCaValidity = 3653 * kDay;  // 10 years
constexpr int64_t kServerValidity = 365 * kDay;
constexpr int64_t kServerRenewBefore = 30 * kDay;
constexpr int64_t kBackdate = 300;  // clock skew between server and agents
constexpr size_t kMaxCsrBytes = 64 * 1024;

int64_t NowSeconds(int64_t now_ns) {
  if (now_ns == 0) {
    now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
                 .count();
  }
  return now_ns / 1'000'000'000;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// Holds flock(LOCK_EX) on dir/lock for its lifetime.
class DirLock {
 public:
  static Result<DirLock> Take(const std::string& dir) {
    const std::string path = dir + "/lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoError(errno, "open " + path);
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno != EINTR) {
        const int err = errno;
        ::close(fd);
        return ErrnoError(err, "flock " + path);
      }
    }
    return DirLock(fd);
  }
  DirLock(DirLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  DirLock& operator=(DirLock&&) = delete;
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_;
};

// The private key file must not be readable by anyone but its owner.
Status CheckKeyMode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ErrnoError(errno, "stat " + path);
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return FailedPreconditionError(path + " is accessible by group or others (mode " + mode + "); run: chmod 600 " +
                                   path);
  }
  return Status::Ok();
}

Result<x509::KeyPtr> LoadKey(const std::string& path) {
  MAMORI_RETURN_IF_ERROR(CheckKeyMode(path));
  Result<std::string> pem = ReadFileToString(path);
  if (!pem.ok()) return pem.status();
  Result<x509::KeyPtr> key = x509::KeyFromPem(*pem);
  if (!key.ok()) return key.status().WithContext(path);
  return key;
}

Result<x509::CertPtr> LoadCert(const std::string& path) {
  Result<std::string> pem = ReadFileToString(path);
  if (!pem.ok()) return pem.status();
  Result<x509::CertPtr> cert = x509::CertFromPem(*pem);
  if (!cert.ok()) return cert.status().WithContext(path);
  return cert;
}

std::string RandomSuffix() {
  unsigned char b[4] = {};
  RAND_bytes(b, sizeof b);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(b), sizeof b));
}

// The SAN set the server certificate must carry, normalized like x509::SubjectAltNames.
std::set<std::string> WantedServerNames(const std::vector<std::string>& extra) {
  std::set<std::string> want = {"dns:localhost", "ip:127.0.0.1", "ip:::1"};
  for (const auto& n : extra) {
    if (n.empty() || n == "0.0.0.0" || n == "::") continue;  // wildcard listen addresses are not names
    const std::string ip = x509::CanonicalIp(n);
    if (!ip.empty()) {
      want.insert("ip:" + ip);
    } else {
      std::string lower = n;
      for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      want.insert("dns:" + lower);
    }
  }
  return want;
}

bool AcceptedKey(EVP_PKEY* key, std::string* why) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_EC: {
      char group[64] = {};
      size_t len = 0;
      if (EVP_PKEY_get_group_name(key, group, sizeof group, &len) != 1) {
        *why = "EC key without a named curve";
        return false;
      }
      const std::string g(group, len);
      if (g == "prime256v1" || g == "secp384r1" || g == "secp521r1") return true;
      *why = "EC curve " + g + " is not accepted (P-256, P-384 or P-521)";
      return false;
    }
    case EVP_PKEY_ED25519:
      return true;
    case EVP_PKEY_RSA: {
      const int bits = EVP_PKEY_get_bits(key);
      if (bits >= 2048 && bits <= 8192) return true;
      *why = "RSA keys must have 2048 to 8192 bits, got " + std::to_string(bits);
      return false;
    }
    default:
      *why = "key type is not accepted (EC P-256/P-384/P-521, Ed25519 or RSA)";
      return false;
  }
}

}  // namespace

struct CertificateAuthority::Impl {
  x509::KeyPtr ca_key;
  x509::CertPtr ca_cert;
  std::string ca_pem;
  ServerTlsMaterial tls;
  mutable std::mutex issue_mu;  // serializes signing with ca_key
};

CertificateAuthority::CertificateAuthority(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CertificateAuthority::~CertificateAuthority() = default;

const std::string& CertificateAuthority::ca_certificate_pem() const { return impl_->ca_pem; }
const ServerTlsMaterial& CertificateAuthority::server_tls() const { return impl_->tls; }

Result<std::string> CertificateAuthority::ReadCaCertificate(const std::string& dir) {
  const std::string path = dir + "/ca.crt";
  if (!Exists(path)) return NotFoundError("no CA in " + dir + " yet (mamori-server creates it at its first start)");
  Result<std::string> pem = ReadFileToString(path);
  if (!pem.ok()) return pem.status();
  Result<x509::CertPtr> cert = x509::CertFromPem(*pem);
  if (!cert.ok()) return cert.status().WithContext(path);
  return pem;
}

Result<std::unique_ptr<CertificateAuthority>> CertificateAuthority::Open(const CaOptions& options) {
  if (options.dir.empty()) return InvalidArgumentError("CA directory not set");
  MAMORI_RETURN_IF_ERROR(MakeDirs(options.dir, 0700));
  Result<DirLock> lock = DirLock::Take(options.dir);
  if (!lock.ok()) return lock.status();
  const int64_t now = NowSeconds(options.now_ns);
  const std::string key_path = options.dir + "/ca.key";
  const std::string crt_path = options.dir + "/ca.crt";
  auto impl = std::make_unique<Impl>();

  const bool have_key = Exists(key_path), have_crt = Exists(crt_path);
  if (have_key != have_crt) {
    return FailedPreconditionError("CA directory " + options.dir + " has " +
                                   (have_key ? "ca.key but no ca.crt" : "ca.crt but no ca.key") +
                                   "; restore the missing file (never regenerate a CA agents already pin)");
  }
  if (!have_key) {
    Result<x509::KeyPtr> key = x509::GenerateEcP256Key();
    if (!key.ok()) return key.status();
    x509::CertSpec spec;
    spec.common_name = "Mamori Enrollment CA " + RandomSuffix();
    spec.organization = "Mamori";
    spec.not_before_s = now - kBackdate;
    spec.not_after_s = now + kCaValidity;
    spec.usage = x509::CertSpec::Usage::kCa;
    Result<x509::CertPtr> cert = x509::MakeCertificate(spec, key->get(), nullptr, key->get());
    if (!cert.ok()) return cert.status();
    Result<std::string> key_pem = x509::KeyToPem(key->get());
    if (!key_pem.ok()) return key_pem.status();
    Result<std::string> crt_pem = x509::CertToPem(cert->get());
    if (!crt_pem.ok()) return crt_pem.status();
    // The key first: a crash in between leaves "key without cert", which is refused above, never a silent new CA.
    MAMORI_RETURN_IF_ERROR(WriteFileAtomically(key_path, *key_pem, 0600));
    MAMORI_RETURN_IF_ERROR(WriteFileAtomically(crt_path, *crt_pem, 0644));
    MAMORI_LOG(kInfo, "created the enrollment CA in " << options.dir << " (" << spec.common_name << ")");
  }
  Result<x509::KeyPtr> ca_key = LoadKey(key_path);
  if (!ca_key.ok()) return ca_key.status();
  Result<x509::CertPtr> ca_cert = LoadCert(crt_path);
  if (!ca_cert.ok()) return ca_cert.status();
  if (X509_check_private_key(ca_cert->get(), ca_key->get()) != 1) {
    ERR_clear_error();
    return FailedPreconditionError(key_path + " does not belong to " + crt_path);
  }
  impl->ca_key = std::move(*ca_key);
  impl->ca_cert = std::move(*ca_cert);
  Result<std::string> ca_pem = ReadFileToString(crt_path);
  if (!ca_pem.ok()) return ca_pem.status();
  impl->ca_pem = *ca_pem;

  // The server certificate.
  const std::string skey_path = options.dir + "/server.key";
  const std::string scrt_path = options.dir + "/server.crt";
  const std::set<std::string> want = WantedServerNames(options.server_names);
  std::string reissue;
  if (!Exists(skey_path) || !Exists(scrt_path)) {
    reissue = "none yet";
  } else {
    Result<x509::KeyPtr> skey = LoadKey(skey_path);
    if (!skey.ok()) return skey.status();
    Result<x509::CertPtr> scrt = LoadCert(scrt_path);
    if (!scrt.ok()) return scrt.status();
    Result<int64_t> not_after = x509::NotAfter(scrt->get());
    if (X509_verify(scrt->get(), X509_get0_pubkey(impl->ca_cert.get())) != 1) {
      reissue = "not signed by this CA";
    } else if (X509_check_private_key(scrt->get(), skey->get()) != 1) {
      reissue = "key mismatch";
    } else if (!not_after.ok() || *not_after - now < kServerRenewBefore) {
      reissue = "expiring";
    } else if (x509::SubjectAltNames(scrt->get()) != want) {
      reissue = "names changed";
    }
    ERR_clear_error();
  }
  if (!reissue.empty()) {
    Result<x509::KeyPtr> skey = x509::GenerateEcP256Key();
    if (!skey.ok()) return skey.status();
    x509::CertSpec spec;
    spec.organization = "Mamori";
    spec.not_before_s = now - kBackdate;
    spec.not_after_s = now + kServerValidity;
    spec.usage = x509::CertSpec::Usage::kServer;
    for (const auto& n : want) {
      if (n.starts_with("dns:"))
        spec.dns_names.insert(n.substr(4));
      else
        spec.ip_addresses.insert(n.substr(3));
    }
    spec.common_name = "mamori-server";
    Result<x509::CertPtr> scrt = x509::MakeCertificate(spec, skey->get(), impl->ca_cert.get(), impl->ca_key.get());
    if (!scrt.ok()) return scrt.status();
    Result<std::string> skey_pem = x509::KeyToPem(skey->get());
    if (!skey_pem.ok()) return skey_pem.status();
    Result<std::string> scrt_pem = x509::CertToPem(scrt->get());
    if (!scrt_pem.ok()) return scrt_pem.status();
    MAMORI_RETURN_IF_ERROR(WriteFileAtomically(skey_path, *skey_pem, 0600));
    MAMORI_RETURN_IF_ERROR(WriteFileAtomically(scrt_path, *scrt_pem, 0644));
    MAMORI_LOG(kInfo, "issued the server certificate (" << reissue << ") in " << options.dir);
  }
  Result<std::string> skey_pem = ReadFileToString(skey_path);
  if (!skey_pem.ok()) return skey_pem.status();
  Result<std::string> scrt_pem = ReadFileToString(scrt_path);
  if (!scrt_pem.ok()) return scrt_pem.status();
  impl->tls = ServerTlsMaterial{impl->ca_pem, *scrt_pem, *skey_pem};
  return std::unique_ptr<CertificateAuthority>(new CertificateAuthority(std::move(impl)));
}

namespace {

// The CSR, checked: PEM PKCS#10, an accepted key, a valid self-signature.
Result<x509::ReqPtr> CheckedCsr(std::string_view csr_pem) {
  if (csr_pem.size() > kMaxCsrBytes) return InvalidArgumentError("CSR larger than 64 KiB");
  Result<x509::ReqPtr> req = x509::ReqFromPem(csr_pem);
  if (!req.ok()) return req.status();
  EVP_PKEY* key = X509_REQ_get0_pubkey(req->get());
  if (key == nullptr) {
    ERR_clear_error();
    return InvalidArgumentError("CSR has no usable public key");
  }
  std::string why;
  if (!AcceptedKey(key, &why)) return InvalidArgumentError("CSR: " + why);
  if (X509_REQ_verify(req->get(), key) != 1) {
    ERR_clear_error();
    return InvalidArgumentError("CSR signature does not verify");
  }
  return req;
}

}  // namespace

Status CertificateAuthority::VerifyCsr(std::string_view csr_pem) { return CheckedCsr(csr_pem).status(); }

Result<IssuedCertificate> CertificateAuthority::IssueClient(std::string_view csr_pem, std::string common_name,
                                                            std::string organization, std::string uri, int64_t now_ns,
                                                            std::chrono::seconds validity) const {
  Result<x509::ReqPtr> req = CheckedCsr(csr_pem);
  if (!req.ok()) return req.status();
  EVP_PKEY* key = X509_REQ_get0_pubkey(req->get());
  const int64_t now = NowSeconds(now_ns);
  x509::CertSpec spec;
  spec.common_name = std::move(common_name);
  spec.organization = std::move(organization);
  spec.not_before_s = now - kBackdate;
  spec.not_after_s = now + validity.count();
  spec.usage = x509::CertSpec::Usage::kClient;
  spec.uris.insert(std::move(uri));
  std::lock_guard<std::mutex> lock(impl_->issue_mu);
  Result<x509::CertPtr> cert = x509::MakeCertificate(spec, key, impl_->ca_cert.get(), impl_->ca_key.get());
  if (!cert.ok()) return cert.status();
  IssuedCertificate out;
  Result<std::string> pem = x509::CertToPem(cert->get());
  if (!pem.ok()) return pem.status();
  Result<std::string> fp = x509::Fingerprint(cert->get());
  if (!fp.ok()) return fp.status();
  out.certificate_pem = std::move(*pem);
  out.fingerprint_sha256 = std::move(*fp);
  out.not_after_ns = spec.not_after_s * 1'000'000'000;
  return out;
}

Result<IssuedCertificate> CertificateAuthority::IssueClientCertificate(std::string_view csr_pem,
                                                                       std::string_view agent_id, int64_t now_ns,
                                                                       std::chrono::seconds validity) const {
  if (!IsAgentId(agent_id)) return InvalidArgumentError("bad agent id");
  return IssueClient(csr_pem, std::string(agent_id), "Mamori agents", AgentUri(agent_id), now_ns, validity);
}

Result<IssuedCertificate> CertificateAuthority::IssueUserCertificate(std::string_view csr_pem,
                                                                     std::string_view user_name, int64_t now_ns,
                                                                     std::chrono::seconds validity) const {
  if (user_name.empty() || user_name.size() > 64 || IsAgentId(user_name)) return InvalidArgumentError("bad user name");
  return IssueClient(csr_pem, std::string(user_name), "Mamori console users", UserUri(user_name), now_ns, validity);
}

std::string UserUri(std::string_view user_name) { return "urn:mamori:user:" + std::string(user_name); }

Result<PeerCertificate> ParsePeerCertificate(std::string_view pem) {
  Result<x509::CertPtr> cert = x509::CertFromPem(pem);
  if (!cert.ok()) return InvalidArgumentError("peer certificate: " + cert.status().message());
  PeerCertificate out;
  out.common_name = x509::CommonName(cert->get());
  for (const auto& n : x509::SubjectAltNames(cert->get())) {
    if (n.starts_with("uri:")) out.uris.push_back(n.substr(4));
  }
  Result<std::string> fp = x509::Fingerprint(cert->get());
  if (!fp.ok()) return fp.status();
  out.fingerprint_sha256 = std::move(*fp);
  return out;
}

Result<std::string> NewAgentId() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) return InternalError("RAND_bytes: " + x509::OpenSslErrors());
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // variant 10
  const std::string hex = HexEncode(std::string_view(reinterpret_cast<const char*>(b), sizeof b));
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20);
}

bool IsAgentId(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (s[i] == '-')) return false;
    if (!dash && !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
    if (!dash && std::isupper(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

std::string AgentUri(std::string_view agent_id) { return "urn:mamori:agent:" + std::string(agent_id); }

}  // namespace mamori::server

#include "mamori/telemetry/enrollment.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "channel.h"
#include "mamori/common/file_util.h"
#include "mamori/common/log.h"
#include "mamori/telemetry/convert.h"
#include "mamori/v1/agent_service.grpc.pb.h"
#include "mamori/v1/version.h"
#include "x509.h"

namespace mamori::telemetry {

namespace {

constexpr char kKeyFile[] = "agent.key";
constexpr char kCertFile[] = "agent.crt";
constexpr char kCaFile[] = "ca.crt";
constexpr char kRenewKeyFile[] = "renew.key";
constexpr char kRenewCertFile[] = "renew.crt";

Result<std::string> ReadPart(const std::string& dir, const char* name) {
  Result<std::string> data = ReadFileToString(dir + "/" + name);
  if (!data.ok() && data.status().code() == StatusCode::kNotFound) {
    return NotFoundError("not enrolled: " + dir + "/" + name + " is missing");
  }
  return data;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// rename(2), then an fsync of the directory so the rename survives a crash.
Status RenameDurably(const std::string& dir, const char* from, const char* to) {
  const std::string a = dir + "/" + from, b = dir + "/" + to;
  if (::rename(a.c_str(), b.c_str()) != 0) return ErrnoError(errno, "rename " + a + " to " + b);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return ErrnoError(errno, "open " + dir);
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (rc != 0) return ErrnoError(err, "fsync " + dir);
  return Status::Ok();
}

// Moves a renewal's key and certificate into place (the key first: while
// renew.crt exists the step can be repeated).
Status InstallRenewal(const std::string& key_dir) {
  if (Exists(key_dir + "/" + kRenewKeyFile)) MAMORI_RETURN_IF_ERROR(RenameDurably(key_dir, kRenewKeyFile, kKeyFile));
  return RenameDurably(key_dir, kRenewCertFile, kCertFile);
}

// A renewal cut short: finished when renew.crt is there and fits its key
// (renew.key, or agent.key when that was already moved) and the agent id;
// otherwise its files are removed and the current credentials stay.
Status FinishInterruptedRenewal(const std::string& key_dir) {
  const std::string renew_key = key_dir + "/" + kRenewKeyFile, renew_cert = key_dir + "/" + kRenewCertFile;
  if (!Exists(renew_cert)) {
    if (Exists(renew_key)) {
      MAMORI_LOG(kWarning, "enrollment: a renewal in " << key_dir
                                                       << " got no certificate before it was cut short; keeping the "
                                                          "current one (renewed again later)");
      if (::unlink(renew_key.c_str()) != 0) return ErrnoError(errno, "unlink " + renew_key);
    }
    return Status::Ok();
  }
  Result<std::string> cert = ReadFileToString(renew_cert);
  Result<std::string> key = ReadFileToString(Exists(renew_key) ? renew_key : key_dir + "/" + kKeyFile);
  Result<std::string> ca = ReadFileToString(key_dir + "/" + kCaFile);
  Result<std::string> old_cert = ReadFileToString(key_dir + "/" + kCertFile);
  bool fits = false;
  if (cert.ok() && key.ok() && ca.ok()) {
    Result<x509::CertificateInfo> info = x509::CheckCertificate(*key, *cert, *ca, NowNs());
    Result<std::string> old_cn = old_cert.ok() ? x509::CommonName(*old_cert) : Result<std::string>(old_cert.status());
    fits = info.ok() && (!old_cn.ok() || *old_cn == info->common_name);
  }
  if (fits) {
    MAMORI_LOG(kInfo, "enrollment: finishing the certificate renewal in " << key_dir);
    return InstallRenewal(key_dir);
  }
  MAMORI_LOG(kWarning, "enrollment: dropping an unusable renewal in " << key_dir);
  for (const std::string& f : {renew_cert, renew_key}) {
    if (::unlink(f.c_str()) != 0 && errno != ENOENT) return ErrnoError(errno, "unlink " + f);
  }
  return Status::Ok();
}

}  // namespace

int64_t RenewalDueAtNs(const AgentCredentials& c, double fraction) {
  const double f = std::clamp(fraction, 0.0, 1.0);
  return c.not_before_ns + static_cast<int64_t>(static_cast<double>(c.not_after_ns - c.not_before_ns) * f);
}

Result<AgentCredentials> LoadCredentials(const std::string& key_dir) {
  MAMORI_RETURN_IF_ERROR(FinishInterruptedRenewal(key_dir));
  Result<std::string> cert = ReadPart(key_dir, kCertFile);
  if (!cert.ok()) return cert.status();
  Result<std::string> key = ReadPart(key_dir, kKeyFile);
  if (!key.ok()) return key.status();
  Result<std::string> ca = ReadPart(key_dir, kCaFile);
  if (!ca.ok()) return ca.status();
  struct stat st {};
  const std::string key_path = key_dir + "/" + kKeyFile;
  if (::stat(key_path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    return FailedPreconditionError(key_path + " is readable by group or others (chmod 600 it)");
  }
  Result<x509::CertificateInfo> info = x509::CheckCertificate(*key, *cert, *ca, NowNs());
  if (!info.ok()) return info.status().WithContext(key_dir);
  AgentCredentials c;
  c.agent_id = info->common_name;
  c.key_pem = std::move(*key);
  c.certificate_pem = std::move(*cert);
  c.ca_certificate_pem = std::move(*ca);
  c.not_after_ns = info->not_after_ns;
  c.not_before_ns = info->not_before_ns;
  return c;
}

Result<AgentCredentials> RenewCredentials(const RenewOptions& o) {
  if (o.key_dir.empty()) return InvalidArgumentError("renew: no key directory");
  if (o.current.certificate_pem.empty() || o.current.key_pem.empty() || o.current.ca_certificate_pem.empty()) {
    return InvalidArgumentError("renew: no current credentials");
  }
  MAMORI_RETURN_IF_ERROR(ParseServerAddress(o.server, nullptr, nullptr));
  Result<std::string> key = x509::GenerateKeyPem();
  if (!key.ok()) return key.status();
  Result<std::string> csr = x509::MakeCsrPem(*key, o.current.agent_id);
  if (!csr.ok()) return csr.status();
  // The key is on disk before the server signs anything for it.
  MAMORI_RETURN_IF_ERROR(WriteFileAtomically(o.key_dir + "/" + kRenewKeyFile, *key, 0600));

  std::unique_ptr<v1::AgentService::Stub> stub =
      v1::AgentService::NewStub(MakeChannel(o.server, MakeCredentials(o.current, false)));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + o.timeout);
  v1::RenewRequest req;
  req.set_csr_pem(*csr);
  req.set_protocol_version(v1::kProtocolVersion);
  v1::EnrollResponse resp;
  grpc::Status st = stub->Renew(&ctx, req, &resp);
  if (!st.ok()) {
    (void)::unlink((o.key_dir + "/" + kRenewKeyFile).c_str());
    return Status(static_cast<StatusCode>(st.error_code()), "renew at " + o.server + ": " + st.error_message());
  }
  Result<x509::CertificateInfo> info =
      x509::CheckCertificate(*key, resp.certificate_pem(), o.current.ca_certificate_pem, NowNs());
  if (!info.ok() || info->common_name != o.current.agent_id || resp.agent_id() != o.current.agent_id) {
    (void)::unlink((o.key_dir + "/" + kRenewKeyFile).c_str());
    if (!info.ok()) return info.status().WithContext("the renewed certificate from " + o.server);
    return FailedPreconditionError("the renewed certificate from " + o.server + " names '" + info->common_name +
                                   "', not this agent '" + o.current.agent_id + "'");
  }
  MAMORI_RETURN_IF_ERROR(WriteFileAtomically(o.key_dir + "/" + kRenewCertFile, resp.certificate_pem(), 0644));
  // The same checked step as after a crash: the certificate moves in only
  // with the key it was issued for.
  MAMORI_RETURN_IF_ERROR(FinishInterruptedRenewal(o.key_dir));
  Result<std::string> installed = ReadFileToString(o.key_dir + "/" + kCertFile);
  if (!installed.ok() || *installed != resp.certificate_pem()) {
    return AbortedError("renew: the files in " + o.key_dir +
                        " changed during the renewal (another process using the directory?); the previous "
                        "certificate stays in use");
  }
  AgentCredentials c = o.current;
  c.key_pem = std::move(*key);
  c.certificate_pem = resp.certificate_pem();
  c.not_after_ns = info->not_after_ns;
  c.not_before_ns = info->not_before_ns;
  MAMORI_LOG(kInfo, "enrollment: renewed the certificate of agent " << c.agent_id << " at " << o.server
                                                                    << "; valid for " << (c.not_after_ns - NowNs()) / 3'600'000'000'000 << " more hours");
  return c;
}

Result<Enrollment> Enroll(const EnrollOptions& o) {
  if (o.key_dir.empty()) return InvalidArgumentError("enroll: no key directory");
  if (o.token.empty()) return InvalidArgumentError("enroll: no enrollment token");
  MAMORI_RETURN_IF_ERROR(ParseServerAddress(o.server, nullptr, nullptr));
  if (o.insecure) {
    MAMORI_RETURN_IF_ERROR(CheckInsecureAllowed({o.server}, "enrollment"));
  } else if (o.ca_certificate_pem.empty()) {
    return InvalidArgumentError("enroll: the server's CA certificate is needed (mamori-server ca export)");
  }
  if (!o.force) {
    Result<AgentCredentials> existing = LoadCredentials(o.key_dir);
    if (existing.ok()) {
      MAMORI_LOG(kInfo, "enrollment: " << o.key_dir << " already holds agent " << existing->agent_id);
      return Enrollment{existing->agent_id, false, existing->not_after_ns};
    }
    if (existing.status().code() != StatusCode::kNotFound) {
      MAMORI_LOG(kWarning, "enrollment: the credentials in " << o.key_dir << " are unusable ("
                                                             << existing.status().message() << "); enrolling again");
    }
  }
  MAMORI_RETURN_IF_ERROR(MakeDirs(o.key_dir, 0700));
  if (::chmod(o.key_dir.c_str(), 0700) != 0) return ErrnoError(errno, "chmod " + o.key_dir);

  Result<std::string> key = x509::GenerateKeyPem();
  if (!key.ok()) return key.status();
  Result<std::string> csr = x509::MakeCsrPem(*key, o.agent.hostname());
  if (!csr.ok()) return csr.status();

  AgentCredentials server_auth;
  server_auth.ca_certificate_pem = o.ca_certificate_pem;
  std::unique_ptr<v1::AgentService::Stub> stub =
      v1::AgentService::NewStub(MakeChannel(o.server, MakeCredentials(server_auth, o.insecure)));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + o.timeout);
  ctx.set_wait_for_ready(false);
  v1::EnrollRequest req;
  req.set_token(o.token);
  req.set_csr_pem(*csr);
  *req.mutable_agent() = o.agent;
  req.set_protocol_version(v1::kProtocolVersion);
  v1::EnrollResponse resp;
  grpc::Status st = stub->Enroll(&ctx, req, &resp);
  if (!st.ok()) {
    return Status(static_cast<StatusCode>(st.error_code()), "enroll at " + o.server + ": " + st.error_message());
  }
  // Without TLS there is nothing better to pin than what the server sent.
  const std::string& ca = o.insecure ? resp.ca_certificate_pem() : o.ca_certificate_pem;
  Result<x509::CertificateInfo> info = x509::CheckCertificate(*key, resp.certificate_pem(), ca, NowNs());
  if (!info.ok()) return info.status().WithContext("the certificate from " + o.server);
  if (info->common_name != resp.agent_id() || resp.agent_id().empty()) {
    return FailedPreconditionError("the certificate from " + o.server + " names '" + info->common_name +
                                   "', not the agent id '" + resp.agent_id() + "'");
  }
  // The certificate goes last: its presence marks a complete enrollment.
  MAMORI_RETURN_IF_ERROR(WriteFileAtomically(o.key_dir + "/" + kKeyFile, *key, 0600));
  MAMORI_RETURN_IF_ERROR(WriteFileAtomically(o.key_dir + "/" + kCaFile, ca, 0644));
  MAMORI_RETURN_IF_ERROR(WriteFileAtomically(o.key_dir + "/" + kCertFile, resp.certificate_pem(), 0644));
  MAMORI_LOG(kInfo, "enrollment: enrolled at " << o.server << " as agent " << resp.agent_id());
  return Enrollment{resp.agent_id(), true, info->not_after_ns};
}

}  // namespace mamori::telemetry

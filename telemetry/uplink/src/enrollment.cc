#include "mamori/telemetry/enrollment.h"

#include <sys/stat.h>

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

Result<std::string> ReadPart(const std::string& dir, const char* name) {
  Result<std::string> data = ReadFileToString(dir + "/" + name);
  if (!data.ok() && data.status().code() == StatusCode::kNotFound) {
    return NotFoundError("not enrolled: " + dir + "/" + name + " is missing");
  }
  return data;
}

}  // namespace

Result<AgentCredentials> LoadCredentials(const std::string& key_dir) {
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

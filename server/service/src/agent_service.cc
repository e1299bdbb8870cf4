#include "agent_service.h"

#include "mamori/common/json.h"
#include "mamori/common/log.h"
#include "mamori/v1/version.h"
#include "session.h"
#include "worker_pool.h"

namespace mamori::server {

grpc::Status DoEnroll(ServiceContext* svc, const std::string& peer, const mamori::v1::EnrollRequest& req,
                      mamori::v1::EnrollResponse* resp) {
  using grpc::StatusCode;
  if (grpc::Status v = CheckProtocolVersion(req.protocol_version()); !v.ok()) return v;
  if (req.token().empty()) return grpc::Status(StatusCode::UNAUTHENTICATED, "enrollment token missing");
  if (req.csr_pem().empty()) return grpc::Status(StatusCode::INVALID_ARGUMENT, "csr_pem missing");
  // The CSR is checked before the token is used, so a bad CSR never burns a
  // one-time token; nothing is signed for a caller without a valid token.
  Status csr = CertificateAuthority::VerifyCsr(req.csr_pem());
  if (!csr.ok()) return grpc::Status(StatusCode::INVALID_ARGUMENT, csr.message());
  const int64_t now = NowNs();
  Result<TokenRecord> token = svc->store->ConsumeEnrollmentToken(req.token(), now);
  if (!token.ok()) {
    if (token.status().code() == mamori::StatusCode::kUnauthenticated) {
      return grpc::Status(StatusCode::UNAUTHENTICATED, "enrollment token refused: " + token.status().message());
    }
    return grpc::Status(StatusCode::UNAVAILABLE, "store: " + token.status().message());
  }
  Result<std::string> agent_id = NewAgentId();
  if (!agent_id.ok()) return ToGrpc(agent_id.status());
  Result<IssuedCertificate> cert =
      svc->ca->IssueClientCertificate(req.csr_pem(), *agent_id, now, svc->config->client_cert_validity);
  if (!cert.ok()) {
    MAMORI_LOG(kError, "enrollment: issuing the certificate failed after token "
                           << token->token_id << " was used: " << cert.status().message());
    return grpc::Status(StatusCode::INTERNAL, "issuing the certificate failed");
  }
  AgentRecord rec;
  rec.agent_id = *agent_id;
  rec.hostname = req.agent().hostname();
  rec.os = req.agent().os();
  rec.kernel = req.agent().kernel();
  rec.agent_version = req.agent().agent_version();
  rec.signature_version = req.agent().signature_version();
  rec.sensor_mode = req.agent().sensor_mode();
  rec.cert_fingerprint = cert->fingerprint_sha256;
  rec.enrolled_at_ns = now;
  Status s = WithRetry([&] { return svc->store->UpsertAgent(rec); });
  if (!s.ok()) return grpc::Status(StatusCode::UNAVAILABLE, "store: " + s.message());
  AuditEntry audit;
  audit.at_ns = now;
  audit.actor = "enrollment:" + token->token_id;
  audit.action = "agent.enroll";
  audit.target = *agent_id;
  audit.details = "{\"hostname\":" + json::Quote(rec.hostname) + ",\"peer\":" + json::Quote(peer) +
                  ",\"cert_sha256\":\"" + cert->fingerprint_sha256 + "\"}";
  Result<int64_t> audited = WithRetry([&] { return svc->store->AppendAudit(audit); });
  if (!audited.ok()) MAMORI_LOG(kWarning, "audit log: " << audited.status().message());

  resp->set_agent_id(*agent_id);
  resp->set_certificate_pem(cert->certificate_pem);
  resp->set_ca_certificate_pem(svc->ca->ca_certificate_pem());
  resp->set_certificate_expires_at_ns(cert->not_after_ns);
  resp->set_protocol_version(mamori::v1::kProtocolVersion);
  MAMORI_LOG(kInfo, "enrolled agent " << *agent_id << " (" << rec.hostname << ") from " << peer << " with token "
                                      << token->token_id);
  return grpc::Status::OK;
}

grpc::Status DoRenew(ServiceContext* svc, const PeerIdentity& who, const std::string& peer,
                     const mamori::v1::RenewRequest& req, mamori::v1::EnrollResponse* resp) {
  using grpc::StatusCode;
  if (svc->config->insecure) {
    return grpc::Status(StatusCode::FAILED_PRECONDITION, "an --insecure server issues no certificates to renew");
  }
  if (grpc::Status v = CheckProtocolVersion(req.protocol_version()); !v.ok()) return v;
  if (req.csr_pem().empty()) return grpc::Status(StatusCode::INVALID_ARGUMENT, "csr_pem missing");
  Status csr = CertificateAuthority::VerifyCsr(req.csr_pem());
  if (!csr.ok()) return grpc::Status(StatusCode::INVALID_ARGUMENT, csr.message());
  Result<AgentRecord> agent = WithRetry([&] { return svc->store->GetAgent(who.agent_id); });
  if (!agent.ok()) {
    if (agent.status().code() == mamori::StatusCode::kNotFound) {
      return grpc::Status(StatusCode::UNAUTHENTICATED, "unknown agent (enroll again)");
    }
    return grpc::Status(StatusCode::UNAVAILABLE, "store: " + agent.status().message());
  }
  if (agent->revoked) return grpc::Status(StatusCode::PERMISSION_DENIED, "agent revoked");
  if (who.fingerprint_sha256 != agent->cert_fingerprint && who.fingerprint_sha256 != agent->previous_cert_fingerprint) {
    return grpc::Status(StatusCode::UNAUTHENTICATED, "this certificate is not the one enrolled for the agent");
  }
  const int64_t now = NowNs();
  Result<IssuedCertificate> cert =
      svc->ca->IssueClientCertificate(req.csr_pem(), who.agent_id, now, svc->config->client_cert_validity);
  if (!cert.ok()) {
    MAMORI_LOG(kError, "renewal: issuing the certificate of agent " << who.agent_id
                                                                     << " failed: " << cert.status().message());
    return grpc::Status(StatusCode::INTERNAL, "issuing the certificate failed");
  }
  // The store decides atomically (a concurrent revoke or renewal wins or loses whole).
  Status s = WithRetry(
      [&] { return svc->store->RenewAgentCertificate(who.agent_id, who.fingerprint_sha256, cert->fingerprint_sha256); });
  if (!s.ok()) {
    switch (s.code()) {
      case mamori::StatusCode::kPermissionDenied: return grpc::Status(StatusCode::PERMISSION_DENIED, "agent revoked");
      case mamori::StatusCode::kUnauthenticated:
      case mamori::StatusCode::kNotFound: return grpc::Status(StatusCode::UNAUTHENTICATED, s.message());
      default: return grpc::Status(StatusCode::UNAVAILABLE, "store: " + s.message());
    }
  }
  AuditEntry audit;
  audit.at_ns = now;
  audit.actor = "agent:" + who.agent_id;
  audit.action = "agent.renew";
  audit.target = who.agent_id;
  audit.result = "ok";
  audit.details = "{\"peer\":" + json::Quote(peer) + ",\"presented_sha256\":\"" + who.fingerprint_sha256 +
                  "\",\"cert_sha256\":\"" + cert->fingerprint_sha256 + "\"}";
  Result<int64_t> audited = WithRetry([&] { return svc->store->AppendAudit(audit); });
  if (!audited.ok()) MAMORI_LOG(kWarning, "audit log: " << audited.status().message());

  resp->set_agent_id(who.agent_id);
  resp->set_certificate_pem(cert->certificate_pem);
  resp->set_ca_certificate_pem(svc->ca->ca_certificate_pem());
  resp->set_certificate_expires_at_ns(cert->not_after_ns);
  resp->set_protocol_version(mamori::v1::kProtocolVersion);
  MAMORI_LOG(kInfo, "renewed the certificate of agent " << who.agent_id << " (" << agent->hostname << ") from "
                                                         << peer);
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* AgentServiceImpl::Renew(grpc::CallbackServerContext* ctx,
                                                  const mamori::v1::RenewRequest* request,
                                                  mamori::v1::EnrollResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  Result<PeerIdentity> who = IdentifyPeer(ctx, svc_->config->insecure);
  if (!who.ok()) {
    reactor->Finish(ToGrpc(who.status()));
    return reactor;
  }
  // Shares the enrollment admission limit: both sign with the CA key.
  if (svc_->enrollments.fetch_add(1) >= svc_->config->max_concurrent_enrollments) {
    svc_->enrollments.fetch_sub(1);
    reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many enrollments in progress"));
    return reactor;
  }
  ServiceContext* svc = svc_;
  std::string peer = ctx->peer();
  svc_->pool->Submit([svc, reactor, request, response, peer, who = std::move(*who)] {
    grpc::Status st = DoRenew(svc, who, peer, *request, response);
    if (!st.ok()) MAMORI_LOG(kInfo, "renewal from " << peer << " refused: " << st.error_message());
    svc->enrollments.fetch_sub(1);
    reactor->Finish(st);
  });
  return reactor;
}

grpc::ServerUnaryReactor* AgentServiceImpl::Enroll(grpc::CallbackServerContext* ctx,
                                                   const mamori::v1::EnrollRequest* request,
                                                   mamori::v1::EnrollResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (svc_->enrollments.fetch_add(1) >= svc_->config->max_concurrent_enrollments) {
    svc_->enrollments.fetch_sub(1);
    svc_->metrics->RecordEnrollment(false);
    reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many enrollments in progress"));
    return reactor;
  }
  ServiceContext* svc = svc_;
  std::string peer = ctx->peer();
  svc_->pool->Submit([svc, reactor, request, response, peer] {
    grpc::Status st = DoEnroll(svc, peer, *request, response);
    svc->metrics->RecordEnrollment(st.ok());
    if (!st.ok()) MAMORI_LOG(kInfo, "enrollment from " << peer << " refused: " << st.error_message());
    svc->enrollments.fetch_sub(1);
    reactor->Finish(st);
  });
  return reactor;
}

grpc::ServerBidiReactor<mamori::v1::AgentMessage, mamori::v1::ServerMessage>* AgentServiceImpl::Connect(
    grpc::CallbackServerContext* ctx) {
  if (svc_->streams.fetch_add(1) >= svc_->config->max_streams) {
    svc_->streams.fetch_sub(1);
    return RejectStream(svc_, grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                           "too many agent streams on this server (max_streams)"));
  }
  Result<PeerIdentity> peer = IdentifyPeer(ctx, svc_->config->insecure);
  if (!peer.ok()) {
    svc_->streams.fetch_sub(1);
    return RejectStream(svc_, ToGrpc(peer.status()));
  }
  return Session::Start(svc_, ctx, std::move(*peer));
}

}  // namespace mamori::server

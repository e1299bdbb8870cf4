// mamori.v1.AgentService on the gRPC callback API: Enroll (unary) and
// Connect (bidi, see session.h). Internal to mamori_server_service.
//
// Thread safety: gRPC calls the handlers from its callback threads; the
// blocking work runs on svc->pool.
#pragma once

#include "mamori/v1/agent_service.grpc.pb.h"
#include "service_context.h"
#include "session.h"

namespace mamori::server {

class AgentServiceImpl final : public mamori::v1::AgentService::CallbackService {
 public:
  explicit AgentServiceImpl(ServiceContext* svc) : svc_(svc) {}

  grpc::ServerUnaryReactor* Enroll(grpc::CallbackServerContext* ctx, const mamori::v1::EnrollRequest* request,
                                   mamori::v1::EnrollResponse* response) override;
  grpc::ServerUnaryReactor* Renew(grpc::CallbackServerContext* ctx, const mamori::v1::RenewRequest* request,
                                  mamori::v1::EnrollResponse* response) override;
  grpc::ServerBidiReactor<mamori::v1::AgentMessage, mamori::v1::ServerMessage>* Connect(
      grpc::CallbackServerContext* ctx) override;

 private:
  ServiceContext* const svc_;
};

// The enrollment itself (blocking: store and signing). Errors:
// UNAUTHENTICATED (token unknown, used, expired or revoked), INVALID_ARGUMENT
// (bad CSR or version string), FAILED_PRECONDITION (other protocol major),
// UNAVAILABLE (store).
grpc::Status DoEnroll(ServiceContext* svc, const std::string& peer, const mamori::v1::EnrollRequest& request,
                      mamori::v1::EnrollResponse* response);

// A new certificate for the agent that authenticated with its current (or,
// after a renewal it did not store, its previous) certificate; same agent
// id, new key. Errors: FAILED_PRECONDITION (--insecure server: there is no
// certificate to renew; other protocol major), UNAUTHENTICATED (not the
// agent's current or previous certificate, unknown agent), PERMISSION_DENIED
// (revoked), INVALID_ARGUMENT (bad CSR), UNAVAILABLE (store).
grpc::Status DoRenew(ServiceContext* svc, const PeerIdentity& who, const std::string& peer,
                     const mamori::v1::RenewRequest& request, mamori::v1::EnrollResponse* response);

}  // namespace mamori::server

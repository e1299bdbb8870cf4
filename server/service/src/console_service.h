// mamori.v1.ConsoleService (docs/console.md): what mamorictl talks to.
// Internal to mamori_server_service; Server registers it beside
// AgentService on the same port.
//
// Every call authenticates its API token ("authorization: Bearer ...") or,
// without one, a console user's client certificate from the server CA;
// checks the caller's role, and appends one audit entry (who, action,
// target, result), refused calls included.
//
// Thread safety: the gRPC sync server calls the handlers on many threads at
// once; the members are constant after construction (pointers to
// thread-safe objects) or atomic.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <string>

#include "mamori/v1/console.grpc.pb.h"
#include "service_context.h"

namespace mamori::server {

// The console role of a user, and what it may do.
enum class ConsoleRole { kNone, kAnalyst, kAdmin };
ConsoleRole ConsoleRoleFromName(std::string_view role);
// May `role` create a command of this kind ("scan", "quarantine_restore", ...)?
bool RoleMayCreate(ConsoleRole role, std::string_view kind);

class ConsoleServiceImpl final : public mamori::v1::ConsoleService::Service {
 public:
  // `poll_now` asks the housekeeper to deliver pending commands at once.
  // REQUIRES: svc outlives this object.
  ConsoleServiceImpl(ServiceContext* svc, std::function<void()> poll_now);

  // Ends FollowEvents and WaitCommand streams within a poll interval (server shutdown).
  void Stop() { stopping_.store(true); }

  using Ctx = grpc::ServerContext;
  grpc::Status WhoAmI(Ctx* ctx, const mamori::v1::WhoAmIRequest* req, mamori::v1::WhoAmIResponse* resp) override;
  grpc::Status ListAgents(Ctx* ctx, const mamori::v1::ListAgentsRequest* req,
                          mamori::v1::ListAgentsResponse* resp) override;
  grpc::Status GetAgent(Ctx* ctx, const mamori::v1::GetAgentRequest* req, mamori::v1::AgentSummary* resp) override;
  grpc::Status QueryEvents(Ctx* ctx, const mamori::v1::EventFilter* req, mamori::v1::EventPageResponse* resp) override;
  grpc::Status FollowEvents(Ctx* ctx, const mamori::v1::EventFilter* req,
                            grpc::ServerWriter<mamori::v1::ConsoleEvent>* writer) override;
  grpc::Status ListFindings(Ctx* ctx, const mamori::v1::EventFilter* req, mamori::v1::EventPageResponse* resp) override;
  grpc::Status ListAlerts(Ctx* ctx, const mamori::v1::EventFilter* req, mamori::v1::EventPageResponse* resp) override;
  grpc::Status CreateCommand(Ctx* ctx, const mamori::v1::CreateCommandRequest* req,
                             mamori::v1::CommandStatus* resp) override;
  grpc::Status GetCommand(Ctx* ctx, const mamori::v1::GetCommandRequest* req, mamori::v1::CommandStatus* resp) override;
  grpc::Status ListCommands(Ctx* ctx, const mamori::v1::ListCommandsRequest* req,
                            mamori::v1::ListCommandsResponse* resp) override;
  grpc::Status WaitCommand(Ctx* ctx, const mamori::v1::WaitCommandRequest* req,
                           grpc::ServerWriter<mamori::v1::CommandStatus>* writer) override;
  grpc::Status ListQuarantine(Ctx* ctx, const mamori::v1::ListQuarantineRequest* req,
                              mamori::v1::ListQuarantineResponse* resp) override;
  grpc::Status SignatureRollout(Ctx* ctx, const mamori::v1::SignatureRolloutRequest* req,
                                mamori::v1::SignatureRolloutResponse* resp) override;
  grpc::Status ListAudit(Ctx* ctx, const mamori::v1::ListAuditRequest* req,
                         mamori::v1::ListAuditResponse* resp) override;

 private:
  struct Caller {
    std::string name;  // empty when unauthenticated
    ConsoleRole role = ConsoleRole::kNone;
  };
  // Authenticates the call's token. On failure returns UNAUTHENTICATED and
  // audits (action, target) with result "unauthenticated".
  grpc::Status Authenticate(Ctx* ctx, const std::string& action, const std::string& target, Caller* caller);
  // Authenticate + the role check for a read (any role). Audits refusals.
  grpc::Status BeginRead(Ctx* ctx, const std::string& action, const std::string& target, Caller* caller);
  // Appends the audit entry for a finished call and returns `status`.
  grpc::Status Done(const Caller& caller, const std::string& action, const std::string& target,
                    const grpc::Status& status, const std::string& details = "");
  grpc::Status EventsPage(Ctx* ctx, const char* action, EventQuery::Class cls, const mamori::v1::EventFilter& req,
                          mamori::v1::EventPageResponse* resp);
  Result<mamori::v1::CommandStatus> StatusOf(const CommandRecord& c);
  bool AgentOnline(const AgentRecord& a, int64_t now_ns) const;
  int64_t OnlineWindowNs() const;

  ServiceContext* const svc_;
  const std::function<void()> poll_now_;
  std::atomic<bool> stopping_{false};
};

}  // namespace mamori::server

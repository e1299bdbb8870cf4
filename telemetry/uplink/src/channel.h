// Channels to mamori-server: address checks and the TLS credentials
// (server verified against the pinned CA; the agent's certificate when it
// has one).
//
// Thread safety: pure functions; the returned objects are gRPC's (thread-safe).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "mamori/common/status.h"
#include "mamori/telemetry/enrollment.h"

namespace mamori::telemetry {

// Splits "host:port" / "[v6]:port". kInvalidArgument otherwise.
Status ParseServerAddress(const std::string& address, std::string* host, int* port);

// kFailedPrecondition unless every address is loopback; logs the warning.
Status CheckInsecureAllowed(const std::vector<std::string>& servers, const char* what);

// TLS verified against ca_certificate_pem, presenting key + certificate when
// both are set; plaintext when insecure.
std::shared_ptr<grpc::ChannelCredentials> MakeCredentials(const AgentCredentials& c, bool insecure);

// A fresh channel (its own connection: no subchannel sharing with earlier
// attempts), keepalive on, large receive limit for commands.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           const std::shared_ptr<grpc::ChannelCredentials>& creds);

}  // namespace mamori::telemetry

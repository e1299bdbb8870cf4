#include "channel.h"

#include <arpa/inet.h>

#include "mamori/common/log.h"

namespace mamori::telemetry {

Status ParseServerAddress(const std::string& address, std::string* host, int* port) {
  std::string h, p;
  if (!address.empty() && address.front() == '[') {
    const size_t close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return InvalidArgumentError("server address '" + address + "': expected [v6-address]:port");
    }
    h = address.substr(1, close - 1);
    p = address.substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos || colon == 0 || address.find(':') != colon) {
      return InvalidArgumentError("server address '" + address + "': expected host:port");
    }
    h = address.substr(0, colon);
    p = address.substr(colon + 1);
  }
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) {
    return InvalidArgumentError("server address '" + address + "': bad port");
  }
  const int n = std::stoi(p);
  if (n <= 0 || n > 65535) return InvalidArgumentError("server address '" + address + "': bad port");
  if (host != nullptr) *host = h;
  if (port != nullptr) *port = n;
  return Status::Ok();
}

bool IsLoopbackAddress(const std::string& host_port) {
  std::string host;
  if (!ParseServerAddress(host_port, &host, nullptr).ok()) return false;
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

Status CheckInsecureAllowed(const std::vector<std::string>& servers, const char* what) {
  for (const auto& s : servers) {
    if (!IsLoopbackAddress(s)) {
      return FailedPreconditionError(std::string(what) +
                                     ": insecure (plaintext) mode is allowed only for loopback "
                                     "servers, not " +
                                     s);
    }
  }
  MAMORI_LOG(kWarning, "*** " << what
                              << ": INSECURE plaintext gRPC to the loopback server; the server is NOT "
                                 "authenticated and the agent names itself. For tests only. ***");
  return Status::Ok();
}

std::shared_ptr<grpc::ChannelCredentials> MakeCredentials(const AgentCredentials& c, bool insecure) {
  if (insecure) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = c.ca_certificate_pem;
  if (!c.key_pem.empty() && !c.certificate_pem.empty()) {
    o.pem_private_key = c.key_pem;
    o.pem_cert_chain = c.certificate_pem;
  }
  return grpc::SslCredentials(o);
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           const std::shared_ptr<grpc::ChannelCredentials>& creds) {
  grpc::ChannelArguments args;
  // Each attempt gets its own connection, so a dead one from an earlier
  // attempt (server killed) is never reused.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(64 << 20);  // commands may carry signature bundles
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);  // the uplink resends from the spool itself
  return grpc::CreateCustomChannel(address, creds, args);
}

}  // namespace mamori::telemetry

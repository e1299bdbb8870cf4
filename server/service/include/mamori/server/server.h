// mamori-server's network side: mamori.v1.AgentService (Enroll, Connect) and
// the gRPC health service (grpc.health.v1.Health, SERVING while the store is
// open), on one port, TLS by default (docs/server.md):
//
//   TLS with the server certificate from the CA directory; a client
//   certificate is verified when presented (REQUEST_CLIENT_CERTIFICATE_AND_VERIFY:
//   Enroll needs none) and Connect refuses calls without one.
//
// Connect runs on the gRPC callback API; its store calls run on a pool of
// `workers` threads. At most `max_streams` streams are admitted (more:
// RESOURCE_EXHAUSTED). All ingest and command state lives in the Store, so
// replicas on one PostgreSQL database can serve the same agents.
//
// Thread safety: all methods are thread-safe; Shutdown is idempotent and is
// called by the destructor.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "mamori/common/status.h"
#include "mamori/server/config.h"
#include "mamori/server/metrics.h"
#include "mamori/server/store.h"

namespace mamori::server {

class Server {
 public:
  // Opens (or creates) the CA, the SIEM outputs and the metrics file, and
  // starts serving on config.listen. kFailedPrecondition for --insecure on a
  // non-loopback address; kUnavailable when the address cannot be bound.
  // REQUIRES: `store` is open; the server shares ownership.
  static Result<std::unique_ptr<Server>> Start(const ServerConfig& config, std::shared_ptr<Store> store);

  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound port (config.listen may say port 0).
  int port() const;
  const std::string& ca_certificate_pem() const;
  const ServerMetrics& metrics() const;

  // SIGHUP: reopens the SIEM files (logrotate) and reconnects syslog.
  Status ReopenOutputs();
  // Delivers pending commands to connected agents now instead of at the next poll.
  void PollCommandsNow();

  // Reports NOT_SERVING, ends every stream (agents reconnect elsewhere), waits
  // up to `grace` for calls in progress, writes a last metrics file.
  void Shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Opens the store the config names: SQLite (creating data_dir, 0700, for the
// default path) or PostgreSQL.
Result<std::unique_ptr<Store>> OpenConfiguredStore(const ServerConfig& config);

}  // namespace mamori::server

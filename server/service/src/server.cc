#include "mamori/server/server.h"

#include <grpcpp/ext/health_check_service_server_builder_option.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <mutex>

#include "agent_service.h"
#include "console_service.h"
#include "mamori/common/file_util.h"
#include "mamori/common/log.h"
#include "mamori/server/ca.h"
#include "mamori/server/postgres_store.h"
#include "mamori/server/siem.h"
#include "mamori/server/sqlite_store.h"
#include "registry.h"
#include "service_context.h"
#include "session.h"
#include "worker_pool.h"

namespace mamori::server {

struct Server::Impl {
  // Declaration order is destruction order in reverse: the gRPC server goes
  // first, then what its handlers use.
  ServerConfig config;
  std::shared_ptr<Store> store;
  std::unique_ptr<CertificateAuthority> ca;
  std::unique_ptr<SiemForwarder> siem;
  ServerMetrics metrics;
  SessionRegistry registry;
  std::unique_ptr<WorkerPool> pool;
  ServiceContext svc;
  std::unique_ptr<AgentServiceImpl> service;
  std::unique_ptr<ConsoleServiceImpl> console;
  std::unique_ptr<Housekeeper> housekeeper;
  std::unique_ptr<MetricsReporter> reporter;
  std::unique_ptr<grpc::Server> server;
  int port = 0;

  std::mutex shutdown_mu;
  bool shut_down = false;  // guarded by shutdown_mu
};

namespace {

std::string SiemMetrics(const SiemForwarder* siem) {
  return "# HELP mamori_server_siem_records_total Records written to SIEM outputs.\n"
         "# TYPE mamori_server_siem_records_total counter\n"
         "mamori_server_siem_records_total " +
         std::to_string(siem->records_written()) +
         "\n# HELP mamori_server_siem_errors_total Records SIEM outputs failed to write.\n"
         "# TYPE mamori_server_siem_errors_total counter\n"
         "mamori_server_siem_errors_total " +
         std::to_string(siem->errors()) + "\n";
}

}  // namespace

Result<std::unique_ptr<Store>> OpenConfiguredStore(const ServerConfig& config) {
  if (config.store.backend == StoreConfig::Backend::kPostgres) {
    PostgresStoreOptions o;
    o.conninfo = config.store.postgres_conninfo;
    o.schema = config.store.postgres_schema;
    o.max_connections = config.store.max_connections;
    return OpenPostgresStore(o);
  }
  const std::string path = SqlitePath(config);
  const size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) MAMORI_RETURN_IF_ERROR(MakeDirs(path.substr(0, slash), 0700));
  SqliteStoreOptions o;
  o.path = path;
  o.durable_commits = config.store.sqlite_durable_commits;
  o.max_connections = config.store.max_connections;
  return OpenSqliteStore(o);
}

Result<std::unique_ptr<Server>> Server::Start(const ServerConfig& config, std::shared_ptr<Store> store) {
  Result<HostPort> listen = ParseHostPort(config.listen);
  if (!listen.ok()) return listen.status().WithContext("listen");
  if (config.insecure) {
    MAMORI_RETURN_IF_ERROR(CheckInsecureAllowed(config));
    MAMORI_LOG(kWarning, "*** --insecure: PLAINTEXT gRPC on " << config.listen
                                                              << ", agents are NOT authenticated (they name "
                                                                 "themselves). For tests only. ***");
  }
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->store = std::move(store);

  CaOptions ca_options;
  ca_options.dir = CaDir(config);
  ca_options.server_names = config.server_names;
  ca_options.server_names.push_back(listen->host);
  Result<std::unique_ptr<CertificateAuthority>> ca = CertificateAuthority::Open(ca_options);
  if (!ca.ok()) return ca.status().WithContext("CA");
  impl->ca = std::move(*ca);

  Result<std::unique_ptr<SiemForwarder>> siem = SiemForwarder::Open(config.siem);
  if (!siem.ok()) return siem.status();
  impl->siem = std::move(*siem);

  impl->pool = std::make_unique<WorkerPool>(config.workers);
  impl->svc.config = &impl->config;
  impl->svc.store = impl->store.get();
  impl->svc.ca = impl->ca.get();
  impl->svc.metrics = &impl->metrics;
  impl->svc.siem = impl->siem.get();
  impl->svc.pool = impl->pool.get();
  impl->svc.registry = &impl->registry;
  impl->service = std::make_unique<AgentServiceImpl>(&impl->svc);
  impl->housekeeper = std::make_unique<Housekeeper>(&impl->svc);
  Housekeeper* housekeeper = impl->housekeeper.get();
  impl->console = std::make_unique<ConsoleServiceImpl>(&impl->svc, [housekeeper] { housekeeper->PollCommandsNow(); });

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (config.insecure) {
    creds = grpc::InsecureServerCredentials();
  } else {
    grpc::SslServerCredentialsOptions ssl(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = impl->ca->server_tls().ca_certificate_pem;
    ssl.pem_key_cert_pairs.push_back(
        {impl->ca->server_tls().server_key_pem, impl->ca->server_tls().server_certificate_pem});
    creds = grpc::SslServerCredentials(ssl);
  }
  builder.AddListeningPort(config.listen, creds, &impl->port);
  // gRPC sets SO_REUSEPORT by default: a second server started on a port in
  // use would share it silently and split the agents between two processes.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(config.max_message_bytes));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 100);  // per connection; an agent needs 1-2
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS, static_cast<int>(config.handshake_timeout.count()));
  builder.RegisterService(impl->service.get());
  builder.RegisterService(impl->console.get());  // same port and TLS (docs/console.md)
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    return UnavailableError("cannot listen on " + config.listen + " (address in use or not available?)");
  }
  // The store is open, so the server can do its work.
  impl->server->GetHealthCheckService()->SetServingStatus(mamori::v1::AgentService::service_full_name(), true);
  impl->server->GetHealthCheckService()->SetServingStatus(true);
  impl->housekeeper->Start();
  if (config.metrics_enabled) {
    MetricsReporter::Options mo;
    mo.file = MetricsFile(config);
    mo.interval = config.metrics_interval;
    mo.log_interval = config.metrics_log_interval;
    const SiemForwarder* siem_ptr = impl->siem.get();
    impl->reporter =
        std::make_unique<MetricsReporter>(&impl->metrics, mo, [siem_ptr] { return SiemMetrics(siem_ptr); });
    impl->reporter->Start();
  }
  MAMORI_LOG(kInfo, "mamori-server listening on "
                        << listen->host << ":" << impl->port << (config.insecure ? " (PLAINTEXT)" : " (TLS)")
                        << ", store " << impl->store->backend() << ", " << config.siem.size() << " SIEM outputs");
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Shutdown(); }

int Server::port() const { return impl_->port; }
const std::string& Server::ca_certificate_pem() const { return impl_->ca->ca_certificate_pem(); }
const ServerMetrics& Server::metrics() const { return impl_->metrics; }
Status Server::ReopenOutputs() { return impl_->siem->Reopen(); }
void Server::PollCommandsNow() { impl_->housekeeper->PollCommandsNow(); }

void Server::Shutdown(std::chrono::milliseconds grace) {
  std::lock_guard<std::mutex> lock(impl_->shutdown_mu);
  if (impl_->shut_down) return;
  impl_->shut_down = true;
  impl_->server->GetHealthCheckService()->SetServingStatus(false);
  impl_->housekeeper->Stop();
  impl_->console->Stop();  // ends FollowEvents / WaitCommand streams
  // Streams never end on their own: end them, so the agents reconnect (to
  // another replica) and Shutdown does not wait out the grace period.
  const auto sessions = impl_->registry.All();
  for (auto& s : sessions) s->Cancel("server shutting down");
  MAMORI_LOG(kDebug, "shutdown: " << sessions.size() << " streams cancelled, " << impl_->svc.enrollments.load()
                                  << " enrollments in progress; stopping gRPC");
  impl_->server->Shutdown(std::chrono::system_clock::now() + grace);
  MAMORI_LOG(kDebug, "shutdown: gRPC stopped");
  impl_->pool->Stop();
  if (impl_->reporter) impl_->reporter->Stop();
  MAMORI_LOG(kInfo, "mamori-server stopped");
}

}  // namespace mamori::server

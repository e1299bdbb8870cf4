// Test side of the agent protocol: an in-process server in a temporary
// directory, key + CSR generation, enrollment, and a synchronous Connect
// stream with a deadline. Used by the server tests and the ingest benchmark;
// not the real agent uplink (telemetry/uplink).
//
// Thread safety: none (one test thread), except TestServer's server itself.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mamori/server/config.h"
#include "mamori/server/server.h"
#include "mamori/server/store.h"
#include "mamori/v1/agent_service.grpc.pb.h"
#include "test_util.h"

namespace mamori::server::testing {

using mamori::testing::TempDir;

// An EC P-256 key and a PKCS#10 CSR for it (PEM).
struct KeyAndCsr {
  std::string key_pem;
  std::string csr_pem;
};
KeyAndCsr MakeKeyAndCsr(const std::string& common_name = "test-agent");

// A mamori-server on 127.0.0.1:<free port> with SQLite in a temp dir.
class TestServer {
 public:
  // `tweak` edits the config before the start (limits, SIEM outputs...).
  explicit TestServer(const std::function<void(ServerConfig&)>& tweak = nullptr);
  ~TestServer();

  Server& server() { return *server_; }
  Store& store() { return *store_; }
  const ServerConfig& config() const { return config_; }
  const std::string& dir() const { return dir_.path(); }
  std::string target() const { return "127.0.0.1:" + std::to_string(server_->port()); }
  const std::string& ca_pem() const { return server_->ca_certificate_pem(); }

  // A fresh enrollment token (one-time unless reusable).
  std::string Token(bool reusable = false, std::chrono::seconds ttl = std::chrono::hours(1));

 private:
  TempDir dir_;
  ServerConfig config_;
  std::shared_ptr<Store> store_;
  std::unique_ptr<Server> server_;
};

// TLS channel to `target`, pinning `ca_pem`; with a client certificate when
// key/cert are given. Each channel has its own connection.
std::shared_ptr<grpc::Channel> TlsChannel(const std::string& target, const std::string& ca_pem,
                                          const std::string& key_pem = "", const std::string& cert_pem = "");

struct EnrolledAgent {
  std::string agent_id;
  std::string key_pem;
  std::string cert_pem;
  std::string ca_pem;
};

// Enrolls over TLS. On failure returns the status and leaves *agent alone.
grpc::Status Enroll(const std::string& target, const std::string& ca_pem, const std::string& token,
                    EnrolledAgent* agent, const std::string& csr_pem = "", const std::string& key_pem = "");
// Enrolls with a fresh token; REQUIREs success.
EnrolledAgent EnrollNew(TestServer& server);

mamori::v1::Event MakeEvent(uint64_t sequence);
// Events first..last (inclusive), in order.
mamori::v1::AgentMessage MakeBatch(uint64_t first, uint64_t last);
mamori::v1::AgentMessage MakeHello(const std::string& hostname = "test-host");

// One Connect stream, synchronous, with a deadline (default 20 s) so a test
// can never hang.
class Stream {
 public:
  Stream(std::shared_ptr<grpc::Channel> channel, std::chrono::milliseconds deadline = std::chrono::seconds(20),
         const std::string& insecure_agent_id = "");
  bool Write(const mamori::v1::AgentMessage& m) { return rw_->Write(m); }
  bool Read(mamori::v1::ServerMessage* m) { return rw_->Read(m); }
  // Sends Hello and reads the Welcome; false when the stream ended instead.
  bool Hello(mamori::v1::Welcome* welcome, const std::string& hostname = "test-host");
  // Sends a batch and reads until its BatchAck (Commands in between are kept
  // in commands()); returns the ack, or -1 when the stream ended.
  int64_t SendBatch(const mamori::v1::AgentMessage& batch);
  // Half-closes, drains and returns the final status.
  grpc::Status Finish();
  void Cancel() { ctx_.TryCancel(); }
  std::vector<mamori::v1::Command>& commands() { return commands_; }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  grpc::ClientContext ctx_;
  std::unique_ptr<mamori::v1::AgentService::Stub> stub_;
  std::unique_ptr<grpc::ClientReaderWriter<mamori::v1::AgentMessage, mamori::v1::ServerMessage>> rw_;
  std::vector<mamori::v1::Command> commands_;
  bool finished_ = false;
  grpc::Status status_;
};

// grpc.health.v1.Health/Check for `service` ("" = the server) through a
// generic stub: 1 SERVING, 2 NOT_SERVING, -1 on RPC failure.
int HealthCheck(const std::shared_ptr<grpc::Channel>& channel, const std::string& service = "");

// Polls `cond` every 10 ms until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds timeout = std::chrono::seconds(10));

// All stored events of the agent, oldest first.
std::vector<StoredEvent> AllEvents(Store& store, const std::string& agent_id);

}  // namespace mamori::server::testing

// An in-process AgentService for the uplink's unit tests: plaintext on
// 127.0.0.1, stores sequences in memory with the server's ack rule (highest
// contiguous stored or lost), and can misbehave on request.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "mamori/v1/agent_service.grpc.pb.h"

namespace mamori::telemetry::testing {

class FakeAgentService final : public v1::AgentService::Service {
 public:
  struct Behavior {
    uint32_t max_batch_events = 1000;
    uint32_t max_batch_bytes = 4u << 20;
    uint32_t heartbeat_interval_s = 30;
    grpc::Status refuse = grpc::Status::OK;  // not OK: every Connect ends with it at once
    int abort_after_batches = -1;            // end the next stream with UNAVAILABLE after this many batches
    bool override_welcome_ack = false;
    uint64_t welcome_ack = 0;
    std::vector<v1::Command> commands;       // sent right after each Welcome
    std::chrono::milliseconds ack_delay{0};  // before each BatchAck
  };

  void SetBehavior(Behavior b);
  grpc::Status Connect(grpc::ServerContext* ctx,
                       grpc::ServerReaderWriter<v1::ServerMessage, v1::AgentMessage>* stream) override;

  struct Snapshot {
    std::map<uint64_t, int> stored;        // sequence -> times received
    std::map<uint64_t, v1::Event> events;  // the last copy of each
    std::vector<v1::SequenceRange> lost;
    uint64_t acked = 0;
    int connects = 0;
    int hellos = 0;
    v1::Hello last_hello;
    std::vector<size_t> batch_sizes;
    int heartbeats = 0;
    std::vector<std::string> command_acks;
    std::string agent_id_metadata;
  };
  Snapshot snapshot() const;
  uint64_t acked() const;
  int connects() const;

 private:
  uint64_t AdvanceAck();  // REQUIRES: mu_ held

  mutable std::mutex mu_;
  Behavior behavior_;                                    // guarded by mu_
  Snapshot state_;                                       // guarded by mu_
  std::set<std::pair<uint64_t, uint64_t>> lost_ranges_;  // guarded by mu_
};

class FakeServer {
 public:
  FakeServer();
  ~FakeServer();
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  FakeAgentService& service() { return service_; }
  void Shutdown();

 private:
  FakeAgentService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// A loopback TCP port held by a bound socket that does not listen: nothing
// else can take it, and connecting to it is refused at once (a server that is
// down). Release() frees it for a server the test starts right after.
class ReservedPort {
 public:
  ReservedPort();
  ~ReservedPort() { Release(); }
  ReservedPort(const ReservedPort&) = delete;
  ReservedPort& operator=(const ReservedPort&) = delete;
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  void Release();

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace mamori::telemetry::testing

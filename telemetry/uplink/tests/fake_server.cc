#include "fake_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <thread>

namespace mamori::telemetry::testing {

void FakeAgentService::SetBehavior(Behavior b) {
  std::lock_guard<std::mutex> lock(mu_);
  behavior_ = std::move(b);
}

FakeAgentService::Snapshot FakeAgentService::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

uint64_t FakeAgentService::acked() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_.acked;
}

int FakeAgentService::connects() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_.connects;
}

uint64_t FakeAgentService::AdvanceAck() {
  for (;;) {
    const uint64_t next = state_.acked + 1;
    if (state_.stored.count(next) != 0) {
      state_.acked = next;
      continue;
    }
    bool moved = false;
    for (const auto& [first, last] : lost_ranges_) {
      if (first <= next && next <= last) {
        state_.acked = last;
        moved = true;
        break;
      }
    }
    if (!moved) return state_.acked;
  }
}

grpc::Status FakeAgentService::Connect(grpc::ServerContext* ctx,
                                       grpc::ServerReaderWriter<v1::ServerMessage, v1::AgentMessage>* stream) {
  Behavior b;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++state_.connects;
    b = behavior_;
    auto it = ctx->client_metadata().find("mamori-agent-id");
    if (it != ctx->client_metadata().end()) state_.agent_id_metadata.assign(it->second.data(), it->second.size());
  }
  if (!b.refuse.ok()) return b.refuse;
  v1::AgentMessage in;
  if (!stream->Read(&in) || !in.has_hello()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the first message must be Hello");
  }
  v1::ServerMessage welcome;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++state_.hellos;
    state_.last_hello = in.hello();
    v1::Welcome* w = welcome.mutable_welcome();
    w->set_protocol_version("1.1.0");
    w->set_acked_sequence(b.override_welcome_ack ? b.welcome_ack : state_.acked);
    w->set_heartbeat_interval_s(b.heartbeat_interval_s);
    w->set_max_batch_events(b.max_batch_events);
    w->set_max_batch_bytes(b.max_batch_bytes);
  }
  stream->Write(welcome);
  for (const v1::Command& c : b.commands) {
    v1::ServerMessage m;
    *m.mutable_command() = c;
    stream->Write(m);
  }
  int batches = 0;
  while (stream->Read(&in)) {
    if (in.has_heartbeat()) {
      std::lock_guard<std::mutex> lock(mu_);
      ++state_.heartbeats;
      continue;
    }
    if (in.has_command_ack()) {
      std::lock_guard<std::mutex> lock(mu_);
      state_.command_acks.push_back(in.command_ack().command_id());
      continue;
    }
    if (!in.has_batch()) continue;
    const v1::EventBatch& batch = in.batch();
    if (static_cast<uint32_t>(batch.events_size()) > b.max_batch_events || batch.ByteSizeLong() > b.max_batch_bytes) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "batch over the limits");
    }
    v1::ServerMessage ack;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const v1::Event& e : batch.events()) {
        if (e.sequence() == 0) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "sequence 0");
        ++state_.stored[e.sequence()];
        state_.events[e.sequence()] = e;
      }
      for (const v1::SequenceRange& r : batch.lost()) {
        state_.lost.push_back(r);
        lost_ranges_.insert({r.first(), r.last()});
      }
      state_.batch_sizes.push_back(static_cast<size_t>(batch.events_size()));
      ack.mutable_batch_ack()->set_acked_sequence(AdvanceAck());
    }
    ++batches;
    if (b.abort_after_batches >= 0 && batches >= b.abort_after_batches) {
      std::lock_guard<std::mutex> lock(mu_);
      behavior_.abort_after_batches = -1;  // once
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "injected failure");
    }
    if (b.ack_delay.count() > 0) std::this_thread::sleep_for(b.ack_delay);
    if (!stream->Write(ack)) break;
  }
  return grpc::Status::OK;
}

FakeServer::FakeServer() {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(&service_);
  builder.SetMaxReceiveMessageSize(64 << 20);
  server_ = builder.BuildAndStart();
}

FakeServer::~FakeServer() { Shutdown(); }

void FakeServer::Shutdown() {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    server_->Wait();
    server_.reset();
  }
}

ReservedPort::ReservedPort() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd_ >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  port_ = ntohs(a.sin_port);
}

void ReservedPort::Release() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace mamori::telemetry::testing

#include "connect_call.h"

#include <grpcpp/generic/generic_stub.h>

#include "wire.h"

namespace mamori::telemetry {

ConnectCall::ConnectCall(std::shared_ptr<grpc::Channel> channel, std::unique_ptr<grpc::ClientContext> context)
    : channel_(std::move(channel)), context_(std::move(context)) {}

ConnectCall::~ConnectCall() {
  if (started_) (void)Finish(true);
}

void ConnectCall::Start() {
  grpc::TemplatedGenericStub<grpc::ByteBuffer, grpc::ByteBuffer> stub(channel_);
  stub.PrepareBidiStreamingCall(context_.get(), "/mamori.v1.AgentService/Connect", grpc::StubOptions(), this);
  AddHold();  // writes start from the uplink thread, outside reactions
  StartRead(&read_buffer_);
  StartCall();
  started_ = true;
}

bool ConnectCall::Write(grpc::ByteBuffer message) {
  std::unique_lock<std::mutex> lock(mu_);
  if (finishing_ || done_ || reads_ended_) return false;
  writes_.push_back(std::move(message));
  if (writing_) return true;
  writing_ = true;
  const grpc::ByteBuffer* next = &writes_.front();  // deque: stays put while later ones are queued
  lock.unlock();
  StartWrite(next);
  return true;
}

size_t ConnectCall::queued_writes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return writes_.size();
}

void ConnectCall::Take(Arrivals* out) {
  std::lock_guard<std::mutex> lock(mu_);
  while (!received_.empty()) {
    out->messages.push_back(std::move(received_.front()));
    received_.pop_front();
  }
  out->reads_ended = reads_ended_;
  out->malformed = malformed_;
}

void ConnectCall::Wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return !received_.empty() || reads_ended_ || done_; });
}

grpc::Status ConnectCall::Finish(bool cancel) {
  if (!started_) return grpc::Status(grpc::StatusCode::CANCELLED, "not started");
  {
    std::lock_guard<std::mutex> lock(mu_);
    finishing_ = true;
    if (!reads_ended_) cancel = true;  // the server has not ended the call: we do
    if (done_) cancel = false;
  }
  if (cancel) context_->TryCancel();
  if (!hold_released_) {
    hold_released_ = true;
    RemoveHold();
  }
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return done_; });
  return status_;
}

void ConnectCall::OnReadDone(bool ok) {
  if (!ok) {
    std::lock_guard<std::mutex> lock(mu_);
    reads_ended_ = true;
    cv_.notify_all();
    return;
  }
  v1::ServerMessage m;
  const bool parsed = wire::ParseMessage(&read_buffer_, &m);
  read_buffer_.Clear();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!parsed) {
      malformed_ = true;
      reads_ended_ = true;
    } else {
      received_.push_back(std::move(m));
    }
    cv_.notify_all();
  }
  if (!parsed) {
    context_->TryCancel();
    return;
  }
  StartRead(&read_buffer_);
}

void ConnectCall::OnWriteDone(bool ok) {
  std::unique_lock<std::mutex> lock(mu_);
  writes_.pop_front();
  if (!ok) writes_.clear();  // the call is broken; OnDone follows
  if (writes_.empty()) {
    writing_ = false;
    return;
  }
  const grpc::ByteBuffer* next = &writes_.front();
  lock.unlock();
  StartWrite(next);
}

void ConnectCall::OnDone(const grpc::Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  status_ = status;
  done_ = true;
  reads_ended_ = true;
  cv_.notify_all();
}

}  // namespace mamori::telemetry

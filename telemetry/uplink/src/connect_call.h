// One AgentService.Connect call on the gRPC callback API, with raw bytes on
// the wire (generic stub): the uplink frames EventBatch from spool records
// itself (wire.h), so nothing is serialized twice.
//
// The uplink thread writes (Write), polls what arrived (Take) and waits
// (Wait); gRPC's threads run the reactions, which only move buffers and
// signal. Writes go out one at a time in order; the rest queue here.
//
// Lifetime: the reactor holds a hold (AddHold) from Start until Finish, so
// the uplink thread may start writes outside reactions. Finish cancels if
// asked, releases the hold and waits for OnDone; only then may the object be
// destroyed (the destructor calls Finish if needed).
//
// Thread safety: Start, Write, Take, Wait, Finish from the owning (uplink)
// thread; the reactions from gRPC threads. Shared state guarded by mu_.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_callback.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>

#include "mamori/v1/agent_service.pb.h"

namespace mamori::telemetry {

class ConnectCall final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  ConnectCall(std::shared_ptr<grpc::Channel> channel, std::unique_ptr<grpc::ClientContext> context);
  ~ConnectCall() override;
  ConnectCall(const ConnectCall&) = delete;
  ConnectCall& operator=(const ConnectCall&) = delete;

  // Starts the call and the first read. Once.
  void Start();
  // Queues one message. false once the call has ended or Finish began.
  bool Write(grpc::ByteBuffer message);
  // Messages queued or being written.
  size_t queued_writes() const;

  struct Arrivals {
    std::deque<v1::ServerMessage> messages;
    bool reads_ended = false;  // the server ended its side (or the call broke)
    bool malformed = false;    // a message did not parse (the call is then cancelled)
  };
  // Moves the messages received so far into *out.
  void Take(Arrivals* out);
  // Waits until something arrived (or the reads ended) or `timeout` passed.
  void Wait(std::chrono::milliseconds timeout);

  // Ends the call: cancels it when `cancel` (or when the server has not ended
  // it), releases the hold, waits for OnDone and returns the final status.
  // Idempotent.
  grpc::Status Finish(bool cancel);

  // Reactions (gRPC threads).
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  const std::shared_ptr<grpc::Channel> channel_;        // constant; keeps the channel alive
  const std::unique_ptr<grpc::ClientContext> context_;  // constant; valid until destruction

  grpc::ByteBuffer read_buffer_;  // owned by the read in progress

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<grpc::ByteBuffer> writes_;     // guarded by mu_; front is being written
  bool writing_ = false;                    // guarded by mu_
  std::deque<v1::ServerMessage> received_;  // guarded by mu_
  bool reads_ended_ = false;                // guarded by mu_
  bool malformed_ = false;                  // guarded by mu_
  bool finishing_ = false;                  // guarded by mu_: no more writes start
  bool done_ = false;                       // guarded by mu_: OnDone ran
  grpc::Status status_;                     // guarded by mu_: set by OnDone
  bool started_ = false;                    // owner thread only
  bool hold_released_ = false;              // owner thread only
};

}  // namespace mamori::telemetry

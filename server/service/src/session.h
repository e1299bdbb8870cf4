// One AgentService.Connect stream (gRPC callback API).
//
// Flow: the reactor reads ahead into a small per-stream inbox (at most
// kMaxInbox messages and about 2 x max_batch_bytes; then reading pauses and
// the agent is throttled by HTTP/2 flow control). One worker-pool task at a
// time drains the inbox in order (store calls block): consecutive EventBatches
// found there are stored in ONE Store::AppendBatch call (one transaction, one
// fsync), and each gets its BatchAck, in order. So while a transaction
// commits, the next batches are received and parsed (gRPC threads), and a
// slow commit makes the next one larger instead of the stream slower.
// Replies (Welcome, BatchAck) and Commands go through a write queue: one gRPC
// write at a time, the rest queued in order.
//
// Lifetime: the Session is shared (reactor, registry, dispatcher, tasks); the
// reactor is deleted by gRPC's OnDone, after Finish and after every read and
// write completed. The session calls into the reactor only before it calls
// Finish (finishing_), so never after OnDone.
//
// Thread safety: Send, OfferCommand, Cancel and the accessors may be called
// from any thread. The handler state (guarded by "owner") is touched only by
// the one task or reaction the stream has at a time.
#pragma once

#include <google/protobuf/arena.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "mamori/server/store_records.h"
#include "mamori/v1/agent_service.grpc.pb.h"
#include "service_context.h"

namespace mamori::server {

// Who is on the other end, from the TLS client certificate.
struct PeerIdentity {
  std::string agent_id;
  std::string fingerprint_sha256;  // empty in --insecure mode (no certificate)
};

// Extracts the agent identity from the call's TLS peer (or, with --insecure,
// from the "mamori-agent-id" metadata). kUnauthenticated when there is none.
Result<PeerIdentity> IdentifyPeer(grpc::CallbackServerContext* ctx, bool insecure);

using ConnectReactorBase = grpc::ServerBidiReactor<mamori::v1::AgentMessage, mamori::v1::ServerMessage>;

// A reactor that ends the stream at once with `status` (admission refused).
ConnectReactorBase* RejectStream(ServiceContext* svc, grpc::Status status);

class Session : public std::enable_shared_from_this<Session> {
 public:
  // Creates the session and its reactor, which starts reading. The caller
  // has counted the stream in svc->streams; the session releases it.
  static ConnectReactorBase* Start(ServiceContext* svc, grpc::CallbackServerContext* ctx, PeerIdentity peer);

  Session(ServiceContext* svc, grpc::CallbackServerContext* ctx, PeerIdentity peer);
  ~Session();

  const std::string& agent_id() const { return peer_.agent_id; }
  bool welcomed() const { return welcomed_.load(std::memory_order_acquire); }

  // Sends the command unless this stream already sent it.
  void OfferCommand(const CommandRecord& command);
  // Cancels the stream (a newer stream of the same agent, shutdown, timeouts).
  void Cancel(const char* why);
  // Called about once a second by the housekeeper: cancels a stream that said
  // no Hello within 30 s, was silent for 3 heartbeat intervals + 30 s, or whose
  // final status cannot be delivered because the peer stopped reading.
  void Sweep(int64_t now_ns);

  // Reactor callbacks.
  void OnReadDone(bool ok);
  void OnWriteDone(bool ok);
  void OnDone();

 private:
  class Reactor;
  enum class Phase { kHello, kStreaming };

  // A message read from the stream, parsed into its own arena: the
  // sub-messages of a batch of thousands of events come from a few large
  // blocks, freed at once with the Inbound (docs/server.md).
  struct Inbound {
    Inbound() = default;
    Inbound(Inbound&& o) noexcept
        : arena(std::move(o.arena)), message(std::exchange(o.message, nullptr)), bytes(o.bytes) {}
    Inbound& operator=(Inbound&& o) noexcept {
      arena = std::move(o.arena);
      message = std::exchange(o.message, nullptr);
      bytes = o.bytes;
      return *this;
    }
    std::unique_ptr<google::protobuf::Arena> arena;
    mamori::v1::AgentMessage* message = nullptr;  // owned by arena; null once moved from
    size_t bytes = 0;                             // ByteSizeLong, for batches
  };

  void Process();  // worker task: drains inbox_
  // Handles one message (moved into in_), or a run of consecutive batches.
  grpc::Status Handle(Inbound& m);
  grpc::Status HandleHello();
  grpc::Status HandleBatches(std::vector<Inbound>& batches);
  grpc::Status HandleHeartbeat();
  void HandleCommandAck();
  // Resumes a paused read (the inbox was full) unless the stream is finishing.
  // REQUIRES: mu_ not held.
  void ReadNext();
  void Send(std::unique_ptr<mamori::v1::ServerMessage> message);
  // Ends the stream with `status` once queued writes are out. Once.
  void End(const grpc::Status& status);

  ServiceContext* const svc_;
  grpc::CallbackServerContext* const ctx_;  // valid until OnDone
  const PeerIdentity peer_;
  const int64_t started_ns_;
  Reactor* reactor_ = nullptr;  // set once by Start; valid until OnDone (used only before finishing_)

  // The read target: touched only by whoever holds the read turn (the
  // reactor's OnReadDone, or the task that resumes a paused read).
  std::unique_ptr<google::protobuf::Arena> reading_arena_;
  mamori::v1::AgentMessage* reading_ = nullptr;  // owned by reading_arena_

  // Owner state (one task or reaction at a time).
  mamori::v1::AgentMessage in_;  // the message being handled
  Phase phase_ = Phase::kHello;
  std::string hostname_;
  uint64_t acked_ = 0;         // highest ack sent on this stream
  int64_t last_touch_ns_ = 0;  // last TouchAgent from batches

  std::atomic<bool> welcomed_{false};
  std::atomic<int64_t> last_message_ns_;

  std::mutex mu_;
  std::deque<std::unique_ptr<mamori::v1::ServerMessage>> out_;  // guarded by mu_; front is being written
  bool writing_ = false;                                        // guarded by mu_
  bool finishing_ = false;               // guarded by mu_: End was called; no more reads or writes start
  bool finish_pending_ = false;          // guarded by mu_: Finish waits for the write queue
  int64_t finish_pending_since_ns_ = 0;  // guarded by mu_
  grpc::Status finish_status_;           // guarded by mu_
  bool done_ = false;                    // guarded by mu_: OnDone ran
  std::set<std::string> sent_commands_;  // guarded by mu_
  std::deque<Inbound> inbox_;            // guarded by mu_: read, not yet handled, in order
  size_t inbox_bytes_ = 0;               // guarded by mu_
  bool task_queued_ = false;             // guarded by mu_: a Process task is queued or running
  bool read_paused_ = false;             // guarded by mu_: inbox full, no read outstanding
  bool read_closed_ = false;             // guarded by mu_: the last read failed (half-close, cancel)
};

}  // namespace mamori::server

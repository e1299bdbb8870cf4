#include "session.h"

#include <grpcpp/security/auth_context.h>

#include "ingest.h"
#include "mamori/common/log.h"
#include "mamori/v1/version.h"
#include "registry.h"
#include "worker_pool.h"

namespace mamori::server {

using mamori::v1::AgentMessage;
using mamori::v1::ServerMessage;

namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kHelloTimeout = 30 * kSecond;
constexpr int64_t kStuckFinishTimeout = 10 * kSecond;
constexpr size_t kMaxQueuedWrites = 4096;  // a peer that stops reading is cut off
constexpr int64_t kTouchInterval = 10 * kSecond;
// Read-ahead per stream: messages received but not yet handled. Reading
// pauses at this many, or at 2 x max_batch_bytes of batches.
constexpr size_t kMaxInbox = 8;

// The arena one read message is parsed into: small while a stream idles (the
// first block is allocated with the empty message), blocks doubling up to
// 1 MiB for a batch of thousands of events.
std::unique_ptr<google::protobuf::Arena> NewReadArena() {
  google::protobuf::ArenaOptions o;
  o.start_block_size = 1024;
  o.max_block_size = 1 << 20;
  return std::make_unique<google::protobuf::Arena>(o);
}

// Descriptive inventory fields from an AgentInfo (the fingerprint stays as stored).
AgentRecord RecordFromInfo(const std::string& agent_id, const mamori::v1::AgentInfo& info) {
  AgentRecord r;
  r.agent_id = agent_id;
  r.hostname = info.hostname();
  r.os = info.os();
  r.kernel = info.kernel();
  r.agent_version = info.agent_version();
  r.signature_version = info.signature_version();
  r.sensor_mode = info.sensor_mode();
  return r;
}

// Ends at once with a fixed status; deletes itself when gRPC is done.
class RejectReactor final : public ConnectReactorBase {
 public:
  explicit RejectReactor(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

int ProtocolMajor(std::string_view v) {
  const size_t dot = v.find('.');
  if (dot == 0 || dot == std::string_view::npos || dot > 4) return -1;
  int major = 0;
  for (char c : v.substr(0, dot)) {
    if (c < '0' || c > '9') return -1;
    major = major * 10 + (c - '0');
  }
  const std::string_view rest = v.substr(dot + 1);
  const size_t dot2 = rest.find('.');
  if (dot2 == 0 || dot2 == std::string_view::npos || dot2 + 1 >= rest.size()) return -1;
  for (char c : rest) {
    if (c != '.' && (c < '0' || c > '9')) return -1;
  }
  return major;
}

grpc::Status CheckProtocolVersion(const std::string& version) {
  const int major = ProtocolMajor(version);
  if (major < 0) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad protocol_version '" + version + "'");
  if (major != mamori::v1::kProtocolMajor) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "protocol major version " + std::to_string(major) +
                                                                   " is not supported (server speaks " +
                                                                   mamori::v1::kProtocolVersion + ")");
  }
  return grpc::Status::OK;
}

Result<PeerIdentity> IdentifyPeer(grpc::CallbackServerContext* ctx, bool insecure) {
  PeerIdentity id;
  if (insecure) {
    // Plaintext test mode: no certificate exists, the agent names itself.
    const auto& md = ctx->client_metadata();
    auto it = md.find("mamori-agent-id");
    if (it == md.end() || !IsAgentId(std::string_view(it->second.data(), it->second.size()))) {
      return Status(StatusCode::kUnauthenticated, "--insecure server: send the agent id as mamori-agent-id metadata");
    }
    id.agent_id.assign(it->second.data(), it->second.size());
    return id;
  }
  const std::shared_ptr<const grpc::AuthContext> auth = ctx->auth_context();
  std::vector<grpc::string_ref> pem;
  if (auth) pem = auth->FindPropertyValues("x509_pem_cert");
  if (pem.empty()) {
    return Status(StatusCode::kUnauthenticated, "a client certificate is required (enroll first)");
  }
  Result<PeerCertificate> cert = ParsePeerCertificate(std::string_view(pem.front().data(), pem.front().size()));
  if (!cert.ok()) return Status(StatusCode::kUnauthenticated, cert.status().message());
  bool uri_ok = false;
  for (const auto& u : cert->uris) uri_ok = uri_ok || u == AgentUri(cert->common_name);
  if (!IsAgentId(cert->common_name) || !uri_ok) {
    return Status(StatusCode::kUnauthenticated, "the client certificate is not a Mamori agent certificate");
  }
  id.agent_id = cert->common_name;
  id.fingerprint_sha256 = cert->fingerprint_sha256;
  return id;
}

ConnectReactorBase* RejectStream(ServiceContext* svc, grpc::Status status) {
  svc->metrics->RecordStreamEnd(status.error_code());
  return new RejectReactor(std::move(status));
}

// The gRPC side of a session. Deleted by gRPC (OnDone).
class Session::Reactor final : public ConnectReactorBase {
 public:
  explicit Reactor(std::shared_ptr<Session> s) : session_(std::move(s)) {}
  void Begin() { StartRead(session_->reading_); }
  void OnReadDone(bool ok) override { session_->OnReadDone(ok); }
  void OnWriteDone(bool ok) override { session_->OnWriteDone(ok); }
  void OnDone() override {
    session_->OnDone();
    delete this;
  }

 private:
  std::shared_ptr<Session> session_;
};

ConnectReactorBase* Session::Start(ServiceContext* svc, grpc::CallbackServerContext* ctx, PeerIdentity peer) {
  auto session = std::make_shared<Session>(svc, ctx, std::move(peer));
  auto* reactor = new Reactor(session);
  session->reactor_ = reactor;
  svc->registry->Add(session);
  svc->metrics->RecordStreamOpened();
  reactor->Begin();
  return reactor;
}

Session::Session(ServiceContext* svc, grpc::CallbackServerContext* ctx, PeerIdentity peer)
    : svc_(svc),
      ctx_(ctx),
      peer_(std::move(peer)),
      started_ns_(NowNs()),
      reading_arena_(NewReadArena()),
      reading_(google::protobuf::Arena::CreateMessage<AgentMessage>(reading_arena_.get())),
      last_message_ns_(started_ns_) {}

Session::~Session() = default;

void Session::OnReadDone(bool ok) {
  // This thread holds the read turn: reading_ is ours until the next read starts.
  Inbound m;
  if (ok) {
    last_message_ns_.store(NowNs(), std::memory_order_relaxed);
    m.bytes = reading_->has_batch() ? reading_->ByteSizeLong() : 0;
    m.arena = std::move(reading_arena_);
    m.message = reading_;
    reading_arena_ = NewReadArena();
    reading_ = google::protobuf::Arena::CreateMessage<AgentMessage>(reading_arena_.get());
  }
  bool submit = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finishing_) return;  // the stream is over; what was read is dropped (never acked)
    if (!ok) {
      read_closed_ = true;  // the agent closed its side or the call broke: the task ends the stream
    } else {
      inbox_bytes_ += m.bytes;
      inbox_.push_back(std::move(m));
      if (inbox_.size() < kMaxInbox && inbox_bytes_ < 2 * static_cast<size_t>(svc_->config->max_batch_bytes)) {
        // Under mu_, so End cannot finish in between (reads never complete inline).
        reactor_->StartRead(reading_);
      } else {
        read_paused_ = true;
      }
    }
    if (!task_queued_) {
      task_queued_ = true;
      submit = true;
    }
  }
  if (submit) {
    std::shared_ptr<Session> self = shared_from_this();
    svc_->pool->Submit([self] { self->Process(); });
  }
}

void Session::Process() {
  for (;;) {
    std::vector<Inbound> work;
    bool closed = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finishing_) {
        task_queued_ = false;
        return;
      }
      if (inbox_.empty()) {
        task_queued_ = false;
        closed = read_closed_;
      } else {
        work.reserve(inbox_.size());
        for (Inbound& m : inbox_) work.push_back(std::move(m));
        inbox_.clear();
        inbox_bytes_ = 0;
      }
    }
    if (work.empty()) {
      if (closed) End(grpc::Status::OK);  // everything the agent sent was handled
      return;
    }
    ReadNext();  // resumes a paused read: the next messages arrive while these are stored
    grpc::Status st;
    size_t i = 0;
    while (st.ok() && i < work.size()) {
      if (phase_ == Phase::kStreaming && work[i].message->has_batch()) {
        // A run of consecutive batches: one store transaction.
        std::vector<Inbound> run;
        while (i < work.size() && work[i].message->has_batch()) run.push_back(std::move(work[i++]));
        st = HandleBatches(run);
      } else {
        st = Handle(work[i++]);
      }
    }
    if (!st.ok()) {
      if (st.error_code() == grpc::StatusCode::UNAVAILABLE || st.error_code() == grpc::StatusCode::INTERNAL) {
        MAMORI_LOG(kWarning, "agent " << peer_.agent_id << ": stream ends: " << st.error_message());
      } else {
        MAMORI_LOG(kInfo, "agent " << peer_.agent_id << ": stream refused: " << st.error_message());
      }
      End(st);
      std::lock_guard<std::mutex> lock(mu_);
      task_queued_ = false;
      return;
    }
  }
}

grpc::Status Session::Handle(Inbound& m) {
  in_.Clear();
  in_.CopyFrom(*m.message);  // in_ is on the heap, the message on its arena
  if (phase_ == Phase::kHello) return HandleHello();
  switch (in_.body_case()) {
    case AgentMessage::kBatch:  // Process hands batches to HandleBatches
      return grpc::Status(grpc::StatusCode::INTERNAL, "batch outside a run");
    case AgentMessage::kHeartbeat:
      return HandleHeartbeat();
    case AgentMessage::kCommandAck:
      HandleCommandAck();
      return grpc::Status::OK;
    case AgentMessage::kHello:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Hello sent twice on one stream");
    case AgentMessage::BODY_NOT_SET:
      // A message kind from a newer agent: ignored (compatibility rule 3).
      return grpc::Status::OK;
  }
  return grpc::Status::OK;
}

grpc::Status Session::HandleHello() {
  using grpc::StatusCode;
  if (!in_.has_hello()) return grpc::Status(StatusCode::INVALID_ARGUMENT, "the first message must be Hello");
  const mamori::v1::Hello& hello = in_.hello();
  if (grpc::Status v = CheckProtocolVersion(hello.protocol_version()); !v.ok()) return v;
  Store* store = svc_->store;
  Result<AgentRecord> agent = WithRetry([&] { return store->GetAgent(peer_.agent_id); });
  if (!agent.ok()) {
    if (agent.status().code() == mamori::StatusCode::kNotFound) {
      return grpc::Status(StatusCode::UNAUTHENTICATED, "unknown agent (enroll again)");
    }
    return grpc::Status(StatusCode::UNAVAILABLE, "store: " + agent.status().message());
  }
  // The previous certificate (replaced by a renewal) stays valid until the
  // new one is first used: an agent that renewed but crashed before storing
  // the new certificate is not locked out.
  const bool current = agent->cert_fingerprint == peer_.fingerprint_sha256;
  const bool previous =
      !agent->previous_cert_fingerprint.empty() && agent->previous_cert_fingerprint == peer_.fingerprint_sha256;
  if (!svc_->config->insecure && !current && !previous) {
    return grpc::Status(StatusCode::UNAUTHENTICATED, "this certificate is not the one enrolled for the agent");
  }
  if (agent->revoked) return grpc::Status(StatusCode::PERMISSION_DENIED, "agent revoked");
  if (!svc_->config->insecure && current && !agent->previous_cert_fingerprint.empty()) {
    Status forgot =
        WithRetry([&] { return store->ForgetPreviousCertificate(peer_.agent_id, peer_.fingerprint_sha256); });
    if (!forgot.ok()) return grpc::Status(StatusCode::UNAVAILABLE, "store: " + forgot.message());
    MAMORI_LOG(kInfo, "agent " << peer_.agent_id << " uses its renewed certificate; the previous one is refused from now on");
  }
  // One stream per agent on this replica: the newest wins (the old one is
  // usually a connection the agent already gave up on). Before the Welcome,
  // so the agent never has two live streams here.
  std::shared_ptr<Session> old = svc_->registry->Bind(peer_.agent_id, shared_from_this());
  if (old) old->Cancel("replaced by a newer stream of the same agent");
  hostname_ = hello.agent().hostname().empty() ? agent->hostname : hello.agent().hostname();
  const int64_t now = NowNs();
  if (hello.has_agent()) {
    Status s = WithRetry([&] { return store->UpsertAgent(RecordFromInfo(peer_.agent_id, hello.agent())); });
    if (!s.ok()) return grpc::Status(StatusCode::UNAVAILABLE, "store: " + s.message());
  }
  Status touched = WithRetry([&] { return store->TouchAgent(peer_.agent_id, now); });
  if (!touched.ok()) return grpc::Status(StatusCode::UNAVAILABLE, "store: " + touched.message());
  last_touch_ns_ = now;
  Result<uint64_t> ack = WithRetry([&] { return store->AckedSequence(peer_.agent_id); });
  if (!ack.ok()) return grpc::Status(StatusCode::UNAVAILABLE, "store: " + ack.status().message());
  acked_ = *ack;

  auto welcome = std::make_unique<ServerMessage>();
  mamori::v1::Welcome* w = welcome->mutable_welcome();
  w->set_protocol_version(mamori::v1::kProtocolVersion);
  w->set_acked_sequence(acked_);
  w->set_heartbeat_interval_s(static_cast<uint32_t>(svc_->config->heartbeat_interval.count()));
  w->set_max_batch_events(svc_->config->max_batch_events);
  w->set_max_batch_bytes(svc_->config->max_batch_bytes);
  Send(std::move(welcome));
  phase_ = Phase::kStreaming;

  welcomed_.store(true, std::memory_order_release);
  svc_->metrics->RecordAgentConnected();
  MAMORI_LOG(kInfo, "agent " << peer_.agent_id << " (" << hostname_ << ") connected from " << ctx_->peer() << ", acked "
                             << acked_);

  Result<std::vector<CommandRecord>> pending = WithRetry([&] { return store->PendingCommands(peer_.agent_id, now); });
  if (pending.ok()) {
    for (const auto& c : *pending) OfferCommand(c);
  } else {
    MAMORI_LOG(kWarning, "agent " << peer_.agent_id << ": pending commands: " << pending.status().message());
  }
  return grpc::Status::OK;
}

grpc::Status Session::HandleBatches(std::vector<Inbound>& batches) {
  std::vector<BatchRef> refs;
  refs.reserve(batches.size());
  for (const Inbound& m : batches) refs.push_back(BatchRef{&m.message->batch(), m.bytes});
  uint64_t ack = acked_;
  size_t stored = 0;
  grpc::Status st = IngestBatches(svc_, peer_.agent_id, hostname_, refs, acked_, &ack, &stored);
  acked_ = std::max(acked_, ack);  // never decreases on one stream
  // One BatchAck per stored batch, in order (the agent counts them); each
  // carries the ack after the whole transaction.
  for (size_t i = 0; i < stored; ++i) {
    auto reply = std::make_unique<ServerMessage>();
    reply->mutable_batch_ack()->set_acked_sequence(acked_);
    Send(std::move(reply));
  }
  if (!st.ok()) return st;
  const int64_t now = NowNs();
  if (now - last_touch_ns_ >= kTouchInterval) {
    Status s = svc_->store->TouchAgent(peer_.agent_id, now);
    if (s.ok()) last_touch_ns_ = now;
  }
  return grpc::Status::OK;
}

grpc::Status Session::HandleHeartbeat() {
  using grpc::StatusCode;
  Store* store = svc_->store;
  Result<AgentRecord> agent = WithRetry([&] { return store->GetAgent(peer_.agent_id); });
  if (!agent.ok()) {
    if (agent.status().code() == mamori::StatusCode::kNotFound) {
      return grpc::Status(StatusCode::UNAUTHENTICATED, "unknown agent");
    }
    return grpc::Status(StatusCode::UNAVAILABLE, "store: " + agent.status().message());
  }
  if (agent->revoked) return grpc::Status(StatusCode::PERMISSION_DENIED, "agent revoked");
  const mamori::v1::Heartbeat& hb = in_.heartbeat();
  if (hb.has_agent()) {
    if (!hb.agent().hostname().empty()) hostname_ = hb.agent().hostname();
    Status s = WithRetry([&] { return store->UpsertAgent(RecordFromInfo(peer_.agent_id, hb.agent())); });
    if (!s.ok()) return grpc::Status(StatusCode::UNAVAILABLE, "store: " + s.message());
  }
  const int64_t now = NowNs();
  Status s = WithRetry([&] { return store->TouchAgent(peer_.agent_id, now); });
  if (!s.ok()) return grpc::Status(StatusCode::UNAVAILABLE, "store: " + s.message());
  last_touch_ns_ = now;
  MAMORI_LOG(kDebug, "agent " << peer_.agent_id << " heartbeat: spool " << hb.spool_events() << " events"
                              << (hb.isolated() ? ", isolated" : ""));
  return grpc::Status::OK;
}

void Session::HandleCommandAck() {
  const std::string& id = in_.command_ack().command_id();
  Store* store = svc_->store;
  Result<CommandRecord> c = WithRetry([&] { return store->GetCommand(id); });
  if (!c.ok() || c->agent_id != peer_.agent_id) {
    // Not this agent's command: ignored (an agent cannot touch another's commands).
    MAMORI_LOG(kWarning, "agent " << peer_.agent_id << " acknowledged unknown command '" << id << "'");
    return;
  }
  Status s = WithRetry([&] { return store->MarkCommandDelivered(id, NowNs()); });
  if (!s.ok()) MAMORI_LOG(kWarning, "command " << id << ": mark delivered: " << s.message());
}

void Session::OfferCommand(const CommandRecord& c) {
  mamori::v1::Command command;
  if (!command.ParseFromString(c.args)) {
    MAMORI_LOG(kError, "command " << c.command_id << " has unreadable arguments; not sent");
    return;
  }
  command.set_command_id(c.command_id);
  if (command.issued_at_ns() == 0) command.set_issued_at_ns(c.created_at_ns);
  if (command.expires_at_ns() == 0) command.set_expires_at_ns(c.expires_at_ns);
  if (command.requested_by().empty()) command.set_requested_by(c.requested_by);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!sent_commands_.insert(c.command_id).second) return;
  }
  auto m = std::make_unique<ServerMessage>();
  *m->mutable_command() = std::move(command);
  svc_->metrics->RecordCommandsSent(1);
  Send(std::move(m));
}

void Session::ReadNext() {
  std::lock_guard<std::mutex> lock(mu_);
  if (finishing_ || !read_paused_) return;
  read_paused_ = false;
  // Under mu_, so End cannot finish in between (reads never complete inline).
  reactor_->StartRead(reading_);
}

void Session::Send(std::unique_ptr<ServerMessage> message) {
  std::unique_lock<std::mutex> lock(mu_);
  if (finishing_) return;
  if (out_.size() >= kMaxQueuedWrites) {
    lock.unlock();
    Cancel("the agent does not read its stream");
    return;
  }
  out_.push_back(std::move(message));
  if (writing_) return;
  writing_ = true;
  const ServerMessage* next = out_.front().get();
  Reactor* reactor = reactor_;
  lock.unlock();
  reactor->StartWrite(next);  // the reactor lives until this write has completed
}

void Session::OnWriteDone(bool ok) {
  std::unique_lock<std::mutex> lock(mu_);
  out_.pop_front();
  if (!ok) out_.clear();  // the peer is gone; the read side ends the stream
  Reactor* reactor = reactor_;
  if (!out_.empty()) {
    const ServerMessage* next = out_.front().get();
    lock.unlock();
    reactor->StartWrite(next);
    return;
  }
  writing_ = false;
  if (finish_pending_) {
    finish_pending_ = false;
    const grpc::Status st = finish_status_;
    lock.unlock();
    reactor->Finish(st);
  }
}

void Session::End(const grpc::Status& status) {
  std::unique_lock<std::mutex> lock(mu_);
  if (finishing_) return;
  finishing_ = true;
  svc_->metrics->RecordStreamEnd(status.error_code());
  if (writing_) {
    finish_pending_ = true;
    finish_pending_since_ns_ = NowNs();
    finish_status_ = status;
    return;
  }
  Reactor* reactor = reactor_;
  lock.unlock();
  reactor->Finish(status);
}

void Session::Cancel(const char* why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (done_) return;
  MAMORI_LOG(kInfo, "agent " << peer_.agent_id << ": cancelling stream: " << why);
  ctx_->TryCancel();
}

void Session::Sweep(int64_t now_ns) {
  bool stuck = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (done_) return;
    stuck = finish_pending_ && now_ns - finish_pending_since_ns_ > kStuckFinishTimeout;
  }
  if (stuck) {
    Cancel("the final status could not be delivered");
    return;
  }
  if (!welcomed() && now_ns - started_ns_ > kHelloTimeout) {
    Cancel("no Hello within 30 s");
    return;
  }
  const int64_t idle_limit = 3 * svc_->config->heartbeat_interval.count() * kSecond + 30 * kSecond;
  if (welcomed() && now_ns - last_message_ns_.load(std::memory_order_relaxed) > idle_limit) {
    Cancel("silent for 3 heartbeat intervals");
  }
}

void Session::OnDone() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    reactor_ = nullptr;
  }
  svc_->registry->Remove(this);
  if (welcomed()) {
    svc_->metrics->RecordAgentDisconnected();
    MAMORI_LOG(kInfo, "agent " << peer_.agent_id << " disconnected");
  }
  svc_->metrics->RecordStreamClosed();
  svc_->streams.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace mamori::server

#include "test_client.h"

#include <grpcpp/generic/generic_stub.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <catch2/catch.hpp>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "mamori/common/log.h"
#include "mamori/v1/version.h"

namespace mamori::server::testing {

namespace {

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string BioString(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

KeyAndCsr MakeKeyAndCsr(const std::string& common_name) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  REQUIRE(key != nullptr);
  X509_REQ* req = X509_REQ_new();
  X509_REQ_set_version(req, 0);
  X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
  X509_REQ_set_pubkey(req, key);
  REQUIRE(X509_REQ_sign(req, key, EVP_sha256()) > 0);
  KeyAndCsr out;
  BIO* kb = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(kb, key, nullptr, nullptr, 0, nullptr, nullptr);
  out.key_pem = BioString(kb);
  BIO_free(kb);
  BIO* rb = BIO_new(BIO_s_mem());
  PEM_write_bio_X509_REQ(rb, req);
  out.csr_pem = BioString(rb);
  BIO_free(rb);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
  return out;
}

TestServer::TestServer(const std::function<void(ServerConfig&)>& tweak) {
  // Quiet unless asked: MAMORI_TEST_LOG=debug|info shows the server's log.
  const char* level = std::getenv("MAMORI_TEST_LOG");
  const std::string l = level != nullptr ? level : "";
  log::SetLevel(l == "debug" ? log::Level::kDebug : l == "info" ? log::Level::kInfo : log::Level::kError);
  config_.data_dir = dir_.path() + "/data";
  config_.listen = "127.0.0.1:0";
  config_.metrics_enabled = false;
  config_.workers = 4;
  config_.store.sqlite_durable_commits = false;  // tests: no fsync per batch
  if (tweak) tweak(config_);
  Result<std::unique_ptr<Store>> store = OpenConfiguredStore(config_);
  REQUIRE(store.ok());
  store_ = std::move(*store);
  Result<std::unique_ptr<Server>> server = Server::Start(config_, store_);
  if (!server.ok()) FAIL(server.status().ToString());
  server_ = std::move(*server);
}

TestServer::~TestServer() {
  if (server_) server_->Shutdown(std::chrono::milliseconds(2000));
}

std::string TestServer::Token(bool reusable, std::chrono::seconds ttl) {
  TokenSpec spec;
  spec.reusable = reusable;
  spec.created_at_ns = Now();
  spec.expires_at_ns = spec.created_at_ns + std::chrono::duration_cast<std::chrono::nanoseconds>(ttl).count();
  spec.created_by = "test";
  Result<NewToken> t = store_->CreateEnrollmentToken(spec);
  REQUIRE(t.ok());
  return t->secret;
}

std::shared_ptr<grpc::Channel> TlsChannel(const std::string& target, const std::string& ca_pem,
                                          const std::string& key_pem, const std::string& cert_pem) {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = ca_pem;
  o.pem_private_key = key_pem;
  o.pem_cert_chain = cert_pem;
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
  args.SetMaxReceiveMessageSize(-1);
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(o), args);
}

grpc::Status Enroll(const std::string& target, const std::string& ca_pem, const std::string& token,
                    EnrolledAgent* agent, const std::string& csr_pem, const std::string& key_pem) {
  KeyAndCsr kc;
  if (csr_pem.empty()) {
    kc = MakeKeyAndCsr();
  } else {
    kc.csr_pem = csr_pem;
    kc.key_pem = key_pem;
  }
  auto stub = mamori::v1::AgentService::NewStub(TlsChannel(target, ca_pem));
  mamori::v1::EnrollRequest req;
  req.set_token(token);
  req.set_csr_pem(kc.csr_pem);
  req.set_protocol_version(mamori::v1::kProtocolVersion);
  req.mutable_agent()->set_hostname("test-host");
  req.mutable_agent()->set_agent_version("0.1.0");
  mamori::v1::EnrollResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status st = stub->Enroll(&ctx, req, &resp);
  if (st.ok()) {
    agent->agent_id = resp.agent_id();
    agent->key_pem = kc.key_pem;
    agent->cert_pem = resp.certificate_pem();
    agent->ca_pem = resp.ca_certificate_pem();
  }
  return st;
}

EnrolledAgent EnrollNew(TestServer& server) {
  EnrolledAgent a;
  grpc::Status st = Enroll(server.target(), server.ca_pem(), server.Token(), &a);
  INFO(st.error_message());
  REQUIRE(st.ok());
  return a;
}

mamori::v1::Event MakeEvent(uint64_t sequence) {
  mamori::v1::Event e;
  e.set_sequence(sequence);
  e.set_timestamp_ns(1'700'000'000'000'000'000 + static_cast<int64_t>(sequence) * 1000);
  e.mutable_process()->set_pid(static_cast<int32_t>(1000 + sequence % 30000));
  e.mutable_process()->set_image("/usr/bin/test-" + std::to_string(sequence % 7));
  e.mutable_process()->add_argv("test");
  e.mutable_process()->add_argv("--seq=" + std::to_string(sequence));
  e.mutable_process_activity()->set_kind(mamori::v1::ProcessActivity::KIND_EXEC);
  return e;
}

mamori::v1::AgentMessage MakeBatch(uint64_t first, uint64_t last) {
  mamori::v1::AgentMessage m;
  for (uint64_t s = first; s <= last; ++s) *m.mutable_batch()->add_events() = MakeEvent(s);
  if (first > last) m.mutable_batch();
  return m;
}

mamori::v1::AgentMessage MakeHello(const std::string& hostname) {
  mamori::v1::AgentMessage m;
  m.mutable_hello()->set_protocol_version(mamori::v1::kProtocolVersion);
  m.mutable_hello()->mutable_agent()->set_hostname(hostname);
  m.mutable_hello()->mutable_agent()->set_agent_version("0.1.0");
  m.mutable_hello()->mutable_agent()->set_sensor_mode("none");
  return m;
}

Stream::Stream(std::shared_ptr<grpc::Channel> channel, std::chrono::milliseconds deadline,
               const std::string& insecure_agent_id)
    : channel_(std::move(channel)) {
  ctx_.set_deadline(std::chrono::system_clock::now() + deadline);
  if (!insecure_agent_id.empty()) ctx_.AddMetadata("mamori-agent-id", insecure_agent_id);
  stub_ = mamori::v1::AgentService::NewStub(channel_);
  rw_ = stub_->Connect(&ctx_);
}

bool Stream::Hello(mamori::v1::Welcome* welcome, const std::string& hostname) {
  if (!Write(MakeHello(hostname))) return false;
  mamori::v1::ServerMessage m;
  if (!Read(&m) || !m.has_welcome()) return false;
  *welcome = m.welcome();
  return true;
}

int64_t Stream::SendBatch(const mamori::v1::AgentMessage& batch) {
  if (!Write(batch)) return -1;
  mamori::v1::ServerMessage m;
  while (Read(&m)) {
    if (m.has_batch_ack()) return static_cast<int64_t>(m.batch_ack().acked_sequence());
    if (m.has_command()) commands_.push_back(m.command());
  }
  return -1;
}

grpc::Status Stream::Finish() {
  if (finished_) return status_;
  rw_->WritesDone();
  mamori::v1::ServerMessage m;
  while (rw_->Read(&m)) {
    if (m.has_command()) commands_.push_back(m.command());
  }
  status_ = rw_->Finish();
  finished_ = true;
  return status_;
}

int HealthCheck(const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  // HealthCheckRequest{string service = 1}; HealthCheckResponse{ServingStatus status = 1}.
  std::string req;
  if (!service.empty()) {
    req.push_back(0x0a);
    req.push_back(static_cast<char>(service.size()));
    req += service;
  }
  grpc::Slice slice(req);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
    std::lock_guard<std::mutex> lock(mu);
    status = std::move(s);
    done = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  if (!status.ok()) return -1;
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return -1;
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  if (bytes.size() == 2 && bytes[0] == 0x08) return bytes[1];
  if (bytes.empty()) return 0;  // UNKNOWN (the zero value is not sent)
  return -1;
}

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

std::vector<StoredEvent> AllEvents(Store& store, const std::string& agent_id) {
  std::vector<StoredEvent> out;
  EventQuery q;
  q.agent_id = agent_id;
  q.oldest_first = true;
  q.limit = kMaxEventLimit;
  for (;;) {
    Result<EventPage> page = store.QueryEvents(q);
    REQUIRE(page.ok());
    for (auto& e : page->events) out.push_back(std::move(e));
    if (!page->next) break;
    q.after = page->next;
  }
  return out;
}

}  // namespace mamori::server::testing

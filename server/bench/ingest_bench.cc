// Single-agent ingest over loopback: an in-process mamori-server (SQLite in a
// temporary directory, TLS unless --insecure) and one test agent that
// enrolls, connects and streams N exec events in batches, keeping a window of
// batches in flight, as the uplink does. Prints events/s and the server's
// store-append latency. Not a test: `mamori_server_bench --help`.
#include <grpcpp/grpcpp.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>

#include "mamori/common/log.h"
#include "mamori/server/metrics.h"
#include "mamori/server/server.h"
#include "mamori/v1/agent_service.grpc.pb.h"
#include "mamori/v1/version.h"

namespace {

using namespace mamori;  // NOLINT(google-build-using-namespace): benchmark main

constexpr const char* kUsage =
    "usage: mamori_server_bench [--events N] [--batch B] [--window W] [--durable] [--insecure] [--postgres CONNINFO]\n"
    "  --events N   events to send (default 1000000)\n"
    "  --batch B    events per batch (default 1000)\n"
    "  --window W   batches in flight before waiting for acks (default 8)\n"
    "  --durable    SQLite synchronous=FULL (fsync per commit), the server default; else NORMAL\n"
    "  --insecure   plaintext gRPC instead of TLS\n"
    "  --siem       also hand every stored event to a SIEM JSON-lines file in the temp dir\n"
    "  --postgres   use this PostgreSQL database instead (schema bench_<pid>, left in place)\n";

std::string Bio(BIO* b) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  std::string s(data, static_cast<size_t>(n));
  BIO_free(b);
  return s;
}

void MakeKeyAndCsr(std::string* key_pem, std::string* csr_pem) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  X509_REQ* req = X509_REQ_new();
  X509_REQ_set_pubkey(req, key);
  X509_REQ_sign(req, key, EVP_sha256());
  BIO* kb = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(kb, key, nullptr, nullptr, 0, nullptr, nullptr);
  *key_pem = Bio(kb);
  BIO* rb = BIO_new(BIO_s_mem());
  PEM_write_bio_X509_REQ(rb, req);
  *csr_pem = Bio(rb);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
}

// An exec event of about 300 serialized bytes.
mamori::v1::Event Template() {
  mamori::v1::Event e;
  e.set_timestamp_ns(1'700'000'000'000'000'000);
  auto* p = e.mutable_process();
  p->set_pid(4242);
  p->set_ppid(4200);
  p->set_uid(1000);
  p->set_euid(1000);
  p->set_user("alice");
  p->set_image("/usr/bin/python3.11");
  for (const char* a : {"python3", "-m", "http.server", "--bind", "127.0.0.1", "8000"}) p->add_argv(a);
  p->set_cwd("/home/alice/projects/site");
  p->set_tty("pts/3");
  p->set_cgroup("/user.slice/user-1000.slice/session-3.scope");
  p->set_sha256("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  e.mutable_parent()->set_pid(4200);
  e.mutable_parent()->set_image("/usr/bin/bash");
  e.mutable_process_activity()->set_kind(mamori::v1::ProcessActivity::KIND_EXEC);
  return e;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t events = 1'000'000, batch = 1000, window = 8;
  bool durable = false, insecure = false, siem = false;
  std::string postgres;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--events" && i + 1 < argc)
      events = std::stoull(argv[++i]);
    else if (a == "--batch" && i + 1 < argc)
      batch = std::stoull(argv[++i]);
    else if (a == "--window" && i + 1 < argc)
      window = std::stoull(argv[++i]);
    else if (a == "--durable")
      durable = true;
    else if (a == "--insecure")
      insecure = true;
    else if (a == "--siem")
      siem = true;
    else if (a == "--postgres" && i + 1 < argc)
      postgres = argv[++i];
    else {
      std::fputs(kUsage, a == "--help" ? stdout : stderr);
      return a == "--help" ? 0 : 64;
    }
  }
  log::SetLevel(log::Level::kWarning);
  char tmpl[] = "/tmp/mamori-server-bench-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return 1;
  const std::string dir = tmpl;

  server::ServerConfig config;
  config.data_dir = dir;
  config.listen = "127.0.0.1:0";
  config.insecure = insecure;
  config.metrics_enabled = false;
  config.max_batch_events = static_cast<uint32_t>(std::max<uint64_t>(batch, 1));
  config.max_batch_bytes = 64u << 20;
  config.max_message_bytes = 80u << 20;
  config.store.sqlite_durable_commits = durable;
  if (siem) {
    server::SiemOutputConfig out;
    out.path = dir + "/siem.jsonl";
    config.siem.push_back(out);
  }
  if (!postgres.empty()) {
    config.store.backend = server::StoreConfig::Backend::kPostgres;
    config.store.postgres_conninfo = postgres;
    config.store.postgres_schema = "bench_" + std::to_string(::getpid());
  }
  auto store = server::OpenConfiguredStore(config);
  if (!store.ok()) {
    std::fprintf(stderr, "store: %s\n", store.status().ToString().c_str());
    return 1;
  }
  std::shared_ptr<server::Store> shared_store = std::move(*store);
  auto srv = server::Server::Start(config, shared_store);
  if (!srv.ok()) {
    std::fprintf(stderr, "server: %s\n", srv.status().ToString().c_str());
    return 1;
  }
  const std::string target = "127.0.0.1:" + std::to_string((*srv)->port());

  // Enroll.
  server::TokenSpec spec;
  spec.created_at_ns = 1;
  spec.expires_at_ns = INT64_MAX;
  auto token = shared_store->CreateEnrollmentToken(spec);
  std::string key_pem, csr_pem;
  MakeKeyAndCsr(&key_pem, &csr_pem);
  auto plain_creds = [&] {
    if (insecure) return grpc::InsecureChannelCredentials();
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = (*srv)->ca_certificate_pem();
    return grpc::SslCredentials(o);
  };
  mamori::v1::EnrollRequest er;
  er.set_token(token->secret);
  er.set_csr_pem(csr_pem);
  er.set_protocol_version(mamori::v1::kProtocolVersion);
  mamori::v1::EnrollResponse eresp;
  {
    grpc::ClientContext ctx;
    auto st = mamori::v1::AgentService::NewStub(grpc::CreateChannel(target, plain_creds()))->Enroll(&ctx, er, &eresp);
    if (!st.ok()) {
      std::fprintf(stderr, "enroll: %s\n", st.error_message().c_str());
      return 1;
    }
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (insecure) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = (*srv)->ca_certificate_pem();
    o.pem_private_key = key_pem;
    o.pem_cert_chain = eresp.certificate_pem();
    creds = grpc::SslCredentials(o);
  }
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(-1);
  auto stub = mamori::v1::AgentService::NewStub(grpc::CreateCustomChannel(target, creds, args));
  grpc::ClientContext ctx;
  if (insecure) ctx.AddMetadata("mamori-agent-id", eresp.agent_id());
  auto rw = stub->Connect(&ctx);
  mamori::v1::AgentMessage hello;
  hello.mutable_hello()->set_protocol_version(mamori::v1::kProtocolVersion);
  rw->Write(hello);
  mamori::v1::ServerMessage m;
  if (!rw->Read(&m) || !m.has_welcome()) {
    std::fprintf(stderr, "no Welcome: %s\n", rw->Finish().error_message().c_str());
    return 1;
  }

  // Reader: acks; writer: batches while fewer than `window` are unacknowledged.
  std::mutex mu;
  std::condition_variable cv;
  uint64_t acked = 0;
  bool broken = false;
  std::thread reader([&] {
    mamori::v1::ServerMessage r;
    while (rw->Read(&r)) {
      if (!r.has_batch_ack()) continue;
      std::lock_guard<std::mutex> lock(mu);
      acked = r.batch_ack().acked_sequence();
      cv.notify_all();
      if (acked >= events) break;
    }
    std::lock_guard<std::mutex> lock(mu);
    broken = acked < events;
    cv.notify_all();
  });
  const mamori::v1::Event tmpl_event = Template();
  mamori::v1::AgentMessage msg;
  for (uint64_t i = 0; i < batch; ++i) *msg.mutable_batch()->add_events() = tmpl_event;
  const size_t batch_bytes = msg.ByteSizeLong();
  const server::ServerMetrics::Snapshot before = (*srv)->metrics().Take();
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t first = 1; first <= events; first += batch) {
    const uint64_t n = std::min(batch, events - first + 1);
    msg.mutable_batch()->mutable_events()->DeleteSubrange(static_cast<int>(n),
                                                          msg.batch().events_size() - static_cast<int>(n));
    for (uint64_t k = 0; k < n; ++k) {
      auto* e = msg.mutable_batch()->mutable_events(static_cast<int>(k));
      e->set_sequence(first + k);
      e->set_timestamp_ns(1'700'000'000'000'000'000 + static_cast<int64_t>(first + k));
    }
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return broken || first - 1 - acked < window * batch; });
      if (broken) break;
    }
    if (!rw->Write(msg)) break;
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return broken || acked >= events; });
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  reader.join();
  rw->WritesDone();
  const grpc::Status st = rw->Finish();
  const server::ServerMetrics::Snapshot after = (*srv)->metrics().Take();
  if (acked < events) {
    std::fprintf(stderr, "stream ended at ack %llu: %s\n", static_cast<unsigned long long>(acked),
                 st.error_message().c_str());
    return 1;
  }
  std::printf(
      "store %s%s, %s%s, %llu events in batches of %llu (%zu bytes/batch, window %llu): %.2f s, %.0f events/s, "
      "append p50 %.2f ms p99 %.2f ms\n",
      shared_store->backend().data(), postgres.empty() ? (durable ? " (durable)" : " (synchronous=NORMAL)") : "",
      insecure ? "plaintext" : "TLS", siem ? ", SIEM file" : "", static_cast<unsigned long long>(events),
      static_cast<unsigned long long>(batch), batch_bytes, static_cast<unsigned long long>(window), secs,
      static_cast<double>(events) / secs, server::LatencyQuantile(before, after, 0.5) * 1e3,
      server::LatencyQuantile(before, after, 0.99) * 1e3);
  (*srv)->Shutdown();
  srv->reset();
  shared_store.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}

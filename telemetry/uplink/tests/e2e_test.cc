// End to end with the real mamori-server (child process, SQLite store in a
// temp dir, TLS on 127.0.0.1): enrollment, streaming, kill -9 of either side,
// a server down for a while, refusals, and a full spool. Each case checks in
// the server's database that sequences 1..N are stored exactly once, each
// with the payload the agent gave that sequence.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "mamori/common/file_util.h"
#include "mamori/server/ca.h"
#include "mamori/telemetry/convert.h"
#include "mamori/telemetry/enrollment.h"
#include "mamori/telemetry/uplink.h"
#include "mamori/v1/agent_service.grpc.pb.h"
#include "mamori/v1/version.h"
#include "server_process.h"
#include "test_util.h"
#include "uplink_test_util.h"
#include "x509.h"

namespace mamori::telemetry {
namespace {

using std::chrono::milliseconds;
using testing::ServerProcess;
using testing::WaitFor;

// One server data dir, enrolled agent keys and a spool, in one temp dir.
struct Fixture {
  ::mamori::testing::TempDir dir;
  std::string data_dir = dir.path() + "/server";
  std::string key_dir = dir.path() + "/keys";
  std::string spool_dir = dir.path() + "/spool";
  std::unique_ptr<ServerProcess> server;
  std::string agent_id;

  explicit Fixture(std::string extra_yaml = "", bool insecure = false) {
    REQUIRE(MakeDirs(data_dir, 0700).ok());
    server = std::make_unique<ServerProcess>(MAMORI_SERVER_BINARY, data_dir, std::move(extra_yaml), insecure);
    Status s = server->Start();
    INFO(s.ToString());
    REQUIRE(s.ok());
  }

  std::string CaPem() const {
    auto ca = server->CaCertificate();
    REQUIRE(ca.ok());
    return *ca;
  }

  void EnrollAgent() {
    auto token = server->CreateToken();
    REQUIRE(token.ok());
    EnrollOptions o;
    o.server = server->address();
    o.ca_certificate_pem = CaPem();
    o.token = *token;
    o.key_dir = key_dir;
    o.agent.set_hostname("e2e-host");
    auto e = Enroll(o);
    INFO(e.status().ToString());
    REQUIRE(e.ok());
    REQUIRE(e->enrolled_now);
    agent_id = e->agent_id;
  }

  UplinkOptions Options() const {
    auto creds = LoadCredentials(key_dir);
    REQUIRE(creds.ok());
    UplinkOptions o;
    o.servers = {server->address()};
    o.credentials = *creds;
    o.initial_backoff = milliseconds(100);
    o.max_backoff = milliseconds(1000);
    o.refused_backoff = milliseconds(1000);
    o.drop_report_interval = milliseconds(100);
    return o;
  }

  // Exactly once: rows == distinct == n, min 1, max n, payloads match.
  void CheckExactlyOnce(uint64_t n) const {
    auto s = testing::QueryStoredSequences(server->db_path(), agent_id, true);
    REQUIRE(s.ok());
    CHECK(s->rows == n);
    CHECK(s->distinct == n);
    CHECK(s->min == 1);
    CHECK(s->max == n);
    CHECK(s->marker_mismatches == 0);
  }
};

std::unique_ptr<Uplink> StartUplink(UplinkOptions o, Spool* spool) {
  auto u = Uplink::Create(std::move(o), spool);
  REQUIRE(u.ok());
  REQUIRE((*u)->Start().ok());
  return std::move(*u);
}

TEST_CASE("e2e: enroll with a token, stream 50,000 events, each stored exactly once") {
  Fixture f;
  f.EnrollAgent();

  SECTION("enrollment is idempotent and the token was one-time") {
    EnrollOptions o;
    o.server = f.server->address();
    o.ca_certificate_pem = f.CaPem();
    o.token = "mmt_unused";
    o.key_dir = f.key_dir;
    auto again = Enroll(o);
    REQUIRE(again.ok());
    CHECK_FALSE(again->enrolled_now);
    CHECK(again->agent_id == f.agent_id);
    o.force = true;
    CHECK(Enroll(o).status().code() == StatusCode::kUnauthenticated);
    struct stat st {};
    REQUIRE(::stat((f.key_dir + "/agent.key").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }

  SECTION("streaming") {
    auto spool = testing::OpenTestSpool(f.spool_dir);
    auto up = StartUplink(f.Options(), spool.get());
    constexpr uint64_t kEvents = 50'000;
    testing::AppendMarked(spool.get(), kEvents);
    REQUIRE(WaitFor([&] { return spool->GetStats().acked_sequence == kEvents; }, milliseconds(60'000)));
    const UplinkStats st = up->stats();
    up->Stop();
    CHECK(st.connected);
    CHECK(st.reconnects == 0);
    REQUIRE(f.server->Stop().ok());
    f.CheckExactlyOnce(kEvents);
  }
}

TEST_CASE("e2e: kill -9 of the server mid-stream, then restart: exactly once") {
  Fixture f;
  f.EnrollAgent();
  auto spool = testing::OpenTestSpool(f.spool_dir);
  auto up = StartUplink(f.Options(), spool.get());
  constexpr uint64_t kEvents = 50'000;
  std::thread producer([&] { testing::AppendMarked(spool.get(), kEvents); });
  REQUIRE(WaitFor([&] { return spool->GetStats().acked_sequence >= 5'000; }, milliseconds(30'000)));
  f.server->Kill9();
  const uint64_t acked_at_kill = spool->GetStats().acked_sequence;
  std::this_thread::sleep_for(milliseconds(300));
  REQUIRE(f.server->Start().ok());
  producer.join();
  REQUIRE(WaitFor([&] { return spool->GetStats().acked_sequence == kEvents; }, milliseconds(60'000)));
  const UplinkStats st = up->stats();
  up->Stop();
  CHECK(acked_at_kill < kEvents);
  CHECK(st.reconnects >= 1);
  REQUIRE(f.server->Stop().ok());
  f.CheckExactlyOnce(kEvents);
}

TEST_CASE("e2e: plaintext on loopback (mamori-server --insecure): enroll, then stream as the enrolled id") {
  Fixture f("", /*insecure=*/true);
  auto token = f.server->CreateToken();
  REQUIRE(token.ok());
  EnrollOptions eo;
  eo.server = f.server->address();
  eo.token = *token;
  eo.key_dir = f.key_dir;
  eo.insecure = true;  // no CA to pin: the one the server returns is stored
  auto e = Enroll(eo);
  INFO(e.status().ToString());
  REQUIRE(e.ok());
  f.agent_id = e->agent_id;
  auto creds = LoadCredentials(f.key_dir);
  REQUIRE(creds.ok());
  CHECK(creds->agent_id == f.agent_id);

  auto spool = testing::OpenTestSpool(f.spool_dir);
  UplinkOptions o;
  o.servers = {f.server->address()};
  o.credentials = *creds;  // only the agent id is used: it travels as metadata
  o.insecure = true;
  auto up = StartUplink(o, spool.get());
  testing::AppendMarked(spool.get(), 2'000);
  REQUIRE(WaitFor([&] { return spool->GetStats().acked_sequence == 2'000; }, milliseconds(30'000)));
  up->Stop();
  REQUIRE(f.server->Stop().ok());
  f.CheckExactlyOnce(2'000);
}

// The agent side in a child process (mamori_uplink_driver): spool + uplink.
pid_t SpawnDriver(const Fixture& f, uint64_t until, uint64_t rate, const std::string& log) {
  std::vector<std::string> argv = {MAMORI_UPLINK_DRIVER,
                                   "--spool",
                                   f.spool_dir,
                                   "--key-dir",
                                   f.key_dir,
                                   "--server",
                                   f.server->address(),
                                   "--until-sequence",
                                   std::to_string(until),
                                   "--rate",
                                   std::to_string(rate),
                                   "--timeout",
                                   "60"};
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fd);
  return pid;
}

TEST_CASE(
    "e2e: kill -9 of the agent side mid-stream, then a new agent process on the same spool: no gap, no duplicate") {
  Fixture f;
  f.EnrollAgent();
  constexpr uint64_t kEvents = 30'000;
  const std::string log = f.dir.path() + "/driver.log";
  pid_t child = SpawnDriver(f, kEvents, 10'000, log);  // ~3 s of appending
  REQUIRE(child > 0);
  const bool streaming = WaitFor([&] { return testing::QueryAckedSequence(f.server->db_path(), f.agent_id) >= 3'000; },
                                 milliseconds(30'000));
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(streaming);
  REQUIRE(WIFSIGNALED(status));
  const uint64_t acked_at_kill = testing::QueryAckedSequence(f.server->db_path(), f.agent_id);
  CHECK(acked_at_kill < kEvents);

  child = SpawnDriver(f, kEvents, 0, log);
  ::waitpid(child, &status, 0);
  INFO(ReadFileToString(log).value());
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  REQUIRE(f.server->Stop().ok());
  f.CheckExactlyOnce(kEvents);
}

TEST_CASE("e2e: the server down for a while: the spool fills, then drains, exactly once") {
  Fixture f;
  f.EnrollAgent();
  auto spool = testing::OpenTestSpool(f.spool_dir);
  auto up = StartUplink(f.Options(), spool.get());
  testing::AppendMarked(spool.get(), 5'000);
  REQUIRE(WaitFor([&] { return spool->GetStats().acked_sequence == 5'000; }, milliseconds(30'000)));
  REQUIRE(f.server->Stop().ok());
  testing::AppendMarked(spool.get(), 15'000);
  std::this_thread::sleep_for(milliseconds(1500));
  CHECK_FALSE(up->stats().connected);
  CHECK(spool->GetStats().acked_sequence == 5'000);
  REQUIRE(f.server->Start().ok());
  testing::AppendMarked(spool.get(), 5'000);
  REQUIRE(WaitFor([&] { return spool->GetStats().acked_sequence == 25'000; }, milliseconds(60'000)));
  up->Stop();
  REQUIRE(f.server->Stop().ok());
  f.CheckExactlyOnce(25'000);
}

// Hello on a raw Connect call with `creds`; the status the call ends with.
grpc::Status RawConnect(const std::string& address, const std::shared_ptr<grpc::ChannelCredentials>& creds) {
  auto stub = v1::AgentService::NewStub(grpc::CreateChannel(address, creds));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->Connect(&ctx);
  v1::AgentMessage hello;
  hello.mutable_hello()->set_protocol_version(v1::kProtocolVersion);
  stream->Write(hello);
  v1::ServerMessage reply;
  while (stream->Read(&reply)) {
  }
  return stream->Finish();
}

TEST_CASE("e2e: the uplink renews its certificate at the server, mid-stream too, and nothing is lost or doubled") {
  Fixture f;
  f.EnrollAgent();
  auto before = LoadCredentials(f.key_dir);
  REQUIRE(before.ok());
  auto spool = testing::OpenTestSpool(f.spool_dir);
  UplinkOptions o = f.Options();
  o.renew_key_dir = f.key_dir;
  o.renew_after_fraction = 0;           // always due: renewed at the first connect...
  o.renew_retry = milliseconds(1500);   // ...and again whenever 1.5 s have passed, ending the stream for it
  auto up = StartUplink(o, spool.get());
  uint64_t appended = 0;
  REQUIRE(WaitFor(
      [&] {
        testing::AppendMarked(spool.get(), 50);  // a steady flow (~5,000/s) while streams end and resume
        appended += 50;
        return up->stats().renewals >= 3;
      },
      milliseconds(30'000)));
  REQUIRE(WaitFor([&] { return spool->GetStats().acked_sequence == appended; }, milliseconds(30'000)));
  const UplinkStats st = up->stats();
  up->Stop();
  CHECK(st.renewal_failures == 0);
  CHECK(st.last_renewal_error.ok());
  CHECK(st.reconnects >= 2);  // the streams the renewals ended
  CHECK(st.certificate_not_after_ns > NowNs());

  auto after = LoadCredentials(f.key_dir);
  REQUIRE(after.ok());
  CHECK(after->agent_id == before->agent_id);
  CHECK(after->key_pem != before->key_pem);
  CHECK(after->certificate_pem != before->certificate_pem);
  // The first certificate was replaced and its successors used: refused now.
  grpc::SslCredentialsOptions old_creds;
  old_creds.pem_root_certs = f.CaPem();
  old_creds.pem_private_key = before->key_pem;
  old_creds.pem_cert_chain = before->certificate_pem;
  CHECK(RawConnect(f.server->address(), grpc::SslCredentials(old_creds)).error_code() ==
        grpc::StatusCode::UNAUTHENTICATED);
  REQUIRE(f.server->Stop().ok());
  f.CheckExactlyOnce(appended);
}

TEST_CASE("e2e: an unenrolled client (no certificate) is refused") {
  Fixture f;
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = f.CaPem();
  const grpc::Status st = RawConnect(f.server->address(), grpc::SslCredentials(o));
  CHECK(st.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  // And the uplink refuses to start without credentials.
  ::mamori::testing::TempDir dir;
  auto spool = testing::OpenTestSpool(dir.path() + "/spool");
  UplinkOptions uo;
  uo.servers = {f.server->address()};
  uo.credentials.ca_certificate_pem = f.CaPem();
  CHECK(Uplink::Create(uo, spool.get()).status().code() == StatusCode::kFailedPrecondition);
  CHECK(LoadCredentials(dir.path() + "/keys").status().code() == StatusCode::kNotFound);
}

TEST_CASE("e2e: a client certificate from another CA is refused") {
  Fixture f;
  // Another CA (another server's data dir) issues a certificate for our key.
  auto other = server::CertificateAuthority::Open(server::CaOptions{f.dir.path() + "/other-ca", {}, 0});
  REQUIRE(other.ok());
  auto key = x509::GenerateKeyPem();
  REQUIRE(key.ok());
  auto csr = x509::MakeCsrPem(*key, "intruder");
  REQUIRE(csr.ok());
  auto id = server::NewAgentId();
  REQUIRE(id.ok());
  auto cert = (*other)->IssueClientCertificate(*csr, *id, NowNs(), std::chrono::hours(24));
  REQUIRE(cert.ok());

  grpc::SslCredentialsOptions o;
  o.pem_root_certs = f.CaPem();  // the right server
  o.pem_private_key = *key;
  o.pem_cert_chain = cert->certificate_pem;
  const grpc::Status st = RawConnect(f.server->address(), grpc::SslCredentials(o));
  CHECK_FALSE(st.ok());  // the TLS handshake fails: the server verifies client certificates

  ::mamori::testing::TempDir dir;
  auto spool = testing::OpenTestSpool(dir.path() + "/spool");
  testing::AppendMarked(spool.get(), 10);
  UplinkOptions uo;
  uo.servers = {f.server->address()};
  uo.credentials = AgentCredentials{*id, *key, cert->certificate_pem, f.CaPem(), 0};
  uo.initial_backoff = milliseconds(100);
  auto up = StartUplink(uo, spool.get());
  REQUIRE(WaitFor([&] { return up->stats().failures >= 1; }, milliseconds(10'000)));
  CHECK_FALSE(up->stats().connected);
  CHECK_FALSE(up->stats().last_error.ok());
  up->Stop();
  CHECK(spool->GetStats().acked_sequence == 0);
}

TEST_CASE("e2e: a revoked agent is refused, the uplink reports it and backs off") {
  Fixture f;
  f.EnrollAgent();
  auto spool = testing::OpenTestSpool(f.spool_dir);
  UplinkOptions o = f.Options();
  o.refused_backoff = milliseconds(2000);
  auto up = StartUplink(o, spool.get());
  testing::AppendMarked(spool.get(), 100);
  REQUIRE(WaitFor([&] { return spool->GetStats().acked_sequence == 100; }, milliseconds(20'000)));
  REQUIRE(f.server->Admin({"agent", "revoke", f.agent_id}).ok());
  testing::AppendMarked(spool.get(), 100);  // the next batch meets the revocation
  REQUIRE(
      WaitFor([&] { return up->stats().last_error.code() == StatusCode::kPermissionDenied; }, milliseconds(20'000)));
  const uint64_t attempts = up->stats().attempts;
  std::this_thread::sleep_for(milliseconds(2500));
  const UplinkStats st = up->stats();
  CHECK(st.attempts - attempts <= 2);  // refused_backoff, not a loop
  CHECK_FALSE(st.connected);
  CHECK(st.last_error.code() == StatusCode::kPermissionDenied);
  CHECK(spool->GetStats().acked_sequence == 100);
  up->Stop();
}

TEST_CASE("e2e: a full spool: drops are counted and reported to the server, alerts are all kept") {
  Fixture f;
  f.EnrollAgent();
  auto spool = testing::OpenTestSpool(f.spool_dir, 512 * 1024);
  uint64_t alerts = 0, low_dropped = 0;
  for (int i = 0; i < 6'000; ++i) {
    const bool alert = i % 50 == 0;
    v1::Event e = testing::MarkedEvent(0);
    if (alert) {
      e.mutable_behavior_alert()->set_rule_id("rule-" + std::to_string(i));
      e.set_severity(v1::SEVERITY_HIGH);
    }
    auto seq = spool->Append(alert ? Priority::kCritical : Priority::kLow, EncodeSpoolPayload(e));
    REQUIRE(seq.ok());
    if (alert) {
      REQUIRE(*seq != Spool::kDropped);
      ++alerts;
    } else if (*seq == Spool::kDropped) {
      ++low_dropped;
    }
  }
  REQUIRE(low_dropped > 0);
  const uint64_t spooled = spool->GetStats().next_sequence - 1;
  auto up = StartUplink(f.Options(), spool.get());
  // Everything spooled, plus the drop report the uplink appends.
  REQUIRE(WaitFor([&] { return spool->GetStats().acked_sequence == spooled + 1; }, milliseconds(30'000)));
  up->Stop();
  REQUIRE(f.server->Stop().ok());
  auto s = testing::QueryStoredSequences(f.server->db_path(), f.agent_id, false);
  REQUIRE(s.ok());
  CHECK(s->rows == spooled + 1);
  CHECK(s->distinct == spooled + 1);
  auto drops = testing::QueryPayloads(f.server->db_path(), f.agent_id, "sensor_drops");
  REQUIRE(drops.ok());
  REQUIRE(drops->size() == 1);
  v1::Event d;
  REQUIRE(d.ParseFromString(drops->front()));
  CHECK(d.sensor_drops().sensor() == "spool");
  CHECK(d.sensor_drops().drop_source() == "full");
  CHECK(d.sensor_drops().dropped() == low_dropped);
  auto stored_alerts = testing::QueryPayloads(f.server->db_path(), f.agent_id, "behavior_alert");
  REQUIRE(stored_alerts.ok());
  CHECK(stored_alerts->size() == alerts);
}

}  // namespace
}  // namespace mamori::telemetry

// AgentService.Connect: Hello/Welcome, acks, exactly-once storage, malformed
// and oversized input, floods, commands, heartbeats, health and metrics.
#include <catch2/catch.hpp>
#include <thread>

#include "mamori/common/file_util.h"
#include "mamori/v1/version.h"
#include "test_client.h"

namespace mamori::server {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): test helpers
using mamori::v1::AgentMessage;
using mamori::v1::ServerMessage;

std::shared_ptr<grpc::Channel> AgentChannel(TestServer& ts, const EnrolledAgent& a) {
  return TlsChannel(ts.target(), ts.ca_pem(), a.key_pem, a.cert_pem);
}

// Distinct sequences stored for the agent; REQUIREs no sequence twice.
std::set<uint64_t> StoredSequences(Store& store, const std::string& agent_id) {
  std::set<uint64_t> seqs;
  for (const auto& e : AllEvents(store, agent_id)) REQUIRE(seqs.insert(e.row.sequence).second);
  return seqs;
}

TEST_CASE("stream: Hello gets a Welcome with the store's ack and the limits - batches are acked") {
  TestServer ts([](ServerConfig& c) {
    c.heartbeat_interval = std::chrono::seconds(42);
    c.max_batch_events = 321;
  });
  const EnrolledAgent a = EnrollNew(ts);
  {
    Stream s(AgentChannel(ts, a));
    mamori::v1::Welcome w;
    REQUIRE(s.Hello(&w, "host-a"));
    CHECK(w.acked_sequence() == 0);
    CHECK(w.protocol_version() == mamori::v1::kProtocolVersion);
    CHECK(w.heartbeat_interval_s() == 42);
    CHECK(w.max_batch_events() == 321);
    CHECK(w.max_batch_bytes() == ts.config().max_batch_bytes);
    CHECK(s.SendBatch(MakeBatch(1, 100)) == 100);
    CHECK(s.SendBatch(MakeBatch(101, 250)) == 250);
    CHECK(s.Finish().ok());
  }
  CHECK(StoredSequences(ts.store(), a.agent_id).size() == 250);
  // A reconnect learns the ack from the store.
  Stream s(AgentChannel(ts, a));
  mamori::v1::Welcome w;
  REQUIRE(s.Hello(&w));
  CHECK(w.acked_sequence() == 250);
  Result<AgentRecord> rec = ts.store().GetAgent(a.agent_id);
  REQUIRE(rec.ok());
  CHECK(rec->hostname == "test-host");
  CHECK(rec->last_seen_ns > 0);
}

TEST_CASE("stream: duplicate and overlapping batches are stored once - gaps hold the ack until filled") {
  TestServer ts;
  const EnrolledAgent a = EnrollNew(ts);
  Stream s(AgentChannel(ts, a));
  mamori::v1::Welcome w;
  REQUIRE(s.Hello(&w));
  CHECK(s.SendBatch(MakeBatch(1, 10)) == 10);
  CHECK(s.SendBatch(MakeBatch(1, 10)) == 10);   // duplicate
  CHECK(s.SendBatch(MakeBatch(5, 15)) == 15);   // overlap
  CHECK(s.SendBatch(MakeBatch(21, 30)) == 15);  // gap 16..20: stored, not acked
  CHECK(s.SendBatch(MakeBatch(25, 30)) == 15);  // resend above the gap
  CHECK(s.SendBatch(MakeBatch(16, 20)) == 30);  // gap filled: the ack jumps over the stored run
  AgentMessage shuffled = MakeBatch(31, 40);    // any order, repeats inside a batch
  std::swap(*shuffled.mutable_batch()->mutable_events(0), *shuffled.mutable_batch()->mutable_events(9));
  *shuffled.mutable_batch()->add_events() = MakeEvent(33);
  CHECK(s.SendBatch(shuffled) == 40);
  AgentMessage lost = MakeBatch(46, 50);  // 41..45 declared lost by the agent
  auto* range = lost.mutable_batch()->add_lost();
  range->set_first(41);
  range->set_last(45);
  range->set_reason("spool damage");
  CHECK(s.SendBatch(lost) == 50);
  CHECK(s.SendBatch(MakeBatch(1, 0)) == 50);  // an empty batch just reports the ack
  CHECK(s.Finish().ok());
  const std::set<uint64_t> seqs = StoredSequences(ts.store(), a.agent_id);
  CHECK(seqs.size() == 45);
  CHECK(*seqs.rbegin() == 50);
  CHECK(seqs.count(43) == 0);
}

TEST_CASE("stream: pipelined batches get one ack each in order - a refused one ends the stream after those before it") {
  TestServer ts;
  const EnrolledAgent a = EnrollNew(ts);
  Stream s(AgentChannel(ts, a));
  mamori::v1::Welcome w;
  REQUIRE(s.Hello(&w));
  // 30 batches written without waiting for acks (the server reads ahead and
  // stores runs of them in one transaction), a refused one, one more.
  constexpr int kBatches = 30;
  for (int b = 0; b < kBatches; ++b) REQUIRE(s.Write(MakeBatch(b * 100 + 1, b * 100 + 100)));
  AgentMessage zero = MakeBatch(kBatches * 100 + 1, kBatches * 100 + 10);
  zero.mutable_batch()->mutable_events(3)->set_sequence(0);
  s.Write(zero);
  s.Write(MakeBatch(kBatches * 100 + 11, kBatches * 100 + 20));  // may fail: the stream may have ended
  std::vector<uint64_t> acks;
  ServerMessage m;
  while (s.Read(&m)) {
    if (m.has_batch_ack()) acks.push_back(m.batch_ack().acked_sequence());
  }
  const grpc::Status st = s.Finish();
  INFO(st.error_message());
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  REQUIRE(acks.size() == kBatches);  // one per stored batch, none for the refused one or after it
  for (size_t i = 0; i < acks.size(); ++i) {
    INFO("ack " << i);
    CHECK(acks[i] >= (i + 1) * 100);  // covers its own batch (a run's acks all carry the run's ack)
    if (i > 0) CHECK(acks[i] >= acks[i - 1]);
  }
  CHECK(acks.back() == kBatches * 100);
  const std::set<uint64_t> seqs = StoredSequences(ts.store(), a.agent_id);
  CHECK(seqs.size() == kBatches * 100);
  CHECK(*seqs.rbegin() == kBatches * 100);
}

TEST_CASE("stream: the first message must be Hello - the server keeps serving") {
  TestServer ts;
  const EnrolledAgent a = EnrollNew(ts);
  {
    Stream s(AgentChannel(ts, a));
    REQUIRE(s.Write(MakeBatch(1, 3)));
    grpc::Status st = s.Finish();
    CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK_THAT(st.error_message(), Catch::Contains("Hello"));
  }
  {
    Stream s(AgentChannel(ts, a));
    AgentMessage hello = MakeHello();
    hello.mutable_hello()->set_protocol_version("2.0.0");
    REQUIRE(s.Write(hello));
    CHECK(s.Finish().error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  }
  {
    Stream s(AgentChannel(ts, a));
    mamori::v1::Welcome w;
    REQUIRE(s.Hello(&w));
    REQUIRE(s.Write(MakeHello()));
    CHECK(s.Finish().error_code() == grpc::StatusCode::INVALID_ARGUMENT);  // Hello twice
  }
  Stream s(AgentChannel(ts, a));
  mamori::v1::Welcome w;
  REQUIRE(s.Hello(&w));
  CHECK(s.SendBatch(MakeBatch(1, 3)) == 3);
  CHECK(HealthCheck(AgentChannel(ts, a)) == 1);
}

TEST_CASE("stream: malformed and oversized batches end the stream - nothing of them is stored") {
  TestServer ts([](ServerConfig& c) {
    c.max_batch_events = 50;
    c.max_batch_bytes = 16 * 1024;
    c.max_message_bytes = 64 * 1024;
  });
  const EnrolledAgent a = EnrollNew(ts);
  auto expect_end = [&](const AgentMessage& m, grpc::StatusCode code) {
    Stream s(AgentChannel(ts, a));
    mamori::v1::Welcome w;
    REQUIRE(s.Hello(&w));
    CHECK(s.SendBatch(m) == -1);
    grpc::Status st = s.Finish();
    INFO(st.error_message());
    CHECK(st.error_code() == code);
  };
  expect_end(MakeBatch(1, 51), grpc::StatusCode::RESOURCE_EXHAUSTED);  // too many events
  AgentMessage fat = MakeBatch(1, 2);
  fat.mutable_batch()->mutable_events(0)->mutable_process()->set_command_line(std::string(20000, 'x'));
  expect_end(fat, grpc::StatusCode::RESOURCE_EXHAUSTED);  // over max_batch_bytes
  AgentMessage huge = MakeBatch(1, 2);
  huge.mutable_batch()->mutable_events(0)->mutable_process()->set_command_line(std::string(100000, 'x'));
  expect_end(huge, grpc::StatusCode::RESOURCE_EXHAUSTED);  // over the gRPC message limit
  AgentMessage zero = MakeBatch(1, 2);
  zero.mutable_batch()->mutable_events(1)->set_sequence(0);
  expect_end(zero, grpc::StatusCode::INVALID_ARGUMENT);
  AgentMessage big_seq = MakeBatch(1, 1);
  big_seq.mutable_batch()->mutable_events(0)->set_sequence(uint64_t{1} << 63);
  expect_end(big_seq, grpc::StatusCode::INVALID_ARGUMENT);
  AgentMessage inverted = MakeBatch(1, 1);
  auto* r = inverted.mutable_batch()->add_lost();
  r->set_first(9);
  r->set_last(3);
  expect_end(inverted, grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(StoredSequences(ts.store(), a.agent_id).empty());
  // Still serving.
  Stream s(AgentChannel(ts, a));
  mamori::v1::Welcome w;
  REQUIRE(s.Hello(&w));
  CHECK(s.SendBatch(MakeBatch(1, 50)) == 50);
}

TEST_CASE("stream: a flood of 200 quick connections leaves the server serving") {
  TestServer ts;
  const EnrolledAgent a = EnrollNew(ts);
  std::vector<std::thread> threads;
  std::atomic<int> welcomed{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        const int kind = (t * 50 + i) % 4;
        if (kind == 0) {
          // TLS without a client certificate: refused.
          Stream s(TlsChannel(ts.target(), ts.ca_pem()), std::chrono::seconds(10));
          s.Write(MakeHello());
          s.Finish();
        } else {
          Stream s(AgentChannel(ts, a), std::chrono::seconds(10));
          if (kind == 1) {
            s.Cancel();  // gone before Hello
            s.Finish();
            continue;
          }
          mamori::v1::Welcome w;
          if (s.Hello(&w)) ++welcomed;
          if (kind == 2) s.Cancel();  // gone after Hello
          s.Finish();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(welcomed > 0);
  Stream s(AgentChannel(ts, a));
  mamori::v1::Welcome w;
  REQUIRE(s.Hello(&w));
  CHECK(s.SendBatch(MakeBatch(1, 10)) == 10);
  CHECK(s.Finish().ok());
}

TEST_CASE("stream: at most max_streams streams are admitted") {
  TestServer ts([](ServerConfig& c) { c.max_streams = 3; });
  std::vector<EnrolledAgent> agents;
  std::vector<std::unique_ptr<Stream>> open;
  for (int i = 0; i < 3; ++i) {
    agents.push_back(EnrollNew(ts));
    open.push_back(std::make_unique<Stream>(AgentChannel(ts, agents.back())));
    mamori::v1::Welcome w;
    REQUIRE(open.back()->Hello(&w));
  }
  const EnrolledAgent extra = EnrollNew(ts);
  {
    Stream s(AgentChannel(ts, extra));
    s.Write(MakeHello());
    CHECK(s.Finish().error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  CHECK(open[0]->Finish().ok());
  open[0].reset();
  // The slot frees once gRPC is done with the stream.
  bool admitted = WaitFor([&] {
    Stream s(AgentChannel(ts, extra));
    mamori::v1::Welcome w;
    const bool ok = s.Hello(&w);
    s.Finish();
    return ok;
  });
  CHECK(admitted);
}

TEST_CASE("stream: a newer stream of the same agent replaces the older one") {
  TestServer ts;
  const EnrolledAgent a = EnrollNew(ts);
  Stream first(AgentChannel(ts, a));
  mamori::v1::Welcome w;
  REQUIRE(first.Hello(&w));
  Stream second(AgentChannel(ts, a));
  REQUIRE(second.Hello(&w));
  CHECK(first.Finish().error_code() == grpc::StatusCode::CANCELLED);
  CHECK(second.SendBatch(MakeBatch(1, 2)) == 2);
}

TEST_CASE("stream: commands are delivered, acknowledged and completed by their result event") {
  TestServer ts([](ServerConfig& c) { c.command_poll_interval = std::chrono::milliseconds(100); });
  const EnrolledAgent a = EnrollNew(ts);
  const EnrolledAgent other = EnrollNew(ts);
  auto create = [&](const std::string& agent) {
    mamori::v1::Command cmd;
    cmd.mutable_get_status();
    NewCommand n;
    n.agent_id = agent;
    n.kind = "get_status";
    n.args = cmd.SerializeAsString();
    n.requested_by = "admin";
    n.created_at_ns = 1;
    Result<std::string> id = ts.store().CreateCommand(n);
    REQUIRE(id.ok());
    return *id;
  };
  const std::string before = create(a.agent_id);  // pending before the agent connects
  const std::string foreign = create(other.agent_id);
  Stream s(AgentChannel(ts, a));
  mamori::v1::Welcome w;
  REQUIRE(s.Hello(&w));
  ServerMessage m;
  REQUIRE(s.Read(&m));
  REQUIRE(m.has_command());
  CHECK(m.command().command_id() == before);
  CHECK(m.command().has_get_status());
  CHECK(m.command().requested_by() == "admin");

  const std::string after = create(a.agent_id);  // created while connected: the poll delivers it
  REQUIRE(s.Read(&m));
  REQUIRE(m.has_command());
  CHECK(m.command().command_id() == after);

  AgentMessage ack;
  ack.mutable_command_ack()->set_command_id(before);
  REQUIRE(s.Write(ack));
  ack.mutable_command_ack()->set_command_id(foreign);  // not this agent's: ignored
  REQUIRE(s.Write(ack));
  CHECK(WaitFor([&] { return ts.store().GetCommand(before)->state == CommandState::kDelivered; }));

  AgentMessage result = MakeBatch(1, 1);
  auto* r = result.mutable_batch()->mutable_events(0)->mutable_command_result();
  r->set_command_id(before);
  r->set_outcome(mamori::v1::CommandResult::OUTCOME_SUCCEEDED);
  r->mutable_status()->set_hostname("test-host");
  mamori::v1::Event foreign_result = MakeEvent(2);
  foreign_result.mutable_command_result()->set_command_id(foreign);
  foreign_result.mutable_command_result()->set_outcome(mamori::v1::CommandResult::OUTCOME_FAILED);
  *result.mutable_batch()->add_events() = foreign_result;
  CHECK(s.SendBatch(result) == 2);
  Result<CommandRecord> done = ts.store().GetCommand(before);
  REQUIRE(done.ok());
  CHECK(done->state == CommandState::kSucceeded);
  mamori::v1::CommandResult stored;
  REQUIRE(stored.ParseFromString(done->result));
  CHECK(stored.status().hostname() == "test-host");
  CHECK(ts.store().GetCommand(foreign)->state == CommandState::kPending);
  CHECK(s.Finish().ok());
}

TEST_CASE("stream: heartbeats update the inventory") {
  TestServer ts;
  const EnrolledAgent a = EnrollNew(ts);
  Stream s(AgentChannel(ts, a));
  mamori::v1::Welcome w;
  REQUIRE(s.Hello(&w));
  const int64_t seen = ts.store().GetAgent(a.agent_id)->last_seen_ns;
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  AgentMessage hb;
  hb.mutable_heartbeat()->mutable_agent()->set_hostname("renamed-host");
  hb.mutable_heartbeat()->mutable_agent()->set_agent_version("9.9.9");
  hb.mutable_heartbeat()->mutable_agent()->set_sensor_mode("ebpf");
  hb.mutable_heartbeat()->set_spool_events(7);
  REQUIRE(s.Write(hb));
  // The heartbeat updates the inventory, then last_seen: wait for both.
  CHECK(WaitFor([&] {
    Result<AgentRecord> r = ts.store().GetAgent(a.agent_id);
    return r.ok() && r->agent_version == "9.9.9" && r->last_seen_ns > seen;
  }));
  Result<AgentRecord> rec = ts.store().GetAgent(a.agent_id);
  CHECK(rec->hostname == "renamed-host");
  CHECK(rec->sensor_mode == "ebpf");
  CHECK(rec->last_seen_ns > seen);
  AgentQuery q;
  q.now_ns = rec->last_seen_ns;
  q.online_window_ns = 90'000'000'000;
  Result<std::vector<AgentView>> views = ts.store().ListAgents(q);
  REQUIRE(views.ok());
  bool online = false;
  for (const auto& v : *views) online = online || (v.agent.agent_id == a.agent_id && v.online);
  CHECK(online);
  CHECK(s.Finish().ok());
}

TEST_CASE("health: the server and AgentService report SERVING, without a client certificate") {
  TestServer ts;
  auto channel = TlsChannel(ts.target(), ts.ca_pem());  // no client certificate needed
  CHECK(HealthCheck(channel) == 1);
  CHECK(HealthCheck(channel, "mamori.v1.AgentService") == 1);
}

TEST_CASE("metrics: the Prometheus file shows ingest, agents and append latency") {
  TestServer ts([](ServerConfig& c) {
    c.metrics_enabled = true;
    c.metrics_interval = std::chrono::milliseconds(100);
  });
  const EnrolledAgent a = EnrollNew(ts);
  Stream s(AgentChannel(ts, a));
  mamori::v1::Welcome w;
  REQUIRE(s.Hello(&w));
  REQUIRE(s.SendBatch(MakeBatch(1, 100)) == 100);
  const std::string path = ts.config().data_dir + "/metrics.prom";
  std::string text;
  CHECK(WaitFor([&] {
    Result<std::string> t = ReadFileToString(path);
    if (!t.ok()) return false;
    text = *t;
    return text.find("mamori_server_events_received_total 100\n") != std::string::npos &&
           text.find("mamori_server_batches_total 1\n") != std::string::npos &&
           text.find("mamori_server_connected_agents 1\n") != std::string::npos;
  }));
  INFO(text);
  CHECK_THAT(text, Catch::Contains("# TYPE mamori_server_store_append_seconds summary"));
  CHECK_THAT(text, Catch::Contains("mamori_server_store_append_seconds{quantile=\"0.99\"}"));
  CHECK_THAT(text, Catch::Contains("mamori_server_batches_total 1\n"));
  CHECK_THAT(text, Catch::Contains("mamori_server_enrollments_total{result=\"ok\"} 1\n"));
  CHECK(s.Finish().ok());
}

}  // namespace
}  // namespace mamori::server

namespace mamori::server {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): test helpers

TEST_CASE("insecure: plaintext on loopback, the agent named by metadata (tests only)") {
  TestServer ts([](ServerConfig& c) { c.insecure = true; });
  auto channel = grpc::CreateChannel(ts.target(), grpc::InsecureChannelCredentials());
  auto stub = mamori::v1::AgentService::NewStub(channel);
  mamori::v1::EnrollRequest req;
  req.set_token(ts.Token());
  req.set_csr_pem(MakeKeyAndCsr().csr_pem);
  req.set_protocol_version(mamori::v1::kProtocolVersion);
  mamori::v1::EnrollResponse resp;
  grpc::ClientContext ctx;
  REQUIRE(stub->Enroll(&ctx, req, &resp).ok());
  {
    Stream anonymous(channel);
    anonymous.Write(MakeHello());
    CHECK(anonymous.Finish().error_code() == grpc::StatusCode::UNAUTHENTICATED);
  }
  Stream s(channel, std::chrono::seconds(20), resp.agent_id());
  mamori::v1::Welcome w;
  REQUIRE(s.Hello(&w));
  CHECK(s.SendBatch(MakeBatch(1, 3)) == 3);
  CHECK(s.Finish().ok());
}

}  // namespace
}  // namespace mamori::server

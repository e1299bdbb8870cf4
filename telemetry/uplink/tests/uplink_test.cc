// The uplink against an in-process fake AgentService (plaintext, loopback):
// delivery, batching, the in-flight window, reconnects, refusals and
// backoff, server rotation, commands, heartbeats, compression, and the
// ack/spool mismatches. The real server is exercised in e2e_test.cc.
#include "mamori/telemetry/uplink.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "fake_server.h"
#include "mamori/telemetry/convert.h"
#include "test_util.h"
#include "uplink_test_util.h"

namespace mamori::telemetry {
namespace {

using std::chrono::milliseconds;
using testing::FakeAgentService;
using testing::FakeServer;
using testing::WaitFor;

constexpr char kAgentId[] = "0b6f3c4e-1d2a-4b5c-8d9e-0f1a2b3c4d5e";

UplinkOptions TestOptions(const std::vector<std::string>& servers) {
  UplinkOptions o;
  o.servers = servers;
  o.insecure = true;
  o.credentials.agent_id = kAgentId;
  o.initial_backoff = milliseconds(50);
  o.max_backoff = milliseconds(400);
  o.refused_backoff = milliseconds(400);
  o.welcome_timeout = milliseconds(5000);
  o.drop_report_interval = milliseconds(100);
  return o;
}

std::unique_ptr<Uplink> StartUplink(UplinkOptions o, Spool* spool) {
  auto u = Uplink::Create(std::move(o), spool);
  REQUIRE(u.ok());
  REQUIRE((*u)->Start().ok());
  return std::move(*u);
}

// Every sequence 1..n stored at least once, each carrying its marker.
void CheckDelivered(const FakeAgentService::Snapshot& s, uint64_t n) {
  for (uint64_t q = 1; q <= n; ++q) {
    auto it = s.events.find(q);
    REQUIRE(it != s.events.end());
    REQUIRE(static_cast<uint64_t>(it->second.process().pid()) == q);
  }
}

TEST_CASE("uplink: delivers every spooled event once, in bounded batches, and acks the spool") {
  ::mamori::testing::TempDir dir;
  auto spool = testing::OpenTestSpool(dir.path() + "/spool");
  FakeServer server;
  FakeAgentService::Behavior b;
  b.max_batch_events = 300;
  server.service().SetBehavior(b);
  testing::AppendMarked(spool.get(), 5000);
  REQUIRE(spool->Sync().ok());

  auto up = StartUplink(TestOptions({server.address()}), spool.get());
  std::thread producer([&] { testing::AppendMarked(spool.get(), 5000); });
  producer.join();
  REQUIRE(WaitFor([&] { return server.service().acked() == 10000; }, milliseconds(20000)));
  REQUIRE(WaitFor([&] { return spool->GetStats().acked_sequence == 10000; }, milliseconds(5000)));
  // The uplink acks the spool, then counts the ack in its stats.
  REQUIRE(WaitFor([&] { return up->stats().acked_sequence == 10000; }, milliseconds(5000)));
  const UplinkStats st = up->stats();
  up->Stop();

  const auto s = server.service().snapshot();
  CheckDelivered(s, 10000);
  for (const auto& [seq, times] : s.stored) REQUIRE(times == 1);  // one healthy stream: nothing resent
  for (size_t n : s.batch_sizes) REQUIRE(n <= 300);
  CHECK(s.hellos == 1);
  CHECK(s.last_hello.spool_first_sequence() == 1);
  CHECK(s.last_hello.spool_last_sequence() >= 5000);
  CHECK(s.agent_id_metadata == kAgentId);
  CHECK(st.connected);
  CHECK(st.events_sent == 10000);
  CHECK(st.acked_sequence == 10000);
  CHECK(st.reconnects == 0);
  CHECK(st.last_error.ok());
}

TEST_CASE("uplink: a quiet agent's event goes out at once, a busy agent's batches fill up") {
  ::mamori::testing::TempDir dir;
  auto spool = testing::OpenTestSpool(dir.path() + "/spool");
  FakeServer server;
  auto up = StartUplink(TestOptions({server.address()}), spool.get());
  REQUIRE(WaitFor([&] { return up->stats().connected; }, milliseconds(5000)));
  for (uint64_t i = 1; i <= 3; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    testing::AppendMarked(spool.get(), 1);
    REQUIRE(WaitFor([&] { return server.service().acked() == i; }, milliseconds(5000)));
    // Group commit (10 ms here) + one round trip: the event does not wait for a
    // batch to fill (the bound is loose: the machine may be busy).
    CHECK(std::chrono::steady_clock::now() - t0 < milliseconds(3000));
  }
  // A backlog (appended while no uplink runs, so the producer's pace does not
  // matter) goes out in full batches.
  up->Stop();
  testing::AppendMarked(spool.get(), 20000);
  REQUIRE(spool->Sync().ok());
  up = StartUplink(TestOptions({server.address()}), spool.get());
  REQUIRE(WaitFor([&] { return server.service().acked() == 20003; }, milliseconds(30000)));
  const auto s = server.service().snapshot();
  size_t big = 0;
  for (size_t n : s.batch_sizes) big = std::max(big, n);
  CHECK(big == 1000);  // Welcome.max_batch_events (the fake server's default)
  CHECK(s.batch_sizes.size() < 200);
}

TEST_CASE("uplink: at most max_in_flight batches are unanswered") {
  ::mamori::testing::TempDir dir;
  auto spool = testing::OpenTestSpool(dir.path() + "/spool");
  FakeServer server;
  FakeAgentService::Behavior b;
  b.max_batch_events = 10;
  b.ack_delay = milliseconds(20);
  server.service().SetBehavior(b);
  testing::AppendMarked(spool.get(), 400);
  UplinkOptions o = TestOptions({server.address()});
  o.max_in_flight = 2;
  auto up = StartUplink(o, spool.get());
  uint64_t worst = 0;
  while (server.service().acked() < 400) {
    const UplinkStats st = up->stats();
    worst = std::max(worst, st.batches_sent - st.batches_acked);
    std::this_thread::sleep_for(milliseconds(2));
  }
  CHECK(worst <= 2);
  CHECK(worst >= 1);
}

TEST_CASE("uplink: a broken stream resumes from the server's ack and nothing is lost") {
  ::mamori::testing::TempDir dir;
  auto spool = testing::OpenTestSpool(dir.path() + "/spool");
  FakeServer server;
  FakeAgentService::Behavior b;
  b.max_batch_events = 100;
  b.abort_after_batches = 3;
  server.service().SetBehavior(b);
  testing::AppendMarked(spool.get(), 2000);
  auto up = StartUplink(TestOptions({server.address()}), spool.get());
  REQUIRE(WaitFor([&] { return server.service().acked() == 2000; }, milliseconds(20000)));
  const auto s = server.service().snapshot();
  CheckDelivered(s, 2000);
  CHECK(s.hellos == 2);
  CHECK(s.last_hello.spool_first_sequence() == 201);  // the third batch was stored but never acknowledged
  const UplinkStats st = up->stats();
  CHECK(st.reconnects == 1);
  CHECK(st.last_error.code() == StatusCode::kUnavailable);
}

TEST_CASE("uplink: refusals are reported and backed off, not retried in a loop") {
  ::mamori::testing::TempDir dir;
  auto spool = testing::OpenTestSpool(dir.path() + "/spool");
  FakeServer server;
  FakeAgentService::Behavior b;
  b.refuse = grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "agent revoked");
  server.service().SetBehavior(b);
  testing::AppendMarked(spool.get(), 10);
  UplinkOptions o = TestOptions({server.address()});
  o.refused_backoff = milliseconds(5000);
  auto up = StartUplink(o, spool.get());
  REQUIRE(WaitFor([&] { return up->stats().failures >= 1 && up->stats().next_attempt_in > milliseconds(0); },
                  milliseconds(10000)));
  const auto refused_at = std::chrono::steady_clock::now();
  UplinkStats st = up->stats();
  CHECK(st.last_error.code() == StatusCode::kPermissionDenied);
  CHECK(st.last_error.message() == "agent revoked");
  CHECK(st.next_attempt_in >= milliseconds(5000));  // the refusal backoff, not the short reconnect one
  std::this_thread::sleep_for(milliseconds(1000));
  st = up->stats();
  CHECK(server.service().connects() == 1);
  CHECK(st.attempts == 1);
  CHECK_FALSE(st.connected);
  const auto t0 = std::chrono::steady_clock::now();
  up->Stop();  // does not wait out the rest of the backoff (at least 4 s when nothing is late)
  const auto stop_took = std::chrono::steady_clock::now() - t0;
  CHECK(stop_took < milliseconds(5000) - (t0 - refused_at) - milliseconds(500));
  CHECK(spool->GetStats().acked_sequence == 0);
}

TEST_CASE("uplink: a server that is down is skipped for the next one") {
  ::mamori::testing::TempDir dir;
  auto spool = testing::OpenTestSpool(dir.path() + "/spool");
  FakeServer server;
  testing::AppendMarked(spool.get(), 100);
  testing::ReservedPort dead;
  auto up = StartUplink(TestOptions({dead.address(), server.address()}), spool.get());
  REQUIRE(WaitFor([&] { return server.service().acked() == 100; }, milliseconds(10000)));
  const UplinkStats st = up->stats();
  CHECK(st.server == server.address());
  CHECK(st.attempts >= 2);
  CHECK(st.last_error.code() == StatusCode::kUnavailable);
}

TEST_CASE("uplink: works offline and drains when the server comes back") {
  ::mamori::testing::TempDir dir;
  auto spool = testing::OpenTestSpool(dir.path() + "/spool");
  testing::ReservedPort reserved;
  const std::string address = reserved.address();
  auto up = StartUplink(TestOptions({address}), spool.get());
  testing::AppendMarked(spool.get(), 500);
  REQUIRE(WaitFor([&] { return up->stats().attempts >= 2; }, milliseconds(5000)));
  CHECK_FALSE(up->stats().connected);
  // Now a server appears on that address.
  reserved.Release();
  grpc::ServerBuilder builder;
  FakeAgentService service;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  auto srv = builder.BuildAndStart();
  REQUIRE(srv);
  testing::AppendMarked(spool.get(), 500);
  REQUIRE(WaitFor([&] { return service.acked() == 1000; }, milliseconds(10000)));
  CheckDelivered(service.snapshot(), 1000);
  up->Stop();
  srv->Shutdown(std::chrono::system_clock::now() + milliseconds(100));
}

TEST_CASE("uplink: commands reach the callback and accepted ones are acknowledged") {
  ::mamori::testing::TempDir dir;
  auto spool = testing::OpenTestSpool(dir.path() + "/spool");
  FakeServer server;
  FakeAgentService::Behavior b;
  v1::Command c1, c2;
  c1.set_command_id("c1");
  c1.mutable_get_status();
  c2.set_command_id("c2");
  c2.mutable_scan()->add_paths("/tmp");
  b.commands = {c1, c2};
  server.service().SetBehavior(b);
  UplinkOptions o = TestOptions({server.address()});
  std::mutex mu;
  std::vector<std::string> seen;
  o.on_command = [&](const v1::Command& c) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(c.command_id());
    return c.command_id() == "c1";
  };
  auto up = StartUplink(o, spool.get());
  REQUIRE(WaitFor([&] { return server.service().snapshot().command_acks.size() == 1; }, milliseconds(5000)));
  // Both counters move after the callback returns and the ack is written, so they are waited for.
  CHECK(WaitFor([&] { return up->stats().commands_received == 2; }, milliseconds(5000)));
  CHECK(WaitFor([&] { return up->stats().commands_acked == 1; }, milliseconds(5000)));
  std::this_thread::sleep_for(milliseconds(200));  // room for a wrong second ack to arrive
  CHECK(server.service().snapshot().command_acks == std::vector<std::string>{"c1"});
  std::lock_guard<std::mutex> lock(mu);
  CHECK(seen == std::vector<std::string>{"c1", "c2"});
}

TEST_CASE("uplink: heartbeats at the server's interval, with agent info and the spool backlog") {
  ::mamori::testing::TempDir dir;
  auto spool = testing::OpenTestSpool(dir.path() + "/spool");
  FakeServer server;
  FakeAgentService::Behavior b;
  b.heartbeat_interval_s = 1;
  server.service().SetBehavior(b);
  UplinkOptions o = TestOptions({server.address()});
  o.agent_info = [] {
    v1::AgentInfo i;
    i.set_hostname("host-a");
    return i;
  };
  auto up = StartUplink(o, spool.get());
  REQUIRE(WaitFor([&] { return server.service().snapshot().heartbeats >= 2; }, milliseconds(4000)));
  CHECK(server.service().snapshot().last_hello.agent().hostname() == "host-a");
  // The uplink counts a heartbeat after its write returns, which can be after the server has read it.
  CHECK(WaitFor([&] { return up->stats().heartbeats_sent >= 2; }, milliseconds(2000)));
}

TEST_CASE("uplink: gzip and deflate compression") {
  for (Compression c : {Compression::kGzip, Compression::kDeflate}) {
    ::mamori::testing::TempDir dir;
    auto spool = testing::OpenTestSpool(dir.path() + "/spool");
    FakeServer server;
    testing::AppendMarked(spool.get(), 3000);
    UplinkOptions o = TestOptions({server.address()});
    o.compression = c;
    auto up = StartUplink(o, spool.get());
    REQUIRE(WaitFor([&] { return server.service().acked() == 3000; }, milliseconds(20000)));
    CheckDelivered(server.service().snapshot(), 3000);
  }
  CHECK(*CompressionFromName("gzip") == Compression::kGzip);
  CHECK(*CompressionFromName("auto") == Compression::kAuto);
  CHECK_FALSE(CompressionFromName("zstd").ok());
}

TEST_CASE("uplink: a server ahead of the spool is refused (sequences would be reused)") {
  ::mamori::testing::TempDir dir;
  auto spool = testing::OpenTestSpool(dir.path() + "/spool");
  FakeServer server;
  FakeAgentService::Behavior b;
  b.override_welcome_ack = true;
  b.welcome_ack = 100;
  server.service().SetBehavior(b);
  testing::AppendMarked(spool.get(), 10);
  auto up = StartUplink(TestOptions({server.address()}), spool.get());
  REQUIRE(
      WaitFor([&] { return up->stats().last_error.code() == StatusCode::kFailedPrecondition; }, milliseconds(5000)));
  CHECK(up->stats().last_error.message().find("enroll again") != std::string::npos);
  CHECK(spool->GetStats().acked_sequence == 0);
  CHECK(server.service().snapshot().stored.empty());
}

TEST_CASE("uplink: events a server lost after acknowledging them are declared lost, not waited for") {
  ::mamori::testing::TempDir dir;
  auto spool = testing::OpenTestSpool(dir.path() + "/spool");
  {
    FakeServer first;
    testing::AppendMarked(spool.get(), 100);
    auto up = StartUplink(TestOptions({first.address()}), spool.get());
    REQUIRE(WaitFor([&] { return spool->GetStats().acked_sequence == 100; }, milliseconds(10000)));
    up->Stop();
  }
  FakeServer restored;  // knows nothing of this agent
  testing::AppendMarked(spool.get(), 10);
  auto up = StartUplink(TestOptions({restored.address()}), spool.get());
  REQUIRE(WaitFor([&] { return restored.service().acked() == 110; }, milliseconds(10000)));
  const auto s = restored.service().snapshot();
  REQUIRE(s.lost.size() == 1);
  CHECK(s.lost[0].first() == 1);
  CHECK(s.lost[0].last() == 100);
  CHECK(s.stored.size() == 10);
  CHECK(WaitFor([&] { return up->stats().lost_declared == 100; }, milliseconds(2000)));
}

TEST_CASE("uplink: a full spool's drops reach the server as a drop report and critical events are all kept") {
  ::mamori::testing::TempDir dir;
  auto spool = testing::OpenTestSpool(dir.path() + "/spool", 256 * 1024);
  uint64_t dropped = 0, critical = 0;
  for (int i = 0; i < 3000; ++i) {
    const bool is_critical = i % 100 == 0;
    v1::Event e = testing::MarkedEvent(0);
    if (is_critical) e.mutable_behavior_alert()->set_rule_id("r" + std::to_string(i));
    auto seq = spool->Append(is_critical ? Priority::kCritical : Priority::kLow, EncodeSpoolPayload(e));
    REQUIRE(seq.ok());
    if (*seq == Spool::kDropped) ++dropped;
    if (is_critical) ++critical;
  }
  REQUIRE(dropped > 0);
  FakeServer server;
  auto up = StartUplink(TestOptions({server.address()}), spool.get());
  REQUIRE(WaitFor(
      [&] {
        const auto s = server.service().snapshot();
        uint64_t reported = 0;
        for (const auto& [seq, e] : s.events) {
          if (e.has_sensor_drops() && e.sensor_drops().sensor() == "spool") reported += e.sensor_drops().dropped();
        }
        return reported == dropped;
      },
      milliseconds(10000)));
  const auto s = server.service().snapshot();
  uint64_t alerts = 0;
  for (const auto& [seq, e] : s.events) alerts += e.has_behavior_alert() ? 1 : 0;
  CHECK(alerts == critical);
  CHECK(WaitFor([&] { return up->stats().drop_reports >= 1; }, milliseconds(2000)));
  const auto& drops = std::find_if(s.events.begin(), s.events.end(), [](const auto& kv) {
                        return kv.second.has_sensor_drops();
                      })->second;
  CHECK(drops.sensor_drops().drop_source() == "full");
  CHECK(PriorityOf(drops) == Priority::kCritical);
}

TEST_CASE("uplink: options are checked") {
  ::mamori::testing::TempDir dir;
  auto spool = testing::OpenTestSpool(dir.path() + "/spool");
  UplinkOptions o = TestOptions({"10.1.2.3:443"});
  CHECK(Uplink::Create(o, spool.get()).status().code() == StatusCode::kFailedPrecondition);  // insecure, not loopback
  o.insecure = false;
  CHECK(Uplink::Create(o, spool.get()).status().code() == StatusCode::kFailedPrecondition);  // not enrolled
  o = TestOptions({"nonsense"});
  CHECK(Uplink::Create(o, spool.get()).status().code() == StatusCode::kInvalidArgument);
  o = TestOptions({});
  CHECK(Uplink::Create(o, spool.get()).status().code() == StatusCode::kInvalidArgument);
  CHECK(Uplink::Create(TestOptions({"[::1]:8443"}), spool.get()).ok());
  CHECK(Uplink::Create(TestOptions({"localhost:8443"}), spool.get()).ok());
}

}  // namespace
}  // namespace mamori::telemetry

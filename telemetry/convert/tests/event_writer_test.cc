#include "mamori/telemetry/event_writer.h"

#include <catch2/catch.hpp>
#include <memory>

#include "mamori/agent/event_log.h"
#include "mamori/behavior/event.h"
#include "mamori/behavior/monitor.h"
#include "test_util.h"

namespace mamori::telemetry {
namespace {

std::unique_ptr<Spool> OpenSpool(const std::string& dir, uint64_t max_bytes = uint64_t{1} << 30) {
  SpoolOptions o;
  o.dir = dir;
  o.max_bytes = max_bytes;
  o.segment_bytes = 4096;
  o.sync_interval = std::chrono::milliseconds(0);
  auto s = Spool::Open(o);
  REQUIRE(s.ok());
  return std::move(*s);
}

std::vector<std::pair<v1::Event, Priority>> ReadAll(Spool* spool) {
  REQUIRE(spool->Sync().ok());
  std::vector<std::pair<v1::Event, Priority>> out;
  for (;;) {
    auto b = spool->ReadBatch(1000, 1 << 20);
    REQUIRE(b.ok());
    if (b->empty()) break;
    for (size_t i = 0; i < b->size(); ++i) {
      v1::Event e;
      REQUIRE(e.ParseFromArray((*b)[i].payload.data(), static_cast<int>((*b)[i].payload.size())));
      e.set_sequence((*b)[i].sequence);
      out.emplace_back(std::move(e), (*b)[i].priority);
    }
  }
  return out;
}

TEST_CASE("an alert is spooled after its evidence, which it lists by sequence") {
  testing::TempDir dir;
  auto spool = OpenSpool(dir.path() + "/spool");
  EventWriter w(spool.get(), "ebpf");

  behavior::Event exec;
  exec.type = behavior::EventType::kExec;
  exec.process.pid = 10;
  exec.process.image = "/tmp/a";
  REQUIRE(*w.WriteBehaviorEvent(exec) == 1);

  auto rule = std::make_shared<behavior::rules::RuleInfo>();
  rule->id = "r";
  rule->level = "high";
  behavior::AlertRecord a;
  a.alert.rule = rule;
  a.alert.events = {exec, exec};
  auto alert_seq = w.WriteAlert(a);
  REQUIRE(alert_seq.ok());
  CHECK(*alert_seq == 4);
  REQUIRE(*w.WriteAgentEvent(agent::Event("agent_started")) == 5);

  auto all = ReadAll(spool.get());
  REQUIRE(all.size() == 5);
  CHECK(all[0].second == Priority::kLow);
  CHECK(all[1].second == Priority::kCritical);  // evidence is kept like the alert
  CHECK(all[2].second == Priority::kCritical);
  CHECK(all[3].second == Priority::kCritical);
  const auto& b = all[3].first.behavior_alert();
  REQUIRE(b.related_sequences_size() == 2);
  CHECK(b.related_sequences(0) == 2);
  CHECK(b.related_sequences(1) == 3);
  CHECK(all[4].first.agent_status().trigger() == v1::AgentStatus::TRIGGER_STARTED);
  CHECK(all[4].second == Priority::kNormal);
  CHECK(w.stats().written == 5);
}

TEST_CASE("a full spool drops activity (counted) but keeps critical records") {
  testing::TempDir dir;
  auto spool = OpenSpool(dir.path() + "/spool", 64 * 1024);
  EventWriter w(spool.get());
  behavior::Event exec;
  exec.type = behavior::EventType::kExec;
  exec.process.pid = 10;
  exec.process.image = std::string(200, 'x');
  for (int i = 0; i < 2000; ++i) REQUIRE(w.WriteBehaviorEvent(exec).ok());
  CHECK(w.stats().dropped > 0);
  CHECK(w.stats().written + w.stats().dropped == 2000);
  // Alerts still go in above the low-priority limit.
  auto seq = w.WriteAgentEvent(agent::Event("scan_finding").Str("path", "/x").Str("signature", "s"));
  REQUIRE(seq.ok());
  CHECK(*seq != Spool::kDropped);
}

}  // namespace
}  // namespace mamori::telemetry

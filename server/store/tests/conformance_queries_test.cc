// Store conformance: event queries (see conformance.h).
#include <catch2/catch.hpp>

#include <set>
#include <algorithm>
#include <tuple>

#include "conformance.h"

namespace mamori::server::conformance {

// ---- queries ------------------------------------------------------------------

TEMPLATE_TEST_CASE("queries: by agent, type and time range, newest first, with limits and paging",
                   "[conformance]", MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto store = OpenOrFail(f);
  REQUIRE(store->UpsertAgent(Agent("a1")).ok());
  REQUIRE(store->UpsertAgent(Agent("a2")).ok());
  // a1: execs at t0+1..t0+20; a2: execs at the same times (ties broken by agent id).
  CHECK(Append(*store, "a1", Range(1, 20)) == 20);
  CHECK(Append(*store, "a2", Range(1, 20)) == 20);
  CHECK(Append(*store, "a2", {Finding(21, kT0 + 5, "Eicar-Test-Signature", std::string(64, 'e'))}) == 21);

  EventQuery q;
  auto all = All(*store, q);
  REQUIRE(all.size() == 41);
  CHECK(all[0].row.timestamp_ns == kT0 + 20);
  CHECK(all[0].agent_id == "a2");  // same time: higher agent id first when newest first
  CHECK(all[1].agent_id == "a1");
  CHECK(std::is_sorted(all.begin(), all.end(), [](const StoredEvent& x, const StoredEvent& y) {
    return std::tie(x.row.timestamp_ns, x.agent_id, x.row.sequence) >
           std::tie(y.row.timestamp_ns, y.agent_id, y.row.sequence);
  }));

  q.agent_id = "a1";
  q.from_ns = kT0 + 5;
  q.to_ns = kT0 + 10;  // [5, 10)
  CHECK(Sequences(All(*store, q)) == std::vector<uint64_t>{9, 8, 7, 6, 5});
  q.oldest_first = true;
  CHECK(Sequences(All(*store, q)) == std::vector<uint64_t>{5, 6, 7, 8, 9});

  EventQuery types;
  types.types = {"scan_finding"};
  auto findings = All(*store, types);
  REQUIRE(findings.size() == 1);
  CHECK(findings[0].agent_id == "a2");
  CHECK(findings[0].row.rule_id == "Eicar-Test-Signature");
  types.types = {"scan_finding", "exec"};
  types.agent_id = "a2";
  CHECK(All(*store, types).size() == 21);

  // Paging: pages of 7 walk every event once, in order.
  for (bool oldest_first : {false, true}) {
    EventQuery page_q;
    page_q.limit = 7;
    page_q.oldest_first = oldest_first;
    std::vector<std::pair<std::string, uint64_t>> seen;
    int pages = 0;
    for (;;) {
      Result<EventPage> p = store->QueryEvents(page_q);
      REQUIRE(p.ok());
      ++pages;
      for (const auto& e : p->events) seen.emplace_back(e.agent_id, e.row.sequence);
      if (!p->next) break;
      REQUIRE(p->events.size() == 7);
      page_q.after = p->next;
    }
    CHECK(pages == 6);  // 41 = 5 * 7 + 6
    CHECK(seen.size() == 41);
    CHECK(std::set<std::pair<std::string, uint64_t>>(seen.begin(), seen.end()).size() == 41);
  }

  EventQuery limited;
  limited.limit = 3;
  Result<EventPage> p = store->QueryEvents(limited);
  REQUIRE(p.ok());
  CHECK(p->events.size() == 3);
  CHECK(p->next.has_value());
  limited.limit = 0;  // default
  p = store->QueryEvents(limited);
  REQUIRE(p.ok());
  CHECK(p->events.size() == 41);
  CHECK_FALSE(p->next.has_value());
  limited.limit = kMaxEventLimit + 1;
  CHECK(store->QueryEvents(limited).status().code() == StatusCode::kInvalidArgument);
}

TEMPLATE_TEST_CASE("queries: by process image and by SHA-256 of the image or the file", "[conformance]",
                   MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto store = OpenOrFail(f);
  REQUIRE(store->UpsertAgent(Agent("a1")).ok());
  REQUIRE(store->UpsertAgent(Agent("a2")).ok());
  const std::string curl_sha(64, 'c');
  const std::string bad_sha(64, 'b');
  CHECK(Append(*store, "a1", {Exec(1, kT0 + 1, "/usr/bin/curl", curl_sha), Exec(2, kT0 + 2, "/usr/bin/ls"),
                              Exec(3, kT0 + 3, "/usr/bin/curl", curl_sha)}) == 3);
  CHECK(Append(*store, "a2", {Exec(1, kT0 + 4, "/tmp/dropper", bad_sha), Finding(2, kT0 + 5, "X", bad_sha)}) == 2);

  EventQuery q;
  q.image = "/usr/bin/curl";
  auto curl = All(*store, q);
  CHECK(Sequences(curl) == std::vector<uint64_t>{3, 1});
  CHECK(curl[0].row.process_sha256 == curl_sha);
  CHECK(curl[0].row.pid == 1003);

  EventQuery by_hash;
  by_hash.sha256 = std::string(64, 'B');  // any case
  auto hits = All(*store, by_hash);
  REQUIRE(hits.size() == 2);  // the process image and the scanned file
  CHECK(hits[0].row.type == "scan_finding");
  CHECK(hits[0].row.file_sha256 == bad_sha);
  CHECK(hits[1].row.type == "exec");
  by_hash.agent_id = "a1";
  CHECK(All(*store, by_hash).empty());
}

TEMPLATE_TEST_CASE("queries: findings and alerts, by rule and minimum severity", "[conformance]", MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto store = OpenOrFail(f);
  REQUIRE(store->UpsertAgent(Agent("a1")).ok());
  v1::Event onaccess;
  onaccess.set_sequence(4);
  onaccess.set_timestamp_ns(kT0 + 4);
  onaccess.set_severity(v1::SEVERITY_HIGH);
  onaccess.mutable_process()->set_pid(7);
  onaccess.mutable_process()->set_image("/usr/bin/cat");
  onaccess.mutable_on_access()->set_reason(v1::OnAccessDecision::REASON_DETECTED);
  onaccess.mutable_on_access()->set_decision(v1::OnAccessDecision::DECISION_DENY);
  onaccess.mutable_on_access()->set_path("/home/u/eicar.com");
  onaccess.mutable_on_access()->set_signature("Eicar");
  CHECK(Append(*store, "a1",
               {Exec(1, kT0 + 1), Finding(2, kT0 + 2, "Eicar", std::string(64, 'e'), v1::SEVERITY_MEDIUM),
                Alert(3, kT0 + 3, "proc_creation_lnx_curl_pipe_sh", v1::SEVERITY_HIGH), *EventRowFromProto(onaccess),
                Alert(5, kT0 + 5, "file_event_lnx_cron_write", v1::SEVERITY_LOW)}) == 5);

  EventQuery q;
  q.cls = EventQuery::Class::kFindings;
  auto findings = All(*store, q);
  CHECK(Sequences(findings) == std::vector<uint64_t>{4, 2});
  CHECK(findings[0].row.type == "onaccess_detection");
  CHECK(findings[0].row.file_path == "/home/u/eicar.com");
  q.min_severity = v1::SEVERITY_HIGH;
  CHECK(Sequences(All(*store, q)) == std::vector<uint64_t>{4});

  EventQuery alerts;
  alerts.cls = EventQuery::Class::kAlerts;
  CHECK(Sequences(All(*store, alerts)) == std::vector<uint64_t>{5, 3});
  alerts.rule_id = "proc_creation_lnx_curl_pipe_sh";
  auto one = All(*store, alerts);
  REQUIRE(one.size() == 1);
  CHECK(one[0].row.severity == v1::SEVERITY_HIGH);
  EventQuery by_rule;
  by_rule.rule_id = "Eicar";
  CHECK(Sequences(All(*store, by_rule)) == std::vector<uint64_t>{4, 2});
}

}  // namespace mamori::server::conformance

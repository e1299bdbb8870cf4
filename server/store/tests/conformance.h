// The Store conformance suite, shared helpers. Every case of the suite
// (conformance_*_test.cc, tag [conformance]) is a TEMPLATE_TEST_CASE over
// MAMORI_STORE_BACKENDS, the factories of store_factories.h: a backend is
// correct when it passes all of them; a behavior that differs between
// backends is a bug in one of them.
#pragma once

#include <catch2/catch.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "mamori/common/file_util.h"
#include "mamori/server/event_row.h"
#include "mamori/server/store.h"
#include "store_factories.h"

// The backends every conformance case runs against (names as seen from
// namespace mamori::server::conformance, where the cases live).
#define MAMORI_STORE_BACKENDS SqliteFactory, PostgresFactory

namespace mamori::server::conformance {

using testing::PostgresFactory;
using testing::SqliteFactory;

inline constexpr int64_t kSecond = 1'000'000'000;
inline constexpr int64_t kT0 = 1'700'000'000 * kSecond;  // a fixed "now"

// Opens a store or fails the case.
template <typename Factory>
std::unique_ptr<Store> OpenOrFail(Factory& f) {
  Result<std::unique_ptr<Store>> s = f.Open();
  INFO(s.status().ToString());
  REQUIRE(s.ok());
  REQUIRE((*s)->backend() == Factory::kName);
  return std::move(*s);
}

inline AgentRecord Agent(const std::string& id, const std::string& hostname = "host") {
  AgentRecord a;
  a.agent_id = id;
  a.hostname = hostname;
  a.os = "debian 12";
  a.kernel = "6.1.0-13-amd64";
  a.agent_version = "0.1.0";
  a.signature_version = "2024.01.01";
  a.sensor_mode = "ebpf";
  a.cert_fingerprint = std::string(64, 'f');
  a.enrolled_at_ns = kT0;
  return a;
}

// An exec event through the real proto -> row mapping.
inline EventRow Exec(uint64_t seq, int64_t ts, const std::string& image = "/usr/bin/true", const std::string& sha = "",
              const std::string& marker = "") {
  v1::Event e;
  e.set_sequence(seq);
  e.set_timestamp_ns(ts);
  e.mutable_process()->set_pid(static_cast<int32_t>(1000 + seq % 1000));
  e.mutable_process()->set_image(image);
  e.mutable_process()->add_argv(image);
  if (!marker.empty()) e.mutable_process()->add_argv(marker);
  e.mutable_process()->set_sha256(sha);
  e.mutable_process_activity()->set_kind(v1::ProcessActivity::KIND_EXEC);
  Result<EventRow> r = EventRowFromProto(e);
  REQUIRE(r.ok());
  return *r;
}

inline EventRow Finding(uint64_t seq, int64_t ts, const std::string& signature, const std::string& file_sha,
                 v1::Severity severity = v1::SEVERITY_HIGH) {
  v1::Event e;
  e.set_sequence(seq);
  e.set_timestamp_ns(ts);
  e.set_severity(severity);
  e.mutable_scan_finding()->set_path("/home/u/Downloads/x.zip");
  e.mutable_scan_finding()->set_object("/home/u/Downloads/x.zip!x.exe");
  e.mutable_scan_finding()->set_signature(signature);
  e.mutable_scan_finding()->set_sha256(file_sha);
  return *EventRowFromProto(e);
}

inline EventRow Alert(uint64_t seq, int64_t ts, const std::string& rule, v1::Severity severity) {
  v1::Event e;
  e.set_sequence(seq);
  e.set_timestamp_ns(ts);
  e.set_severity(severity);
  e.mutable_process()->set_pid(42);
  e.mutable_process()->set_image("/usr/bin/bash");
  e.mutable_behavior_alert()->set_rule_id(rule);
  return *EventRowFromProto(e);
}

inline std::vector<EventRow> Range(uint64_t first, uint64_t last, int64_t ts0 = kT0, const std::string& marker = "") {
  std::vector<EventRow> out;
  for (uint64_t s = first; s <= last; ++s) out.push_back(Exec(s, ts0 + static_cast<int64_t>(s), "/usr/bin/true", "", marker));
  return out;
}

inline uint64_t Append(Store& s, const std::string& agent, const std::vector<EventRow>& rows,
                const std::vector<LostRange>& lost = {}) {
  Result<uint64_t> ack = s.AppendBatch(agent, rows, lost, kT0);
  INFO(ack.status().ToString());
  REQUIRE(ack.ok());
  return *ack;
}

inline std::vector<StoredEvent> All(Store& s, EventQuery q) {
  q.limit = kMaxEventLimit;
  Result<EventPage> p = s.QueryEvents(q);
  INFO(p.status().ToString());
  REQUIRE(p.ok());
  REQUIRE_FALSE(p->next.has_value());
  return p->events;
}

inline std::vector<uint64_t> Sequences(const std::vector<StoredEvent>& events) {
  std::vector<uint64_t> out;
  for (const auto& e : events) out.push_back(e.row.sequence);
  return out;
}

inline std::vector<uint64_t> AgentSequences(Store& s, const std::string& agent) {
  EventQuery q;
  q.agent_id = agent;
  q.oldest_first = true;
  return Sequences(All(s, q));
}

inline std::string Sha256Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(md), len));
}

// Ends the case early (after a warning, or a failure in CI) when the
// factory's backend is not available.
#define SKIP_UNLESS_AVAILABLE(f) \
  if (!(f).Available()) return

}  // namespace mamori::server::conformance


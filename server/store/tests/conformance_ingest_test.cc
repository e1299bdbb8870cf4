// Store conformance: idempotent ingest and the ack (see conformance.h).
#include <catch2/catch.hpp>

#include <limits>

#include "conformance.h"

namespace mamori::server::conformance {

// ---- ingest ----------------------------------------------------------------------

TEMPLATE_TEST_CASE("ingest: the same batch twice is stored once", "[conformance]", MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto store = OpenOrFail(f);
  REQUIRE(store->UpsertAgent(Agent("a1")).ok());
  const auto batch = Range(1, 10);
  CHECK(Append(*store, "a1", batch) == 10);
  CHECK(Append(*store, "a1", batch) == 10);
  std::vector<uint64_t> expected;
  for (uint64_t s = 1; s <= 10; ++s) expected.push_back(s);
  CHECK(AgentSequences(*store, "a1") == expected);
  EventQuery q;
  q.agent_id = "a1";
  q.oldest_first = true;
  const auto events = All(*store, q);
  REQUIRE(events.size() == 10);
  CHECK(events[0].row.payload == batch[0].payload);  // exact bytes back
  CHECK(events[0].row.type == "exec");
  CHECK(events[0].row.image == "/usr/bin/true");
  CHECK(events[0].row.command_line == "/usr/bin/true");
  CHECK(events[0].received_at_ns == kT0);
  CHECK(store->AckedSequence("a1").value() == 10);
}

TEMPLATE_TEST_CASE("ingest: overlapping batches add only the new part and the first copy wins", "[conformance]",
                   MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto store = OpenOrFail(f);
  REQUIRE(store->UpsertAgent(Agent("a1")).ok());
  CHECK(Append(*store, "a1", Range(1, 10, kT0, "first")) == 10);
  CHECK(Append(*store, "a1", Range(5, 15, kT0, "second")) == 15);
  CHECK(AgentSequences(*store, "a1").size() == 15);
  EventQuery q;
  q.agent_id = "a1";
  q.oldest_first = true;
  const auto events = All(*store, q);
  for (const auto& e : events) {
    INFO("seq " << e.row.sequence);
    CHECK_THAT(e.row.command_line, Catch::EndsWith(e.row.sequence <= 10 ? "first" : "second"));
  }
}

TEMPLATE_TEST_CASE("ingest: the ack is the highest contiguous sequence stored", "[conformance]", MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto store = OpenOrFail(f);
  REQUIRE(store->UpsertAgent(Agent("a1")).ok());
  CHECK(Append(*store, "a1", {}) == 0);
  CHECK(Append(*store, "a1", Range(1, 5)) == 5);
  CHECK(Append(*store, "a1", Range(8, 10)) == 5);  // 6, 7 missing: 8..10 stored, not acked
  CHECK(AgentSequences(*store, "a1") == std::vector<uint64_t>{1, 2, 3, 4, 5, 8, 9, 10});
  CHECK(Append(*store, "a1", Range(7, 7)) == 5);
  CHECK(Append(*store, "a1", Range(6, 6)) == 10);  // the gap filled: the ack jumps over the stored run
  CHECK(Append(*store, "a1", Range(2, 3)) == 10);  // never decreases
  CHECK(store->AckedSequence("a1").value() == 10);

  REQUIRE(store->UpsertAgent(Agent("a2")).ok());
  CHECK(Append(*store, "a2", Range(2, 4)) == 0);  // sequence 1 missing
  // Any order, repeats inside one batch.
  std::vector<EventRow> shuffled = {Exec(3, kT0 + 3), Exec(1, kT0 + 1), Exec(2, kT0 + 2), Exec(2, kT0 + 2),
                                    Exec(5, kT0 + 5)};
  CHECK(Append(*store, "a2", shuffled) == 5);
  CHECK(AgentSequences(*store, "a2") == std::vector<uint64_t>{1, 2, 3, 4, 5});
  CHECK(AgentSequences(*store, "a1").size() == 10);  // agents do not mix
}

TEMPLATE_TEST_CASE("ingest: declared lost sequences let the ack pass a gap", "[conformance]", MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto store = OpenOrFail(f);
  REQUIRE(store->UpsertAgent(Agent("a1")).ok());
  CHECK(Append(*store, "a1", Range(1, 3)) == 3);
  CHECK(Append(*store, "a1", Range(7, 9)) == 3);
  CHECK(Append(*store, "a1", {}, {LostRange{4, 6, "spool damaged"}}) == 9);
  // A loss declared ahead of the events that follow it, in one batch.
  CHECK(Append(*store, "a1", Range(13, 14), {LostRange{10, 12, "spool damaged"}}) == 14);
  CHECK(Append(*store, "a1", {}, {LostRange{10, 12, "again"}}) == 14);  // idempotent
  AgentQuery q;
  q.now_ns = kT0;
  Result<std::vector<AgentView>> agents = store->ListAgents(q);
  REQUIRE(agents.ok());
  REQUIRE(agents->size() == 1);
  CHECK((*agents)[0].acked_sequence == 14);
}

TEMPLATE_TEST_CASE("ingest: refused as a whole for unknown or revoked agents and bad sequences", "[conformance]",
                   MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto store = OpenOrFail(f);
  CHECK(store->AppendBatch("ghost", Range(1, 2), {}, kT0).status().code() == StatusCode::kNotFound);
  REQUIRE(store->UpsertAgent(Agent("a1")).ok());
  std::vector<EventRow> mixed = Range(1, 3);
  mixed.push_back(Exec(1, kT0));
  mixed.back().sequence = 0;
  CHECK(store->AppendBatch("a1", mixed, {}, kT0).status().code() == StatusCode::kInvalidArgument);
  mixed.back().sequence = static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1;
  CHECK(store->AppendBatch("a1", mixed, {}, kT0).status().code() == StatusCode::kInvalidArgument);
  std::vector<LostRange> bad = {LostRange{5, 4, ""}};
  CHECK(store->AppendBatch("a1", Range(1, 3), bad, kT0).status().code() == StatusCode::kInvalidArgument);
  CHECK(AgentSequences(*store, "a1").empty());
  REQUIRE(store->SetAgentRevoked("a1", true).ok());
  CHECK(store->AppendBatch("a1", Range(1, 3), {}, kT0).status().code() == StatusCode::kPermissionDenied);
  CHECK(AgentSequences(*store, "a1").empty());
  CHECK(store->AckedSequence("ghost").status().code() == StatusCode::kNotFound);
}

TEMPLATE_TEST_CASE("ingest: paths that are not UTF-8 and oversized fields are stored and found", "[conformance]",
                   MAMORI_STORE_BACKENDS) {
  TestType f;
  SKIP_UNLESS_AVAILABLE(f);
  auto store = OpenOrFail(f);
  REQUIRE(store->UpsertAgent(Agent("a1")).ok());
  const std::string odd = std::string("/tmp/\xff\xfe" "bad\x01name", 14);
  const std::string huge = "/" + std::string(5000, 'x');
  EventRow big = Exec(2, kT0, huge);
  CHECK(Append(*store, "a1", {Exec(1, kT0, odd), big}) == 2);
  EventQuery q;
  q.image = odd;  // the raw bytes: the store cleans them like the row
  auto found = All(*store, q);
  REQUIRE(found.size() == 1);
  v1::Event back;
  REQUIRE(back.ParseFromString(found[0].row.payload));
  CHECK(back.process().image() == odd);  // exact bytes in the payload
  q.image = huge;
  found = All(*store, q);
  REQUIRE(found.size() == 1);
  CHECK(found[0].row.image.size() <= kMaxIndexedColumnBytes);
  REQUIRE(back.ParseFromString(found[0].row.payload));
  CHECK(back.process().image() == huge);
}

}  // namespace mamori::server::conformance

// The parts both backends share: batch preparation, the in-batch ack walk,
// query building.
#include <catch2/catch.hpp>

#include <memory>

#include "store_internal.h"

namespace mamori::server::internal {
namespace {

EventRow Row(uint64_t seq, const std::string& marker = "") {
  EventRow r;
  r.sequence = seq;
  r.type = "exec";
  r.payload = marker;
  return r;
}

// A prepared batch points into its rows: keep both together.
struct Owned {
  std::vector<EventRow> rows;
  PreparedBatch batch;
};

uint64_t Advance(uint64_t acked, std::vector<uint64_t> seqs, std::vector<LostRange> lost = {}) {
  auto o = std::make_unique<Owned>();
  for (uint64_t s : seqs) o->rows.push_back(Row(s));
  Result<PreparedBatch> b = PrepareBatch(o->rows, lost);
  REQUIRE(b.ok());
  o->batch = std::move(*b);
  return AdvanceOverBatch(acked, o->batch);
}

}  // namespace

TEST_CASE("store internals: a batch is sorted, repeats dropped, the first copy kept", "[internal]") {
  std::vector<EventRow> rows = {Row(3, "a"), Row(1, "b"), Row(3, "c"), Row(2, "d")};
  Result<PreparedBatch> b = PrepareBatch(rows, {});
  REQUIRE(b.ok());
  REQUIRE(b->events.size() == 3);
  CHECK(b->events[0]->sequence == 1);
  CHECK(b->events[2]->sequence == 3);
  CHECK(b->events[2]->payload == "a");
  CHECK(b->cleaned.empty());  // nothing to clean: the caller's rows are used as they are
}

TEST_CASE("store internals: rows that need it are cleaned, in a copy", "[internal]") {
  std::vector<EventRow> rows = {Row(1), Row(2)};
  rows[1].image = "/tmp/\xff";
  rows[1].process_sha256 = "ABCDEF";
  Result<PreparedBatch> b = PrepareBatch(rows, {});
  REQUIRE(b.ok());
  CHECK(b->events[0] == &rows[0]);
  REQUIRE(b->cleaned.size() == 1);
  CHECK(b->events[1]->image == "/tmp/\\xff");
  CHECK(b->events[1]->process_sha256 == "abcdef");
  CHECK(rows[1].image == "/tmp/\xff");  // the caller's row is untouched
}

TEST_CASE("store internals: the ack walks over the batch and its lost ranges", "[internal]") {
  CHECK(Advance(0, {1, 2, 3}) == 3);
  CHECK(Advance(0, {2, 3}) == 0);
  CHECK(Advance(5, {6, 7, 9}) == 7);
  CHECK(Advance(5, {1, 2}) == 5);
  CHECK(Advance(0, {1, 5}, {LostRange{2, 4, ""}}) == 5);
  CHECK(Advance(0, {}, {LostRange{1, 4, ""}, LostRange{1, 2, ""}}) == 4);
  CHECK(Advance(3, {}, {LostRange{1, 10, ""}}) == 10);
}

TEST_CASE("store internals: bad sequences and ranges are refused", "[internal]") {
  CHECK(PrepareBatch(std::vector<EventRow>{Row(0)}, {}).status().code() == StatusCode::kInvalidArgument);
  std::vector<LostRange> bad = {LostRange{3, 2, ""}};
  CHECK(PrepareBatch({}, bad).status().code() == StatusCode::kInvalidArgument);
  bad = {LostRange{0, 2, ""}};
  CHECK(PrepareBatch({}, bad).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("store internals: event queries use each dialect's placeholders", "[internal]") {
  EventQuery q;
  q.agent_id = "a1";
  q.sha256 = "ABC";
  q.types = {"exec", "fork"};
  BuiltQuery pg = BuildEventQuery(q, 10, Dialect::kPostgres);
  CHECK_THAT(pg.sql, Catch::Contains("agent_id = $1"));
  CHECK_THAT(pg.sql, Catch::Contains("type IN ($2, $3)"));
  CHECK_THAT(pg.sql, Catch::Contains("(process_sha256 = $4 OR file_sha256 = $4)"));
  CHECK_THAT(pg.sql, Catch::EndsWith("ORDER BY ts DESC, agent_id DESC, seq DESC LIMIT $5"));
  REQUIRE(pg.params.size() == 5);
  CHECK(std::get<std::string>(pg.params[3]) == "abc");
  CHECK(std::get<int64_t>(pg.params[4]) == 11);  // one more than the limit: is there a next page?
  BuiltQuery lite = BuildEventQuery(q, 10, Dialect::kSqlite);
  CHECK_THAT(lite.sql, Catch::Contains("agent_id = ?1"));
}

TEST_CASE("store internals: limits default and cap", "[internal]") {
  CHECK(EffectiveLimit(0).value() == kDefaultEventLimit);
  CHECK(EffectiveLimit(kMaxEventLimit).value() == kMaxEventLimit);
  CHECK(EffectiveLimit(kMaxEventLimit + 1).status().code() == StatusCode::kInvalidArgument);
}

}  // namespace mamori::server::internal

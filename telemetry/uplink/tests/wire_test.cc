// EventBatch framing from spool records: byte-for-byte what parse +
// set_sequence + serialize would give, limits, and malformed records.
#include "wire.h"

#include <grpcpp/support/proto_buffer_reader.h>

#include <catch2/catch.hpp>

#include "backoff.h"
#include "mamori/telemetry/convert.h"
#include "mamori/v1/event.pb.h"

namespace mamori::telemetry {
namespace {

v1::Event SampleEvent(int i) {
  v1::Event e;
  e.set_timestamp_ns(1'700'000'000'000'000'000 + i);
  e.mutable_process()->set_pid(1000 + i);
  e.mutable_process()->set_image("/usr/bin/\xff" + std::to_string(i));
  e.mutable_process()->add_argv("sh");
  e.mutable_process_activity()->set_kind(v1::ProcessActivity::KIND_EXEC);
  return e;
}

TEST_CASE("wire: framed records parse as the batch parse+serialize would build") {
  wire::BatchBuilder b(100, 1 << 20, 4 << 20, false);
  v1::EventBatch expected;
  const std::vector<uint64_t> seqs = {1, 2, 127, 128, 16384, (uint64_t{1} << 62) + 5};
  for (size_t i = 0; i < seqs.size(); ++i) {
    const v1::Event e = SampleEvent(static_cast<int>(i));
    REQUIRE(b.AddRecord(seqs[i], EncodeSpoolPayload(e)) == wire::BatchBuilder::AddResult::kAdded);
    v1::Event* x = expected.add_events();
    *x = e;
    x->set_sequence(seqs[i]);
  }
  b.AddLost(900, 905, "damaged");
  v1::SequenceRange* r = expected.add_lost();
  r->set_first(900);
  r->set_last(905);
  r->set_reason("damaged");
  CHECK(b.last_sequence() == (uint64_t{1} << 62) + 5);
  CHECK(b.events() == seqs.size());
  const size_t bytes = b.bytes();
  const std::string got = b.TakeEventBatch();
  CHECK(got.size() == bytes);
  CHECK(b.empty());

  v1::EventBatch parsed;
  REQUIRE(parsed.ParseFromString(got));
  CHECK(parsed.SerializeAsString() == expected.SerializeAsString());
  CHECK(parsed.ByteSizeLong() <= got.size());
}

TEST_CASE("wire: a sequence inside the record is overridden by the spool's") {
  v1::Event e = SampleEvent(1);
  e.set_sequence(77);
  wire::BatchBuilder b(10, 1 << 20, 1 << 20, false);
  REQUIRE(b.AddRecord(5, e.SerializeAsString()) == wire::BatchBuilder::AddResult::kAdded);
  v1::EventBatch parsed;
  REQUIRE(parsed.ParseFromString(b.TakeEventBatch()));
  CHECK(parsed.events(0).sequence() == 5);
}

TEST_CASE("wire: the message is AgentMessage{batch}") {
  wire::BatchBuilder b(10, 1 << 20, 1 << 20, false);
  REQUIRE(b.AddRecord(1, EncodeSpoolPayload(SampleEvent(1))) == wire::BatchBuilder::AddResult::kAdded);
  grpc::ByteBuffer buf = b.TakeMessage();
  grpc::ProtoBufferReader reader(&buf);
  v1::AgentMessage m;
  REQUIRE(m.ParseFromZeroCopyStream(&reader));
  REQUIRE(m.has_batch());
  CHECK(m.batch().events(0).sequence() == 1);
  CHECK(m.batch().events(0).process().pid() == 1001);
}

TEST_CASE("wire: batches respect event and byte limits") {
  const std::string rec = EncodeSpoolPayload(SampleEvent(1));
  SECTION("events") {
    wire::BatchBuilder b(3, 1 << 20, 1 << 20, false);
    for (uint64_t s = 1; s <= 3; ++s) REQUIRE(b.AddRecord(s, rec) == wire::BatchBuilder::AddResult::kAdded);
    CHECK(b.full());
    CHECK(b.remaining_events() == 0);
    CHECK(b.AddRecord(4, rec) == wire::BatchBuilder::AddResult::kFull);
    CHECK(b.events() == 3);
  }
  SECTION("bytes") {
    wire::BatchBuilder b(1000, 3 * rec.size() + 30, 1 << 20, false);
    uint64_t s = 1;
    while (b.AddRecord(s, rec) == wire::BatchBuilder::AddResult::kAdded) ++s;
    CHECK(b.events() == 3);
    CHECK(b.bytes() <= 3 * rec.size() + 30);
  }
  SECTION("one record above the soft limit goes alone, above the hard limit it is declared lost") {
    const std::string big(5000, 'x');
    v1::Event e;
    e.mutable_process()->set_image(big);
    const std::string rec_big = EncodeSpoolPayload(e);
    wire::BatchBuilder b(1000, 2048, 8192, false);
    CHECK(b.AddRecord(1, rec_big) == wire::BatchBuilder::AddResult::kAdded);
    CHECK(b.AddRecord(2, rec) == wire::BatchBuilder::AddResult::kFull);
    (void)b.TakeEventBatch();
    e.mutable_process()->set_image(std::string(10000, 'y'));
    CHECK(b.AddRecord(3, EncodeSpoolPayload(e)) == wire::BatchBuilder::AddResult::kLost);
    CHECK(b.lost_sequences() == 1);
    v1::EventBatch parsed;
    REQUIRE(parsed.ParseFromString(b.TakeEventBatch()));
    REQUIRE(parsed.lost_size() == 1);
    CHECK(parsed.lost(0).first() == 3);
    CHECK(parsed.lost(0).reason().find("max_batch_bytes") != std::string::npos);
  }
}

TEST_CASE("wire: malformed records are declared lost, contiguous losses merge") {
  const std::string good = EncodeSpoolPayload(SampleEvent(1));
  wire::BatchBuilder b(100, 1 << 20, 1 << 20, false);
  CHECK(b.AddRecord(1, good) == wire::BatchBuilder::AddResult::kAdded);
  CHECK(b.AddRecord(2, good.substr(0, good.size() - 3)) == wire::BatchBuilder::AddResult::kLost);  // truncated
  CHECK(b.AddRecord(3, std::string("\x07garbage", 8)) == wire::BatchBuilder::AddResult::kLost);    // wire type 7
  CHECK(b.AddRecord(4, good) == wire::BatchBuilder::AddResult::kAdded);
  v1::EventBatch parsed;
  REQUIRE(parsed.ParseFromString(b.TakeEventBatch()));
  CHECK(parsed.events_size() == 2);
  REQUIRE(parsed.lost_size() == 1);
  CHECK(parsed.lost(0).first() == 2);
  CHECK(parsed.lost(0).last() == 3);
}

TEST_CASE("wire: validation parses records and catches invalid UTF-8 in string fields") {
  v1::Event e = SampleEvent(1);
  e.mutable_behavior_alert()->set_rule_id("ok");
  std::string rec = EncodeSpoolPayload(e);
  // Forge a string field (BehaviorAlert.rule_id) holding "\xff": well-formed wire data.
  v1::Event bad = SampleEvent(1);
  bad.mutable_behavior_alert()->set_rule_id("XX");
  std::string bad_rec = EncodeSpoolPayload(bad);
  const size_t at = bad_rec.find("XX");
  REQUIRE(at != std::string::npos);
  bad_rec[at] = '\xff';
  CHECK(wire::IsWellFormedMessage(bad_rec));
  wire::BatchBuilder lenient(10, 1 << 20, 1 << 20, false);
  CHECK(lenient.AddRecord(1, bad_rec) == wire::BatchBuilder::AddResult::kAdded);
  wire::BatchBuilder strict(10, 1 << 20, 1 << 20, true);
  CHECK(strict.AddRecord(1, rec) == wire::BatchBuilder::AddResult::kAdded);
  CHECK(strict.AddRecord(2, bad_rec) == wire::BatchBuilder::AddResult::kLost);
}

TEST_CASE("wire: well-formedness walk") {
  CHECK(wire::IsWellFormedMessage(""));
  CHECK(wire::IsWellFormedMessage(std::string("\x08\x01", 2)));
  CHECK_FALSE(wire::IsWellFormedMessage(std::string("\x08", 1)));      // varint missing
  CHECK_FALSE(wire::IsWellFormedMessage(std::string("\x00\x01", 2)));  // field 0
  CHECK_FALSE(
      wire::IsWellFormedMessage(std::string("\x12\x05"
                                            "ab",
                                            4)));                            // length past the end
  CHECK_FALSE(wire::IsWellFormedMessage(std::string("\x0b", 1)));            // group start
  CHECK(wire::IsWellFormedMessage(std::string("\x0d\x01\x02\x03\x04", 5)));  // fixed32
  CHECK_FALSE(wire::IsWellFormedMessage(std::string("\x09\x01\x02", 3)));    // fixed64 cut short
}

TEST_CASE("backoff: doubles from initial to the cap, jittered, and resets") {
  using std::chrono::milliseconds;
  Backoff b(milliseconds(500), milliseconds(60'000), 0.2, 42);
  std::vector<int64_t> d;
  for (int i = 0; i < 12; ++i) d.push_back(b.Next().count());
  CHECK(d[0] >= 400);
  CHECK(d[0] <= 600);
  CHECK(d[1] >= 800);
  CHECK(d[1] <= 1200);
  CHECK(d[3] >= 3200);
  CHECK(d[3] <= 4800);
  for (int i = 8; i < 12; ++i) {
    CHECK(d[i] >= 48'000);
    CHECK(d[i] <= 60'000);
  }
  b.Reset();
  const int64_t again = b.Next().count();
  CHECK(again >= 400);
  CHECK(again <= 600);
  Backoff no_jitter(milliseconds(100), milliseconds(250), 0.0, 1);
  CHECK(no_jitter.Next().count() == 100);
  CHECK(no_jitter.Next().count() == 200);
  CHECK(no_jitter.Next().count() == 250);
}

}  // namespace
}  // namespace mamori::telemetry

// Building EventBatch bytes from spool records without re-serializing them.
//
// A spool record is a serialized mamori.v1.Event without its sequence
// (EncodeSpoolPayload). Protobuf's wire format lets us frame it directly:
//   EventBatch.events (field 1, length-delimited) = 0x0A varint(len) <event>
//   <event> = <record bytes> 0x08 varint(sequence)
// The sequence field is appended after the record: for a singular scalar the
// last occurrence wins, so the spool's sequence is the one the server reads
// even if a record carried one. Lost ranges are SequenceRange messages in
// field 2. The result parses as exactly the EventBatch a parse + set_sequence
// + serialize would produce (checked by wire_test.cc), at the cost of one copy.
//
// Records are checked before framing: by default a walk over the record's
// top-level fields (tags and lengths in bounds; catches truncated or
// garbled bytes); with `validate` a full parse as mamori.v1.Event (also
// catches invalid UTF-8 in string fields, which the server would refuse).
// A record that fails is declared lost rather than blocking the stream.
//
// Thread safety: a BatchBuilder is used by one thread.
#pragma once

#include <grpcpp/support/byte_buffer.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mamori/v1/agent_service.pb.h"

namespace mamori::telemetry::wire {

size_t VarintSize(uint64_t v);
void AppendVarint(std::string* out, uint64_t v);

// true when `bytes` is a sequence of well-formed protobuf fields (no groups,
// field numbers >= 1, lengths inside the buffer).
bool IsWellFormedMessage(std::string_view bytes);

class BatchBuilder {
 public:
  // `soft_max_bytes`: the batch is full once adding a record would pass it.
  // `hard_max_bytes`: the server's limit; a record alone larger than it is
  // declared lost. REQUIRES: 0 < max_events, 0 < soft_max_bytes <= hard_max_bytes.
  BatchBuilder(size_t max_events, size_t soft_max_bytes, size_t hard_max_bytes, bool validate);

  enum class AddResult { kAdded, kFull, kLost };
  // kFull: not added, the batch has no room left (send it, then add to a new
  // one). kLost: the record is unusable (too large or malformed) and was
  // recorded as a lost sequence instead.
  AddResult AddRecord(uint64_t sequence, std::string_view record);
  // Declares [first, last] lost.
  void AddLost(uint64_t first, uint64_t last, std::string_view reason);

  bool empty() const { return events_ == 0 && lost_.empty(); }
  size_t events() const { return events_; }
  size_t bytes() const { return body_.size() + lost_bytes_; }
  bool full() const { return events_ >= max_events_ || body_.size() + lost_bytes_ >= soft_max_bytes_; }
  // Room for ReadBatch: events and approximate payload bytes still fitting.
  size_t remaining_events() const { return events_ >= max_events_ ? 0 : max_events_ - events_; }
  size_t remaining_bytes() const;
  uint64_t last_sequence() const { return last_sequence_; }
  uint64_t lost_sequences() const { return lost_sequences_; }

  // The AgentMessage{batch} bytes as a gRPC buffer (no further copy), and
  // resets the builder for the next batch.
  grpc::ByteBuffer TakeMessage();
  // The EventBatch bytes alone, and resets (tests, benchmarks).
  std::string TakeEventBatch();

 private:
  void AppendLostTo(std::string* out) const;
  void Reset();

  const size_t max_events_, soft_max_bytes_, hard_max_bytes_;
  const bool validate_;
  std::string body_;  // framed events
  size_t events_ = 0;
  std::vector<v1::SequenceRange> lost_;
  size_t lost_bytes_ = 0;
  uint64_t lost_sequences_ = 0;
  uint64_t last_sequence_ = 0;
};

// A whole message as one gRPC buffer taking ownership of `bytes` (no copy).
grpc::ByteBuffer BufferFromString(std::string bytes);
// Serializes an AgentMessage (Hello, Heartbeat, CommandAck).
grpc::ByteBuffer SerializeMessage(const v1::AgentMessage& m);
// Parses a ServerMessage; false when it is not one.
bool ParseMessage(grpc::ByteBuffer* buffer, v1::ServerMessage* out);

}  // namespace mamori::telemetry::wire

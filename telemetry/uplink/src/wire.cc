#include "wire.h"

#include <grpcpp/support/proto_buffer_reader.h>

#include "mamori/v1/event.pb.h"

namespace mamori::telemetry::wire {

namespace {

constexpr char kEventsTag = 0x0A;    // EventBatch.events: field 1, length-delimited
constexpr char kLostTag = 0x12;      // EventBatch.lost: field 2, length-delimited
constexpr char kSequenceTag = 0x08;  // Event.sequence: field 1, varint
constexpr char kBatchTag = 0x12;     // AgentMessage.batch: field 2, length-delimited

bool ReadVarint(std::string_view b, size_t* pos, uint64_t* v) {
  uint64_t out = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*pos >= b.size()) return false;
    const auto c = static_cast<unsigned char>(b[(*pos)++]);
    out |= static_cast<uint64_t>(c & 0x7F) << shift;
    if ((c & 0x80) == 0) {
      *v = out;
      return true;
    }
  }
  return false;
}

}  // namespace

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool IsWellFormedMessage(std::string_view b) {
  size_t pos = 0;
  while (pos < b.size()) {
    uint64_t tag = 0;
    if (!ReadVarint(b, &pos, &tag)) return false;
    if ((tag >> 3) == 0 || (tag >> 3) > 0x1FFFFFFF) return false;
    uint64_t v = 0;
    switch (tag & 7) {
      case 0:
        if (!ReadVarint(b, &pos, &v)) return false;
        break;
      case 1:
        if (b.size() - pos < 8) return false;
        pos += 8;
        break;
      case 2:
        if (!ReadVarint(b, &pos, &v) || v > b.size() - pos) return false;
        pos += static_cast<size_t>(v);
        break;
      case 5:
        if (b.size() - pos < 4) return false;
        pos += 4;
        break;
      default:  // groups (3, 4) are not used by proto3; 6, 7 do not exist
        return false;
    }
  }
  return true;
}

BatchBuilder::BatchBuilder(size_t max_events, size_t soft_max_bytes, size_t hard_max_bytes, bool validate)
    : max_events_(max_events), soft_max_bytes_(soft_max_bytes), hard_max_bytes_(hard_max_bytes), validate_(validate) {
  body_.reserve(soft_max_bytes_ + 64);
}

size_t BatchBuilder::remaining_bytes() const {
  const size_t used = bytes();
  return used >= soft_max_bytes_ ? 1 : soft_max_bytes_ - used;
}

BatchBuilder::AddResult BatchBuilder::AddRecord(uint64_t sequence, std::string_view record) {
  bool ok = true;
  if (validate_) {
    v1::Event e;
    ok = e.ParseFromArray(record.data(), static_cast<int>(record.size()));
  } else {
    ok = IsWellFormedMessage(record);
  }
  const size_t event_len = record.size() + 1 + VarintSize(sequence);
  const size_t framed = 1 + VarintSize(event_len) + event_len;
  const bool has_content = !empty();
  if (ok) {
    if (has_content && (events_ >= max_events_ || bytes() + framed > soft_max_bytes_)) return AddResult::kFull;
    if (bytes() + framed > hard_max_bytes_) {
      if (has_content) return AddResult::kFull;
      AddLost(sequence, sequence,
              "event of " + std::to_string(framed) + " bytes exceeds the server's max_batch_bytes " +
                  std::to_string(hard_max_bytes_));
      return AddResult::kLost;
    }
  } else {
    AddLost(sequence, sequence,
            validate_ ? "spool record is not a valid mamori.v1.Event" : "spool record is not well-formed protobuf");
    return AddResult::kLost;
  }
  body_.push_back(kEventsTag);
  AppendVarint(&body_, event_len);
  body_.append(record);
  body_.push_back(kSequenceTag);
  AppendVarint(&body_, sequence);
  ++events_;
  if (sequence > last_sequence_) last_sequence_ = sequence;
  return AddResult::kAdded;
}

void BatchBuilder::AddLost(uint64_t first, uint64_t last, std::string_view reason) {
  if (first > last) return;
  if (!lost_.empty() && lost_.back().last() + 1 == first && lost_.back().reason() == reason) {
    v1::SequenceRange& r = lost_.back();
    const size_t before = r.ByteSizeLong();
    r.set_last(last);
    const size_t after = r.ByteSizeLong();
    lost_bytes_ += VarintSize(after) + after - VarintSize(before) - before;
  } else {
    v1::SequenceRange r;
    r.set_first(first);
    r.set_last(last);
    r.set_reason(std::string(reason));
    const size_t n = r.ByteSizeLong();
    lost_bytes_ += 1 + VarintSize(n) + n;
    lost_.push_back(std::move(r));
  }
  lost_sequences_ += last - first + 1;
  if (last > last_sequence_) last_sequence_ = last;
}

void BatchBuilder::AppendLostTo(std::string* out) const {
  for (const v1::SequenceRange& r : lost_) {
    out->push_back(kLostTag);
    AppendVarint(out, r.ByteSizeLong());
    r.AppendToString(out);
  }
}

void BatchBuilder::Reset() {
  body_.clear();
  body_.reserve(soft_max_bytes_ + 64);
  events_ = 0;
  lost_.clear();
  lost_bytes_ = 0;
  lost_sequences_ = 0;
  last_sequence_ = 0;
}

std::string BatchBuilder::TakeEventBatch() {
  std::string out = std::move(body_);
  AppendLostTo(&out);
  Reset();
  return out;
}

grpc::ByteBuffer BatchBuilder::TakeMessage() {
  std::string body = TakeEventBatch();
  std::string prefix;
  prefix.push_back(kBatchTag);
  AppendVarint(&prefix, body.size());
  auto* owned = new std::string(std::move(body));
  grpc::Slice slices[2] = {
      grpc::Slice(prefix.data(), prefix.size()),  // copied (a few bytes)
      grpc::Slice(
          owned->data(), owned->size(), [](void* p) { delete static_cast<std::string*>(p); }, owned),
  };
  return grpc::ByteBuffer(slices, 2);
}

grpc::ByteBuffer BufferFromString(std::string bytes) {
  auto* owned = new std::string(std::move(bytes));
  grpc::Slice slice(
      owned->data(), owned->size(), [](void* p) { delete static_cast<std::string*>(p); }, owned);
  return grpc::ByteBuffer(&slice, 1);
}

grpc::ByteBuffer SerializeMessage(const v1::AgentMessage& m) { return BufferFromString(m.SerializeAsString()); }

bool ParseMessage(grpc::ByteBuffer* buffer, v1::ServerMessage* out) {
  grpc::ProtoBufferReader reader(buffer);
  return out->ParseFromZeroCopyStream(&reader);
}

}  // namespace mamori::telemetry::wire

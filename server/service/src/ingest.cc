#include "ingest.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <unordered_map>

#include "mamori/common/log.h"
#include "mamori/server/event_row.h"

namespace mamori::server {

namespace {

constexpr uint64_t kMaxSequence = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

grpc::Status StoreError(const Status& s) {
  switch (s.code()) {
    case StatusCode::kPermissionDenied:
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "agent revoked");
    case StatusCode::kNotFound:
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "unknown agent");
    case StatusCode::kInvalidArgument:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, s.message());
    default:
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "store: " + s.message());
  }
}

CommandState StateOf(mamori::v1::CommandResult::Outcome o) {
  switch (o) {
    case mamori::v1::CommandResult::OUTCOME_SUCCEEDED:
      return CommandState::kSucceeded;
    case mamori::v1::CommandResult::OUTCOME_REJECTED:
      return CommandState::kRejected;
    case mamori::v1::CommandResult::OUTCOME_RUNNING:
      return CommandState::kRunning;  // progress: never overrides a final result (Store::CompleteCommand)
    default:
      return CommandState::kFailed;  // FAILED, and outcomes this build does not know
  }
}

// Command results are ordinary events; the command row follows them.
// CompleteCommand is idempotent (the first result wins), so resent results are harmless.
void ApplyCommandResults(ServiceContext* svc, const std::string& agent_id, const mamori::v1::EventBatch& batch) {
  for (const mamori::v1::Event& e : batch.events()) {
    if (!e.has_command_result()) continue;
    const mamori::v1::CommandResult& r = e.command_result();
    Result<CommandRecord> c = WithRetry([&] { return svc->store->GetCommand(r.command_id()); });
    if (!c.ok() || c->agent_id != agent_id) {
      MAMORI_LOG(kWarning, "agent " << agent_id << " reported a result for unknown command '" << r.command_id() << "'");
      continue;
    }
    const std::string error = r.outcome() == mamori::v1::CommandResult::OUTCOME_UNSPECIFIED && r.error().empty()
                                  ? "result without an outcome"
                                  : r.error();
    Status s = WithRetry([&] {
      return svc->store->CompleteCommand(r.command_id(), StateOf(r.outcome()), r.SerializeAsString(), error, NowNs());
    });
    if (!s.ok()) MAMORI_LOG(kWarning, "command " << r.command_id() << ": recording the result: " << s.message());
  }
}

// Which events of the batch this AppendBatch call stored itself (not copies
// another call stored first), read back from the store: the rows whose
// received_at is this call's unique stamp. Exact across replicas without
// process-local state. Costs one ranged read per batch, only with SIEM
// outputs configured; a store API that reported inserted sequences would
// make it free (see docs/server.md).
// `events[i]` is the proto of `rows[i]` (all batches of the call, in order).
Status PublishNewlyStored(ServiceContext* svc, const std::string& agent_id, const std::string& hostname,
                          const std::vector<const mamori::v1::Event*>& events, const std::vector<EventRow>& rows,
                          uint64_t known_ack, int64_t stamp) {
  // The first copy of each sequence in the call is the one the store kept
  // if this call stored it (PrepareBatch: "the first copy wins").
  std::unordered_map<uint64_t, size_t> first_copy;
  int64_t min_ts = std::numeric_limits<int64_t>::max(), max_ts = std::numeric_limits<int64_t>::min();
  for (size_t i = 0; i < events.size(); ++i) {
    const mamori::v1::Event& e = *events[i];
    if (e.sequence() <= known_ack) continue;  // stored before this stream's last ack: a resend
    if (!first_copy.emplace(e.sequence(), i).second) continue;
    min_ts = std::min(min_ts, e.timestamp_ns());
    max_ts = std::max(max_ts, e.timestamp_ns());
  }
  if (first_copy.empty()) return Status::Ok();
  EventQuery q;
  q.agent_id = agent_id;
  q.from_ns = min_ts;
  if (max_ts < std::numeric_limits<int64_t>::max()) q.to_ns = max_ts + 1;
  q.oldest_first = true;
  q.limit = kMaxEventLimit;
  std::vector<SiemRecord> records;
  for (;;) {
    Result<EventPage> page = WithRetry([&] { return svc->store->QueryEvents(q); });
    if (!page.ok()) return page.status();
    for (const StoredEvent& se : page->events) {
      if (se.received_at_ns != stamp) continue;
      auto it = first_copy.find(se.row.sequence);
      if (it == first_copy.end()) continue;
      records.push_back(SiemRecord{agent_id, hostname, rows[it->second].type, stamp, events[it->second]});
    }
    if (!page->next) break;
    q.after = page->next;
  }
  svc->siem->Publish(records);
  return Status::Ok();
}

}  // namespace

int64_t UniqueReceivedAt() {
  static std::atomic<int64_t> last{0};
  int64_t now = NowNs();
  int64_t prev = last.load(std::memory_order_relaxed);
  for (;;) {
    const int64_t next = std::max(now, prev + 1);
    if (last.compare_exchange_weak(prev, next, std::memory_order_relaxed)) return next;
  }
}

namespace {

// Limits and validation of one batch; appends its rows, protos and lost ranges.
grpc::Status CheckBatch(const ServerConfig& config, const BatchRef& ref, std::vector<EventRow>* rows,
                        std::vector<const mamori::v1::Event*>* events, std::vector<LostRange>* lost,
                        size_t* total_bytes) {
  const mamori::v1::EventBatch& batch = *ref.batch;
  if (static_cast<uint64_t>(batch.events_size()) > config.max_batch_events) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "batch of " + std::to_string(batch.events_size()) +
                                                                  " events exceeds max_batch_events " +
                                                                  std::to_string(config.max_batch_events));
  }
  const size_t bytes = ref.bytes != 0 ? ref.bytes : batch.ByteSizeLong();
  if (bytes > config.max_batch_bytes) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "batch of " + std::to_string(bytes) +
                                                                  " bytes exceeds max_batch_bytes " +
                                                                  std::to_string(config.max_batch_bytes));
  }
  const size_t first_row = rows->size();
  const size_t first_lost = lost->size();
  auto undo = [&] {  // a refused batch contributes nothing
    rows->resize(first_row);
    events->resize(first_row);
    lost->resize(first_lost);
  };
  for (int i = 0; i < batch.events_size(); ++i) {
    const mamori::v1::Event& e = batch.events(i);
    if (e.sequence() == 0 || e.sequence() > kMaxSequence) {
      undo();
      return grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          "event " + std::to_string(i) + ": sequence " + std::to_string(e.sequence()) + " outside [1, 2^63-1]");
    }
    Result<EventRow> row = EventRowFromProto(e);
    if (!row.ok()) {
      undo();
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "event " + std::to_string(i) + ": " + row.status().message());
    }
    rows->push_back(std::move(*row));
    events->push_back(&e);
  }
  for (const mamori::v1::SequenceRange& r : batch.lost()) {
    if (r.first() == 0 || r.first() > r.last() || r.last() > kMaxSequence) {
      undo();
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "bad lost range [" + std::to_string(r.first()) + ", " + std::to_string(r.last()) + "]");
    }
    lost->push_back(LostRange{r.first(), r.last(), r.reason()});
  }
  *total_bytes += bytes;
  return grpc::Status::OK;
}

}  // namespace

grpc::Status IngestBatches(ServiceContext* svc, const std::string& agent_id, const std::string& hostname,
                           std::span<const BatchRef> batches, uint64_t known_ack, uint64_t* ack, size_t* stored) {
  *stored = 0;
  std::vector<EventRow> rows;
  std::vector<const mamori::v1::Event*> events;
  std::vector<LostRange> lost;
  size_t total = 0;
  for (const BatchRef& b : batches) total += static_cast<size_t>(b.batch->events_size());
  rows.reserve(total);
  events.reserve(total);
  // Validate in order; a refused batch ends the run, the valid ones before it are stored.
  grpc::Status refused;
  size_t valid = 0;
  size_t bytes = 0;
  for (; valid < batches.size(); ++valid) {
    refused = CheckBatch(*svc->config, batches[valid], &rows, &events, &lost, &bytes);
    if (!refused.ok()) break;
  }
  if (valid == 0) return refused;

  const int64_t stamp = UniqueReceivedAt();
  const auto t0 = std::chrono::steady_clock::now();
  Result<uint64_t> acked = WithRetry([&] { return svc->store->AppendBatch(agent_id, rows, lost, stamp); });
  const auto latency = std::chrono::steady_clock::now() - t0;
  if (!acked.ok()) return StoreError(acked.status());
  svc->metrics->RecordBatch(rows.size(), bytes, std::chrono::duration_cast<std::chrono::nanoseconds>(latency));
  *ack = *acked;
  *stored = valid;

  for (size_t i = 0; i < valid; ++i) ApplyCommandResults(svc, agent_id, *batches[i].batch);
  if (!svc->siem->empty()) {
    Status s = PublishNewlyStored(svc, agent_id, hostname, events, rows, known_ack, stamp);
    if (!s.ok()) MAMORI_LOG(kError, "siem: reading back the batches of agent " << agent_id << ": " << s.message());
  }
  return refused;
}

grpc::Status IngestBatch(ServiceContext* svc, const std::string& agent_id, const std::string& hostname,
                         const mamori::v1::EventBatch& batch, uint64_t known_ack, uint64_t* ack) {
  const BatchRef ref{&batch, 0};
  size_t stored = 0;
  return IngestBatches(svc, agent_id, hostname, std::span<const BatchRef>(&ref, 1), known_ack, ack, &stored);
}

}  // namespace mamori::server

// The ingest path of one EventBatch: limits and validation, one
// Store::AppendBatch (one transaction), then the side effects of what was
// newly stored: SIEM records and command results. Internal to
// mamori_server_service.
//
// Thread safety: IngestBatch may run on many threads at once (any agents).
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "mamori/v1/event.pb.h"
#include "service_context.h"

namespace mamori::server {

// One EventBatch of a stream, with its serialized size when the caller knows
// it (0: computed here).
struct BatchRef {
  const mamori::v1::EventBatch* batch = nullptr;
  size_t bytes = 0;
};

// Stores consecutive batches of one stream in ONE Store::AppendBatch call (one
// transaction), in order, with the same checks as IngestBatch. When batch j
// fails validation, batches [0, j) are still stored and *stored = j, and j's
// error is returned; on a store error nothing is stored (*stored = 0). *ack
// is the store's ack after what was stored.
grpc::Status IngestBatches(ServiceContext* svc, const std::string& agent_id, const std::string& hostname,
                           std::span<const BatchRef> batches, uint64_t known_ack, uint64_t* ack, size_t* stored);

// Stores `batch` for `agent_id` and sets *ack to the store's ack after it.
// `known_ack` is an ack this stream has already seen (events at or below it
// are resends). Stream-ending errors: RESOURCE_EXHAUSTED (over
// max_batch_events / max_batch_bytes), INVALID_ARGUMENT (sequence 0 or above
// 2^63-1, bad lost range), PERMISSION_DENIED (revoked), UNAUTHENTICATED
// (agent unknown), UNAVAILABLE (store down after retries).
grpc::Status IngestBatch(ServiceContext* svc, const std::string& agent_id, const std::string& hostname,
                         const mamori::v1::EventBatch& batch, uint64_t known_ack, uint64_t* ack);

// A wall-clock timestamp strictly greater than every earlier one of this
// process: each AppendBatch call gets its own received_at, which lets the
// SIEM path tell its own newly stored rows from rows another call stored.
int64_t UniqueReceivedAt();

}  // namespace mamori::server

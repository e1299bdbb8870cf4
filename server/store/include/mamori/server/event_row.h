// From the wire event to the store's row: which columns a mamori.v1.Event
// fills, and its type name. One function, used by the ingest path of every
// backend, so that both index the same way.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "mamori/common/status.h"
#include "mamori/server/store_records.h"
#include "mamori/v1/event.pb.h"

namespace mamori::server {

// The event's type name: the behavior names for sensor events ("exec",
// "file_create", "net_connect", ...) and "scan_finding", "onaccess_detection",
// "onaccess_timeout", "onaccess_overflow", "quarantine", "quarantine_restore",
// "quarantine_delete", "behavior_alert", "sensor_drops", "agent_started", ...,
// "command_result", "scan_started", "scan_finished". A payload this build does
// not know: "unknown"; a known payload with an unknown kind: its family
// ("process", "file", "network", "onaccess", "quarantine", "agent_status", "scan_run").
std::string EventTypeName(const mamori::v1::Event& event);

// Builds the row (payload = event.SerializeAsString()). Text columns are
// made valid UTF-8 (invalid bytes and NUL become "\xNN") and capped (indexed
// columns: kMaxIndexedColumnBytes; others: kMaxTextColumnBytes); the payload
// keeps the exact bytes. kInvalidArgument when sequence is 0 or > INT64_MAX.
Result<EventRow> EventRowFromProto(const mamori::v1::Event& event);

inline constexpr size_t kMaxIndexedColumnBytes = 1024;
inline constexpr size_t kMaxTextColumnBytes = 8192;

// The text-column cleaning EventRowFromProto applies, exposed for queries
// that match those columns.
std::string CleanTextColumn(std::string_view bytes, size_t max_bytes);
// true when CleanTextColumn(bytes, max_bytes) == bytes (no allocation).
bool IsCleanTextColumn(std::string_view bytes, size_t max_bytes);

}  // namespace mamori::server

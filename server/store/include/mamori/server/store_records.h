// The records the server Store keeps and the queries it answers. Plain value
// types, no database or protobuf types: see store.h for the operations.
//
// Times are int64 nanoseconds since the Unix epoch (UTC) everywhere. The store
// never reads a clock: callers pass "now", so tests and replicas agree.
//
// Thread safety: value types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mamori::server {

// ---- agents (inventory) -----------------------------------------------------

struct AgentRecord {
  std::string agent_id;  // assigned at enrollment; the client certificate's CN
  std::string hostname;
  std::string os;
  std::string kernel;
  std::string agent_version;
  std::string signature_version;
  std::string sensor_mode;
  std::string cert_fingerprint;  // lowercase hex SHA-256 of the client certificate (DER)
  // The certificate a renewal replaced, still accepted until the new one is
  // first used (an agent that crashed before storing its new certificate
  // connects with the old one). Empty when none. Set only by RenewAgentCertificate.
  std::string previous_cert_fingerprint;
  int64_t enrolled_at_ns = 0;
  int64_t last_seen_ns = 0;      // 0 = never seen since enrollment
  bool revoked = false;
};

struct AgentView {
  AgentRecord agent;
  bool online = false;            // last_seen_ns >= now - online_window
  uint64_t acked_sequence = 0;    // see Store::AppendBatch
};

struct AgentQuery {
  enum class Presence { kAll, kOnline, kOffline };
  int64_t now_ns = 0;
  int64_t online_window_ns = 0;   // e.g. 3 heartbeat intervals
  Presence presence = Presence::kAll;
  bool include_revoked = true;
  uint32_t limit = 0;             // 0 = no limit
};

// ---- enrollment tokens -------------------------------------------------------

struct TokenSpec {
  bool reusable = false;          // false: the first successful enrollment uses it up
  int64_t created_at_ns = 0;
  int64_t expires_at_ns = 0;      // REQUIRES: > created_at_ns
  std::string created_by;
  std::string description;
};

// The secret exists only here, once; the store keeps its SHA-256.
struct NewToken {
  std::string token_id;           // public handle (listing, revoking)
  std::string secret;             // "mmt_" + 64 hex digits; give it to the installer
};

struct TokenRecord {
  std::string token_id;
  std::string secret_sha256;      // lowercase hex SHA-256 of the secret
  bool reusable = false;
  int64_t created_at_ns = 0;
  int64_t expires_at_ns = 0;
  std::string created_by;
  std::string description;
  uint64_t uses = 0;
  int64_t last_used_at_ns = 0;
  bool revoked = false;
};

// ---- events ------------------------------------------------------------------

// One event as the store indexes it: columns projected from a mamori.v1.Event
// (event_row.h builds them) plus the serialized event itself. Text columns are
// valid UTF-8 without NUL; empty means "not applicable" (stored as NULL).
struct EventRow {
  uint64_t sequence = 0;          // REQUIRES: 1 <= sequence <= INT64_MAX
  std::string type;               // "exec", "scan_finding", ... (docs/server-store.md)
  int64_t timestamp_ns = 0;       // the agent's clock
  int32_t pid = 0;
  std::string image;
  std::string process_sha256;
  std::string command_line;
  std::string file_path;
  std::string file_sha256;
  std::string rule_id;            // signature or behavior rule id
  int32_t severity = 0;           // mamori.v1.Severity
  std::string payload;            // serialized mamori.v1.Event (authoritative, exact bytes)
};

struct StoredEvent {
  std::string agent_id;
  int64_t received_at_ns = 0;     // server time of the AppendBatch that stored it
  EventRow row;
};

// Sequences an agent lost for good: [first, last], inclusive.
struct LostRange {
  uint64_t first = 0;
  uint64_t last = 0;
  std::string reason;
};

// Position in the event order (timestamp, agent id, sequence) for paging.
struct EventCursor {
  int64_t timestamp_ns = 0;
  std::string agent_id;
  uint64_t sequence = 0;
};

struct EventQuery {
  enum class Class { kAll, kFindings, kAlerts };
  Class cls = Class::kAll;        // kFindings: scan_finding + onaccess_detection; kAlerts: behavior_alert
  std::string agent_id;           // empty = all agents
  std::vector<std::string> types; // empty = all types
  std::optional<int64_t> from_ns; // timestamp >= from
  std::optional<int64_t> to_ns;   // timestamp <  to
  std::string image;              // exact process image
  std::string sha256;             // process image OR file hash (hex, any case)
  std::string rule_id;
  int32_t min_severity = 0;
  bool oldest_first = false;      // default: newest first
  std::optional<EventCursor> after;  // continue after this position (EventPage::next)
  uint32_t limit = 0;             // 0 = kDefaultEventLimit; at most kMaxEventLimit
};
inline constexpr uint32_t kDefaultEventLimit = 100;
inline constexpr uint32_t kMaxEventLimit = 10000;

struct EventPage {
  std::vector<StoredEvent> events;  // ordered by (timestamp, agent id, sequence), see oldest_first
  std::optional<EventCursor> next;  // set when the page is full: pass as `after`
};

// ---- commands ----------------------------------------------------------------

// pending -> delivered -> [running ->] succeeded | failed | rejected;
// pending -> cancelled; pending | delivered -> expired. A result (running or
// final) always wins over cancelled/expired (the agent did run it). Terminal
// states (succeeded, failed, rejected) never change once a result is in;
// running is not terminal and never overrides one.
enum class CommandState { kPending, kDelivered, kSucceeded, kFailed, kRejected, kExpired, kCancelled, kRunning };
std::string_view CommandStateName(CommandState s);  // "pending", "delivered", ...
std::optional<CommandState> CommandStateFromName(std::string_view name);
// succeeded, failed or rejected: the state never changes again.
bool CommandStateFinal(CommandState s);

struct NewCommand {
  std::string agent_id;
  std::string kind;               // "scan", "quarantine_restore", ... (the Command oneof member)
  std::string args;               // opaque bytes (the serialized mamori.v1.Command)
  std::string requested_by;
  int64_t created_at_ns = 0;
  int64_t expires_at_ns = 0;      // 0 = never
};

struct CommandRecord {
  std::string command_id;
  std::string agent_id;
  std::string kind;
  std::string args;
  std::string requested_by;
  CommandState state = CommandState::kPending;
  int64_t created_at_ns = 0;
  int64_t updated_at_ns = 0;
  int64_t expires_at_ns = 0;
  std::string result;             // opaque bytes (the serialized mamori.v1.CommandResult)
  std::string error;
};

struct CommandQuery {
  std::string agent_id;           // empty = all
  std::vector<CommandState> states;  // empty = all
  uint32_t limit = 0;             // 0 = kDefaultEventLimit; at most kMaxEventLimit
};

// ---- audit log ---------------------------------------------------------------

struct AuditEntry {
  int64_t id = 0;                 // assigned by AppendAudit, increasing
  int64_t at_ns = 0;
  std::string actor;              // console user, "system", agent id...
  std::string action;             // "command.create", "token.create", "agent.revoke", ...
  std::string target;             // what it acted on
  std::string details;            // free text / JSON
  std::string result;             // "ok", "denied", "unauthenticated", "error: ..."; "" before schema 2
};

struct AuditQuery {
  std::string actor;              // empty = all
  std::string action;             // empty = all
  std::optional<int64_t> from_ns;
  std::optional<int64_t> to_ns;
  int64_t before_id = 0;          // > 0: entries with id < before_id (paging)
  uint32_t limit = 0;             // 0 = kDefaultEventLimit; at most kMaxEventLimit
};

// ---- console users -------------------------------------------------------------

// A console user (mamorictl). Roles: "admin" (everything) and "analyst"
// (read, scan, quarantine list); docs/console.md has the table.
struct UserSpec {
  std::string name;               // REQUIRES: 1-64 of [A-Za-z0-9._@-]
  std::string role;               // "admin" | "analyst"
  int64_t created_at_ns = 0;
  std::string created_by;
};

// The API token exists only here, once; the store keeps its SHA-256.
struct NewUserToken {
  std::string name;
  std::string secret;             // "mmu_" + 64 hex digits; sent as "authorization: Bearer <secret>"
};

struct UserRecord {
  std::string name;
  std::string role;
  std::string token_sha256;       // lowercase hex SHA-256 of the API token
  int64_t created_at_ns = 0;
  std::string created_by;
  bool disabled = false;
  int64_t last_used_at_ns = 0;    // last successful AuthenticateUser
};

}  // namespace mamori::server

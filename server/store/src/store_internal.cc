#include "store_internal.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <limits>

#include "mamori/common/file_util.h"
#include "mamori/server/event_row.h"

namespace mamori::server {

std::string_view CommandStateName(CommandState s) {
  switch (s) {
    case CommandState::kPending: return "pending";
    case CommandState::kDelivered: return "delivered";
    case CommandState::kSucceeded: return "succeeded";
    case CommandState::kFailed: return "failed";
    case CommandState::kRejected: return "rejected";
    case CommandState::kExpired: return "expired";
    case CommandState::kCancelled: return "cancelled";
    case CommandState::kRunning: return "running";
  }
  return "unknown";
}

std::optional<CommandState> CommandStateFromName(std::string_view name) {
  for (CommandState s : {CommandState::kPending, CommandState::kDelivered, CommandState::kSucceeded,
                         CommandState::kFailed, CommandState::kRejected, CommandState::kExpired,
                         CommandState::kCancelled, CommandState::kRunning}) {
    if (CommandStateName(s) == name) return s;
  }
  return std::nullopt;
}

bool CommandStateFinal(CommandState s) {
  return s == CommandState::kSucceeded || s == CommandState::kFailed || s == CommandState::kRejected;
}

namespace internal {
namespace {

constexpr uint64_t kMaxSequence = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

std::string LowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool HasUpper(std::string_view s) {
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') return true;
  }
  return false;
}

bool IsCleanRow(const EventRow& r) {
  return IsCleanTextColumn(r.type, kMaxIndexedColumnBytes) && IsCleanTextColumn(r.image, kMaxIndexedColumnBytes) &&
         IsCleanTextColumn(r.process_sha256, kMaxIndexedColumnBytes) && !HasUpper(r.process_sha256) &&
         IsCleanTextColumn(r.command_line, kMaxTextColumnBytes) && IsCleanTextColumn(r.file_path, kMaxTextColumnBytes) &&
         IsCleanTextColumn(r.file_sha256, kMaxIndexedColumnBytes) && !HasUpper(r.file_sha256) &&
         IsCleanTextColumn(r.rule_id, kMaxIndexedColumnBytes);
}

void CleanRow(EventRow* r) {
  r->type = CleanTextColumn(r->type, kMaxIndexedColumnBytes);
  r->image = CleanTextColumn(r->image, kMaxIndexedColumnBytes);
  r->process_sha256 = CleanTextColumn(LowerAscii(r->process_sha256), kMaxIndexedColumnBytes);
  r->command_line = CleanTextColumn(r->command_line, kMaxTextColumnBytes);
  r->file_path = CleanTextColumn(r->file_path, kMaxTextColumnBytes);
  r->file_sha256 = CleanTextColumn(LowerAscii(r->file_sha256), kMaxIndexedColumnBytes);
  r->rule_id = CleanTextColumn(r->rule_id, kMaxIndexedColumnBytes);
}

}  // namespace

Result<std::string> RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size())) != 1) {
    return InternalError("RAND_bytes failed");
  }
  return HexEncode(raw);
}

std::string Sha256Hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(md.data()), len));
}

Result<PreparedBatch> PrepareBatch(std::span<const EventRow> events, std::span<const LostRange> lost) {
  PreparedBatch b;
  b.events.reserve(events.size());
  for (const EventRow& e : events) {
    if (e.sequence == 0 || e.sequence > kMaxSequence) {
      return InvalidArgumentError("event sequence " + std::to_string(e.sequence) + " out of range [1, 2^63-1]");
    }
    b.events.push_back(&e);
  }
  const auto by_sequence = [](const EventRow* a, const EventRow* c) { return a->sequence < c->sequence; };
  if (!std::is_sorted(b.events.begin(), b.events.end(), by_sequence)) {
    std::stable_sort(b.events.begin(), b.events.end(), by_sequence);
  }
  b.events.erase(std::unique(b.events.begin(), b.events.end(),
                             [](const EventRow* a, const EventRow* c) { return a->sequence == c->sequence; }),
                 b.events.end());
  for (const EventRow*& e : b.events) {
    if (IsCleanRow(*e)) continue;
    b.cleaned.push_back(*e);
    CleanRow(&b.cleaned.back());
    e = &b.cleaned.back();
  }
  b.lost.assign(lost.begin(), lost.end());
  for (const LostRange& r : b.lost) {
    if (r.first == 0 || r.first > r.last || r.last > kMaxSequence) {
      return InvalidArgumentError("lost range [" + std::to_string(r.first) + ", " + std::to_string(r.last) +
                                  "] invalid");
    }
  }
  std::sort(b.lost.begin(), b.lost.end(), [](const LostRange& a, const LostRange& c) { return a.first < c.first; });
  return b;
}

uint64_t AdvanceOverBatch(uint64_t acked, const PreparedBatch& batch) {
  const auto before = [](const EventRow* e, uint64_t s) { return e->sequence < s; };
  auto ev = std::lower_bound(batch.events.begin(), batch.events.end(), acked + 1, before);
  for (;;) {
    const uint64_t next = acked + 1;
    if (ev != batch.events.end() && (*ev)->sequence == next) {
      acked = next;
      ++ev;
      continue;
    }
    bool moved = false;
    for (const LostRange& r : batch.lost) {
      if (r.first <= next && next <= r.last && r.last > acked) {
        acked = r.last;
        moved = true;
      }
    }
    if (!moved) return acked;
    ev = std::lower_bound(ev, batch.events.end(), acked + 1, before);
  }
}

Status ValidateAgentId(std::string_view agent_id) {
  if (agent_id.empty()) return InvalidArgumentError("agent id is empty");
  if (agent_id.size() > 128) return InvalidArgumentError("agent id longer than 128 bytes");
  return Status::Ok();
}

Status RenewRefusal(std::string_view agent_id, bool exists, bool revoked) {
  if (!exists) return NotFoundError("agent " + std::string(agent_id) + " not found");
  if (revoked) return PermissionDeniedError("agent " + std::string(agent_id) + " is revoked");
  return UnauthenticatedError("the presented certificate is not agent " + std::string(agent_id) +
                              "'s current or previous one");
}

Result<uint32_t> EffectiveLimit(uint32_t limit) {
  if (limit == 0) return kDefaultEventLimit;
  if (limit > kMaxEventLimit) {
    return InvalidArgumentError("limit " + std::to_string(limit) + " above " + std::to_string(kMaxEventLimit));
  }
  return limit;
}

Status ValidateCommandOutcome(CommandState s) {
  if (CommandStateFinal(s) || s == CommandState::kRunning) return Status::Ok();
  return InvalidArgumentError("a command result must be running, succeeded, failed or rejected, not " +
                              std::string(CommandStateName(s)));
}

Status ValidateUserSpec(const UserSpec& spec) {
  if (spec.name.empty() || spec.name.size() > 64) return InvalidArgumentError("user name must be 1-64 characters");
  for (char c : spec.name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '@' || c == '-';
    if (!ok) return InvalidArgumentError("user name '" + spec.name + "': only letters, digits and . _ @ - allowed");
  }
  if (spec.role != "admin" && spec.role != "analyst") {
    return InvalidArgumentError("role '" + spec.role + "': must be admin or analyst");
  }
  return Status::Ok();
}

std::string SqlBuilder::Param(SqlValue v) {
  params_.push_back(std::move(v));
  return (dialect_ == Dialect::kPostgres ? "$" : "?") + std::to_string(params_.size());
}

std::string SqlBuilder::WhereClause() const {
  std::string out;
  for (size_t i = 0; i < conditions_.size(); ++i) out += (i == 0 ? " WHERE " : " AND ") + conditions_[i];
  return out;
}

BuiltQuery BuildEventQuery(const EventQuery& q, uint32_t limit, Dialect d) {
  SqlBuilder b(d);
  if (!q.agent_id.empty()) b.Where("agent_id = " + b.Param(q.agent_id));
  if (q.cls == EventQuery::Class::kFindings) b.Where("type IN ('scan_finding', 'onaccess_detection')");
  if (q.cls == EventQuery::Class::kAlerts) b.Where("type = 'behavior_alert'");
  if (!q.types.empty()) {
    std::string in;
    for (const auto& t : q.types) in += (in.empty() ? "" : ", ") + b.Param(t);
    b.Where("type IN (" + in + ")");
  }
  if (q.from_ns) b.Where("ts >= " + b.Param(*q.from_ns));
  if (q.to_ns) b.Where("ts < " + b.Param(*q.to_ns));
  if (!q.image.empty()) b.Where("image = " + b.Param(CleanTextColumn(q.image, kMaxIndexedColumnBytes)));
  if (!q.sha256.empty()) {
    const std::string p = b.Param(LowerAscii(q.sha256));
    b.Where("(process_sha256 = " + p + " OR file_sha256 = " + p + ")");
  }
  if (!q.rule_id.empty()) b.Where("rule_id = " + b.Param(CleanTextColumn(q.rule_id, kMaxIndexedColumnBytes)));
  if (q.min_severity > 0) b.Where("severity >= " + b.Param(int64_t{q.min_severity}));
  const char* dir = q.oldest_first ? "ASC" : "DESC";
  if (q.after) {
    const std::string ts = b.Param(q.after->timestamp_ns);
    const std::string agent = b.Param(q.after->agent_id);
    const std::string seq = b.Param(static_cast<int64_t>(q.after->sequence));
    b.Where(std::string("(ts, agent_id, seq) ") + (q.oldest_first ? ">" : "<") + " (" + ts + ", " + agent + ", " +
            seq + ")");
  }
  BuiltQuery out;
  const std::string lim = b.Param(static_cast<int64_t>(limit) + 1);
  out.sql = std::string("SELECT ") + kEventColumns + " FROM events" + b.WhereClause() + " ORDER BY ts " + dir +
            ", agent_id " + dir + ", seq " + dir + " LIMIT " + lim;
  out.params = b.params();
  return out;
}

BuiltQuery BuildCommandQuery(const CommandQuery& q, uint32_t limit, Dialect d) {
  SqlBuilder b(d);
  if (!q.agent_id.empty()) b.Where("agent_id = " + b.Param(q.agent_id));
  if (!q.states.empty()) {
    std::string in;
    for (CommandState s : q.states) in += (in.empty() ? "" : ", ") + b.Param(std::string(CommandStateName(s)));
    b.Where("state IN (" + in + ")");
  }
  BuiltQuery out;
  const std::string lim = b.Param(static_cast<int64_t>(limit));
  out.sql = std::string("SELECT ") + kCommandColumns + " FROM commands" + b.WhereClause() +
            " ORDER BY created_at DESC, command_id DESC LIMIT " + lim;
  out.params = b.params();
  return out;
}

BuiltQuery BuildAuditQuery(const AuditQuery& q, uint32_t limit, Dialect d) {
  SqlBuilder b(d);
  if (!q.actor.empty()) b.Where("actor = " + b.Param(q.actor));
  if (!q.action.empty()) b.Where("action = " + b.Param(q.action));
  if (q.from_ns) b.Where("at >= " + b.Param(*q.from_ns));
  if (q.to_ns) b.Where("at < " + b.Param(*q.to_ns));
  if (q.before_id > 0) b.Where("id < " + b.Param(q.before_id));
  BuiltQuery out;
  const std::string lim = b.Param(static_cast<int64_t>(limit));
  out.sql = std::string("SELECT ") + kAuditColumns + " FROM audit_log" + b.WhereClause() + " ORDER BY id DESC LIMIT " +
            lim;
  out.params = b.params();
  return out;
}

void FinishPage(uint32_t limit, EventPage* page) {
  if (page->events.size() <= limit) return;
  page->events.resize(limit);
  const StoredEvent& last = page->events.back();
  page->next = EventCursor{last.row.timestamp_ns, last.agent_id, last.row.sequence};
}

}  // namespace internal
}  // namespace mamori::server

// Local event log: every decision the agent makes (on-access verdicts, scan
// findings, quarantine actions, timeouts, queue overflows) as one JSON object
// per line in <data_dir>/events.jsonl. The telemetry uplink (issue 6) will
// ship the same events to the server; until then this file is the record.
//
// Thread safety: Append is thread-safe; each event is one write(2) of one line.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::agent {

// One event: a type and string/number fields, rendered as a JSON object with
// "ts" (RFC 3339, UTC, milliseconds) and "type" first.
class Event {
 public:
  explicit Event(std::string type) : type_(std::move(type)) {}
  Event& Str(std::string key, std::string value) {
    fields_.emplace_back(std::move(key), Field{std::move(value), false});
    return *this;
  }
  Event& Num(std::string key, int64_t value) {
    fields_.emplace_back(std::move(key), Field{std::to_string(value), true});
    return *this;
  }
  // `json` must be one valid JSON value (object, array...); it is embedded as is.
  Event& Json(std::string key, std::string json) {
    fields_.emplace_back(std::move(key), Field{std::move(json), true});
    return *this;
  }
  const std::string& type() const { return type_; }
  std::string ToJson() const;

  struct Field {
    std::string value;
    bool number;  // value is a JSON number (Num) or raw JSON (Json), not a string
  };
  // In the order added (keys may repeat; the last one wins for readers).
  const std::vector<std::pair<std::string, Field>>& fields() const { return fields_; }

 private:
  std::string type_;
  std::vector<std::pair<std::string, Field>> fields_;
};

class EventLog {
 public:
  // Opens (creating, 0600) `path` for appending. Empty path = log only.
  static Result<std::unique_ptr<EventLog>> Open(const std::string& path);
  ~EventLog();

  // Appends the event, mirrors it to the process log (info level; raw
  // behavior events at debug), and hands it to the forwarder if one is set.
  void Append(const Event& e);
  // Every appended event is also passed to `f` (the telemetry spool), on the
  // appending thread. REQUIRES: called before any concurrent Append.
  void SetForwarder(std::function<void(const Event&)> f) { forward_ = std::move(f); }
  uint64_t appended() const;

 private:
  EventLog() = default;
  int fd_ = -1;
  std::function<void(const Event&)> forward_;  // set before concurrent use
  mutable std::mutex mu_;
  uint64_t appended_ = 0;  // guarded by mu_
};

}  // namespace mamori::agent

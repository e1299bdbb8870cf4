// SIEM hand-off: every newly stored event (never a resent duplicate) as one
// JSON object per line (schema "mamori.siem.v1", fields in docs/server.md)
// to append-only files and/or syslog (RFC 5424 over UDP or a Unix datagram
// socket such as /dev/log).
//
// Delivery is best effort after the store commit: an output that fails
// (disk full, no syslog daemon) counts and logs the error and drops the
// records; ingest never waits for a SIEM. A crash between the commit and the
// write loses those records for the SIEM (the store keeps them).
//
// Thread safety: SiemForwarder and the outputs are thread-safe; Publish may
// run on many threads at once, and Reopen (SIGHUP) concurrently with it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mamori/common/status.h"
#include "mamori/server/config.h"
#include "mamori/v1/event.pb.h"

namespace mamori::server {

// One stored event as the outputs see it. Pointers and views must stay
// valid for the duration of the Publish call only.
struct SiemRecord {
  std::string_view agent_id;
  std::string_view hostname;  // from the agent's Hello; may be empty
  std::string_view type;      // the store's type name (EventTypeName)
  int64_t received_at_ns = 0;
  const mamori::v1::Event* event = nullptr;
};

enum class SiemClass { kActivity, kFinding, kAlert };
// kFinding: scan_finding, onaccess_detection; kAlert: behavior_alert (the store's views).
SiemClass ClassOfType(std::string_view type);
std::string_view SiemClassName(SiemClass c);  // "activity", "finding", "alert"

// The record as one JSON object, without a newline. with_details = false
// leaves out "process", "parent" and the payload object and adds
// "truncated": true (syslog messages over their size limit).
std::string SiemJson(const SiemRecord& record, bool with_details = true);

// "2026-11-26T20:48:14.123456789Z" (digits = 9) or with microseconds (digits = 6).
std::string Rfc3339(int64_t ns, int digits = 9);

class SiemOutput {
 public:
  virtual ~SiemOutput() = default;
  // Writes the records (already filtered). Errors are counted, not returned.
  virtual void Write(std::span<const SiemRecord> records) = 0;
  // Reopens the file / reconnects the socket (SIGHUP, logrotate).
  virtual Status Reopen() = 0;
  virtual const std::string& name() const = 0;

  uint64_t records_written() const { return written_.load(std::memory_order_relaxed); }
  uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }

 protected:
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> errors_{0};
};

// Opens one output. kInvalidArgument / errno-derived codes when the file
// cannot be opened or the address not resolved.
Result<std::unique_ptr<SiemOutput>> OpenSiemOutput(const SiemOutputConfig& config);

class SiemForwarder {
 public:
  // Opens every configured output (none: an empty forwarder).
  static Result<std::unique_ptr<SiemForwarder>> Open(const std::vector<SiemOutputConfig>& outputs);

  bool empty() const { return outputs_.empty(); }
  // Hands each record to every output whose filter takes it.
  void Publish(std::span<const SiemRecord> records);
  // Reopens every output; the first error is returned, the others still reopen.
  Status Reopen();
  uint64_t records_written() const;
  uint64_t errors() const;

 private:
  struct Entry {
    SiemOutputConfig::Filter filter;
    std::unique_ptr<SiemOutput> output;
  };
  std::vector<Entry> outputs_;  // constant after Open
};

}  // namespace mamori::server

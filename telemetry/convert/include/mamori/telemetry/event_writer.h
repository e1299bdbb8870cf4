// EventWriter: the one object the agent's producers hand events to. It
// converts (convert.h), picks the priority, and appends to the spool; the
// uplink ships what the spool holds.
//
// Drops are never silent: a kLow/kNormal record refused by a full spool is
// counted by the spool (the uplink turns the counts into a SensorDrops
// "spool"/"full" event); a kCritical record refused at the spool's hard
// ceiling (kResourceExhausted) is counted here and returned as the error, so
// the caller may keep it in its local log.
//
// Thread safety: all methods may be called from any number of threads (the
// spool's Append is thread-safe; the counters are atomic).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "mamori/common/status.h"
#include "mamori/telemetry/convert.h"
#include "mamori/telemetry/spool.h"

namespace mamori::telemetry {

class EventWriter {
 public:
  struct Stats {
    uint64_t written = 0;           // records appended
    uint64_t dropped = 0;           // kLow/kNormal refused by a full spool (also in the spool's counts)
    uint64_t critical_refused = 0;  // kCritical refused at the hard ceiling
    uint64_t errors = 0;            // other append errors
  };

  // `spool` is not owned and must outlive the writer. `sensor` names the
  // behavior sensor in SensorDrops events.
  explicit EventWriter(Spool* spool, std::string sensor = "behavior");

  // Each returns the record's sequence, Spool::kDropped (0) when a full spool
  // dropped it (counted), or the append error.
  Result<uint64_t> WriteBehaviorEvent(const behavior::Event& e);
  // Appends the triggering events first (as kCritical: they are the alert's
  // evidence), then the alert listing their sequences in related_sequences.
  // Returns the alert's sequence.
  Result<uint64_t> WriteAlert(const behavior::AlertRecord& a);
  Result<uint64_t> WriteAgentEvent(const agent::Event& e);
  Result<uint64_t> Write(const v1::Event& e, Priority priority);

  Stats stats() const;

 private:
  Spool* const spool_;        // constant after construction
  const std::string sensor_;  // constant after construction
  std::atomic<uint64_t> written_{0}, dropped_{0}, critical_refused_{0}, errors_{0};
};

}  // namespace mamori::telemetry

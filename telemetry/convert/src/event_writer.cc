#include "mamori/telemetry/event_writer.h"

#include <vector>

#include "mamori/behavior/event.h"
#include "mamori/behavior/monitor.h"
#include "mamori/common/log.h"

namespace mamori::telemetry {

EventWriter::EventWriter(Spool* spool, std::string sensor) : spool_(spool), sensor_(std::move(sensor)) {}

Result<uint64_t> EventWriter::Write(const v1::Event& e, Priority priority) {
  Result<uint64_t> seq = spool_->Append(priority, EncodeSpoolPayload(e));
  if (!seq.ok()) {
    if (seq.status().code() == StatusCode::kResourceExhausted) {
      critical_refused_.fetch_add(1, std::memory_order_relaxed);
    } else {
      errors_.fetch_add(1, std::memory_order_relaxed);
    }
    return seq;
  }
  if (*seq == Spool::kDropped) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
  } else {
    written_.fetch_add(1, std::memory_order_relaxed);
  }
  return seq;
}

Result<uint64_t> EventWriter::WriteBehaviorEvent(const behavior::Event& e) {
  Converted c = FromBehaviorEvent(e, sensor_);
  return Write(c.event, c.priority);
}

Result<uint64_t> EventWriter::WriteAlert(const behavior::AlertRecord& a) {
  std::vector<uint64_t> related;
  related.reserve(a.alert.events.size());
  for (const behavior::Event& e : a.alert.events) {
    Converted c = FromBehaviorEvent(e, sensor_);
    // Evidence of an alert is kept like the alert itself.
    Result<uint64_t> seq = Write(c.event, Priority::kCritical);
    if (seq.ok()) {
      related.push_back(*seq);
    } else {
      MAMORI_LOG(kWarning, "telemetry: an event of alert " << (a.alert.rule ? a.alert.rule->id : "")
                                                           << " was not spooled: " << seq.status().message());
    }
  }
  Converted alert = FromAlert(a, related);
  return Write(alert.event, alert.priority);
}

Result<uint64_t> EventWriter::WriteAgentEvent(const agent::Event& e) {
  Converted c = FromAgentEvent(e, NowNs());
  return Write(c.event, c.priority);
}

EventWriter::Stats EventWriter::stats() const {
  Stats s;
  s.written = written_.load(std::memory_order_relaxed);
  s.dropped = dropped_.load(std::memory_order_relaxed);
  s.critical_refused = critical_refused_.load(std::memory_order_relaxed);
  s.errors = errors_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace mamori::telemetry

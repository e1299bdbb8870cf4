// Converters from the agent's in-process event models to the wire contract
// (mamori.v1.Event, proto/mamori/v1/event.proto), each with the spool
// Priority it deserves. docs/telemetry-uplink.md has the full mapping table.
//
//   behavior::Event        -> ProcessActivity | FileActivity | NetworkActivity | SensorDrops
//   behavior::AlertRecord  -> BehaviorAlert
//   agent::Event (by type) -> ScanFinding | OnAccessDecision | QuarantineAction |
//                             AgentStatus | ScanRun | SensorDrops | ...; a type
//                             without a typed payload becomes a generic
//                             AgentStatus (trigger UNSPECIFIED, stored as
//                             "agent_status") carrying the type and all fields:
//                             nothing is dropped.
//
// Byte strings from the OS (paths, argv, user names) go to `bytes` fields
// unchanged. Values placed in proto `string` fields are made valid UTF-8
// (invalid bytes become the four characters \xHH), because proto3 refuses a
// whole message with a bad `string` field and one bad event must never block
// an agent's stream.
//
// The converted Event has sequence 0: the spool assigns the sequence when the
// record is appended, and the uplink writes it into the event on the way out.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "mamori/telemetry/spool.h"
#include "mamori/v1/event.pb.h"

namespace mamori::behavior {
struct Event;
struct ProcessContext;
struct AlertRecord;
}  // namespace mamori::behavior
namespace mamori::agent {
class Event;
}  // namespace mamori::agent

namespace mamori::telemetry {

struct Converted {
  v1::Event event;  // sequence 0
  Priority priority = Priority::kNormal;
};

// The spool priority of an event, from its payload (one table for every
// converter): raw process/file/network activity kLow; behavior alerts, scan
// findings, on-access detections and overflows, quarantine actions and drop
// reports kCritical; everything else (status, scan runs, command results,
// generic events) kNormal.
Priority PriorityOf(const v1::Event& e);

// `sensor` names the source in SensorDrops.sensor ("ebpf", "procconn", ...).
Converted FromBehaviorEvent(const behavior::Event& e, std::string_view sensor = "behavior");

// Event.process = ancestry[0] (else the last triggering event's process),
// Event.parent = ancestry[1] (else that event's parent); severity from the
// Sigma level. `related_sequences` are the spool sequences of the triggering
// events when the caller spooled them (EventWriter::WriteAlert does).
Converted FromAlert(const behavior::AlertRecord& a, std::span<const uint64_t> related_sequences = {});

// By agent::Event::type(); see the table in docs/telemetry-uplink.md.
// `timestamp_ns` is the event's time (agent::Event carries none).
Converted FromAgentEvent(const agent::Event& e, int64_t timestamp_ns);

// The spool's own drop report: SensorDrops{sensor "spool", drop_source "full"}.
v1::Event SpoolDropReport(const DropCounts& counts, int64_t timestamp_ns);

// A command's outcome as an ordinary sequenced event (kNormal).
Converted FromCommandResult(const v1::CommandResult& result, int64_t timestamp_ns);

void ToProcessContext(const behavior::ProcessContext& in, v1::ProcessContext* out);

// `s` if it is valid UTF-8, else a copy with each byte of an invalid sequence
// written as \xHH. For proto `string` fields.
std::string ValidUtf8(std::string_view s);

// The spool record for `e`: its serialization (sequence must be 0). The
// uplink frames these bytes into EventBatch unchanged.
std::string EncodeSpoolPayload(const v1::Event& e);

// CLOCK_REALTIME in ns.
int64_t NowNs();

}  // namespace mamori::telemetry

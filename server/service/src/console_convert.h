// Store records <-> console protos, filters, page tokens, command checks and
// the server's view of agents' quarantines. Internal to mamori_server_service
// (console_service.cc).
//
// Thread safety: free functions; BuildQuarantineView only reads the Store.
#pragma once

#include <string>

#include "mamori/common/status.h"
#include "mamori/server/store.h"
#include "mamori/v1/console.pb.h"

namespace mamori::server {

void ToProto(const AgentView& v, mamori::v1::AgentSummary* out);
void ToProto(const StoredEvent& e, mamori::v1::ConsoleEvent* out);
void CommandToProto(const CommandRecord& c, mamori::v1::CommandStatus* out);

// kInvalidArgument for a bad page token, limit or time range.
Result<EventQuery> QueryFromFilter(const mamori::v1::EventFilter& f, EventQuery::Class cls);
std::string EncodePageToken(const EventCursor& c);

// "scan", "quarantine_restore", ... ; "" when no kind is set.
std::string CommandKindName(const mamori::v1::Command& c);
// A short description of the arguments for the audit log ("paths=/tmp/x", "pid=42").
std::string CommandDetails(const mamori::v1::Command& c);
// kInvalidArgument naming the missing or bad argument.
Status ValidateCommand(mamori::v1::Command* c);

// Appends the agent's quarantine as the server knows it: the agent's latest
// successful quarantine_list result, updated by quarantine events stored
// after it; without such a result, built from the stored events alone.
Status BuildQuarantineView(Store& store, const std::string& agent_id, mamori::v1::ListQuarantineResponse* out);

}  // namespace mamori::server

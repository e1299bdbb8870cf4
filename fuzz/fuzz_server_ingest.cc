// Fuzzes the server's ingest of what an agent sends: bytes -> AgentMessage
// (protobuf parse, as gRPC does it) -> IngestBatch (limits, validation,
// EventRowFromProto, one AppendBatch into a real SQLite store, command
// results, the SIEM JSON-lines output). Only what a stream would do after
// mTLS, without the stream.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <climits>
#include <filesystem>
#include <memory>
#include <string>

#include "ingest.h"
#include "mamori/server/config.h"
#include "mamori/server/event_row.h"
#include "mamori/server/metrics.h"
#include "mamori/server/siem.h"
#include "mamori/server/sqlite_store.h"
#include "mamori/v1/agent_service.pb.h"
#include "server_fuzz_context.h"
#include "service_context.h"

namespace {

using namespace mamori::server;

constexpr char kAgent[] = "fuzz-agent";

struct Harness : fuzzing::ServerFuzzContext {
  Harness() : ServerFuzzContext("/tmp/mamori-fuzz-ingest-XXXXXX", {SiemToDevNull()}) {
    config.max_batch_events = 1000;
    config.max_batch_bytes = 1u << 20;
    AgentRecord a;
    a.agent_id = kAgent;
    a.hostname = "fuzz-host";
    if (!store->UpsertAgent(a).ok()) std::abort();
  }
  static SiemOutputConfig SiemToDevNull() {
    SiemOutputConfig out;
    out.kind = SiemOutputConfig::Kind::kFile;
    out.path = "/dev/null";  // formats every newly stored event as JSON, keeps nothing
    return out;
  }
};

Harness& H() {
  static Harness h;  // one store for the whole run; removed at exit
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Harness& h = H();
  mamori::v1::AgentMessage m;
  if (!m.ParseFromArray(data, static_cast<int>(size))) return 0;  // gRPC ends the stream here
  if (!m.has_batch()) return 0;
  for (const auto& e : m.batch().events()) (void)EventTypeName(e);
  uint64_t ack = 0;
  grpc::Status st = IngestBatch(&h.svc, kAgent, "fuzz-host", m.batch(), 0, &ack);
  if (st.ok()) {
    if (ack > static_cast<uint64_t>(INT64_MAX)) __builtin_trap();  // acks stay in the sequence range
  } else if (st.error_message().empty()) {
    __builtin_trap();  // every refusal says why
  }
  return 0;
}

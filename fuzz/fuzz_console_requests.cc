// Fuzzes the server's console request handling: bytes -> one ConsoleService
// request (protobuf parse, as gRPC does it) -> the real handler
// (ConsoleServiceImpl: token authentication, role checks, filter and page
// token parsing, command validation, quarantine view, audit) against a real
// SQLite store holding two agents, their events and quarantine actions, and
// an admin and an analyst user. Streaming RPCs (FollowEvents, WaitCommand)
// are left out: they share EventsPage/StatusOf with the unary ones.
//
// Input: byte 0 picks the RPC, byte 1 the caller (admin, analyst, a disabled
// user, a token made of fuzz bytes), the rest is the request message.
#include <grpcpp/test/server_context_test_spouse.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "console_service.h"
#include "ingest.h"
#include "mamori/server/config.h"
#include "mamori/server/metrics.h"
#include "mamori/server/siem.h"
#include "mamori/server/sqlite_store.h"
#include "mamori/v1/agent_service.pb.h"
#include "mamori/v1/console.pb.h"
#include "server_fuzz_context.h"
#include "service_context.h"

namespace {

using namespace mamori::server;
namespace v1 = mamori::v1;

struct Harness : fuzzing::ServerFuzzContext {
  std::unique_ptr<ConsoleServiceImpl> console;
  std::string admin, analyst, disabled;

  Harness() : ServerFuzzContext("/tmp/mamori-fuzz-console-XXXXXX", {}) {
    for (const char* id : {"agent-a", "agent-b"}) {
      AgentRecord a;
      a.agent_id = id;
      a.hostname = std::string(id) + ".example.org";
      a.last_seen_ns = NowNs();
      if (!store->UpsertAgent(a).ok()) std::abort();
    }
    // Events of several kinds through the real ingest path, so the console
    // pages, filters and the quarantine view have rows to work on.
    v1::EventBatch batch;
    const int64_t now = NowNs();
    for (int i = 1; i <= 12; ++i) {
      v1::Event* e = batch.add_events();
      e->set_sequence(static_cast<uint64_t>(i));
      e->set_timestamp_ns(now - (12 - i) * 1'000'000'000LL);
      e->mutable_process()->set_pid(100 + i);
      e->mutable_process()->set_image("/usr/bin/tool" + std::to_string(i % 3));
      switch (i % 4) {
        case 0:
          e->mutable_scan_finding()->set_path("/tmp/x" + std::to_string(i));
          e->mutable_scan_finding()->set_signature("Mamori.Test.EICAR");
          break;
        case 1: {
          auto* q = e->mutable_quarantine();
          q->set_action(v1::QuarantineAction::ACTION_QUARANTINE);
          q->set_outcome(v1::QuarantineAction::OUTCOME_SUCCEEDED);
          q->set_quarantine_id(std::string(32, static_cast<char>('a' + i % 6)));
          q->set_path("/tmp/q" + std::to_string(i));
          q->set_signature("Mamori.Test.EICAR");
          break;
        }
        case 2:
          e->mutable_behavior_alert()->set_rule_id("rule-" + std::to_string(i));
          break;
        default:
          e->mutable_process_activity()->set_kind(v1::ProcessActivity::KIND_EXEC);
      }
    }
    uint64_t ack = 0;
    if (!IngestBatch(&svc, "agent-a", "agent-a.example.org", batch, 0, &ack).ok()) std::abort();

    admin = User("root-admin", "admin");
    analyst = User("an-analyst", "analyst");
    disabled = User("gone", "admin");
    if (!store->SetUserDisabled("gone", true).ok()) std::abort();
    console = std::make_unique<ConsoleServiceImpl>(&svc, [] {});
  }
  std::string User(const std::string& name, const std::string& role) {
    UserSpec u;
    u.name = name;
    u.role = role;
    u.created_at_ns = NowNs();
    u.created_by = "fuzz";
    auto t = store->CreateUser(u);
    if (!t.ok()) std::abort();
    return t->secret;
  }
  ~Harness() { console.reset(); }
};

Harness& H() {
  static Harness h;  // one store for the whole run; removed at exit
  return h;
}

template <typename Req, typename Resp, typename Call>
grpc::Status Invoke(grpc::ServerContext* ctx, const uint8_t* data, size_t size, Call call) {
  Req req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return grpc::Status(grpc::StatusCode::INTERNAL, "unparsable");
  Resp resp;
  return call(ctx, &req, &resp);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  Harness& h = H();
  const uint8_t rpc = data[0] % 12;
  const uint8_t who = data[1] % 4;
  data += 2;
  size -= 2;

  grpc::ServerContext ctx;
  grpc::testing::ServerContextTestSpouse spouse(&ctx);
  std::string token;
  switch (who) {
    case 0: token = h.admin; break;
    case 1: token = h.analyst; break;
    case 2: token = h.disabled; break;
    default: {
      // A token made of the first bytes; the rest stays the request.
      size_t n = size < 16 ? size : 16;
      token.assign(reinterpret_cast<const char*>(data), n);
      data += n;
      size -= n;
    }
  }
  // Metadata values are printable on the wire; gRPC refuses others before the handler.
  for (char& c : token) {
    if (c < 0x20 || c > 0x7e) c = '_';
  }
  spouse.AddClientMetadata("authorization", "Bearer " + token);

  ConsoleServiceImpl& c = *h.console;
  grpc::Status st;
  switch (rpc) {
    case 0: st = Invoke<v1::WhoAmIRequest, v1::WhoAmIResponse>(&ctx, data, size, [&](auto* x, auto* q, auto* r) { return c.WhoAmI(x, q, r); }); break;
    case 1: st = Invoke<v1::ListAgentsRequest, v1::ListAgentsResponse>(&ctx, data, size, [&](auto* x, auto* q, auto* r) { return c.ListAgents(x, q, r); }); break;
    case 2: st = Invoke<v1::GetAgentRequest, v1::AgentSummary>(&ctx, data, size, [&](auto* x, auto* q, auto* r) { return c.GetAgent(x, q, r); }); break;
    case 3: st = Invoke<v1::EventFilter, v1::EventPageResponse>(&ctx, data, size, [&](auto* x, auto* q, auto* r) { return c.QueryEvents(x, q, r); }); break;
    case 4: st = Invoke<v1::EventFilter, v1::EventPageResponse>(&ctx, data, size, [&](auto* x, auto* q, auto* r) { return c.ListFindings(x, q, r); }); break;
    case 5: st = Invoke<v1::EventFilter, v1::EventPageResponse>(&ctx, data, size, [&](auto* x, auto* q, auto* r) { return c.ListAlerts(x, q, r); }); break;
    case 6: st = Invoke<v1::CreateCommandRequest, v1::CommandStatus>(&ctx, data, size, [&](auto* x, auto* q, auto* r) { return c.CreateCommand(x, q, r); }); break;
    case 7: st = Invoke<v1::GetCommandRequest, v1::CommandStatus>(&ctx, data, size, [&](auto* x, auto* q, auto* r) { return c.GetCommand(x, q, r); }); break;
    case 8: st = Invoke<v1::ListCommandsRequest, v1::ListCommandsResponse>(&ctx, data, size, [&](auto* x, auto* q, auto* r) { return c.ListCommands(x, q, r); }); break;
    case 9: st = Invoke<v1::ListQuarantineRequest, v1::ListQuarantineResponse>(&ctx, data, size, [&](auto* x, auto* q, auto* r) { return c.ListQuarantine(x, q, r); }); break;
    case 10: st = Invoke<v1::SignatureRolloutRequest, v1::SignatureRolloutResponse>(&ctx, data, size, [&](auto* x, auto* q, auto* r) { return c.SignatureRollout(x, q, r); }); break;
    default: st = Invoke<v1::ListAuditRequest, v1::ListAuditResponse>(&ctx, data, size, [&](auto* x, auto* q, auto* r) { return c.ListAudit(x, q, r); }); break;
  }
  // Contracts every refusal keeps: it says why, and a caller who is not a
  // known enabled user never gets past authentication.
  if (!st.ok() && st.error_message().empty()) __builtin_trap();
  if ((who == 2 || who == 3) && st.ok()) __builtin_trap();
  return 0;
}

// mamorictl: the admin console of mamori-server (ConsoleService).
// Exit codes: 0 ok; 1 the remote command failed (or, for scan --wait, the
// scan found something: the agent's scan exit code); 2 usage, connection,
// authentication, permission or not-found errors. docs/console.md.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "client.h"
#include "format.h"

namespace mamori::ctl {
namespace {

namespace v1 = mamori::v1;

constexpr const char* kUsage =
    "usage: mamorictl [CONNECTION] [--json] COMMAND ...\n"
    "  agents list [--online]             agents show AGENT\n"
    "  events [--agent A] [--type T]... [--since T] [--until T] [--process IMAGE] [--hash SHA256] [--limit N] "
    "[--follow]\n"
    "  findings [filters]                 alerts [filters]\n"
    "  scan AGENT PATH... [--wait] [--report-only]\n"
    "  quarantine list [AGENT] [--refresh]\n"
    "  quarantine restore AGENT ITEM [--to PATH] [--allow] [--wait]\n"
    "  quarantine delete AGENT ITEM [--wait]\n"
    "  signatures push BUNDLE [--agents A,B] [--version V]     signatures status\n"
    "  kill AGENT PID [--tree] [--signal N] [--wait]\n"
    "  commands [AGENT] [--state S]       command show ID       command wait ID [--timeout S]\n"
    "  audit [--actor NAME] [--action A] [--limit N]          whoami\n"
    "CONNECTION (flags > environment > config file):\n"
    "  --server HOST:PORT (MAMORI_SERVER, default 127.0.0.1:8443)  --ca FILE (MAMORI_CA)\n"
    "  --token TOKEN (MAMORI_TOKEN) | --token-file FILE | --cert FILE --key FILE (MAMORI_CERT, MAMORI_KEY)\n"
    "  --insecure (MAMORI_INSECURE=1; plaintext, loopback test servers)\n"
    "  --config FILE (MAMORI_CTL_CONFIG, default ~/.config/mamori/mamorictl.conf if present)\n"
    "  --timeout SECONDS (per call, default 30)\n"
    "Exit: 0 ok, 1 remote command failed (scan --wait: 1 = found), 2 usage/connection/auth/permission/not found.\n";

constexpr int kOk = 0, kFailed = 1, kError = 2;

int Usage(const std::string& msg) {
  std::fprintf(stderr, "mamorictl: %s\n%s", msg.c_str(), kUsage);
  return kError;
}

// Clear messages for the errors a person meets.
int RpcError(const std::string& what, const grpc::Status& s) {
  std::string hint;
  switch (s.error_code()) {
    case grpc::StatusCode::UNAUTHENTICATED:
      hint = " (check MAMORI_TOKEN / --token; tokens come from `mamori-server user add`)";
      break;
    case grpc::StatusCode::UNAVAILABLE:
      hint = " (is mamori-server running there? with TLS, --ca must be its CA: `mamori-server ca export`)";
      break;
    default:
      break;
  }
  static const std::map<grpc::StatusCode, const char*> kNames = {
      {grpc::StatusCode::UNAUTHENTICATED, "unauthenticated"},
      {grpc::StatusCode::PERMISSION_DENIED, "permission denied"},
      {grpc::StatusCode::NOT_FOUND, "not found"},
      {grpc::StatusCode::INVALID_ARGUMENT, "invalid argument"},
      {grpc::StatusCode::UNAVAILABLE, "unavailable"},
      {grpc::StatusCode::DEADLINE_EXCEEDED, "timed out"},
      {grpc::StatusCode::FAILED_PRECONDITION, "refused"}};
  auto it = kNames.find(s.error_code());
  std::fprintf(stderr, "mamorictl: %s: %s: %s%s\n", what.c_str(), it != kNames.end() ? it->second : "error",
               s.error_message().c_str(), hint.c_str());
  return kError;
}

// Arguments of one verb: positionals and --flags (value flags take the next word).
struct Args {
  std::vector<std::string> pos;
  std::map<std::string, std::vector<std::string>> flags;
  bool Has(const std::string& f) const { return flags.count(f) > 0; }
  std::string Get(const std::string& f, const std::string& def = "") const {
    auto it = flags.find(f);
    return it == flags.end() || it->second.empty() ? def : it->second.back();
  }
};

const std::set<std::string> kValueFlags = {"--server",  "--ca",      "--cert",  "--key",    "--token",  "--token-file",
                                           "--config",  "--timeout", "--agent", "--type",   "--since",  "--until",
                                           "--process", "--hash",    "--limit", "--to",     "--agents", "--version",
                                           "--signal",  "--state",   "--actor", "--action", "--rule"};
const std::set<std::string> kBoolFlags = {"--insecure",    "--json",         "--follow", "--wait",
                                          "--allow",       "--tree",         "--online", "--refresh",
                                          "--report-only", "--oldest-first", "--help"};

Result<Args> Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string w = argv[i];
    if (w.rfind("--", 0) == 0 && w.size() > 2) {
      std::string value;
      const size_t eq = w.find('=');
      if (eq != std::string::npos) {
        value = w.substr(eq + 1);
        w = w.substr(0, eq);
        if (!kValueFlags.count(w)) return InvalidArgumentError("option " + w + " takes no value");
      } else if (kValueFlags.count(w)) {
        if (i + 1 >= argc) return InvalidArgumentError("option " + w + " needs a value");
        value = argv[++i];
      } else if (!kBoolFlags.count(w)) {
        return InvalidArgumentError("unknown option " + w);
      }
      a.flags[w].push_back(value);
    } else {
      a.pos.push_back(w);
    }
  }
  return a;
}

// "2026-11-27T01:00:00Z", a Unix time in seconds, or "-1h" / "-30m" / "-2d" (ago).
Result<int64_t> ParseTime(const std::string& s) {
  const int64_t now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  if (!s.empty() && s[0] == '-') {
    char unit = s.back();
    int64_t n = std::atoll(s.substr(1, s.size() - 2).c_str());
    int64_t mul = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : unit == 'd' ? 86400 : 0;
    if (mul == 0 || n <= 0) return InvalidArgumentError("time '" + s + "': use -30s, -15m, -2h or -7d");
    return now - n * mul * 1'000'000'000;
  }
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end != nullptr && *end == '\0') return static_cast<int64_t>(timegm(&tm)) * 1'000'000'000;
  char* e = nullptr;
  const long long secs = std::strtoll(s.c_str(), &e, 10);
  if (!s.empty() && e != nullptr && *e == '\0') return static_cast<int64_t>(secs) * 1'000'000'000;
  return InvalidArgumentError("time '" + s + "': use 2026-11-27T01:00:00Z, Unix seconds or -2h");
}

class Ctl {
 public:
  Ctl(Client* c, bool json) : c_(c), json_(json) {}

  int Agents(const Args& a);
  int Events(const Args& a, const std::string& which);
  int Scan(const Args& a);
  int Quarantine(const Args& a);
  int Signatures(const Args& a);
  int Kill(const Args& a);
  int Commands(const Args& a);
  int Command(const Args& a);
  int Audit(const Args& a);
  int WhoAmI();

 private:
  // Creates the command and prints its state; waits when asked.
  int Submit(const std::string& agent, const v1::Command& cmd, bool wait, const std::string& what);
  int Wait(const std::string& command_id, uint32_t timeout_s);
  void PrintStatus(const v1::CommandStatus& s);

  Client* c_;
  bool json_;
};

int Ctl::WhoAmI() {
  v1::WhoAmIResponse r;
  grpc::Status s = c_->stub().WhoAmI(c_->Unary().get(), v1::WhoAmIRequest(), &r);
  if (!s.ok()) return RpcError("whoami", s);
  if (json_) {
    std::printf("%s\n", ToJson(r).c_str());
  } else {
    std::string allowed;
    for (const auto& k : r.allowed()) allowed += (allowed.empty() ? "" : ", ") + k;
    std::printf("%s (%s); may run: %s\n", r.name().c_str(), r.role().c_str(), allowed.c_str());
  }
  return kOk;
}

int Ctl::Agents(const Args& a) {
  const std::string sub = a.pos.size() > 1 ? a.pos[1] : "list";
  if (sub == "list") {
    v1::ListAgentsRequest req;
    req.set_online_only(a.Has("--online"));
    v1::ListAgentsResponse r;
    grpc::Status s = c_->stub().ListAgents(c_->Unary().get(), req, &r);
    if (!s.ok()) return RpcError("agents list", s);
    Table t({"AGENT", "HOSTNAME", "ONLINE", "LAST SEEN", "VERSION", "SIGNATURES", "STATE"});
    for (const auto& g : r.agents()) {
      if (json_) {
        std::printf("%s\n", ToJson(g).c_str());
        continue;
      }
      t.Add({g.agent_id(), g.info().hostname(), g.online() ? "yes" : "no", Time(g.last_seen_ns()),
             g.info().agent_version(), g.info().signature_version(), g.revoked() ? "revoked" : "active"});
    }
    if (!json_) std::printf("%s", t.Render().c_str());
    return kOk;
  }
  if (sub == "show" && a.pos.size() == 3) {
    v1::GetAgentRequest req;
    req.set_agent_id(a.pos[2]);
    v1::AgentSummary g;
    grpc::Status s = c_->stub().GetAgent(c_->Unary().get(), req, &g);
    if (!s.ok()) return RpcError("agents show " + a.pos[2], s);
    if (json_) {
      std::printf("%s\n", ToJson(g).c_str());
    } else {
      std::printf(
          "agent:       %s\nhostname:    %s\nos:          %s (%s)\nversion:     %s\nsignatures:  %s\n"
          "sensor:      %s\nonline:      %s (last seen %s)\nenrolled:    %s\nacked:       %llu\nstate:       %s\n",
          g.agent_id().c_str(), g.info().hostname().c_str(), g.info().os().c_str(), g.info().kernel().c_str(),
          g.info().agent_version().c_str(), g.info().signature_version().c_str(), g.info().sensor_mode().c_str(),
          g.online() ? "yes" : "no", Time(g.last_seen_ns()).c_str(), Time(g.enrolled_at_ns()).c_str(),
          static_cast<unsigned long long>(g.acked_sequence()), g.revoked() ? "revoked" : "active");
    }
    return kOk;
  }
  return Usage("agents list | agents show AGENT");
}

int Ctl::Events(const Args& a, const std::string& which) {
  v1::EventFilter f;
  f.set_agent_id(a.Get("--agent"));
  if (a.flags.count("--type")) {
    for (const auto& t : a.flags.at("--type")) f.add_types(t);
  }
  if (a.Has("--since")) {
    Result<int64_t> t = ParseTime(a.Get("--since"));
    if (!t.ok()) return Usage(t.status().message());
    f.set_since_ns(*t);
  }
  if (a.Has("--until")) {
    Result<int64_t> t = ParseTime(a.Get("--until"));
    if (!t.ok()) return Usage(t.status().message());
    f.set_until_ns(*t);
  }
  f.set_process(a.Get("--process"));
  f.set_sha256(a.Get("--hash"));
  f.set_rule_id(a.Get("--rule"));
  f.set_limit(static_cast<uint32_t>(std::atoi(a.Get("--limit", "0").c_str())));
  f.set_oldest_first(a.Has("--oldest-first"));
  auto print = [&](const v1::ConsoleEvent& e) {
    if (json_) {
      std::printf("%s\n", EventJson(e).c_str());
    } else {
      std::printf("%s  %-36s  %-20s  %s\n", Time(e.event().timestamp_ns()).c_str(), e.agent_id().c_str(),
                  e.type().c_str(), EventSummary(e).c_str());
    }
    std::fflush(stdout);
  };
  if (a.Has("--follow")) {
    if (which != "events") return Usage("--follow works with `events` (use --type scan_finding to follow findings)");
    auto ctx = c_->Stream();
    auto reader = c_->stub().FollowEvents(ctx.get(), f);
    v1::ConsoleEvent e;
    while (reader->Read(&e)) print(e);
    grpc::Status s = reader->Finish();
    return s.ok() ? kOk : RpcError("events --follow", s);
  }
  v1::EventPageResponse r;
  grpc::Status s = which == "findings" ? c_->stub().ListFindings(c_->Unary().get(), f, &r)
                   : which == "alerts" ? c_->stub().ListAlerts(c_->Unary().get(), f, &r)
                                       : c_->stub().QueryEvents(c_->Unary().get(), f, &r);
  if (!s.ok()) return RpcError(which, s);
  if (!json_) std::printf("%-20s  %-36s  %-20s  %s\n", "TIME", "AGENT", "TYPE", "WHAT");
  for (const auto& e : r.events()) print(e);
  if (!r.next_page_token().empty() && !json_) std::fprintf(stderr, "(more: raise --limit or narrow the filters)\n");
  return kOk;
}

void Ctl::PrintStatus(const v1::CommandStatus& st) {
  if (json_) {
    std::printf("%s\n", ToJson(st).c_str());
  } else {
    std::printf("command %s %s on %s: %s\n", st.command_id().c_str(), st.kind().c_str(), st.agent_id().c_str(),
                DescribeState(st).c_str());
  }
  std::fflush(stdout);
}

int Ctl::Wait(const std::string& id, uint32_t timeout_s) {
  v1::WaitCommandRequest req;
  req.set_command_id(id);
  req.set_timeout_s(timeout_s);
  auto ctx = c_->Stream();
  auto reader = c_->stub().WaitCommand(ctx.get(), req);
  v1::CommandStatus st, last;
  bool any = false;
  while (reader->Read(&st)) {
    PrintStatus(st);
    last = st;
    any = true;
  }
  grpc::Status s = reader->Finish();
  if (!s.ok()) return RpcError("waiting for command " + id, s);
  if (!any || !last.final()) {
    std::fprintf(stderr, "mamorictl: command %s is still %s; `mamorictl command wait %s` to keep waiting\n", id.c_str(),
                 any ? last.state().c_str() : "unknown", id.c_str());
    return kFailed;
  }
  if (last.state() != "succeeded") return kFailed;
  if (last.result().has_scan())
    return last.result().scan().exit_code() == 2 ? kError : last.result().scan().exit_code();
  return kOk;
}

int Ctl::Submit(const std::string& agent, const v1::Command& cmd, bool wait, const std::string& what) {
  v1::CreateCommandRequest req;
  req.set_agent_id(agent);
  *req.mutable_command() = cmd;
  v1::CommandStatus st;
  grpc::Status s = c_->stub().CreateCommand(c_->Unary().get(), req, &st);
  if (!s.ok()) return RpcError(what, s);
  PrintStatus(st);
  if (!wait) return kOk;
  return Wait(st.command_id(), 0);
}

int Ctl::Scan(const Args& a) {
  if (a.pos.size() < 3) return Usage("scan AGENT PATH...");
  v1::Command cmd;
  for (size_t i = 2; i < a.pos.size(); ++i) cmd.mutable_scan()->add_paths(a.pos[i]);
  cmd.mutable_scan()->set_apply_policy(!a.Has("--report-only"));
  return Submit(a.pos[1], cmd, a.Has("--wait"), "scan");
}

int Ctl::Quarantine(const Args& a) {
  const std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  if (sub == "list") {
    if (a.Has("--refresh")) {
      if (a.pos.size() != 3) return Usage("quarantine list AGENT --refresh");
      v1::Command cmd;
      cmd.mutable_quarantine_list();
      const bool was_json = json_;
      json_ = false;
      int rc = Submit(a.pos[2], cmd, true, "quarantine list --refresh");
      json_ = was_json;
      if (rc != kOk) return rc;
    }
    v1::ListQuarantineRequest req;
    if (a.pos.size() > 2) req.set_agent_id(a.pos[2]);
    v1::ListQuarantineResponse r;
    grpc::Status s = c_->stub().ListQuarantine(c_->Unary().get(), req, &r);
    if (!s.ok()) return RpcError("quarantine list", s);
    Table t({"AGENT", "ITEM", "QUARANTINED", "DETECTION", "SHA256", "PATH", "SOURCE"});
    for (const auto& it : r.items()) {
      if (json_) {
        std::printf("%s\n", ToJson(it).c_str());
        continue;
      }
      t.Add({it.agent_id(), it.entry().quarantine_id(), Time(it.entry().quarantined_at_ns()), it.entry().detection(),
             it.entry().sha256().substr(0, 16), it.entry().original_path(), it.source()});
    }
    if (!json_) std::printf("%s", t.Render().c_str());
    return kOk;
  }
  if (sub == "restore" && a.pos.size() == 4) {
    v1::Command cmd;
    cmd.mutable_quarantine_restore()->set_quarantine_id(a.pos[3]);
    cmd.mutable_quarantine_restore()->set_to(a.Get("--to"));
    cmd.mutable_quarantine_restore()->set_allow_list(a.Has("--allow"));
    return Submit(a.pos[2], cmd, a.Has("--wait"), "quarantine restore");
  }
  if (sub == "delete" && a.pos.size() == 4) {
    v1::Command cmd;
    cmd.mutable_quarantine_delete()->set_quarantine_id(a.pos[3]);
    return Submit(a.pos[2], cmd, a.Has("--wait"), "quarantine delete");
  }
  return Usage("quarantine list [AGENT] | quarantine restore AGENT ITEM | quarantine delete AGENT ITEM");
}

int Ctl::Signatures(const Args& a) {
  const std::string sub = a.pos.size() > 1 ? a.pos[1] : "";
  if (sub == "status") {
    v1::SignatureRolloutResponse r;
    grpc::Status s = c_->stub().SignatureRollout(c_->Unary().get(), v1::SignatureRolloutRequest(), &r);
    if (!s.ok()) return RpcError("signatures status", s);
    Table t({"AGENT", "HOSTNAME", "ONLINE", "IN USE", "LAST PUSH", "PUSH STATE", "ERROR"});
    for (const auto& e : r.agents()) {
      if (json_) {
        std::printf("%s\n", ToJson(e).c_str());
        continue;
      }
      t.Add({e.agent_id(), e.hostname(), e.online() ? "yes" : "no", e.signature_version(),
             e.push_command_id().empty() ? "-" : e.push_version(), e.push_state().empty() ? "-" : e.push_state(),
             e.push_error()});
    }
    if (!json_) std::printf("%s", t.Render().c_str());
    return kOk;
  }
  if (sub == "push" && a.pos.size() == 3) {
    std::ifstream in(a.pos[2], std::ios::binary);
    if (!in) return Usage("cannot read bundle '" + a.pos[2] + "'");
    std::ostringstream ss;
    ss << in.rdbuf();
    v1::Command cmd;
    cmd.mutable_signature_push()->set_bundle(ss.str());
    cmd.mutable_signature_push()->set_version(a.Get("--version"));
    std::vector<std::string> agents;
    std::stringstream list(a.Get("--agents"));
    for (std::string id; std::getline(list, id, ',');) {
      if (!id.empty()) agents.push_back(id);
    }
    if (agents.empty()) {
      v1::ListAgentsResponse r;
      grpc::Status s = c_->stub().ListAgents(c_->Unary().get(), v1::ListAgentsRequest(), &r);
      if (!s.ok()) return RpcError("signatures push: listing agents", s);
      for (const auto& g : r.agents()) {
        if (!g.revoked()) agents.push_back(g.agent_id());
      }
    }
    int rc = kOk;
    for (const auto& id : agents) rc = std::max(rc, Submit(id, cmd, false, "signatures push to " + id));
    if (agents.empty()) std::fprintf(stderr, "mamorictl: no agents to push to\n");
    return rc;
  }
  return Usage("signatures push BUNDLE [--agents A,B] | signatures status");
}

int Ctl::Kill(const Args& a) {
  if (a.pos.size() != 3) return Usage("kill AGENT PID [--tree]");
  v1::Command cmd;
  cmd.mutable_kill_process()->set_pid(std::atoi(a.pos[2].c_str()));
  cmd.mutable_kill_process()->set_tree(a.Has("--tree"));
  cmd.mutable_kill_process()->set_signal(std::atoi(a.Get("--signal", "0").c_str()));
  return Submit(a.pos[1], cmd, a.Has("--wait"), "kill");
}

int Ctl::Commands(const Args& a) {
  v1::ListCommandsRequest req;
  if (a.pos.size() > 1) req.set_agent_id(a.pos[1]);
  if (a.flags.count("--state")) {
    for (const auto& s : a.flags.at("--state")) req.add_states(s);
  }
  req.set_limit(static_cast<uint32_t>(std::atoi(a.Get("--limit", "0").c_str())));
  v1::ListCommandsResponse r;
  grpc::Status s = c_->stub().ListCommands(c_->Unary().get(), req, &r);
  if (!s.ok()) return RpcError("commands", s);
  Table t({"COMMAND", "AGENT", "KIND", "STATE", "BY", "CREATED", "UPDATED"});
  for (const auto& c : r.commands()) {
    if (json_) {
      std::printf("%s\n", ToJson(c).c_str());
      continue;
    }
    t.Add({c.command_id(), c.agent_id(), c.kind(), DescribeState(c), c.requested_by(), Time(c.created_at_ns()),
           Time(c.updated_at_ns())});
  }
  if (!json_) std::printf("%s", t.Render().c_str());
  return kOk;
}

int Ctl::Command(const Args& a) {
  if (a.pos.size() == 3 && a.pos[1] == "show") {
    v1::GetCommandRequest req;
    req.set_command_id(a.pos[2]);
    v1::CommandStatus st;
    grpc::Status s = c_->stub().GetCommand(c_->Unary().get(), req, &st);
    if (!s.ok()) return RpcError("command show", s);
    PrintStatus(st);
    return kOk;
  }
  if (a.pos.size() == 3 && a.pos[1] == "wait") {
    return Wait(a.pos[2], static_cast<uint32_t>(std::atoi(a.Get("--timeout", "0").c_str())));
  }
  return Usage("command show ID | command wait ID");
}

int Ctl::Audit(const Args& a) {
  v1::ListAuditRequest req;
  req.set_actor(a.Get("--actor"));
  req.set_action(a.Get("--action"));
  req.set_limit(static_cast<uint32_t>(std::atoi(a.Get("--limit", "0").c_str())));
  v1::ListAuditResponse r;
  grpc::Status s = c_->stub().ListAudit(c_->Unary().get(), req, &r);
  if (!s.ok()) return RpcError("audit", s);
  Table t({"ID", "TIME", "WHO", "ACTION", "TARGET", "RESULT", "DETAILS"});
  for (const auto& e : r.records()) {
    if (json_) {
      std::printf("%s\n", ToJson(e).c_str());
      continue;
    }
    t.Add({std::to_string(e.id()), Time(e.at_ns()), e.actor(), e.action(), e.target(), e.result(), e.details()});
  }
  if (!json_) std::printf("%s", t.Render().c_str());
  return kOk;
}

int Run(int argc, char** argv) {
  Result<Args> parsed = Parse(argc, argv);
  if (!parsed.ok()) return Usage(parsed.status().message());
  Args& a = *parsed;
  if (a.Has("--help") || a.pos.empty()) {
    std::printf("%s", kUsage);
    return a.pos.empty() && !a.Has("--help") ? kError : kOk;
  }
  ConnectionSettings cs;
  std::string config = a.Get("--config");
  if (config.empty() && std::getenv("MAMORI_CTL_CONFIG") != nullptr) config = std::getenv("MAMORI_CTL_CONFIG");
  if (config.empty() && std::getenv("HOME") != nullptr) {
    const std::string def = std::string(std::getenv("HOME")) + "/.config/mamori/mamorictl.conf";
    if (::access(def.c_str(), R_OK) == 0) config = def;
  }
  if (!config.empty()) {
    Status s = ReadConfigFile(config, &cs);
    if (!s.ok()) return Usage(s.message());
  }
  ApplyEnvironment(&cs);
  if (a.Has("--server")) cs.server = a.Get("--server");
  if (a.Has("--ca")) cs.ca_file = a.Get("--ca");
  if (a.Has("--cert")) cs.cert_file = a.Get("--cert");
  if (a.Has("--key")) cs.key_file = a.Get("--key");
  if (a.Has("--insecure")) cs.insecure = true;
  if (a.Has("--token-file")) {
    Result<std::string> t = ReadTokenFile(a.Get("--token-file"));
    if (!t.ok()) return Usage(t.status().message());
    cs.token = *t;
  }
  if (a.Has("--token")) cs.token = a.Get("--token");
  if (a.Has("--timeout") && a.pos[0] != "command") {
    const int t = std::atoi(a.Get("--timeout").c_str());
    if (t <= 0) return Usage("--timeout must be a positive number of seconds");
    cs.timeout = std::chrono::seconds(t);
  }
  Result<std::unique_ptr<Client>> client = Client::Connect(cs);
  if (!client.ok()) return Usage(client.status().message());
  Ctl ctl(client->get(), a.Has("--json"));
  const std::string& verb = a.pos[0];
  if (verb == "agents") return ctl.Agents(a);
  if (verb == "events" || verb == "findings" || verb == "alerts") return ctl.Events(a, verb);
  if (verb == "scan") return ctl.Scan(a);
  if (verb == "quarantine") return ctl.Quarantine(a);
  if (verb == "signatures") return ctl.Signatures(a);
  if (verb == "kill") return ctl.Kill(a);
  if (verb == "commands") return ctl.Commands(a);
  if (verb == "command") return ctl.Command(a);
  if (verb == "audit") return ctl.Audit(a);
  if (verb == "whoami") return ctl.WhoAmI();
  return Usage("unknown command '" + verb + "'");
}

}  // namespace
}  // namespace mamori::ctl

int main(int argc, char** argv) { return mamori::ctl::Run(argc, argv); }

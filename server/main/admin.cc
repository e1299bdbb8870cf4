#include "admin.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "mamori/common/file_util.h"
#include "mamori/common/json.h"
#include "mamori/server/ca.h"
#include "mamori/server/server.h"
#include "mamori/server/siem.h"

namespace mamori::server {
namespace {

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Actor() {
  const passwd* pw = ::getpwuid(::getuid());
  return std::string("cli:") + (pw != nullptr ? pw->pw_name : std::to_string(::getuid()));
}

std::string Time(int64_t ns) { return ns == 0 ? "-" : Rfc3339(ns, 6).substr(0, 19) + "Z"; }

int Fail(const std::string& what, const Status& s) {
  std::fprintf(stderr, "mamori-server: %s: %s\n", what.c_str(), s.ToString().c_str());
  return 1;
}

int Usage(const std::string& msg) {
  std::fprintf(stderr, "mamori-server: %s (see mamori-server --help)\n", msg.c_str());
  return 64;
}

void Audit(Store& store, const std::string& action, const std::string& target, const std::string& details) {
  AuditEntry e;
  e.at_ns = Now();
  e.actor = Actor();
  e.action = action;
  e.target = target;
  e.details = details;
  Result<int64_t> r = store.AppendAudit(e);
  if (!r.ok()) std::fprintf(stderr, "mamori-server: warning: audit log: %s\n", r.status().ToString().c_str());
}

// Creates the CA first when the server has not started yet, so installers
// can distribute the CA certificate before the first start.
int CaExport(const ServerConfig& config) {
  Result<std::string> pem = CertificateAuthority::ReadCaCertificate(CaDir(config));
  if (!pem.ok() && pem.status().code() == StatusCode::kNotFound) {
    CaOptions o;
    o.dir = CaDir(config);
    o.server_names = config.server_names;
    Result<HostPort> hp = ParseHostPort(config.listen);
    if (hp.ok()) o.server_names.push_back(hp->host);
    Result<std::unique_ptr<CertificateAuthority>> ca = CertificateAuthority::Open(o);
    if (!ca.ok()) return Fail("ca export", ca.status());
    pem = (*ca)->ca_certificate_pem();
  }
  if (!pem.ok()) return Fail("ca export", pem.status());
  std::fputs(pem->c_str(), stdout);
  return 0;
}

int TokenCreate(Store& store, const std::vector<std::string>& args) {
  TokenSpec spec;
  std::chrono::milliseconds ttl = std::chrono::hours(24);
  bool json_out = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--reusable") {
      spec.reusable = true;
    } else if (args[i] == "--ttl" && i + 1 < args.size()) {
      Result<std::chrono::milliseconds> d = ParseDuration(args[++i]);
      if (!d.ok() || d->count() <= 0)
        return Usage("--ttl: " + (d.ok() ? std::string("must be positive") : d.status().message()));
      ttl = *d;
    } else if (args[i] == "--description" && i + 1 < args.size()) {
      spec.description = args[++i];
    } else if (args[i] == "--json") {
      json_out = true;
    } else {
      return Usage("token create: unknown argument '" + args[i] + "'");
    }
  }
  spec.created_at_ns = Now();
  spec.expires_at_ns = spec.created_at_ns + std::chrono::duration_cast<std::chrono::nanoseconds>(ttl).count();
  spec.created_by = Actor();
  Result<NewToken> t = store.CreateEnrollmentToken(spec);
  if (!t.ok()) return Fail("token create", t.status());
  Audit(store, "token.create", t->token_id,
        std::string("{\"reusable\":") + (spec.reusable ? "true" : "false") + ",\"expires_at\":\"" +
            Time(spec.expires_at_ns) + "\"}");
  if (json_out) {
    std::printf("{\"token\":%s,\"token_id\":%s,\"reusable\":%s,\"expires_at\":\"%s\"}\n",
                json::Quote(t->secret).c_str(), json::Quote(t->token_id).c_str(), spec.reusable ? "true" : "false",
                Time(spec.expires_at_ns).c_str());
  } else {
    std::printf("%s\n", t->secret.c_str());
    std::fprintf(stderr, "token %s: %s, expires %s. It is shown only now; the server keeps only its hash.\n",
                 t->token_id.c_str(), spec.reusable ? "reusable" : "one-time", Time(spec.expires_at_ns).c_str());
  }
  return 0;
}

int TokenList(Store& store) {
  Result<std::vector<TokenRecord>> tokens = store.ListEnrollmentTokens();
  if (!tokens.ok()) return Fail("token list", tokens.status());
  std::printf("%-34s %-9s %-21s %-21s %5s %s\n", "TOKEN ID", "KIND", "CREATED", "EXPIRES", "USES", "STATE");
  const int64_t now = Now();
  for (const auto& t : *tokens) {
    const char* state = t.revoked                     ? "revoked"
                        : now >= t.expires_at_ns      ? "expired"
                        : (!t.reusable && t.uses > 0) ? "used"
                                                      : "valid";
    std::printf("%-34s %-9s %-21s %-21s %5llu %s\n", t.token_id.c_str(), t.reusable ? "reusable" : "one-time",
                Time(t.created_at_ns).c_str(), Time(t.expires_at_ns).c_str(), static_cast<unsigned long long>(t.uses),
                state);
  }
  return 0;
}

int AgentList(const ServerConfig& config, Store& store, const std::vector<std::string>& args) {
  bool json_out = false;
  for (const auto& a : args) {
    if (a == "--json")
      json_out = true;
    else
      return Usage("agent list: unknown argument '" + a + "'");
  }
  AgentQuery q;
  q.now_ns = Now();
  q.online_window_ns = 3 * std::chrono::duration_cast<std::chrono::nanoseconds>(config.heartbeat_interval).count();
  Result<std::vector<AgentView>> agents = store.ListAgents(q);
  if (!agents.ok()) return Fail("agent list", agents.status());
  if (!json_out) {
    std::printf("%-36s %-24s %-7s %-21s %-10s %-9s %10s %s\n", "AGENT ID", "HOSTNAME", "ONLINE", "LAST SEEN", "VERSION",
                "SENSOR", "ACKED", "STATE");
  }
  for (const auto& v : *agents) {
    const AgentRecord& a = v.agent;
    if (json_out) {
      std::printf(
          "{\"agent_id\":%s,\"hostname\":%s,\"os\":%s,\"kernel\":%s,\"agent_version\":%s,"
          "\"signature_version\":%s,\"sensor_mode\":%s,\"online\":%s,\"last_seen\":\"%s\","
          "\"enrolled_at\":\"%s\",\"acked_sequence\":%llu,\"revoked\":%s,\"cert_sha256\":%s}\n",
          json::Quote(a.agent_id).c_str(), json::Quote(a.hostname).c_str(), json::Quote(a.os).c_str(),
          json::Quote(a.kernel).c_str(), json::Quote(a.agent_version).c_str(), json::Quote(a.signature_version).c_str(),
          json::Quote(a.sensor_mode).c_str(), v.online ? "true" : "false", Time(a.last_seen_ns).c_str(),
          Time(a.enrolled_at_ns).c_str(), static_cast<unsigned long long>(v.acked_sequence),
          a.revoked ? "true" : "false", json::Quote(a.cert_fingerprint).c_str());
    } else {
      std::printf("%-36s %-24s %-7s %-21s %-10s %-9s %10llu %s\n", a.agent_id.c_str(),
                  (a.hostname.empty() ? "-" : a.hostname).c_str(), v.online ? "yes" : "no",
                  Time(a.last_seen_ns).c_str(), (a.agent_version.empty() ? "-" : a.agent_version).c_str(),
                  (a.sensor_mode.empty() ? "-" : a.sensor_mode).c_str(),
                  static_cast<unsigned long long>(v.acked_sequence), a.revoked ? "revoked" : "active");
    }
  }
  return 0;
}

int AgentRevoke(Store& store, const std::vector<std::string>& args, bool revoke) {
  if (args.size() != 1) return Usage(std::string("agent ") + (revoke ? "revoke" : "unrevoke") + " takes one agent id");
  Status s = store.SetAgentRevoked(args[0], revoke);
  if (!s.ok()) return Fail(std::string("agent ") + (revoke ? "revoke" : "unrevoke"), s);
  Audit(store, revoke ? "agent.revoke" : "agent.unrevoke", args[0], "");
  std::fprintf(stderr, "agent %s %s%s\n", args[0].c_str(), revoke ? "revoked" : "reinstated",
               revoke ? " (its streams end at their next batch or heartbeat; new connections are refused)" : "");
  return 0;
}

// user add NAME --role admin|analyst [--json]: prints the API token once.
int UserAdd(Store& store, const std::vector<std::string>& args) {
  std::string name, role;
  bool json_out = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--role" && i + 1 < args.size()) {
      role = args[++i];
    } else if (args[i] == "--json") {
      json_out = true;
    } else if (!args[i].empty() && args[i][0] != '-' && name.empty()) {
      name = args[i];
    } else {
      return Usage("user add: unexpected argument '" + args[i] + "'");
    }
  }
  if (name.empty() || role.empty()) return Usage("user add NAME --role admin|analyst");
  UserSpec spec;
  spec.name = name;
  spec.role = role;
  spec.created_at_ns = Now();
  spec.created_by = Actor();
  Result<NewUserToken> t = store.CreateUser(spec);
  if (!t.ok()) return Fail("user add " + name, t.status());
  Audit(store, "user.add", name, "role=" + role);
  if (json_out) {
    std::printf("{\"name\":%s,\"role\":%s,\"token\":%s}\n", json::Quote(name).c_str(), json::Quote(role).c_str(),
                json::Quote(t->secret).c_str());
  } else {
    std::printf("%s\n", t->secret.c_str());
    std::fprintf(stderr,
                 "user %s (%s): API token above, shown only now (the server keeps only its hash). "
                 "Use it as MAMORI_TOKEN for mamorictl.\n",
                 name.c_str(), role.c_str());
  }
  return 0;
}

// user cert NAME --csr FILE [--days N]: signs the user's CSR (the key stays
// with the user) with the server CA; prints the certificate.
int UserCert(const ServerConfig& config, Store& store, const std::vector<std::string>& args) {
  std::string name, csr_file;
  int64_t days = 365;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--csr" && i + 1 < args.size()) {
      csr_file = args[++i];
    } else if (args[i] == "--days" && i + 1 < args.size()) {
      days = std::atoll(args[++i].c_str());
      if (days <= 0 || days > 3660) return Usage("user cert: --days must be 1-3660");
    } else if (!args[i].empty() && args[i][0] != '-' && name.empty()) {
      name = args[i];
    } else {
      return Usage("user cert: unexpected argument '" + args[i] + "'");
    }
  }
  if (name.empty() || csr_file.empty()) return Usage("user cert NAME --csr FILE [--days N]");
  Result<UserRecord> user = store.GetUser(name);
  if (!user.ok()) return Fail("user cert " + name, user.status());
  Result<std::string> csr = ReadFileToString(csr_file);
  if (!csr.ok()) return Fail("user cert: reading " + csr_file, csr.status());
  CaOptions o;
  o.dir = CaDir(config);
  o.server_names = config.server_names;
  Result<HostPort> hp = ParseHostPort(config.listen);
  if (hp.ok()) o.server_names.push_back(hp->host);
  Result<std::unique_ptr<CertificateAuthority>> ca = CertificateAuthority::Open(o);
  if (!ca.ok()) return Fail("user cert: CA", ca.status());
  Result<IssuedCertificate> cert = (*ca)->IssueUserCertificate(*csr, name, Now(), std::chrono::hours(24 * days));
  if (!cert.ok()) return Fail("user cert " + name + " (" + csr_file + ")", cert.status());
  Audit(store, "user.cert", name, "sha256=" + cert->fingerprint_sha256);
  std::fputs(cert->certificate_pem.c_str(), stdout);
  std::fprintf(stderr, "user %s (%s): certificate valid %lld days, sha256 %s\n", name.c_str(), user->role.c_str(),
               static_cast<long long>(days), cert->fingerprint_sha256.c_str());
  return 0;
}

int UserList(Store& store) {
  Result<std::vector<UserRecord>> users = store.ListUsers();
  if (!users.ok()) return Fail("user list", users.status());
  std::printf("%-24s %-8s %-21s %-21s %-20s %s\n", "NAME", "ROLE", "CREATED", "LAST USED", "CREATED BY", "STATE");
  for (const UserRecord& u : *users) {
    std::printf("%-24s %-8s %-21s %-21s %-20s %s\n", u.name.c_str(), u.role.c_str(), Time(u.created_at_ns).c_str(),
                Time(u.last_used_at_ns).c_str(), u.created_by.c_str(), u.disabled ? "disabled" : "active");
  }
  return 0;
}

int UserDisable(Store& store, const std::vector<std::string>& args, bool disable) {
  const char* sub = disable ? "disable" : "enable";
  if (args.size() != 1) return Usage(std::string("user ") + sub + " takes one user name");
  Status s = store.SetUserDisabled(args[0], disable);
  if (!s.ok()) return Fail(std::string("user ") + sub, s);
  Audit(store, std::string("user.") + sub, args[0], "");
  std::fprintf(stderr, "user %s %s\n", args[0].c_str(), disable ? "disabled (its token is refused from now on)" : "enabled");
  return 0;
}

}  // namespace

int RunAdminVerb(const ServerConfig& config, const std::string& verb, const std::vector<std::string>& all) {
  if (verb == "ca") {
    if (all.size() == 1 && all[0] == "export") return CaExport(config);
    return Usage("ca: expected 'ca export'");
  }
  if (verb != "token" && verb != "agent" && verb != "user") return Usage("unknown command '" + verb + "'");
  if (all.empty()) return Usage(verb + ": missing subcommand");
  const std::string sub = all[0];
  const std::vector<std::string> args(all.begin() + 1, all.end());
  const bool known = (verb == "token" && (sub == "create" || sub == "list")) ||
                     (verb == "agent" && (sub == "list" || sub == "revoke" || sub == "unrevoke")) ||
                     (verb == "user" && (sub == "add" || sub == "list" || sub == "disable" || sub == "enable" || sub == "cert"));
  if (!known) return Usage("unknown command '" + verb + " " + sub + "'");
  Result<std::unique_ptr<Store>> store = OpenConfiguredStore(config);
  if (!store.ok()) return Fail("store", store.status());
  if (verb == "token") return sub == "create" ? TokenCreate(**store, args) : TokenList(**store);
  if (verb == "user") {
    if (sub == "add") return UserAdd(**store, args);
    if (sub == "list") return UserList(**store);
    if (sub == "cert") return UserCert(config, **store, args);
    return UserDisable(**store, args, sub == "disable");
  }
  if (sub == "list") return AgentList(config, **store, args);
  return AgentRevoke(**store, args, sub == "revoke");
}

}  // namespace mamori::server

#include "mamori/server/config.h"

#include <arpa/inet.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <set>

#include "mamori/common/file_util.h"

namespace mamori::server {

Result<std::chrono::milliseconds> ParseDuration(std::string_view s) {
  size_t digits = 0;
  while (digits < s.size() && std::isdigit(static_cast<unsigned char>(s[digits]))) ++digits;
  if (digits == 0 || digits > 12) return InvalidArgumentError("expected a duration like 30s, 500ms, 10m, 24h or 7d");
  const uint64_t n = std::stoull(std::string(s.substr(0, digits)));
  const std::string_view unit = s.substr(digits);
  uint64_t ms_per = 0;
  if (unit == "ms") ms_per = 1;
  else if (unit == "s") ms_per = 1000;
  else if (unit == "m") ms_per = 60'000;
  else if (unit == "h") ms_per = 3'600'000;
  else if (unit == "d") ms_per = 86'400'000;
  else return InvalidArgumentError("expected a duration like 30s, 500ms, 10m, 24h or 7d (unit ms, s, m, h or d)");
  return std::chrono::milliseconds(static_cast<int64_t>(n * ms_per));
}

Result<HostPort> ParseHostPort(std::string_view s) {
  HostPort hp;
  std::string_view port;
  if (!s.empty() && s.front() == '[') {
    const size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return InvalidArgumentError("expected [IPV6]:PORT, got '" + std::string(s) + "'");
    }
    hp.host = std::string(s.substr(1, close - 1));
    port = s.substr(close + 2);
  } else {
    const size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) return InvalidArgumentError("expected HOST:PORT, got '" + std::string(s) + "'");
    hp.host = std::string(s.substr(0, colon));
    port = s.substr(colon + 1);
    if (hp.host.find(':') != std::string::npos) {
      return InvalidArgumentError("IPv6 addresses need brackets: [" + hp.host + "]:PORT");
    }
  }
  if (hp.host.empty()) return InvalidArgumentError("empty host in '" + std::string(s) + "'");
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit) ||
      std::stoul(std::string(port)) > 65535) {
    return InvalidArgumentError("bad port in '" + std::string(s) + "'");
  }
  hp.port = static_cast<uint16_t>(std::stoul(std::string(port)));
  return hp;
}

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost") return true;
  const std::string h(host);
  in_addr a4{};
  if (inet_pton(AF_INET, h.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6{};
  if (inet_pton(AF_INET6, h.c_str(), &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
  return false;
}

Status CheckInsecureAllowed(const ServerConfig& c) {
  Result<HostPort> hp = ParseHostPort(c.listen);
  if (!hp.ok()) return hp.status();
  if (!IsLoopbackHost(hp->host)) {
    return FailedPreconditionError("--insecure (plaintext) is only allowed on a loopback listen address, not '" +
                                   c.listen + "'");
  }
  return Status::Ok();
}

std::string SqlitePath(const ServerConfig& c) {
  return c.store.sqlite_path.empty() ? c.data_dir + "/mamori.db" : c.store.sqlite_path;
}
std::string CaDir(const ServerConfig& c) { return c.ca_dir.empty() ? c.data_dir + "/ca" : c.ca_dir; }
std::string MetricsFile(const ServerConfig& c) {
  return c.metrics_file.empty() ? c.data_dir + "/metrics.prom" : c.metrics_file;
}

namespace {

using Handler = std::function<Status(const YAML::Node&, const std::string&)>;

// Errors carry "source:line:column: key: message" (yaml-cpp marks are 0-based).
class Reader {
 public:
  explicit Reader(const std::string& source) : source_(source) {}

  Status Error(const YAML::Node& n, const std::string& key, const std::string& what) const {
    const YAML::Mark m = n.Mark();
    std::string where = source_;
    if (m.line >= 0) where += ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
    return InvalidArgumentError(where + ": " + key + ": " + what);
  }

  Status String(const YAML::Node& n, const std::string& key, std::string* out) const {
    if (!n.IsScalar()) return Error(n, key, "expected a string");
    *out = n.Scalar();
    return Status::Ok();
  }

  Status Bool(const YAML::Node& n, const std::string& key, bool* out) const {
    std::string s;
    MAMORI_RETURN_IF_ERROR(String(n, key, &s));
    if (s == "true" || s == "yes" || s == "on") *out = true;
    else if (s == "false" || s == "no" || s == "off") *out = false;
    else return Error(n, key, "expected true or false, got '" + s + "'");
    return Status::Ok();
  }

  // Integer in [lo, hi] with an optional K/M/G suffix (powers of 1024).
  Status Number(const YAML::Node& n, const std::string& key, uint64_t lo, uint64_t hi, uint64_t* out) const {
    std::string s;
    MAMORI_RETURN_IF_ERROR(String(n, key, &s));
    uint64_t mult = 1;
    if (!s.empty() && std::isalpha(static_cast<unsigned char>(s.back()))) {
      const char c = static_cast<char>(std::toupper(static_cast<unsigned char>(s.back())));
      mult = c == 'K' ? 1ull << 10 : c == 'M' ? 1ull << 20 : c == 'G' ? 1ull << 30 : 0;
      if (mult == 0) return Error(n, key, "unknown size suffix in '" + s + "' (K, M or G)");
      s.pop_back();
    }
    if (s.empty() || s.size() > 12 || !std::all_of(s.begin(), s.end(), ::isdigit)) {
      return Error(n, key, "expected a non-negative number, got '" + n.Scalar() + "'");
    }
    const uint64_t v = std::stoull(s) * mult;
    if (v < lo || v > hi) return Error(n, key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    *out = v;
    return Status::Ok();
  }

  Status Duration(const YAML::Node& n, const std::string& key, std::chrono::milliseconds lo,
                  std::chrono::milliseconds hi, std::chrono::milliseconds* out) const {
    std::string s;
    MAMORI_RETURN_IF_ERROR(String(n, key, &s));
    Result<std::chrono::milliseconds> d = ParseDuration(s);
    if (!d.ok()) return Error(n, key, d.status().message());
    if (*d < lo || *d > hi) return Error(n, key, "must be between " + std::to_string(lo.count()) + "ms and " +
                                                   std::to_string(hi.count()) + "ms");
    *out = *d;
    return Status::Ok();
  }

  Status AbsolutePath(const YAML::Node& n, const std::string& key, std::string* out) const {
    MAMORI_RETURN_IF_ERROR(String(n, key, out));
    if (out->empty() || out->front() != '/') return Error(n, key, "must be an absolute path, got '" + *out + "'");
    return Status::Ok();
  }

  // Runs handlers[key] for each key of mapping `n`; unknown keys are errors.
  Status Map(const YAML::Node& n, const std::string& prefix, const std::map<std::string, Handler>& handlers) const {
    if (!n.IsMap()) return Error(n, prefix.empty() ? "config" : prefix, "expected a mapping of keys");
    for (const auto& kv : n) {
      const std::string key = kv.first.Scalar();
      const std::string full = prefix.empty() ? key : prefix + "." + key;
      auto it = handlers.find(key);
      if (it == handlers.end()) {
        std::string known;
        for (const auto& [k, _] : handlers) known += (known.empty() ? "" : ", ") + k;
        return Error(kv.first, full, "unknown key (known: " + known + ")");
      }
      MAMORI_RETURN_IF_ERROR(it->second(kv.second, full));
    }
    return Status::Ok();
  }

 private:
  const std::string& source_;
};

// A DNS name (letters, digits, '-', '.', a leading "*.") or an IP address.
bool ValidServerName(const std::string& s) {
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, s.c_str(), &a4) == 1 || inet_pton(AF_INET6, s.c_str(), &a6) == 1) return true;
  if (s.empty() || s.size() > 253) return false;
  std::string_view v = s;
  if (v.starts_with("*.")) v.remove_prefix(2);
  if (v.empty() || v.front() == '.' || v.back() == '.' || v.front() == '-') return false;
  return std::all_of(v.begin(), v.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.';
  });
}

const std::map<std::string, int>& Facilities() {
  static const std::map<std::string, int> kFacilities = {
      {"user", 1}, {"daemon", 3}, {"auth", 4}, {"authpriv", 10}, {"local0", 16}, {"local1", 17}, {"local2", 18},
      {"local3", 19}, {"local4", 20}, {"local5", 21}, {"local6", 22}, {"local7", 23}};
  return kFacilities;
}

}  // namespace

Result<ServerConfig> ParseServerConfig(std::string_view yaml, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    // yaml-cpp throws; the exception stops here, at the module boundary.
    return InvalidArgumentError(source + ":" + std::to_string(e.mark.line + 1) + ":" +
                                std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  ServerConfig c;
  c.source = source;
  if (root.IsNull()) return c;  // an empty file means all defaults
  Reader r(source);

  auto str = [&r](std::string* out) -> Handler {
    return [&r, out](const YAML::Node& n, const std::string& k) { return r.String(n, k, out); };
  };
  auto path = [&r](std::string* out) -> Handler {
    return [&r, out](const YAML::Node& n, const std::string& k) { return r.AbsolutePath(n, k, out); };
  };
  auto boolean = [&r](bool* out) -> Handler {
    return [&r, out](const YAML::Node& n, const std::string& k) { return r.Bool(n, k, out); };
  };
  auto u32 = [&r](uint32_t* out, uint64_t lo, uint64_t hi) -> Handler {
    return [&r, out, lo, hi](const YAML::Node& n, const std::string& k) {
      uint64_t v = 0;
      MAMORI_RETURN_IF_ERROR(r.Number(n, k, lo, hi, &v));
      *out = static_cast<uint32_t>(v);
      return Status::Ok();
    };
  };
  auto count = [&r](unsigned* out, uint64_t lo, uint64_t hi) -> Handler {
    return [&r, out, lo, hi](const YAML::Node& n, const std::string& k) {
      uint64_t v = 0;
      MAMORI_RETURN_IF_ERROR(r.Number(n, k, lo, hi, &v));
      *out = static_cast<unsigned>(v);
      return Status::Ok();
    };
  };
  using std::chrono::milliseconds;
  auto millis = [&r](milliseconds* out, milliseconds lo, milliseconds hi) -> Handler {
    return [&r, out, lo, hi](const YAML::Node& n, const std::string& k) { return r.Duration(n, k, lo, hi, out); };
  };
  auto seconds = [&r](std::chrono::seconds* out, milliseconds lo, milliseconds hi) -> Handler {
    return [&r, out, lo, hi](const YAML::Node& n, const std::string& k) {
      milliseconds d{};
      MAMORI_RETURN_IF_ERROR(r.Duration(n, k, lo, hi, &d));
      if (d.count() % 1000 != 0) return r.Error(n, k, "must be whole seconds");
      *out = std::chrono::duration_cast<std::chrono::seconds>(d);
      return Status::Ok();
    };
  };

  bool saw_sqlite = false;
  bool saw_postgres = false;
  YAML::Node store_node;
  Status s = r.Map(root, "", {
    {"log_level", [&](const YAML::Node& n, const std::string& k) {
       MAMORI_RETURN_IF_ERROR(r.String(n, k, &c.log_level));
       static const std::set<std::string> kLevels = {"debug", "info", "warning", "error"};
       if (kLevels.count(c.log_level) == 0) return r.Error(n, k, "expected one of debug, info, warning, error");
       return Status::Ok();
     }},
    {"log_json", boolean(&c.log_json)},
    {"listen", [&](const YAML::Node& n, const std::string& k) {
       MAMORI_RETURN_IF_ERROR(r.String(n, k, &c.listen));
       Result<HostPort> hp = ParseHostPort(c.listen);
       if (!hp.ok()) return r.Error(n, k, hp.status().message());
       return Status::Ok();
     }},
    {"server_names", [&](const YAML::Node& n, const std::string& k) {
       if (!n.IsSequence()) return r.Error(n, k, "expected a list of DNS names or IP addresses");
       c.server_names.clear();
       for (const auto& item : n) {
         std::string name;
         MAMORI_RETURN_IF_ERROR(r.String(item, k, &name));
         if (!ValidServerName(name)) return r.Error(item, k, "not a DNS name or IP address: '" + name + "'");
         c.server_names.push_back(name);
       }
       return Status::Ok();
     }},
    {"data_dir", path(&c.data_dir)},
    {"ca_dir", path(&c.ca_dir)},
    {"store", [&](const YAML::Node& n, const std::string& k) {
       store_node = n;
       return r.Map(n, k, {
         {"sqlite", [&](const YAML::Node& sn, const std::string& sk) {
            saw_sqlite = true;
            if (sn.IsNull()) return Status::Ok();  // "sqlite:" alone: the defaults
            return r.Map(sn, sk, {
              {"path", path(&c.store.sqlite_path)},
              {"durable_commits", boolean(&c.store.sqlite_durable_commits)},
              {"max_connections", count(&c.store.max_connections, 1, 64)},
            });
          }},
         {"postgres", [&](const YAML::Node& pn, const std::string& pk) {
            saw_postgres = true;
            MAMORI_RETURN_IF_ERROR(r.Map(pn, pk, {
              {"conninfo", str(&c.store.postgres_conninfo)},
              {"schema", [&](const YAML::Node& n2, const std::string& k2) {
                 MAMORI_RETURN_IF_ERROR(r.String(n2, k2, &c.store.postgres_schema));
                 const std::string& v = c.store.postgres_schema;
                 const bool ok = !v.empty() && v.size() <= 63 && (std::islower(static_cast<unsigned char>(v[0])) || v[0] == '_') &&
                                 std::all_of(v.begin(), v.end(), [](char ch) {
                                   return std::islower(static_cast<unsigned char>(ch)) ||
                                          std::isdigit(static_cast<unsigned char>(ch)) || ch == '_';
                                 });
                 if (!ok) return r.Error(n2, k2, "expected [a-z_][a-z0-9_]{0,62}");
                 return Status::Ok();
               }},
              {"max_connections", count(&c.store.max_connections, 1, 64)},
            }));
            if (c.store.postgres_conninfo.empty()) return r.Error(pn, pk, "needs conninfo (a libpq connection string)");
            return Status::Ok();
          }},
       });
     }},
    {"stream", [&](const YAML::Node& n, const std::string& k) {
       return r.Map(n, k, {
         {"heartbeat_interval", seconds(&c.heartbeat_interval, milliseconds(1000), milliseconds(3'600'000))},
         {"max_batch_events", u32(&c.max_batch_events, 1, 100'000)},
         {"max_batch_bytes", u32(&c.max_batch_bytes, 1024, 256u << 20)},
         {"max_message_size", u32(&c.max_message_bytes, 4096, 512u << 20)},
         {"max_streams", count(&c.max_streams, 1, 100'000)},
         {"command_poll_interval", millis(&c.command_poll_interval, milliseconds(50), milliseconds(600'000))},
         {"workers", count(&c.workers, 1, 256)},
         {"handshake_timeout", millis(&c.handshake_timeout, milliseconds(100), milliseconds(600'000))},
       });
     }},
    {"console", [&](const YAML::Node& n, const std::string& k) {
       return r.Map(n, k, {
         {"command_expiry", seconds(&c.command_expiry, milliseconds(60'000), milliseconds(int64_t{366} * 86'400'000))},
       });
     }},
    {"enrollment", [&](const YAML::Node& n, const std::string& k) {
       return r.Map(n, k, {
         {"client_cert_validity", seconds(&c.client_cert_validity, milliseconds(3'600'000),
                                          milliseconds(int64_t{10} * 366 * 86'400'000))},
         {"max_concurrent", count(&c.max_concurrent_enrollments, 1, 10'000)},
       });
     }},
    {"metrics", [&](const YAML::Node& n, const std::string& k) {
       return r.Map(n, k, {
         {"enabled", boolean(&c.metrics_enabled)},
         {"file", path(&c.metrics_file)},
         {"interval", millis(&c.metrics_interval, milliseconds(100), milliseconds(3'600'000))},
         {"log_interval", millis(&c.metrics_log_interval, milliseconds(100), milliseconds(86'400'000))},
       });
     }},
    {"siem", [&](const YAML::Node& n, const std::string& k) {
       if (!n.IsSequence()) return r.Error(n, k, "expected a list of outputs ({file: PATH} or {syslog: ADDRESS})");
       size_t i = 0;
       for (const auto& item : n) {
         const std::string ik = k + "[" + std::to_string(i++) + "]";
         SiemOutputConfig o;
         bool file = false, syslog = false;
         MAMORI_RETURN_IF_ERROR(r.Map(item, ik, {
           {"file", [&](const YAML::Node& fn, const std::string& fk) {
              file = true;
              o.kind = SiemOutputConfig::Kind::kFile;
              return r.AbsolutePath(fn, fk, &o.path);
            }},
           {"syslog", [&](const YAML::Node& sn, const std::string& sk) {
              syslog = true;
              o.kind = SiemOutputConfig::Kind::kSyslog;
              MAMORI_RETURN_IF_ERROR(r.String(sn, sk, &o.address));
              if (!o.address.empty() && o.address.front() == '/') return Status::Ok();
              Result<HostPort> hp = ParseHostPort(o.address);
              if (!hp.ok()) return r.Error(sn, sk, hp.status().message() + " (HOST:PORT for UDP or a socket path)");
              return Status::Ok();
            }},
           {"events", [&](const YAML::Node& en, const std::string& ek) {
              std::string v;
              MAMORI_RETURN_IF_ERROR(r.String(en, ek, &v));
              if (v == "all") o.filter = SiemOutputConfig::Filter::kAll;
              else if (v == "detections") o.filter = SiemOutputConfig::Filter::kDetections;
              else if (v == "alerts") o.filter = SiemOutputConfig::Filter::kAlerts;
              else return r.Error(en, ek, "expected one of all, detections, alerts");
              return Status::Ok();
            }},
           {"facility", [&](const YAML::Node& fn, const std::string& fk) {
              std::string v;
              MAMORI_RETURN_IF_ERROR(r.String(fn, fk, &v));
              auto it = Facilities().find(v);
              if (it == Facilities().end()) {
                return r.Error(fn, fk, "expected one of user, daemon, auth, authpriv, local0..local7");
              }
              o.facility = it->second;
              return Status::Ok();
            }},
           {"app_name", [&](const YAML::Node& an, const std::string& ak) {
              MAMORI_RETURN_IF_ERROR(r.String(an, ak, &o.app_name));
              const bool ok = !o.app_name.empty() && o.app_name.size() <= 48 &&
                              std::all_of(o.app_name.begin(), o.app_name.end(), [](char ch) { return ch > 32 && ch < 127; });
              if (!ok) return r.Error(an, ak, "1 to 48 printable ASCII characters, no spaces");
              return Status::Ok();
            }},
           {"max_message_size", u32(&o.max_message_bytes, 480, 65000)},
         }));
         if (file == syslog) return r.Error(item, ik, "each output needs exactly one of file or syslog");
         if (file && (o.facility != 16 || o.app_name != "mamori-server")) {
           return r.Error(item, ik, "facility and app_name apply to syslog outputs only");
         }
         c.siem.push_back(std::move(o));
       }
       return Status::Ok();
     }},
  });
  if (!s.ok()) return s;
  if (saw_sqlite && saw_postgres) return r.Error(store_node, "store", "choose one of sqlite or postgres");
  if (saw_postgres) c.store.backend = StoreConfig::Backend::kPostgres;
  if (c.max_message_bytes < c.max_batch_bytes + 1024) {
    return InvalidArgumentError(source + ": stream.max_message_size (" + std::to_string(c.max_message_bytes) +
                                ") must exceed stream.max_batch_bytes (" + std::to_string(c.max_batch_bytes) +
                                ") by at least 1024");
  }
  return c;
}

Result<ServerConfig> LoadServerConfig(const std::string& path) {
  Result<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  return ParseServerConfig(*text, path);
}

}  // namespace mamori::server

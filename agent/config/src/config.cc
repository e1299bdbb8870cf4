#include "mamori/agent/config.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <functional>
#include <map>
#include <set>

#include "mamori/common/file_util.h"

namespace mamori::agent {

std::string_view OnAccessActionName(OnAccessAction a) {
  switch (a) {
    case OnAccessAction::kQuarantine: return "quarantine";
    case OnAccessAction::kDeny: return "deny";
    case OnAccessAction::kReport: return "report";
  }
  return "quarantine";
}

namespace {

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

  // Non-negative integer with optional K/M/G suffix (powers of 1024).
  Status Size(const YAML::Node& n, const std::string& key, uint64_t* out) const {
    std::string s;
    MAMORI_RETURN_IF_ERROR(String(n, key, &s));
    uint64_t mult = 1;
    if (!s.empty() && std::isalpha(static_cast<unsigned char>(s.back()))) {
      char c = static_cast<char>(std::toupper(static_cast<unsigned char>(s.back())));
      mult = c == 'K' ? 1ull << 10 : c == 'M' ? 1ull << 20 : c == 'G' ? 1ull << 30 : 0;
      if (mult == 0) return Error(n, key, "unknown size suffix in '" + s + "' (K, M or G)");
      s.pop_back();
    }
    if (s.empty() || s.size() > 15 || !std::all_of(s.begin(), s.end(), ::isdigit)) {
      return Error(n, key, "expected a non-negative number, got '" + n.Scalar() + "'");
    }
    *out = std::stoull(s) * mult;
    return Status::Ok();
  }

  Status Strings(const YAML::Node& n, const std::string& key, std::vector<std::string>* out) const {
    if (!n.IsSequence()) return Error(n, key, "expected a list");
    out->clear();
    for (const auto& item : n) {
      std::string s;
      MAMORI_RETURN_IF_ERROR(String(item, key, &s));
      out->push_back(s);
    }
    return Status::Ok();
  }

  Status AbsolutePaths(const YAML::Node& n, const std::string& key, std::vector<std::string>* out) const {
    MAMORI_RETURN_IF_ERROR(Strings(n, key, out));
    size_t i = 0;
    for (const auto& p : *out) {
      if (p.empty() || p.front() != '/') return Error(n[i], key, "paths must be absolute, got '" + p + "'");
      ++i;
    }
    return Status::Ok();
  }

  // Runs `handlers[key]` for each key of mapping `n`; unknown keys are errors.
  Status Map(const YAML::Node& n, const std::string& prefix,
             const std::map<std::string, std::function<Status(const YAML::Node&, const std::string&)>>& handlers) const {
    if (!n.IsMap()) return Error(n, prefix.empty() ? "config" : prefix, "expected a mapping of keys");
    for (const auto& kv : n) {
      std::string key = kv.first.Scalar();
      std::string full = prefix.empty() ? key : prefix + "." + key;
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

bool ValidCronField(const std::string& f, int lo, int hi) {
  // "*", "*/n", "a", "a-b", "a-b/n", and comma lists of those.
  size_t start = 0;
  while (start <= f.size()) {
    size_t comma = f.find(',', start);
    std::string part = f.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t slash = part.find('/');
    std::string range = part.substr(0, slash);
    if (slash != std::string::npos) {
      std::string step = part.substr(slash + 1);
      // At most two digits (no step beyond 59 means anything), so stoi cannot overflow.
      if (step.empty() || step.size() > 2 || !std::all_of(step.begin(), step.end(), ::isdigit) || std::stoi(step) == 0) {
        return false;
      }
    }
    if (range != "*") {
      size_t dash = range.find('-');
      std::string a = range.substr(0, dash), b = dash == std::string::npos ? a : range.substr(dash + 1);
      for (const auto& x : {a, b}) {
        if (x.empty() || x.size() > 2 || !std::all_of(x.begin(), x.end(), ::isdigit)) return false;
        if (std::stoi(x) < lo || std::stoi(x) > hi) return false;
      }
      if (std::stoi(a) > std::stoi(b)) return false;
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return true;
}

}  // namespace

Result<AgentConfig> ParseAgentConfig(std::string_view yaml, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    // yaml-cpp throws; the exception stops here, at the module boundary.
    return InvalidArgumentError(source + ":" + std::to_string(e.mark.line + 1) + ":" +
                                std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  AgentConfig c;
  c.source = source;
  if (root.IsNull()) return c;  // an empty file means all defaults
  Reader r(source);
  using H = std::function<Status(const YAML::Node&, const std::string&)>;
  auto str = [&](std::string* out) -> H { return [&r, out](const YAML::Node& n, const std::string& k) { return r.String(n, k, out); }; };
  auto boolean = [&](bool* out) -> H { return [&r, out](const YAML::Node& n, const std::string& k) { return r.Bool(n, k, out); }; };
  auto size = [&](uint64_t* out) -> H { return [&r, out](const YAML::Node& n, const std::string& k) { return r.Size(n, k, out); }; };
  auto paths = [&](std::vector<std::string>* out) -> H {
    return [&r, out](const YAML::Node& n, const std::string& k) { return r.AbsolutePaths(n, k, out); };
  };
  auto strings = [&](std::vector<std::string>* out) -> H {
    return [&r, out](const YAML::Node& n, const std::string& k) { return r.Strings(n, k, out); };
  };
  auto millis = [&](std::chrono::milliseconds* out, uint64_t max) -> H {
    return [&r, out, max](const YAML::Node& n, const std::string& k) {
      uint64_t v = 0;
      MAMORI_RETURN_IF_ERROR(r.Size(n, k, &v));
      if (v == 0 || v > max) return r.Error(n, k, "must be between 1 and " + std::to_string(max));
      *out = std::chrono::milliseconds(v);
      return Status::Ok();
    };
  };
  auto count = [&](unsigned* out, unsigned max, bool zero_ok) -> H {
    return [&r, out, max, zero_ok](const YAML::Node& n, const std::string& k) {
      uint64_t v = 0;
      MAMORI_RETURN_IF_ERROR(r.Size(n, k, &v));
      if ((!zero_ok && v == 0) || v > max) return r.Error(n, k, "must be between " + std::string(zero_ok ? "0" : "1") + " and " + std::to_string(max));
      *out = static_cast<unsigned>(v);
      return Status::Ok();
    };
  };

  Status s = r.Map(root, "", {
    {"log_level", [&](const YAML::Node& n, const std::string& k) {
       MAMORI_RETURN_IF_ERROR(r.String(n, k, &c.log_level));
       static const std::set<std::string> kLevels = {"debug", "info", "warning", "error"};
       if (kLevels.count(c.log_level) == 0) return r.Error(n, k, "expected one of debug, info, warning, error");
       return Status::Ok();
     }},
    {"log_json", boolean(&c.log_json)},
    {"data_dir", str(&c.data_dir)},
    {"control_socket", str(&c.control_socket)},
    {"control_uids", [&](const YAML::Node& n, const std::string& k) {
       std::vector<std::string> v;
       MAMORI_RETURN_IF_ERROR(r.Strings(n, k, &v));
       c.control_uids.clear();
       for (size_t i = 0; i < v.size(); ++i) {
         if (v[i].empty() || v[i].size() > 10 || !std::all_of(v[i].begin(), v[i].end(), ::isdigit)) {
           return r.Error(n[i], k, "expected a numeric uid");
         }
         c.control_uids.push_back(static_cast<uint32_t>(std::stoul(v[i])));
       }
       return Status::Ok();
     }},
    {"signatures", paths(&c.signatures)},
    {"trusted_keys", paths(&c.trusted_keys)},
    {"onaccess", [&](const YAML::Node& n, const std::string& k) {
       return r.Map(n, k, {
         {"enabled", boolean(&c.onaccess_enabled)},
         {"exec_paths", paths(&c.exec_paths)},
         {"open_paths", paths(&c.open_paths)},
         {"scan_on_close_write", boolean(&c.scan_on_close_write)},
         {"action", [&](const YAML::Node& an, const std::string& ak) {
            std::string a;
            MAMORI_RETURN_IF_ERROR(r.String(an, ak, &a));
            if (a == "quarantine") c.action = OnAccessAction::kQuarantine;
            else if (a == "deny") c.action = OnAccessAction::kDeny;
            else if (a == "report") c.action = OnAccessAction::kReport;
            else return r.Error(an, ak, "expected one of quarantine, deny, report");
            return Status::Ok();
          }},
         {"deadline_ms", millis(&c.deadline, 60000)},
         {"max_file_size", size(&c.onaccess_max_file_size)},
         {"workers", count(&c.onaccess_workers, 64, false)},
       });
     }},
    {"exclusions", [&](const YAML::Node& n, const std::string& k) {
       return r.Map(n, k, {
         {"paths", strings(&c.exclude_paths)},
         {"processes", paths(&c.exclude_processes)},
         {"sha256", [&](const YAML::Node& hn, const std::string& hk) {
            MAMORI_RETURN_IF_ERROR(r.Strings(hn, hk, &c.exclude_sha256));
            for (size_t i = 0; i < c.exclude_sha256.size(); ++i) {
              std::string raw;
              if (c.exclude_sha256[i].size() != 64 || !HexDecode(c.exclude_sha256[i], &raw)) {
                return r.Error(hn[i], hk, "expected 64 hex digits");
              }
            }
            return Status::Ok();
          }},
       });
     }},
    {"quarantine", [&](const YAML::Node& n, const std::string& k) {
       return r.Map(n, k, {
         {"quota", size(&c.quarantine_quota)},
         {"retention_days", [&](const YAML::Node& dn, const std::string& dk) {
            uint64_t d = 0;
            MAMORI_RETURN_IF_ERROR(r.Size(dn, dk, &d));
            if (d == 0 || d > 3650) return r.Error(dn, dk, "must be between 1 and 3650");
            c.quarantine_retention_days = static_cast<int64_t>(d);
            return Status::Ok();
          }},
       });
     }},
    {"scan", [&](const YAML::Node& n, const std::string& k) {
       return r.Map(n, k, {
         {"threads", count(&c.scan_threads, 256, true)},
         {"max_depth", [&](const YAML::Node& dn, const std::string& dk) {
            unsigned d = 0;
            MAMORI_RETURN_IF_ERROR(count(&d, 1000, true)(dn, dk));
            c.limits.max_depth = static_cast<int>(d);
            return Status::Ok();
          }},
         {"max_member_size", size(&c.limits.max_member_size)},
         {"max_total_size", size(&c.limits.max_total_extracted)},
         {"max_members", size(&c.limits.max_members)},
         {"max_ratio", size(&c.limits.max_ratio)},
         {"max_scan_time_ms", millis(&c.limits.max_scan_time, 3600000)},
         {"max_in_memory", size(&c.limits.max_in_memory)},
         {"parser_sandbox", boolean(&c.parser_sandbox)},
         {"parser_workers", count(&c.parser_workers, 64, false)},
       });
     }},
    {"scheduled_scans", [&](const YAML::Node& n, const std::string& k) {
       if (!n.IsSequence()) return r.Error(n, k, "expected a list");
       for (const auto& item : n) {
         ScheduledScan sc;
         MAMORI_RETURN_IF_ERROR(r.Map(item, k, {
           {"name", str(&sc.name)},
           {"schedule", [&](const YAML::Node& sn, const std::string& sk) {
              MAMORI_RETURN_IF_ERROR(r.String(sn, sk, &sc.schedule));
              std::vector<std::string> f;
              std::string cur;
              for (char ch : sc.schedule + " ") {
                if (ch == ' ') {
                  if (!cur.empty()) f.push_back(cur);
                  cur.clear();
                } else {
                  cur.push_back(ch);
                }
              }
              static const int kLo[] = {0, 0, 1, 1, 0}, kHi[] = {59, 23, 31, 12, 7};
              if (f.size() != 5) return r.Error(sn, sk, "expected 5 cron fields: minute hour day month weekday");
              for (size_t i = 0; i < 5; ++i) {
                if (!ValidCronField(f[i], kLo[i], kHi[i])) return r.Error(sn, sk, "bad cron field '" + f[i] + "'");
              }
              return Status::Ok();
            }},
           {"paths", paths(&sc.paths)},
         }));
         if (sc.schedule.empty() || sc.paths.empty()) return r.Error(item, k, "each scheduled scan needs schedule and paths");
         if (sc.name.empty()) sc.name = "scan-" + std::to_string(c.scheduled_scans.size() + 1);
         c.scheduled_scans.push_back(std::move(sc));
       }
       return Status::Ok();
     }},
    {"behavior", [&](const YAML::Node& n, const std::string& k) {
       return r.Map(n, k, {
         {"enabled", boolean(&c.behavior_enabled)},
         {"sensor", [&](const YAML::Node& sn, const std::string& sk) {
            MAMORI_RETURN_IF_ERROR(r.String(sn, sk, &c.behavior_sensor));
            static const std::set<std::string> kSensors = {"auto", "ebpf", "procconn", "replay", "none"};
            if (kSensors.count(c.behavior_sensor) == 0) {
              return r.Error(sn, sk, "expected one of auto, ebpf, procconn, replay, none");
            }
            return Status::Ok();
          }},
         {"replay_file", str(&c.behavior_replay_file)},
         {"rules", paths(&c.behavior_rules)},
         {"watch_paths", [&](const YAML::Node& wn, const std::string& wk) {
            MAMORI_RETURN_IF_ERROR(r.AbsolutePaths(wn, wk, &c.behavior_watch_paths));
            // Prefixes are compared on whole components: "/tmp" means "/tmp/".
            for (auto& p : c.behavior_watch_paths) {
              if (p.back() != '/') p.push_back('/');
            }
            return Status::Ok();
          }},
         {"responses", boolean(&c.behavior_responses)},
         {"protected_paths", paths(&c.behavior_protected_paths)},
         {"max_processes", [&](const YAML::Node& mn, const std::string& mk) {
            MAMORI_RETURN_IF_ERROR(r.Size(mn, mk, &c.behavior_max_processes));
            if (c.behavior_max_processes < 256 || c.behavior_max_processes > (1u << 22)) {
              return r.Error(mn, mk, "must be between 256 and 4194304");
            }
            return Status::Ok();
          }},
         {"record_events", boolean(&c.behavior_record_events)},
       });
     }},
    {"telemetry", [&](const YAML::Node& n, const std::string& k) {
       return r.Map(n, k, {
         {"servers", strings(&c.telemetry_servers)},
         {"ca_cert", str(&c.telemetry_ca_cert)},
         {"enrollment_token_file", str(&c.telemetry_token_file)},
         {"insecure", boolean(&c.telemetry_insecure)},
         {"spool_max_bytes", size(&c.telemetry_spool_max_bytes)},
         {"send_behavior_events", boolean(&c.telemetry_send_behavior_events)},
         {"compression", [&](const YAML::Node& cn, const std::string& ck) {
            MAMORI_RETURN_IF_ERROR(r.String(cn, ck, &c.telemetry_compression));
            static const std::set<std::string> kNames = {"auto", "none", "gzip", "deflate"};
            if (kNames.count(c.telemetry_compression) == 0) return r.Error(cn, ck, "expected one of auto, none, gzip, deflate");
            return Status::Ok();
          }},
         {"renew_certificate_at_percent", [&](const YAML::Node& pn, const std::string& pk) {
            MAMORI_RETURN_IF_ERROR(r.Size(pn, pk, &c.telemetry_renew_certificate_at_percent));
            if (c.telemetry_renew_certificate_at_percent > 100) return r.Error(pn, pk, "must be between 0 and 100");
            return Status::Ok();
          }},
       });
     }},
    {"watchdog_interval_ms", millis(&c.watchdog_interval, 3600000)},
  });
  if (!s.ok()) return s;
  if (c.data_dir.empty() || c.data_dir.front() != '/') return InvalidArgumentError(source + ": data_dir must be absolute");
  if (c.control_socket.empty() || c.control_socket.front() != '/') {
    return InvalidArgumentError(source + ": control_socket must be absolute");
  }
  if (!c.telemetry_servers.empty() && !c.telemetry_insecure && c.telemetry_ca_cert.empty()) {
    return InvalidArgumentError(source + ": telemetry.ca_cert is required (the server CA to pin) unless insecure");
  }
  for (const auto& server : c.telemetry_servers) {
    if (server.rfind(':') == std::string::npos) {
      return InvalidArgumentError(source + ": telemetry.servers: '" + server + "' is not host:port");
    }
  }
  if (c.behavior_enabled && c.behavior_sensor == "replay" && c.behavior_replay_file.empty()) {
    return InvalidArgumentError(source + ": behavior.sensor replay needs behavior.replay_file");
  }
  return c;
}

Result<AgentConfig> LoadAgentConfig(const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  return ParseAgentConfig(*text, path);
}

}  // namespace mamori::agent

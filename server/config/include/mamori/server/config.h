// mamori-server configuration (/etc/mamori/server.yaml).
//
// Unknown keys are errors, and every error names the file, line and column:
// "server.yaml:7:3: stream.max_batch_events: must be between 1 and 100000".
// Paths left empty derive from data_dir (SqlitePath, CaDir, MetricsFile), so a
// --data-dir override moves all of them.
//
// Thread safety: a loaded ServerConfig is a plain value.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::server {

// One SIEM hand-off output (docs/server.md, "SIEM hand-off").
struct SiemOutputConfig {
  enum class Kind { kFile, kSyslog };
  // Which stored events go out: all of them, findings + alerts, alerts only.
  enum class Filter { kAll, kDetections, kAlerts };

  Kind kind = Kind::kFile;
  std::string path;  // kFile: JSON lines appended here (reopened on SIGHUP)
  // kSyslog: "HOST:PORT" (UDP, IPv6 as "[::1]:514") or an absolute path of a
  // Unix datagram socket such as "/dev/log".
  std::string address;
  Filter filter = Filter::kAll;
  int facility = 16;                       // syslog facility number; 16 = local0
  std::string app_name = "mamori-server";  // RFC 5424 APP-NAME
  uint32_t max_message_bytes = 8192;       // larger syslog messages drop their payload details
};

struct StoreConfig {
  enum class Backend { kSqlite, kPostgres };
  Backend backend = Backend::kSqlite;
  std::string sqlite_path;  // empty: <data_dir>/mamori.db
  bool sqlite_durable_commits = true;
  std::string postgres_conninfo;  // libpq connection string
  std::string postgres_schema = "mamori";
  unsigned max_connections = 4;
};

struct ServerConfig {
  std::string source;  // the file it came from, for messages ("" = built-in defaults)

  std::string log_level = "info";  // debug, info, warning, error
  bool log_json = false;

  // "HOST:PORT"; HOST an IP address ("0.0.0.0", "::", "[::1]") or a name. Port 0
  // picks a free port (tests).
  std::string listen = "127.0.0.1:8443";
  // Extra DNS names / IP addresses the server certificate is valid for, beyond
  // 127.0.0.1, ::1, localhost and the listen host.
  std::vector<std::string> server_names;
  std::string data_dir = "/var/lib/mamori-server";
  std::string ca_dir;  // empty: <data_dir>/ca (replicas share one CA: point them at one copy)

  StoreConfig store;

  // The agent stream (Welcome tells the agent these).
  std::chrono::seconds heartbeat_interval{30};
  uint32_t max_batch_events = 5000;  // ~1.5 MB of typical events; max_batch_bytes bounds big ones
  uint32_t max_batch_bytes = 4u << 20;
  uint32_t max_message_bytes = 8u << 20;  // gRPC receive limit; > max_batch_bytes
  unsigned max_streams = 1024;            // concurrent Connect streams; more: RESOURCE_EXHAUSTED
  std::chrono::milliseconds command_poll_interval{2000};
  // Console commands not delivered by then expire (console.command_expiry).
  std::chrono::seconds command_expiry{7 * 24 * 3600};
  unsigned workers = 8;  // threads running store calls for the streams
  // A connection that has not finished its TLS + HTTP/2 handshake by then is
  // closed (gRPC's own default is 120 s: idle sockets would hold fds that long).
  std::chrono::milliseconds handshake_timeout{10000};

  // Enrollment.
  std::chrono::seconds client_cert_validity{365 * 24 * 3600};
  unsigned max_concurrent_enrollments = 64;

  // Metrics (Prometheus text format, node_exporter textfile collector).
  bool metrics_enabled = true;
  std::string metrics_file;  // empty: <data_dir>/metrics.prom
  std::chrono::milliseconds metrics_interval{10000};
  std::chrono::milliseconds metrics_log_interval{60000};

  std::vector<SiemOutputConfig> siem;

  // Plaintext gRPC (--insecure; never from the file). Only with a loopback
  // listen address (CheckInsecureAllowed).
  bool insecure = false;
};

// Parses YAML text; `source` names it in errors.
Result<ServerConfig> ParseServerConfig(std::string_view yaml, const std::string& source);
Result<ServerConfig> LoadServerConfig(const std::string& path);

// Paths derived from data_dir unless set.
std::string SqlitePath(const ServerConfig& c);
std::string CaDir(const ServerConfig& c);
std::string MetricsFile(const ServerConfig& c);

struct HostPort {
  std::string host;  // without brackets
  uint16_t port = 0;
};
// "127.0.0.1:8443", "[::1]:8443", "example.org:443". kInvalidArgument otherwise.
Result<HostPort> ParseHostPort(std::string_view s);
// 127.0.0.0/8, ::1, "localhost".
bool IsLoopbackHost(std::string_view host);
// kFailedPrecondition unless the listen host is loopback.
Status CheckInsecureAllowed(const ServerConfig& c);

// "30s", "500ms", "10m", "24h", "7d" (a unit is required). kInvalidArgument otherwise.
Result<std::chrono::milliseconds> ParseDuration(std::string_view s);

}  // namespace mamori::server

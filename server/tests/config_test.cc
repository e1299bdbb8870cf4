// server.yaml: defaults, every section, and errors that name file:line:column.
#include "mamori/server/config.h"

#include <catch2/catch.hpp>

namespace mamori::server {
namespace {

TEST_CASE("config: an empty file gives the documented defaults") {
  Result<ServerConfig> c = ParseServerConfig("", "server.yaml");
  REQUIRE(c.ok());
  CHECK(c->listen == "127.0.0.1:8443");
  CHECK(c->data_dir == "/var/lib/mamori-server");
  CHECK(SqlitePath(*c) == "/var/lib/mamori-server/mamori.db");
  CHECK(CaDir(*c) == "/var/lib/mamori-server/ca");
  CHECK(MetricsFile(*c) == "/var/lib/mamori-server/metrics.prom");
  CHECK(c->store.backend == StoreConfig::Backend::kSqlite);
  CHECK(c->max_streams == 1024);
  CHECK(c->heartbeat_interval == std::chrono::seconds(30));
  CHECK(c->siem.empty());
}

TEST_CASE("config: every section parses") {
  Result<ServerConfig> c = ParseServerConfig(
      "listen: '[::]:9443'\n"
      "server_names: [mamori.example.org, 10.0.0.5]\n"
      "data_dir: /srv/mamori\n"
      "store:\n"
      "  postgres:\n"
      "    conninfo: host=db dbname=mamori\n"
      "    schema: prod\n"
      "stream:\n"
      "  heartbeat_interval: 15s\n"
      "  max_batch_events: 500\n"
      "  max_batch_bytes: 1M\n"
      "  max_message_size: 2M\n"
      "  max_streams: 64\n"
      "  command_poll_interval: 500ms\n"
      "  workers: 2\n"
      "enrollment:\n"
      "  client_cert_validity: 90d\n"
      "metrics:\n"
      "  file: /var/lib/node_exporter/mamori.prom\n"
      "  interval: 5s\n"
      "siem:\n"
      "  - file: /var/log/mamori/events.jsonl\n"
      "  - syslog: 127.0.0.1:5514\n"
      "    events: detections\n"
      "    facility: local3\n"
      "  - syslog: /dev/log\n"
      "    events: alerts\n",
      "server.yaml");
  REQUIRE(c.ok());
  CHECK(c->listen == "[::]:9443");
  CHECK(c->server_names.size() == 2);
  CHECK(c->store.backend == StoreConfig::Backend::kPostgres);
  CHECK(c->store.postgres_schema == "prod");
  CHECK(c->heartbeat_interval == std::chrono::seconds(15));
  CHECK(c->max_batch_bytes == (1u << 20));
  CHECK(c->command_poll_interval == std::chrono::milliseconds(500));
  CHECK(c->client_cert_validity == std::chrono::hours(24 * 90));
  CHECK(MetricsFile(*c) == "/var/lib/node_exporter/mamori.prom");
  REQUIRE(c->siem.size() == 3);
  CHECK(c->siem[0].kind == SiemOutputConfig::Kind::kFile);
  CHECK(c->siem[1].filter == SiemOutputConfig::Filter::kDetections);
  CHECK(c->siem[1].facility == 19);
  CHECK(c->siem[2].address == "/dev/log");
}

// Each bad document and the "line:column: key" its error must start with.
TEST_CASE("config: errors name the file, line, column and key") {
  struct Case {
    const char* yaml;
    const char* where;
  };
  const Case cases[] = {
      {"listen: 127.0.0.1:8443\nlsiten: x\n", "server.yaml:2:1: lsiten: unknown key"},
      {"stream:\n  max_batch_events: 0\n", "server.yaml:2:21: stream.max_batch_events: must be between"},
      {"stream:\n  heartbeat_interval: 30\n", "server.yaml:2:23: stream.heartbeat_interval: expected a duration"},
      {"listen: localhost\n", "server.yaml:1:9: listen: expected HOST:PORT"},
      {"store:\n  sqlite: {path: relative.db}\n", "server.yaml:2:18: store.sqlite.path: must be an absolute path"},
      {"store:\n  postgres: {schema: x}\n", "server.yaml:2:13: store.postgres: needs conninfo"},
      {"siem:\n  - file: /x\n    syslog: /dev/log\n", "server.yaml:2:5: siem[0]: each output needs exactly one"},
      {"siem:\n  - syslog: /dev/log\n    events: everything\n", "server.yaml:3:13: siem[0].events: expected one of"},
      {"server_names: ['bad name']\n", "server.yaml:1:16: server_names: not a DNS name"},
      {"data_dir: [a\n", "server.yaml:2:1: "},
  };
  for (const Case& c : cases) {
    Result<ServerConfig> r = ParseServerConfig(c.yaml, "server.yaml");
    INFO(c.yaml);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(r.status().message(), Catch::StartsWith(c.where));
  }
}

TEST_CASE("config: sqlite and postgres together, and a message limit below the batch limit, are refused") {
  Result<ServerConfig> both = ParseServerConfig("store:\n  sqlite:\n  postgres: {conninfo: x}\n", "s.yaml");
  REQUIRE_FALSE(both.ok());
  CHECK_THAT(both.status().message(), Catch::Contains("choose one of sqlite or postgres"));
  Result<ServerConfig> small = ParseServerConfig("stream: {max_batch_bytes: 1M, max_message_size: 1M}\n", "s.yaml");
  REQUIRE_FALSE(small.ok());
  CHECK_THAT(small.status().message(), Catch::Contains("max_message_size"));
}

TEST_CASE("config: --insecure only on loopback listen addresses") {
  ServerConfig c;
  for (const char* ok : {"127.0.0.1:1", "127.9.9.9:1", "[::1]:1", "localhost:1"}) {
    c.listen = ok;
    CHECK(CheckInsecureAllowed(c).ok());
  }
  for (const char* bad : {"0.0.0.0:1", "[::]:1", "10.0.0.1:1", "example.org:1"}) {
    c.listen = bad;
    CHECK(CheckInsecureAllowed(c).code() == StatusCode::kFailedPrecondition);
  }
}

TEST_CASE("config: host:port and durations") {
  CHECK(ParseHostPort("[::1]:8443")->host == "::1");
  CHECK(ParseHostPort("0.0.0.0:0")->port == 0);
  CHECK_FALSE(ParseHostPort("::1:8443").ok());
  CHECK_FALSE(ParseHostPort("host:65536").ok());
  CHECK(*ParseDuration("24h") == std::chrono::hours(24));
  CHECK(*ParseDuration("250ms") == std::chrono::milliseconds(250));
  CHECK_FALSE(ParseDuration("5").ok());
  CHECK_FALSE(ParseDuration("5w").ok());
}

}  // namespace
}  // namespace mamori::server

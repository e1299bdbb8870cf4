#include <catch2/catch.hpp>

#include "mamori/agent/config.h"

namespace mamori::agent {
namespace {

TEST_CASE("Agent config parses a full file") {
  auto c = ParseAgentConfig(R"(
log_level: debug
log_json: true
data_dir: /var/lib/mamori-test
control_socket: /run/m/agent.sock
control_uids: [0, 1000]
signatures: [/usr/share/mamori/signatures]
onaccess:
  enabled: true
  exec_paths: [/]
  open_paths: [/home, /tmp]
  action: deny
  deadline_ms: 1500
  max_file_size: 16M
  workers: 3
exclusions:
  paths: ["/var/cache/*"]
  processes: [/usr/bin/backup]
  sha256: [275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f]
quarantine:
  quota: 2G
  retention_days: 7
scan:
  threads: 1
  max_depth: 8
  max_member_size: 10M
  parser_sandbox: false
  parser_workers: 4
scheduled_scans:
  - name: nightly
    schedule: "30 3 * * 1-5"
    paths: [/home]
)", "agent.yaml");
  REQUIRE(c.ok());
  CHECK(c->log_level == "debug");
  CHECK(c->control_uids == std::vector<uint32_t>{0, 1000});
  CHECK(c->open_paths.size() == 2);
  CHECK(c->action == OnAccessAction::kDeny);
  CHECK(c->deadline == std::chrono::milliseconds(1500));
  CHECK(c->onaccess_max_file_size == 16u << 20);
  CHECK(c->quarantine_quota == 2ull << 30);
  CHECK(c->limits.max_depth == 8);
  CHECK(!c->parser_sandbox);
  CHECK(c->parser_workers == 4);
  REQUIRE(c->scheduled_scans.size() == 1);
  CHECK(c->scheduled_scans[0].schedule == "30 3 * * 1-5");
}

TEST_CASE("The behavior section configures sensor, rules, watched paths and responses") {
  auto c = ParseAgentConfig(R"(
behavior:
  sensor: procconn
  rules: [/etc/mamori/behavior, /usr/share/mamori/behavior]
  watch_paths: [/srv/www, /tmp/]
  responses: false
  protected_paths: [/opt/app/]
  max_processes: 4096
  record_events: true
)", "agent.yaml");
  REQUIRE(c.ok());
  CHECK(c->behavior_enabled);
  CHECK(c->behavior_sensor == "procconn");
  CHECK(c->behavior_rules.size() == 2);
  CHECK(c->behavior_watch_paths == std::vector<std::string>{"/srv/www/", "/tmp/"});
  CHECK(!c->behavior_responses);
  CHECK(c->behavior_max_processes == 4096);
  CHECK(c->behavior_record_events);
}

TEST_CASE("The telemetry section names servers, the pinned CA and the enrollment token") {
  auto c = ParseAgentConfig(R"(
telemetry:
  servers: [mamori-a.example.org:8443, "[::1]:8443"]
  ca_cert: /etc/mamori/server-ca.crt
  enrollment_token_file: /etc/mamori/enroll.token
  spool_max_bytes: 256M
  send_behavior_events: false
  compression: gzip
  renew_certificate_at_percent: 50
)", "agent.yaml");
  REQUIRE(c.ok());
  CHECK(c->telemetry_servers.size() == 2);
  CHECK(c->telemetry_ca_cert == "/etc/mamori/server-ca.crt");
  CHECK(c->telemetry_spool_max_bytes == 256ull << 20);
  CHECK(!c->telemetry_send_behavior_events);
  CHECK(c->telemetry_compression == "gzip");
  CHECK(c->telemetry_renew_certificate_at_percent == 50);
  CHECK(!c->telemetry_insecure);
  auto bad = ParseAgentConfig("telemetry:\n  renew_certificate_at_percent: 101\n", "agent.yaml");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("agent.yaml:2") != std::string::npos);
  CHECK(bad.status().message().find("between 0 and 100") != std::string::npos);
}

TEST_CASE("An empty config means every default") {
  auto c = ParseAgentConfig("", "agent.yaml");
  REQUIRE(c.ok());
  CHECK(c->data_dir == "/var/lib/mamori");
  CHECK(c->action == OnAccessAction::kQuarantine);
  CHECK(c->parser_sandbox);
  CHECK(c->parser_workers == 2);
}

TEST_CASE("Config errors name file, line and column") {
  struct Case {
    std::string yaml, expect;
  };
  std::vector<Case> cases = {
      {"log_level: info\nonaccess:\n  action: explode\n", "agent.yaml:3:11: onaccess.action: expected one of quarantine, deny, report"},
      {"log_level: info\nlog_levle: debug\n", "agent.yaml:2:1: log_levle: unknown key"},
      {"onaccess:\n  open_paths: [relative/path]\n", "agent.yaml:2:16: onaccess.open_paths: paths must be absolute"},
      {"quarantine:\n  quota: 12X\n", "agent.yaml:2:10: quarantine.quota: unknown size suffix"},
      {"scheduled_scans:\n  - schedule: \"61 * * * *\"\n    paths: [/x]\n", "agent.yaml:2:15: scheduled_scans.schedule: bad cron field '61'"},
      {"onaccess: [1, 2\n", "agent.yaml:2:1: "},
      {"log_json: maybe\n", "agent.yaml:1:11: log_json: expected true or false"},
      {"scan:\n  parser_workers: 0\n", "agent.yaml:2:19: scan.parser_workers: must be between 1 and 64"},
      {"scheduled_scans:\n  - schedule: \"*/99999999999 * * * *\"\n    paths: [/x]\n", "agent.yaml:2:15: scheduled_scans.schedule: bad cron field '*/99999999999'"},
      {"behavior:\n  sensor: kprobe\n", "agent.yaml:2:11: behavior.sensor: expected one of auto, ebpf, procconn, replay, none"},
      {"behavior:\n  max_processes: 10\n", "agent.yaml:2:18: behavior.max_processes: must be between 256"},
      {"behavior:\n  sensor: replay\n", "agent.yaml: behavior.sensor replay needs behavior.replay_file"},
      {"telemetry:\n  servers: [10.0.0.1:8443]\n", "agent.yaml: telemetry.ca_cert is required"},
      {"telemetry:\n  servers: [mamori.example.org]\n  insecure: true\n", "agent.yaml: telemetry.servers: 'mamori.example.org' is not host:port"},
      {"telemetry:\n  compression: zstd\n", "agent.yaml:2:16: telemetry.compression: expected one of auto, none, gzip, deflate"},
  };
  for (const auto& c : cases) {
    auto r = ParseAgentConfig(c.yaml, "agent.yaml");
    INFO(c.yaml);
    REQUIRE(!r.ok());
    CHECK(r.status().message().rfind(c.expect, 0) == 0);
  }
}

}  // namespace
}  // namespace mamori::agent

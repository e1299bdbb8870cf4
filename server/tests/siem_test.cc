// SIEM hand-off: the JSON record, the file and syslog outputs, and "each
// stored event exactly once" through resends, overlaps, gaps and reconnects.
#include "mamori/server/siem.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <map>

#include "mamori/common/file_util.h"
#include "mamori/common/json.h"
#include "test_client.h"

namespace mamori::server {
namespace {

using namespace testing;  // NOLINT(google-build-using-namespace): test helpers

std::vector<json::Value> ReadJsonLines(const std::string& path) {
  std::vector<json::Value> out;
  Result<std::string> text = ReadFileToString(path);
  if (!text.ok()) return out;
  size_t start = 0;
  while (start < text->size()) {
    size_t nl = text->find('\n', start);
    REQUIRE(nl != std::string::npos);  // only whole lines
    Result<json::Value> v = json::Parse(std::string_view(*text).substr(start, nl - start));
    REQUIRE(v.ok());
    out.push_back(std::move(*v));
    start = nl + 1;
  }
  return out;
}

uint64_t Seq(const json::Value& v) { return *v.Find("sequence")->AsUint64(); }

TEST_CASE("siem: the JSON record has the documented envelope and proto-named details") {
  mamori::v1::Event e = MakeEvent(7);
  e.set_severity(mamori::v1::SEVERITY_HIGH);
  e.mutable_process()->set_cwd(std::string("/tmp/\xff\xfe", 7));  // not UTF-8
  e.mutable_parent()->set_pid(1);
  auto* alert = e.mutable_behavior_alert();
  alert->set_rule_id("lnx_shell_from_tmp");
  alert->add_tags("attack.t1059.004");
  alert->add_related_sequences(5);
  const SiemRecord rec{"agent-1", "host-1", "behavior_alert", 1'700'000'000'123'456'789, &e};
  const std::string line = SiemJson(rec);
  Result<json::Value> v = json::Parse(line);
  REQUIRE(v.ok());
  CHECK(v->Find("schema")->AsString() == "mamori.siem.v1");
  CHECK(v->Find("class")->AsString() == "alert");
  CHECK(v->Find("type")->AsString() == "behavior_alert");
  CHECK(v->Find("agent_id")->AsString() == "agent-1");
  CHECK(v->Find("hostname")->AsString() == "host-1");
  CHECK(Seq(*v) == 7);
  CHECK(v->Find("time")->AsString() == "2023-11-14T22:13:20.000007000Z");
  CHECK(v->Find("received_time")->AsString() == "2023-11-14T22:13:20.123456789Z");
  CHECK(v->Find("severity")->AsString() == "high");
  const json::Value* process = v->Find("process");
  REQUIRE(process != nullptr);
  CHECK(*process->Find("pid")->AsInt64() == 1007);
  CHECK(process->Find("cwd")->AsString() == "/tmp/\\xff\\xfe");
  CHECK(process->Find("argv")->items().size() == 2);
  CHECK(*v->Find("parent")->Find("pid")->AsInt64() == 1);
  const json::Value* a = v->Find("behavior_alert");
  REQUIRE(a != nullptr);
  CHECK(a->Find("rule_id")->AsString() == "lnx_shell_from_tmp");
  CHECK(a->Find("tags")->items()[0].AsString() == "attack.t1059.004");
  CHECK(a->Find("description") == nullptr);  // empty fields are left out

  mamori::v1::Event exec = MakeEvent(8);
  const SiemRecord r2{"agent-1", "", "exec", 0, &exec};
  Result<json::Value> v2 = json::Parse(SiemJson(r2));
  REQUIRE(v2.ok());
  CHECK(v2->Find("class")->AsString() == "activity");
  CHECK(v2->Find("process_activity")->Find("kind")->AsString() == "exec");
  Result<json::Value> shortened = json::Parse(SiemJson(r2, false));
  REQUIRE(shortened.ok());
  CHECK(shortened->Find("truncated")->AsBool());
  CHECK(shortened->Find("process") == nullptr);
}

TEST_CASE("siem: the file gets each stored event exactly once through resends, overlaps, gaps and reconnects") {
  TempDir out;
  const std::string all = out.path() + "/all.jsonl";
  const std::string alerts = out.path() + "/alerts.jsonl";
  TestServer ts([&](ServerConfig& c) {
    SiemOutputConfig f;
    f.kind = SiemOutputConfig::Kind::kFile;
    f.path = all;
    c.siem.push_back(f);
    f.path = alerts;
    f.filter = SiemOutputConfig::Filter::kAlerts;
    c.siem.push_back(f);
  });
  const EnrolledAgent a = EnrollNew(ts);
  auto channel = [&] { return TlsChannel(ts.target(), ts.ca_pem(), a.key_pem, a.cert_pem); };
  {
    Stream s(channel());
    mamori::v1::Welcome w;
    REQUIRE(s.Hello(&w, "siem-host"));
    CHECK(s.SendBatch(MakeBatch(1, 20)) == 20);
    CHECK(s.SendBatch(MakeBatch(11, 30)) == 30);  // overlap
    CHECK(s.SendBatch(MakeBatch(41, 50)) == 30);  // above a gap
    CHECK(s.SendBatch(MakeBatch(41, 50)) == 30);  // resent above the gap, same stream
    s.Cancel();                                   // cut
    s.Finish();
  }
  {
    Stream s(channel());
    mamori::v1::Welcome w;
    REQUIRE(s.Hello(&w, "siem-host"));
    CHECK(w.acked_sequence() == 30);
    CHECK(s.SendBatch(MakeBatch(25, 60)) == 60);  // the agent resends what it still has
    mamori::v1::AgentMessage alert = MakeBatch(61, 61);
    alert.mutable_batch()->mutable_events(0)->mutable_behavior_alert()->set_rule_id("r1");
    CHECK(s.SendBatch(alert) == 61);
    CHECK(s.SendBatch(alert) == 61);
    CHECK(s.Finish().ok());
  }
  std::map<uint64_t, int> seen;
  std::vector<json::Value> lines = ReadJsonLines(all);
  for (const auto& v : lines) {
    ++seen[Seq(v)];
    CHECK(v.Find("agent_id")->AsString() == a.agent_id);
    CHECK(v.Find("hostname")->AsString() == "siem-host");
  }
  CHECK(lines.size() == 61);
  CHECK(seen.size() == 61);
  for (const auto& [seq, n] : seen) {
    INFO("sequence " << seq);
    CHECK(n == 1);
  }
  std::vector<json::Value> only_alerts = ReadJsonLines(alerts);
  REQUIRE(only_alerts.size() == 1);
  CHECK(Seq(only_alerts[0]) == 61);
  CHECK(only_alerts[0].Find("behavior_alert")->Find("rule_id")->AsString() == "r1");
}

TEST_CASE("siem: SIGHUP-style reopen continues in a new file after logrotate moved the old one") {
  TempDir out;
  const std::string path = out.path() + "/events.jsonl";
  TestServer ts([&](ServerConfig& c) {
    SiemOutputConfig f;
    f.path = path;
    c.siem.push_back(f);
  });
  const EnrolledAgent a = EnrollNew(ts);
  Stream s(TlsChannel(ts.target(), ts.ca_pem(), a.key_pem, a.cert_pem));
  mamori::v1::Welcome w;
  REQUIRE(s.Hello(&w));
  REQUIRE(s.SendBatch(MakeBatch(1, 5)) == 5);
  REQUIRE(std::rename(path.c_str(), (path + ".1").c_str()) == 0);
  REQUIRE(ts.server().ReopenOutputs().ok());
  REQUIRE(s.SendBatch(MakeBatch(6, 8)) == 8);
  CHECK(ReadJsonLines(path + ".1").size() == 5);
  std::vector<json::Value> fresh = ReadJsonLines(path);
  REQUIRE(fresh.size() == 3);
  CHECK(Seq(fresh[0]) == 6);
  CHECK(s.Finish().ok());
}

TEST_CASE("siem: syslog over UDP gets RFC 5424 messages for detections only") {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  socklen_t len = sizeof sa;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
  const int port = ntohs(sa.sin_port);
  TestServer ts([&](ServerConfig& c) {
    SiemOutputConfig o;
    o.kind = SiemOutputConfig::Kind::kSyslog;
    o.address = "127.0.0.1:" + std::to_string(port);
    o.filter = SiemOutputConfig::Filter::kDetections;
    o.facility = 19;  // local3
    c.siem.push_back(o);
  });
  const EnrolledAgent a = EnrollNew(ts);
  Stream s(TlsChannel(ts.target(), ts.ca_pem(), a.key_pem, a.cert_pem));
  mamori::v1::Welcome w;
  REQUIRE(s.Hello(&w));
  mamori::v1::AgentMessage batch = MakeBatch(1, 3);
  auto* finding = batch.mutable_batch()->mutable_events(1);
  finding->set_severity(mamori::v1::SEVERITY_CRITICAL);
  finding->mutable_scan_finding()->set_signature("Eicar-Test-Signature");
  finding->mutable_scan_finding()->set_path("/tmp/eicar.com");
  REQUIRE(s.SendBatch(batch) == 3);
  pollfd p{fd, POLLIN, 0};
  REQUIRE(::poll(&p, 1, 5000) == 1);
  char buf[65536];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  REQUIRE(n > 0);
  const std::string msg(buf, static_cast<size_t>(n));
  INFO(msg);
  // <PRI = 19*8 + 2 (crit)>1 TIMESTAMP HOST APP PROCID MSGID - JSON
  CHECK_THAT(msg, Catch::StartsWith("<154>1 20"));
  CHECK_THAT(msg, Catch::Contains(" mamori-server " + std::to_string(::getpid()) + " scan_finding - {"));
  const size_t brace = msg.find('{');
  Result<json::Value> v = json::Parse(msg.substr(brace));
  REQUIRE(v.ok());
  CHECK(Seq(*v) == 2);
  CHECK(v->Find("scan_finding")->Find("signature")->AsString() == "Eicar-Test-Signature");
  CHECK(::poll(&p, 1, 200) == 0);  // the two activity events were filtered out
  ::close(fd);
  CHECK(s.Finish().ok());
}

}  // namespace
}  // namespace mamori::server

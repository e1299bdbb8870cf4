#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "mamori/scanner/yara_engine.h"

namespace mamori::scanner {
namespace {

TEST_CASE("YaraRules reports rule, namespace, tags and meta of a match") {
  auto rules = YaraRules::Compile({{"mem/a.yar",
                                    "rule Hello : greet demo { meta: author = \"t\" level = 3 ok = true "
                                    "strings: $h = \"hello world\" condition: $h }",
                                    "ns1"}});
  REQUIRE(rules.ok());
  CHECK((*rules)->rule_count() == 1);
  auto sc = YaraScanner::Create(*rules);
  REQUIRE(sc.ok());
  std::vector<YaraMatch> m;
  REQUIRE((*sc)->ScanBuffer("say hello world!", std::chrono::seconds(5), &m).ok());
  REQUIRE(m.size() == 1);
  CHECK(m[0].rule == "Hello");
  CHECK(m[0].name_space == "ns1");
  CHECK(m[0].tags == std::vector<std::string>{"greet", "demo"});
  CHECK(m[0].meta == std::vector<std::pair<std::string, std::string>>{{"author", "t"}, {"level", "3"}, {"ok", "true"}});
  m.clear();
  REQUIRE((*sc)->ScanBuffer("nothing here", std::chrono::seconds(5), &m).ok());
  CHECK(m.empty());
}

TEST_CASE("YaraRules refuses a rule set with a syntax error as a whole, with file and line") {
  auto rules = YaraRules::Compile({
      {"good.yar", "rule Good { condition: true }", ""},
      {"rules/bad.yar", "rule Fine { condition: true }\n\nrule Broken {\n  strings: $a = \"x\"\n  condition: $a and and\n}\n", ""},
  });
  REQUIRE(!rules.ok());
  CHECK(rules.status().code() == StatusCode::kInvalidArgument);
  CHECK(rules.status().message().find("rules/bad.yar:5: syntax error") != std::string::npos);
  auto undefined = YaraRules::Compile({{"u.yar", "rule U {\n  strings: $a = \"x\"\n  condition: $b\n}\n", ""}});
  REQUIRE(!undefined.ok());
  CHECK(undefined.status().message().find("u.yar:") != std::string::npos);
  CHECK(undefined.status().message().find("undefined string \"$b\"") != std::string::npos);
}

TEST_CASE("YaraRules::CompileFiles names a missing file") {
  auto rules = YaraRules::CompileFiles({"/nonexistent/mamori.yar"});
  REQUIRE(!rules.ok());
  CHECK(rules.status().message().find("/nonexistent/mamori.yar") != std::string::npos);
}

TEST_CASE("YaraRules reports slow-rule warnings") {
  auto rules = YaraRules::Compile({{"slow.yar", "rule Slow { strings: $a = /a.*b/ condition: $a }", ""}});
  REQUIRE(rules.ok());
  CHECK(!(*rules)->warnings().empty());
}

TEST_CASE("One compiled rule set serves several threads, one scanner each") {
  auto rules = YaraRules::Compile({{"t.yar", "rule Marker { strings: $m = \"MARKER-42\" condition: $m }", ""}});
  REQUIRE(rules.ok());
  std::atomic<int> hits{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, rs = *rules] {
      auto sc = YaraScanner::Create(rs);
      if (!sc.ok()) return;
      for (int i = 0; i < 200; ++i) {
        std::vector<YaraMatch> m;
        std::string data = std::string(1000, 'x') + (i % 2 ? "MARKER-42" : "marker");
        if ((*sc)->ScanBuffer(data, std::chrono::seconds(5), &m).ok() && !m.empty()) ++hits;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(hits == 4 * 100);
}

TEST_CASE("A slow rule hits the per-scan timeout and says so") {
  // Each of these loops costs ~N^2; on 16 MB it runs far past one second.
  auto rules = YaraRules::Compile({{"slow.yar",
                                    "rule Slow { condition: for all i in (0..filesize) : "
                                    "(for all j in (0..filesize) : (uint8(i) != 0x41 or uint8(j) != 0x42)) }",
                                    ""}});
  REQUIRE(rules.ok());
  auto sc = YaraScanner::Create(*rules);
  REQUIRE(sc.ok());
  std::vector<YaraMatch> m;
  std::string data(16u << 20, 'z');
  auto start = std::chrono::steady_clock::now();
  Status s = (*sc)->ScanBuffer(data, std::chrono::seconds(1), &m);
  CHECK(s.code() == StatusCode::kDeadlineExceeded);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(30));
}

}  // namespace
}  // namespace mamori::scanner

#include <catch2/catch.hpp>

#include "mamori/signatures/profile.h"
#include "test_util.h"

namespace mamori::signatures {
namespace {

TEST_CASE("SplitYaraRules finds every rule despite braces in strings, regexes, hex and comments") {
  std::string src =
      "import \"math\"\n"
      "// rule Fake { }\n"
      "/* rule AlsoFake { } */\n"
      "private rule Helper { strings: $h = \"}{\" condition: $h }\n"
      "rule A : tag1 { meta: x = \"{\" strings: $r = /a{2,3}\\/}/ $x = { 4D 5A [2-4] ( 90 | 91 ) } condition: $r or $x }\n"
      "global rule G { condition: filesize > 0 }\n"
      "rule B { condition: Helper and filesize / 2 > 1 }\n";
  std::vector<std::string> imports;
  std::vector<RuleSource> rules;
  REQUIRE(SplitYaraRules(src, "t.yar", &imports, &rules).ok());
  REQUIRE(imports.size() == 1);
  REQUIRE(rules.size() == 4);
  CHECK(rules[0].name == "Helper");
  CHECK(rules[1].name == "A");
  CHECK(rules[1].line == 5);
  CHECK(rules[2].global);
  CHECK(rules[3].name == "B");
  CHECK(!SplitYaraRules("rule X { condition: true", "bad.yar", &imports, &rules).ok());
}

TEST_CASE("ProfileRules ranks a slow rule first") {
  testing::TempDir dir;
  std::string rules = dir.Write("r.yar",
                                "rule Fast { strings: $a = \"needle-xyz\" condition: $a }\n"
                                "rule Slow { condition: for any i in (0..filesize-1) : (uint8(i) == 0x51 and "
                                "for any j in (0..200) : (uint8(j) == 0x52)) }\n"
                                "private rule P { condition: true }\n"
                                "rule UsesP { condition: P and filesize > 0 }\n");
  dir.Write("corpus/a.bin", std::string(200000, 'a'));
  dir.Write("corpus/b.bin", std::string(100000, 'b'));
  auto report = ProfileRules({rules}, dir.path() + "/corpus", 1 << 20);
  REQUIRE(report.ok());
  REQUIRE(report->rules.size() == 4);
  CHECK(report->rules[0].rule == "Slow");
  CHECK(report->corpus_files == 2);
  for (const auto& r : report->rules) CHECK(r.error.empty());  // UsesP compiled with its dependency
}

}  // namespace
}  // namespace mamori::signatures

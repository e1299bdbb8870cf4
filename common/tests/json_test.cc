#include <catch2/catch.hpp>

#include "mamori/common/json.h"

namespace mamori::json {
namespace {

TEST_CASE("Quote escapes JSON specials and control characters") {
  CHECK(Quote("a\"b\\c\n\t") == "\"a\\\"b\\\\c\\n\\t\"");
  CHECK(Quote(std::string("\x01", 1)) == "\"\\u0001\"");
}

TEST_CASE("Quote keeps valid UTF-8 and escapes invalid bytes as text") {
  CHECK(Quote("日本") == "\"日本\"");
  CHECK(Quote("a\xff") == "\"a\\\\xff\"");
  // Overlong encoding of '/' and a lone surrogate are invalid too.
  CHECK(Quote("\xc0\xaf") == "\"\\\\xc0\\\\xaf\"");
  CHECK(Quote("\xed\xa0\x80") == "\"\\\\xed\\\\xa0\\\\x80\"");
  // Truncated multi-byte sequence at the end.
  CHECK(Quote("x\xe6\x97") == "\"x\\\\xe6\\\\x97\"");
}

}  // namespace
}  // namespace mamori::json

namespace mamori::json {
namespace {

TEST_CASE("Parse reads nested objects, arrays, escapes and numbers") {
  auto v = Parse(R"( {"a": [1, -2.5e3, "x\u00e9\ud83d\ude00"], "b": {"c": true, "d": null}, "a2": "q\"\\/\n"} )");
  REQUIRE(v.ok());
  const Value* a = v->Find("a");
  REQUIRE(a != nullptr);
  REQUIRE(a->items().size() == 3);
  CHECK(*a->items()[0].AsInt64() == 1);
  CHECK(a->items()[1].AsString() == "-2.5e3");
  CHECK(!a->items()[1].AsInt64().ok());
  CHECK(a->items()[2].AsString() == "x\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(v->Find("b")->Find("c")->AsBool());
  CHECK(v->Find("b")->Find("d")->is_null());
  CHECK(v->Find("a2")->AsString() == "q\"\\/\n");
  CHECK(v->Find("missing") == nullptr);
}

TEST_CASE("Parse round-trips what Quote writes for valid UTF-8") {
  std::string s = "tab\there \"quoted\" \x01 日本";
  auto v = Parse(Quote(s));
  REQUIRE(v.ok());
  CHECK(v->AsString() == s);
}

TEST_CASE("Parse refuses malformed input naming the column") {
  struct Case { const char* text; const char* what; };
  for (const Case& c : std::initializer_list<Case>{
           {"{\"a\":1,}", "expected a key"},
           {"[1 2]", "expected ','"},
           {"\"abc", "unterminated string"},
           {"01", "leading zero"},
           {"{\"a\" 1}", "expected ':'"},
           {"tru", "invalid literal"},
           {"1 2", "trailing"},
           {"\"\\ud800\"", "surrogate"},
           {"", "unexpected end"}}) {
    auto v = Parse(c.text);
    INFO(c.text);
    REQUIRE(!v.ok());
    CHECK(v.status().message().find(c.what) != std::string::npos);
    CHECK(v.status().message().find("at column") == 0);
  }
  CHECK(!Parse(std::string(100, '[') + std::string(100, ']')).ok());
  CHECK(*Parse("18446744073709551615")->AsUint64() == 18446744073709551615ull);
  CHECK(!Parse("-1")->AsUint64().ok());
}

}  // namespace
}  // namespace mamori::json

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

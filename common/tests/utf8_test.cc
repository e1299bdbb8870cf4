#include <catch2/catch.hpp>

#include <string>

#include "mamori/common/utf8.h"

namespace mamori {
namespace {

size_t At0(const std::string& s) { return Utf8SequenceLength(s, 0); }

TEST_CASE("Utf8SequenceLength accepts every well-formed sequence length") {
  CHECK(At0(std::string(1, '\0')) == 1);
  CHECK(At0("a") == 1);
  CHECK(At0("\xC2\x80") == 2);          // U+0080
  CHECK(At0("\xDF\xBF") == 2);          // U+07FF
  CHECK(At0("\xE0\xA0\x80") == 3);      // U+0800
  CHECK(At0("\xED\x9F\xBF") == 3);      // U+D7FF, just below the surrogates
  CHECK(At0("\xEF\xBF\xBF") == 3);      // U+FFFF
  CHECK(At0("\xF0\x90\x80\x80") == 4);  // U+10000
  CHECK(At0("\xF4\x8F\xBF\xBF") == 4);  // U+10FFFF
}

TEST_CASE("Utf8SequenceLength refuses overlongs surrogates out-of-range code points strays and truncation") {
  CHECK(At0("\xC0\x80") == 0);          // overlong NUL
  CHECK(At0("\xC1\xBF") == 0);
  CHECK(At0("\xE0\x9F\xBF") == 0);      // overlong 3-byte
  CHECK(At0("\xED\xA0\x80") == 0);      // U+D800
  CHECK(At0("\xED\xBF\xBF") == 0);      // U+DFFF
  CHECK(At0("\xF0\x8F\xBF\xBF") == 0);  // overlong 4-byte
  CHECK(At0("\xF4\x90\x80\x80") == 0);  // U+110000
  CHECK(At0("\xF5\x80\x80\x80") == 0);
  CHECK(At0("\xFF") == 0);
  CHECK(At0("\x80") == 0);              // stray continuation
  CHECK(At0("\xE2\x82") == 0);          // truncated
  CHECK(At0("\xF0\x9F\x98") == 0);
  CHECK(At0("\xC3(") == 0);             // lead byte without its continuation
  const std::string mid = "a\xE2\x82\xAC";  // '€' after an ASCII byte
  CHECK(Utf8SequenceLength(mid, 1) == 3);
  CHECK(Utf8SequenceLength(mid, 2) == 0);
}

}  // namespace
}  // namespace mamori

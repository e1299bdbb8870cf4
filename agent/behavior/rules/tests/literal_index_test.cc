// LiteralIndex against a naive search: same (literal, end) pairs, ASCII case
// folded, overlapping and nested literals included.
#include "literal_index.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <set>

#include "fields.h"

namespace mamori::behavior::rules::internal {
namespace {

using Hits = std::set<std::pair<uint32_t, size_t>>;

Hits Naive(const std::vector<std::string>& literals, const std::string& text) {
  Hits hits;
  const std::string t = FoldAscii(text);
  for (uint32_t id = 0; id < literals.size(); ++id) {
    const std::string l = FoldAscii(literals[id]);
    for (size_t p = t.find(l); p != std::string::npos; p = t.find(l, p + 1)) hits.insert({id, p + l.size()});
  }
  return hits;
}

TEST_CASE("literal index finds every occurrence, case-insensitively, in each mode") {
  std::mt19937 rng(1);
  const std::string alphabet = "abAB/-.\xC3\xA9";
  auto random = [&](size_t max_len, size_t min_len) {
    std::string s(min_len + rng() % (max_len - min_len + 1), 'a');
    for (char& c : s) c = alphabet[rng() % alphabet.size()];
    return s;
  };
  for (auto mode : {LiteralIndex::Mode::kAnywhere, LiteralIndex::Mode::kPrefix, LiteralIndex::Mode::kSuffix}) {
    INFO("mode " << static_cast<int>(mode));
    for (int round = 0; round < 200; ++round) {
      std::vector<std::string> literals;
      LiteralIndex index(mode);
      for (int i = 0, n = 1 + static_cast<int>(rng() % 12); i < n; ++i) {
        literals.push_back(random(5, 1));
        REQUIRE(index.Add(literals.back()) == static_cast<uint32_t>(i));
      }
      index.Build();
      for (int k = 0; k < 20; ++k) {
        // Texts that often start or end with a literal.
        std::string text = random(20, 0);
        if (rng() % 2) text = literals[rng() % literals.size()] + text;
        if (rng() % 2) text += literals[rng() % literals.size()];
        Hits got, want;
        index.Scan(text, [&](uint32_t id, size_t end) { got.insert({id, end}); });
        for (const auto& [id, end] : Naive(literals, text)) {
          const bool at_start = end == literals[id].size(), at_end = end == text.size();
          if (mode == LiteralIndex::Mode::kAnywhere || (mode == LiteralIndex::Mode::kPrefix && at_start) ||
              (mode == LiteralIndex::Mode::kSuffix && at_end)) {
            want.insert({id, end});
          }
        }
        INFO("text '" << text << "'");
        REQUIRE(got == want);
      }
    }
  }
}

TEST_CASE("an empty literal index matches nothing") {
  for (auto mode : {LiteralIndex::Mode::kAnywhere, LiteralIndex::Mode::kPrefix, LiteralIndex::Mode::kSuffix}) {
    LiteralIndex index(mode);
    index.Build();
    int hits = 0;
    index.Scan("anything", [&](uint32_t, size_t) { ++hits; });
    CHECK(hits == 0);
  }
}

}  // namespace
}  // namespace mamori::behavior::rules::internal

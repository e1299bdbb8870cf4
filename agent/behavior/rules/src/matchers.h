// Field tests: what one `Field|modifiers: values` entry of a Sigma detection
// compiles to, and how it is evaluated against an EventView.
//
// Strings are matched ASCII-case-insensitively by comparing folded field text
// with folded pattern text (`|cased` compares raw text). Sigma wildcards
// (`*`, `?`, with `\` escapes) become a token list; the common shapes (exact,
// prefix, suffix, contains) get dedicated fast paths.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fields.h"

namespace re2 {
class RE2;
}

namespace mamori::behavior::rules::internal {

// A Sigma string pattern after modifiers.
class StringPattern {
 public:
  enum class Shape : uint8_t { kEquals, kPrefix, kSuffix, kContains, kAny, kGlob };
  struct Token {
    enum Kind : uint8_t { kLiteral, kStar, kOneChar };
    Kind kind;
    std::string text;  // kLiteral only
  };

  // `tokens` as parsed from the value (ParseWildcards or a literal); `cased`
  // keeps case, otherwise literals are folded.
  static StringPattern Make(std::vector<Token> tokens, bool cased);

  // REQUIRES: `text` is folded unless cased().
  bool Match(std::string_view text) const;
  bool cased() const { return cased_; }
  Shape shape() const { return shape_; }
  const std::vector<Token>& tokens() const { return tokens_; }
  const std::string& literal() const { return literal_; }  // shapes kEquals..kContains

 private:
  bool GlobMatch(std::string_view text) const;

  Shape shape_ = Shape::kEquals;
  bool cased_ = false;
  std::string literal_;
  std::vector<Token> tokens_;  // normalized: no two adjacent stars or literals
};

// Bytes in the UTF-8 sequence that `lead` starts (1 for a stray continuation byte).
inline size_t Utf8Length(unsigned char lead) { return lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4; }

// A whole decimal integer (optional '-'); false on anything else.
bool ParseInt64(std::string_view s, int64_t* out);

// Sigma value text -> tokens: `*` and `?` are wildcards; `\*`, `\?` and `\\`
// are the plain characters; any other `\` is itself.
std::vector<StringPattern::Token> ParseWildcards(std::string_view value);

// An IPv4 or IPv6 network. IPv4-mapped IPv6 addresses match IPv4 networks.
struct Cidr {
  std::array<uint8_t, 16> addr{};
  int prefix_bits = 0;
  bool v6 = false;
  static std::optional<Cidr> Parse(std::string_view text);
  bool Contains(std::string_view ip) const;
};

enum class CompareOp : uint8_t { kEq, kLt, kLte, kGt, kGte };

struct ValueMatcher {
  enum class Kind : uint8_t { kString, kRegex, kCidr, kNumber, kExists, kNull, kFieldRef };
  Kind kind = Kind::kString;
  // Values written once in the rule but expanded (windash, base64offset)
  // share a group: a group matches when any of its variants does.
  uint32_t group = 0;
  StringPattern pattern;                  // kString
  std::shared_ptr<const re2::RE2> regex;  // kRegex (RE2 is thread-safe for matching)
  // kRegex: literals (lowercase) at least one of which occurs in any text the
  // regex matches; empty when RE2 finds none (e.g. '(.){200,}').
  std::vector<std::string> regex_atoms;
  Cidr cidr;
  CompareOp op = CompareOp::kEq;                                   // kNumber
  int64_t number = 0;                                              // kNumber
  bool exists = true;                                              // kExists: expected presence
  FieldId ref = FieldId::kImage;                                   // kFieldRef: the other field...
  StringPattern::Shape ref_shape = StringPattern::Shape::kEquals;  // ...compared as equals/prefix/suffix/contains
  bool ref_cased = false;
};

struct FieldTest {
  std::optional<FieldId> field;      // nullopt: a keyword, searched in every string field
  bool all = false;                  // |all: every value (group) must match; default: any
  bool negate = false;               // |neq: the field must differ from every value (all is set too)
  std::vector<ValueMatcher> values;  // groups are contiguous, numbered from 0
};

// One Sigma value as written in YAML.
struct SigmaValue {
  bool null = false;
  std::string text;
};

// Compiles `Field|mods: values` (field == nullopt for keywords, which match
// as substrings of any string field). On error returns nullopt and sets
// *error (unknown/incompatible modifier, bad regex, cidr, number...).
// Defined in modifiers.cc.
std::optional<FieldTest> CompileFieldTest(std::optional<FieldId> field, const std::vector<std::string>& modifiers,
                                          const std::vector<SigmaValue>& values, Category category, std::string* error);

// The string fields of `category`, searched by keywords.
const std::vector<FieldId>& KeywordFields(Category category);

bool EvalFieldTest(const FieldTest& test, Category category, EventView& view);

// Base64 as in Python's b64encode (with padding). Exposed for tests. (modifiers.cc)
std::string Base64Encode(std::string_view data);

}  // namespace mamori::behavior::rules::internal

// Run-time matching of compiled field tests: wildcard patterns, CIDR
// networks, numbers, regexes, field references and keywords.
#include "matchers.h"

#include <arpa/inet.h>
#include <re2/re2.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace mamori::behavior::rules::internal {

using Token = StringPattern::Token;

bool ParseInt64(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

std::vector<Token> ParseWildcards(std::string_view value) {
  std::vector<Token> tokens;
  auto literal = [&](char c) {
    if (tokens.empty() || tokens.back().kind != Token::kLiteral) tokens.push_back(Token{Token::kLiteral, {}});
    tokens.back().text.push_back(c);
  };
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c == '\\' && i + 1 < value.size() && (value[i + 1] == '*' || value[i + 1] == '?' || value[i + 1] == '\\')) {
      literal(value[++i]);
    } else if (c == '*') {
      tokens.push_back(Token{Token::kStar, {}});
    } else if (c == '?') {
      tokens.push_back(Token{Token::kOneChar, {}});
    } else {
      literal(c);
    }
  }
  return tokens;
}

StringPattern StringPattern::Make(std::vector<Token> tokens, bool cased) {
  StringPattern p;
  p.cased_ = cased;
  for (Token& t : tokens) {
    if (t.kind == Token::kLiteral && !cased) t.text = FoldAscii(t.text);
    if (!p.tokens_.empty() && t.kind == p.tokens_.back().kind && t.kind != Token::kOneChar) {
      if (t.kind == Token::kLiteral) p.tokens_.back().text += t.text;
      continue;  // two stars are one
    }
    if (t.kind == Token::kLiteral && t.text.empty()) continue;
    p.tokens_.push_back(std::move(t));
  }
  const auto& k = p.tokens_;
  auto is = [&](size_t i, Token::Kind kind) { return k[i].kind == kind; };
  if (k.empty()) {
    p.shape_ = Shape::kEquals;
  } else if (k.size() == 1 && is(0, Token::kLiteral)) {
    p.shape_ = Shape::kEquals;
    p.literal_ = k[0].text;
  } else if (k.size() == 1 && is(0, Token::kStar)) {
    p.shape_ = Shape::kAny;
  } else if (k.size() == 2 && is(0, Token::kLiteral) && is(1, Token::kStar)) {
    p.shape_ = Shape::kPrefix;
    p.literal_ = k[0].text;
  } else if (k.size() == 2 && is(0, Token::kStar) && is(1, Token::kLiteral)) {
    p.shape_ = Shape::kSuffix;
    p.literal_ = k[1].text;
  } else if (k.size() == 3 && is(0, Token::kStar) && is(1, Token::kLiteral) && is(2, Token::kStar)) {
    p.shape_ = Shape::kContains;
    p.literal_ = k[1].text;
  } else {
    p.shape_ = Shape::kGlob;
  }
  return p;
}

bool StringPattern::Match(std::string_view text) const {
  switch (shape_) {
    case Shape::kEquals:
      return text == literal_;
    case Shape::kPrefix:
      return text.starts_with(literal_);
    case Shape::kSuffix:
      return text.ends_with(literal_);
    case Shape::kContains:  // (first-byte memchr then compare: cheaper than memmem on short fields)
      return text.find(literal_) != std::string_view::npos;
    case Shape::kAny:
      return true;
    case Shape::kGlob:
      return GlobMatch(text);
  }
  return false;
}

bool StringPattern::GlobMatch(std::string_view text) const {
  // Classic wildcard matching with backtracking to the last star; the tokens
  // between stars have a fixed length, so that is enough.
  const size_t n = tokens_.size();
  size_t ti = 0, si = 0, star_ti = SIZE_MAX, star_si = 0;
  for (;;) {
    if (ti < n) {
      const Token& t = tokens_[ti];
      if (t.kind == Token::kStar) {
        star_ti = ti++;
        star_si = si;
        continue;
      }
      if (t.kind == Token::kLiteral && text.substr(si).starts_with(t.text)) {
        si += t.text.size();
        ++ti;
        continue;
      }
      if (t.kind == Token::kOneChar && si < text.size()) {
        si = std::min(text.size(), si + Utf8Length(static_cast<unsigned char>(text[si])));
        ++ti;
        continue;
      }
    } else if (si == text.size()) {
      return true;
    }
    if (star_ti == SIZE_MAX || star_si >= text.size()) return false;
    si = ++star_si;
    ti = star_ti + 1;
  }
}

std::optional<Cidr> Cidr::Parse(std::string_view text) {
  Cidr c;
  std::string addr(text.substr(0, text.find('/')));
  int max_bits = 32;
  if (inet_pton(AF_INET, addr.c_str(), c.addr.data()) == 1) {
    c.v6 = false;
  } else if (inet_pton(AF_INET6, addr.c_str(), c.addr.data()) == 1) {
    c.v6 = true;
    max_bits = 128;
  } else {
    return std::nullopt;
  }
  c.prefix_bits = max_bits;
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    int64_t bits = 0;
    if (!ParseInt64(text.substr(slash + 1), &bits) || bits < 0 || bits > max_bits) return std::nullopt;
    c.prefix_bits = static_cast<int>(bits);
  }
  return c;
}

bool Cidr::Contains(std::string_view ip) const {
  if (ip.empty() || ip.size() > 64) return false;
  char buf[65];
  memcpy(buf, ip.data(), ip.size());
  buf[ip.size()] = '\0';
  uint8_t a[16];
  const uint8_t* bytes = a;
  if (inet_pton(AF_INET, buf, a) == 1) {
    if (v6) return false;
  } else if (inet_pton(AF_INET6, buf, a) == 1) {
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (!v6) {
      if (memcmp(a, kMapped, 12) != 0) return false;
      bytes = a + 12;  // ::ffff:a.b.c.d against an IPv4 network
    }
  } else {
    return false;
  }
  int full = prefix_bits / 8, rest = prefix_bits % 8;
  if (memcmp(bytes, addr.data(), full) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xFF << (8 - rest));
  return (bytes[full] & mask) == (addr[full] & mask);
}
const std::vector<FieldId>& KeywordFields(Category category) {
  static const auto* const kTable = [] {
    auto* table = new std::array<std::vector<FieldId>, kCategoryCount>;
    for (int c = 0; c < kCategoryCount; ++c) {
      for (int f = 0; f < kFieldCount; ++f) {
        const FieldInfo& info = GetFieldInfo(static_cast<FieldId>(f));
        if (info.kind == FieldKind::kString && (info.categories & MaskOf(static_cast<Category>(c)))) {
          (*table)[c].push_back(static_cast<FieldId>(f));
        }
      }
    }
    return table;
  }();
  return (*kTable)[static_cast<int>(category)];
}

namespace {

bool Compare(int64_t x, CompareOp op, int64_t y) {
  switch (op) {
    case CompareOp::kEq:
      return x == y;
    case CompareOp::kLt:
      return x < y;
    case CompareOp::kLte:
      return x <= y;
    case CompareOp::kGt:
      return x > y;
    case CompareOp::kGte:
      return x >= y;
  }
  return false;
}

bool MatchValue(const ValueMatcher& m, FieldId f, EventView& view) {
  bool r = false;
  switch (m.kind) {
    case ValueMatcher::Kind::kString:
      r = m.pattern.Match(m.pattern.cased() ? view.Raw(f) : view.Folded(f));
      break;
    case ValueMatcher::Kind::kRegex: {
      std::string_view text = view.Raw(f);
      r = RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), *m.regex);
      break;
    }
    case ValueMatcher::Kind::kCidr:
      r = m.cidr.Contains(view.Raw(f));
      break;
    case ValueMatcher::Kind::kNumber: {
      int64_t x = 0;
      if (GetFieldInfo(f).kind == FieldKind::kNumber) {
        r = Compare(view.Number(f), m.op, m.number);
      } else {
        r = ParseInt64(view.Raw(f), &x) && Compare(x, m.op, m.number);
      }
      break;
    }
    case ValueMatcher::Kind::kExists:
      r = view.Exists(f) == m.exists;
      break;
    case ValueMatcher::Kind::kNull:
      r = !view.Exists(f);
      break;
    case ValueMatcher::Kind::kFieldRef: {
      std::string_view a = m.ref_cased ? view.Raw(f) : view.Folded(f);
      std::string_view b = m.ref_cased ? view.Raw(m.ref) : view.Folded(m.ref);
      switch (m.ref_shape) {
        case StringPattern::Shape::kPrefix:
          r = a.starts_with(b);
          break;
        case StringPattern::Shape::kSuffix:
          r = a.ends_with(b);
          break;
        case StringPattern::Shape::kContains:
          r = a.find(b) != std::string_view::npos;
          break;
        default:
          r = a == b;
          break;
      }
      break;
    }
  }
  return r;
}

bool MatchAnyField(const ValueMatcher& m, Category category, EventView& view) {
  for (FieldId f : KeywordFields(category)) {
    if (MatchValue(m, f, view)) return true;
  }
  return false;
}

}  // namespace

bool EvalFieldTest(const FieldTest& test, Category category, EventView& view) {
  // Values of one group are alternatives; groups combine with any/all, after
  // negation for neq.
  const size_t n = test.values.size();
  for (size_t i = 0; i < n;) {
    const uint32_t group = test.values[i].group;
    bool hit = false;
    for (; i < n && test.values[i].group == group; ++i) {
      if (!hit) {
        const ValueMatcher& m = test.values[i];
        hit = test.field ? MatchValue(m, *test.field, view) : MatchAnyField(m, category, view);
      }
    }
    const bool ok = hit != test.negate;
    if (ok != test.all) return ok;  // any: first success wins; all: first failure loses
  }
  return test.all;
}

}  // namespace mamori::behavior::rules::internal

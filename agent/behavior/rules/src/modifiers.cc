// Compiling `Field|modifiers: values` into a FieldTest: modifier parsing and
// validation, value transformations (windash, utf16, base64, base64offset),
// wildcard wrapping (contains/startswith/endswith), regex, cidr and numbers.
#include <re2/filtered_re2.h>
#include <re2/re2.h>

#include <algorithm>
#include <cctype>

#include "matchers.h"

namespace mamori::behavior::rules::internal {
namespace {

using Token = StringPattern::Token;

bool IsWordByte(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Sigma `windash`: every '-' or '/' that starts a word may be any of
// '-', '/', en dash, em dash, horizontal bar (pySigma: regex \B[-/]\b).
constexpr std::string_view kDashes[] = {"-", "/", "\xE2\x80\x93", "\xE2\x80\x94", "\xE2\x80\x95"};
constexpr size_t kMaxExpansion = 625;

bool ExpandWindash(const std::string& value, std::vector<std::string>* out) {
  std::vector<size_t> positions;
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if ((c == '-' || c == '/') && (i == 0 || !IsWordByte(value[i - 1])) && i + 1 < value.size() &&
        IsWordByte(value[i + 1])) {
      positions.push_back(i);
    }
  }
  size_t variants = 1;
  for (size_t k = 0; k < positions.size(); ++k) {
    variants *= std::size(kDashes);
    if (variants > kMaxExpansion) return false;
  }
  for (size_t v = 0; v < variants; ++v) {
    std::string s;
    size_t prev = 0, code = v;
    for (size_t p : positions) {
      s.append(value, prev, p - prev);
      s.append(kDashes[code % std::size(kDashes)]);
      code /= std::size(kDashes);
      prev = p + 1;
    }
    s.append(value, prev);
    out->push_back(std::move(s));
  }
  return true;
}

// UTF-8 -> UTF-16 code units (invalid bytes are taken as Latin-1).
std::u16string Utf16(std::string_view s) {
  std::u16string out;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = Utf8Length(c);
    uint32_t cp = c;
    bool ok = len > 1 && i + len <= s.size();
    if (ok) {
      cp = c & (0xFF >> (len + 1));
      for (size_t k = 1; k < len; ++k) {
        unsigned char cc = static_cast<unsigned char>(s[i + k]);
        if ((cc & 0xC0) != 0x80) ok = false;
        cp = (cp << 6) | (cc & 0x3F);
      }
    }
    if (!ok) {
      cp = c;
      len = 1;
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out.push_back(static_cast<char16_t>(0xD800 + (cp >> 10)));
      out.push_back(static_cast<char16_t>(0xDC00 + (cp & 0x3FF)));
    } else {
      out.push_back(static_cast<char16_t>(cp));
    }
    i += len;
  }
  return out;
}

std::string EncodeUtf16(std::string_view s, bool big_endian, bool bom) {
  std::string out;
  if (bom) out.append("\xFF\xFE");
  for (char16_t u : Utf16(s)) {
    char lo = static_cast<char>(u & 0xFF), hi = static_cast<char>(u >> 8);
    if (big_endian) {
      out.push_back(hi);
      out.push_back(lo);
    } else {
      out.push_back(lo);
      out.push_back(hi);
    }
  }
  return out;
}

// pySigma's base64offset: the three shifted encodings, trimmed to the part
// that does not depend on the surrounding bytes.
std::vector<std::string> Base64Offsets(std::string_view value) {
  static constexpr int kStart[] = {0, 2, 3};
  static constexpr int kEnd[] = {0, -3, -2};  // 0: up to the end
  std::vector<std::string> out;
  for (int i = 0; i < 3; ++i) {
    std::string enc = Base64Encode(std::string(static_cast<size_t>(i), ' ') + std::string(value));
    int end_rel = kEnd[(value.size() + i) % 3];
    int begin = kStart[i];
    int end = static_cast<int>(enc.size()) + end_rel;
    if (end <= begin) continue;
    out.push_back(enc.substr(begin, end - begin));
  }
  return out;
}

struct Modifiers {
  enum class Wrap { kNone, kContains, kStartsWith, kEndsWith } wrap = Wrap::kNone;
  bool all = false, cased = false, neq = false, windash = false, re = false, re_i = false, re_m = false, re_s = false,
       cidr = false, exists = false, fieldref = false;
  std::optional<CompareOp> compare;
  enum class Utf16Mode { kNone, kLe, kBe, kBom } utf16 = Utf16Mode::kNone;
  enum class Base64Mode { kNone, kPlain, kOffset } base64 = Base64Mode::kNone;
};

bool ParseModifiers(const std::vector<std::string>& names, Modifiers* m, std::string* error) {
  auto set_wrap = [&](Modifiers::Wrap w, const std::string& name) {
    if (m->wrap != Modifiers::Wrap::kNone) {
      *error = "modifier '" + name + "' conflicts with another of contains/startswith/endswith";
      return false;
    }
    m->wrap = w;
    return true;
  };
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& n = names[i];
    if (n == "contains") {
      if (!set_wrap(Modifiers::Wrap::kContains, n)) return false;
    } else if (n == "startswith") {
      if (!set_wrap(Modifiers::Wrap::kStartsWith, n)) return false;
    } else if (n == "endswith") {
      if (!set_wrap(Modifiers::Wrap::kEndsWith, n)) return false;
    } else if (n == "all") {
      m->all = true;
    } else if (n == "cased") {
      m->cased = true;
    } else if (n == "neq") {
      m->neq = true;
    } else if (n == "windash") {
      m->windash = true;
    } else if (n == "re") {
      m->re = true;
    } else if (n == "i" || n == "m" || n == "s") {
      if (!m->re) {
        *error = "modifier '" + n + "' is a sub-modifier of 're' and must follow it";
        return false;
      }
      (n == "i" ? m->re_i : n == "m" ? m->re_m : m->re_s) = true;
    } else if (n == "cidr") {
      m->cidr = true;
    } else if (n == "exists") {
      m->exists = true;
    } else if (n == "fieldref") {
      m->fieldref = true;
    } else if (n == "lt" || n == "lte" || n == "gt" || n == "gte") {
      if (m->compare) {
        *error = "only one of lt/lte/gt/gte per field";
        return false;
      }
      m->compare = n == "lt"    ? CompareOp::kLt
                   : n == "lte" ? CompareOp::kLte
                   : n == "gt"  ? CompareOp::kGt
                                : CompareOp::kGte;
    } else if (n == "wide" || n == "utf16le" || n == "utf16be" || n == "utf16") {
      if (m->utf16 != Modifiers::Utf16Mode::kNone || m->base64 != Modifiers::Base64Mode::kNone) {
        *error = "modifier '" + n + "' must come once, before base64/base64offset";
        return false;
      }
      m->utf16 = (n == "utf16be") ? Modifiers::Utf16Mode::kBe
                 : (n == "utf16") ? Modifiers::Utf16Mode::kBom
                                  : Modifiers::Utf16Mode::kLe;
    } else if (n == "base64" || n == "base64offset") {
      if (m->base64 != Modifiers::Base64Mode::kNone) {
        *error = "only one of base64/base64offset per field";
        return false;
      }
      m->base64 = n == "base64" ? Modifiers::Base64Mode::kPlain : Modifiers::Base64Mode::kOffset;
    } else if (n == "expand") {
      *error = "modifier 'expand' needs placeholder values from a processing pipeline; not supported";
      return false;
    } else if (n == "minute" || n == "hour" || n == "day" || n == "week" || n == "month" || n == "year") {
      *error = "time modifier '" + n + "' is not supported (no date fields)";
      return false;
    } else {
      *error = "unknown modifier '" + n + "'";
      return false;
    }
  }
  // Incompatible combinations.
  const bool encoding = m->utf16 != Modifiers::Utf16Mode::kNone || m->base64 != Modifiers::Base64Mode::kNone;
  if (m->utf16 != Modifiers::Utf16Mode::kNone && m->base64 == Modifiers::Base64Mode::kNone) {
    *error = "utf16/wide modifiers must be followed by base64 or base64offset";
    return false;
  }
  const int kinds = int(m->re) + int(m->cidr) + int(m->exists) + int(m->compare.has_value()) + int(m->fieldref);
  if (kinds > 1) {
    *error = "modifiers re, cidr, exists, lt/lte/gt/gte and fieldref cannot be combined";
    return false;
  }
  if ((m->re || m->cidr || m->exists || m->compare) &&
      (m->wrap != Modifiers::Wrap::kNone || m->windash || encoding || m->cased)) {
    *error = "re, cidr, exists and lt/lte/gt/gte cannot be combined with string modifiers";
    return false;
  }
  if (m->fieldref && (m->windash || encoding)) {
    *error = "fieldref cannot be combined with windash or encodings";
    return false;
  }
  if (m->exists && (m->neq || m->all)) {
    *error = "exists takes a single true/false value";
    return false;
  }
  return true;
}

bool HasWildcard(const std::vector<Token>& tokens) {
  return std::any_of(tokens.begin(), tokens.end(), [](const Token& t) { return t.kind != Token::kLiteral; });
}

std::string Plain(const std::vector<Token>& tokens) {
  std::string s;
  for (const Token& t : tokens) s += t.text;
  return s;
}

void Wrap(Modifiers::Wrap wrap, std::vector<Token>* tokens) {
  if (wrap == Modifiers::Wrap::kContains || wrap == Modifiers::Wrap::kEndsWith) {
    tokens->insert(tokens->begin(), Token{Token::kStar, {}});
  }
  if (wrap == Modifiers::Wrap::kContains || wrap == Modifiers::Wrap::kStartsWith) {
    tokens->push_back(Token{Token::kStar, {}});
  }
}

StringPattern::Shape ShapeOfWrap(Modifiers::Wrap wrap) {
  switch (wrap) {
    case Modifiers::Wrap::kContains:
      return StringPattern::Shape::kContains;
    case Modifiers::Wrap::kStartsWith:
      return StringPattern::Shape::kPrefix;
    case Modifiers::Wrap::kEndsWith:
      return StringPattern::Shape::kSuffix;
    case Modifiers::Wrap::kNone:
      break;
  }
  return StringPattern::Shape::kEquals;
}

// Builds the matchers for one string value (may expand to several).
bool CompileStringValue(const std::string& value, const Modifiers& m, bool keyword, uint32_t group,
                        std::vector<ValueMatcher>* out, std::string* error) {
  std::vector<std::string> variants;
  if (m.windash) {
    if (!ExpandWindash(value, &variants)) {
      *error = "windash expands '" + value + "' into too many variants";
      return false;
    }
  } else {
    variants.push_back(value);
  }
  const size_t before = out->size();
  Modifiers::Wrap wrap = m.wrap;
  if (keyword && wrap == Modifiers::Wrap::kNone) wrap = Modifiers::Wrap::kContains;  // full-text search
  for (const std::string& v : variants) {
    std::vector<std::vector<Token>> token_lists;
    std::vector<Token> tokens = ParseWildcards(v);
    if (m.base64 != Modifiers::Base64Mode::kNone) {
      if (HasWildcard(tokens)) {
        *error = "base64 of a value with wildcards ('" + v + "') is not possible";
        return false;
      }
      std::string bytes = Plain(tokens);
      if (m.utf16 != Modifiers::Utf16Mode::kNone) {
        bytes = EncodeUtf16(bytes, m.utf16 == Modifiers::Utf16Mode::kBe, m.utf16 == Modifiers::Utf16Mode::kBom);
      }
      std::vector<std::string> encoded = m.base64 == Modifiers::Base64Mode::kPlain
                                             ? std::vector<std::string>{Base64Encode(bytes)}
                                             : Base64Offsets(bytes);
      for (std::string& e : encoded) token_lists.push_back({Token{Token::kLiteral, std::move(e)}});
    } else {
      token_lists.push_back(std::move(tokens));
    }
    for (auto& list : token_lists) {
      Wrap(wrap, &list);
      ValueMatcher vm;
      vm.kind = ValueMatcher::Kind::kString;
      vm.group = group;
      vm.pattern = StringPattern::Make(std::move(list), m.cased);
      out->push_back(std::move(vm));
    }
  }
  if (out->size() == before) {
    *error = "value '" + value + "' is too short to encode";
    return false;
  }
  return true;
}

// RE2's prefilter for one regex: the literals it needs. RE2 gives an AND/OR
// tree; since it is monotone, "one of its literals occurs" is implied by a
// match, which is what the rule prefilter wants. Empty when the regex can
// match without any literal.
std::vector<std::string> RegexAtoms(const std::string& pattern, const RE2::Options& options) {
  re2::FilteredRE2 filter(/*min_atom_len=*/3);
  int id = 0;
  if (filter.Add(pattern, options, &id) != RE2::NoError) return {};
  std::vector<std::string> atoms;
  filter.Compile(&atoms);
  std::vector<int> unfiltered;
  filter.AllPotentials({}, &unfiltered);  // passes with no literal at all?
  if (!unfiltered.empty()) return {};
  // RE2 lowercases atoms with Unicode rules; the literal index folds ASCII
  // only, so a non-ASCII atom could miss its upper-case form: do not use them.
  for (const std::string& a : atoms) {
    if (std::any_of(a.begin(), a.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) return {};
  }
  return atoms;
}

}  // namespace

std::string Base64Encode(std::string_view data) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = (uint8_t(data[i]) << 16) | (uint8_t(data[i + 1]) << 8) | uint8_t(data[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (size_t rest = data.size() - i) {
    uint32_t v = uint8_t(data[i]) << 16;
    if (rest == 2) v |= uint8_t(data[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<FieldTest> CompileFieldTest(std::optional<FieldId> field, const std::vector<std::string>& modifiers,
                                          const std::vector<SigmaValue>& values, Category category,
                                          std::string* error) {
  Modifiers m;
  if (!ParseModifiers(modifiers, &m, error)) return std::nullopt;
  if (values.empty()) {
    *error = "empty list of values";
    return std::nullopt;
  }
  const bool keyword = !field.has_value();
  if (keyword && (m.cidr || m.exists || m.compare || m.fieldref)) {
    *error = "keywords (values without a field) cannot use cidr, exists, lt/gt or fieldref";
    return std::nullopt;
  }
  const bool numeric_field = field && GetFieldInfo(*field).kind == FieldKind::kNumber;
  FieldTest test;
  test.field = field;
  test.all = m.all || m.neq;  // neq: the field differs from every value
  test.negate = m.neq;
  uint32_t group = 0;
  for (const SigmaValue& value : values) {
    const uint32_t this_group = group++;
    if (value.null) {
      if (!modifiers.empty() || keyword) {
        *error = "null cannot be combined with modifiers or used as a keyword";
        return std::nullopt;
      }
      ValueMatcher vm;
      vm.kind = ValueMatcher::Kind::kNull;
      vm.group = this_group;
      test.values.push_back(std::move(vm));
      continue;
    }
    const std::string& text = value.text;
    ValueMatcher vm;
    vm.group = this_group;
    if (m.exists) {
      std::string v = FoldAscii(text);
      if (v != "true" && v != "false") {
        *error = "exists needs true or false, not '" + text + "'";
        return std::nullopt;
      }
      vm.kind = ValueMatcher::Kind::kExists;
      vm.exists = v == "true";
    } else if (m.compare) {
      vm.kind = ValueMatcher::Kind::kNumber;
      vm.op = *m.compare;
      if (!ParseInt64(text, &vm.number)) {
        *error = "lt/lte/gt/gte need an integer, not '" + text + "'";
        return std::nullopt;
      }
    } else if (m.cidr) {
      auto cidr = Cidr::Parse(text);
      if (!cidr) {
        *error = "invalid CIDR network '" + text + "'";
        return std::nullopt;
      }
      vm.kind = ValueMatcher::Kind::kCidr;
      vm.cidr = *cidr;
    } else if (m.re) {
      RE2::Options options;
      options.set_log_errors(false);
      options.set_case_sensitive(!m.re_i);
      options.set_dot_nl(m.re_s);
      auto re = std::make_shared<const RE2>(m.re_m ? "(?m)" + text : text, options);
      if (!re->ok()) {
        *error = "regular expression '" + Abbreviate(text) + "' not supported: " + re->error() +
                 " (RE2 syntax: no lookaround or backreferences)";
        return std::nullopt;
      }
      vm.kind = ValueMatcher::Kind::kRegex;
      vm.regex = std::move(re);
      vm.regex_atoms = RegexAtoms(m.re_m ? "(?m)" + text : text, options);
    } else if (m.fieldref) {
      auto ref = FieldFromName(text);
      if (!ref || !FieldAvailable(*ref, category)) {
        *error = "fieldref: " + FieldRefusal(text, category);
        return std::nullopt;
      }
      vm.kind = ValueMatcher::Kind::kFieldRef;
      vm.ref = *ref;
      vm.ref_shape = ShapeOfWrap(m.wrap);
      vm.ref_cased = m.cased;
    } else if (numeric_field && m.wrap == Modifiers::Wrap::kNone && !m.windash && !m.cased &&
               m.base64 == Modifiers::Base64Mode::kNone && ParseInt64(text, &vm.number)) {
      vm.kind = ValueMatcher::Kind::kNumber;  // `DestinationPort: 4444`: compare numbers
      vm.op = CompareOp::kEq;
    } else {
      if (!CompileStringValue(text, m, keyword, this_group, &test.values, error)) return std::nullopt;
      continue;
    }
    test.values.push_back(std::move(vm));
  }
  return test;
}

}  // namespace mamori::behavior::rules::internal

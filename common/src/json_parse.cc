#include <cerrno>
#include <cstdlib>
#include <string>

#include "mamori/common/json.h"

namespace mamori::json {

const Value* Value::Find(std::string_view key) const {
  for (auto it = members_.rbegin(); it != members_.rend(); ++it) {
    if (it->first == key) return &it->second;
  }
  return nullptr;
}

Result<int64_t> Value::AsInt64() const {
  if (kind_ != Kind::kNumber) return Status(StatusCode::kInvalidArgument, "not a number");
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text_.c_str(), &end, 10);
  if (errno != 0 || end != text_.c_str() + text_.size()) {
    return Status(StatusCode::kInvalidArgument, "not an integer in range: " + text_);
  }
  return static_cast<int64_t>(v);
}

Result<uint64_t> Value::AsUint64() const {
  if (kind_ != Kind::kNumber || text_.empty() || text_[0] == '-') {
    return Status(StatusCode::kInvalidArgument, "not a non-negative integer: " + text_);
  }
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(text_.c_str(), &end, 10);
  if (errno != 0 || end != text_.c_str() + text_.size()) {
    return Status(StatusCode::kInvalidArgument, "not an integer in range: " + text_);
  }
  return static_cast<uint64_t>(v);
}

// value   = ws ( object | array | string | number | "true" | "false" | "null" ) ws
// object  = "{" [ string ":" value *( "," string ":" value ) ] "}"
// array   = "[" [ value *( "," value ) ] "]"
class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  Status ParseValue(Value* out, int depth) {
    SkipWs();
    if (depth > 64) return Error("nesting deeper than 64");
    if (pos_ >= s_.size()) return Error("unexpected end of input");
    char c = s_[pos_];
    switch (c) {
      case '{': return ParseObject(out, depth);
      case '[': return ParseArray(out, depth);
      case '"': out->kind_ = Value::Kind::kString; return ParseString(&out->text_);
      case 't': return Literal("true", out, Value::Kind::kBool, true);
      case 'f': return Literal("false", out, Value::Kind::kBool, false);
      case 'n': return Literal("null", out, Value::Kind::kNull, false);
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return ParseNumber(out);
        return Error(std::string("unexpected character '") + c + "'");
    }
  }

  Status Finish() {
    SkipWs();
    if (pos_ != s_.size()) return Error("trailing characters after the value");
    return Status::Ok();
  }

 private:
  Status Error(const std::string& what) const {
    return Status(StatusCode::kInvalidArgument,
                  "at column " + std::to_string(pos_ + 1) + ": " + what);
  }
  void SkipWs() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  Status Literal(std::string_view word, Value* out, Value::Kind kind, bool b) {
    if (s_.substr(pos_, word.size()) != word) return Error("invalid literal");
    pos_ += word.size();
    out->kind_ = kind;
    out->bool_ = b;
    return Status::Ok();
  }
  Status ParseNumber(Value* out) {
    size_t start = pos_;
    if (s_[pos_] == '-') ++pos_;
    auto digits = [&] {
      size_t d = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - d;
    };
    size_t int_start = pos_;
    if (digits() == 0) return Error("number without digits");
    if (s_[int_start] == '0' && pos_ - int_start > 1) return Error("number with a leading zero");
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) return Error("number without digits after '.'");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (digits() == 0) return Error("number without exponent digits");
    }
    out->kind_ = Value::Kind::kNumber;
    out->text_.assign(s_.substr(start, pos_ - start));
    return Status::Ok();
  }
  static void AppendUtf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  Status Hex4(uint32_t* cp) {
    if (pos_ + 4 > s_.size()) return Error("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char h = s_[pos_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= h - '0';
      else if (h >= 'a' && h <= 'f') v |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') v |= h - 'A' + 10;
      else return Error("bad hex digit in \\u escape");
    }
    *cp = v;
    return Status::Ok();
  }
  Status ParseString(std::string* out) {
    ++pos_;  // opening quote
    out->clear();
    while (true) {
      size_t run = pos_;
      while (pos_ < s_.size() && s_[pos_] != '"' && s_[pos_] != '\\' &&
             static_cast<unsigned char>(s_[pos_]) >= 0x20) {
        ++pos_;
      }
      out->append(s_.substr(run, pos_ - run));
      if (pos_ >= s_.size()) return Error("unterminated string");
      char c = s_[pos_++];
      if (c == '"') return Status::Ok();
      if (c != '\\') return Error("control character in string");
      if (pos_ >= s_.size()) return Error("unterminated escape");
      char e = s_[pos_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          MAMORI_RETURN_IF_ERROR(Hex4(&cp));
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s_.substr(pos_, 2) != "\\u") return Error("lone high surrogate");
            pos_ += 2;
            uint32_t lo = 0;
            MAMORI_RETURN_IF_ERROR(Hex4(&lo));
            if (lo < 0xDC00 || lo > 0xDFFF) return Error("bad low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return Error("lone low surrogate");
          }
          AppendUtf8(out, cp);
          break;
        }
        default: return Error(std::string("unknown escape '\\") + e + "'");
      }
    }
  }
  Status ParseArray(Value* out, int depth) {
    ++pos_;
    out->kind_ = Value::Kind::kArray;
    SkipWs();
    if (pos_ < s_.size() && s_[pos_] == ']') { ++pos_; return Status::Ok(); }
    while (true) {
      out->items_.emplace_back();
      MAMORI_RETURN_IF_ERROR(ParseValue(&out->items_.back(), depth + 1));
      SkipWs();
      if (pos_ >= s_.size()) return Error("unterminated array");
      char c = s_[pos_++];
      if (c == ']') return Status::Ok();
      if (c != ',') { --pos_; return Error("expected ',' or ']' in array"); }
    }
  }
  Status ParseObject(Value* out, int depth) {
    ++pos_;
    out->kind_ = Value::Kind::kObject;
    SkipWs();
    if (pos_ < s_.size() && s_[pos_] == '}') { ++pos_; return Status::Ok(); }
    while (true) {
      SkipWs();
      if (pos_ >= s_.size() || s_[pos_] != '"') return Error("expected a key string");
      std::string key;
      MAMORI_RETURN_IF_ERROR(ParseString(&key));
      SkipWs();
      if (pos_ >= s_.size() || s_[pos_] != ':') return Error("expected ':' after key");
      ++pos_;
      out->members_.emplace_back(std::move(key), Value());
      MAMORI_RETURN_IF_ERROR(ParseValue(&out->members_.back().second, depth + 1));
      SkipWs();
      if (pos_ >= s_.size()) return Error("unterminated object");
      char c = s_[pos_++];
      if (c == '}') return Status::Ok();
      if (c != ',') { --pos_; return Error("expected ',' or '}' in object"); }
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
};

Result<Value> Parse(std::string_view text) {
  Value v;
  Parser p(text);
  MAMORI_RETURN_IF_ERROR(p.ParseValue(&v, 0));
  MAMORI_RETURN_IF_ERROR(p.Finish());
  return v;
}

}  // namespace mamori::json

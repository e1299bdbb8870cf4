// JSON string quoting for output that people pipe (--json). File names are
// arbitrary bytes: invalid UTF-8 is never passed through raw, so the output is
// always valid JSON. Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::json {

// Returns `s` as a quoted JSON string. Valid UTF-8 passes through (control
// characters escaped); each byte of an invalid sequence is written as the
// four characters \\xHH inside the string (so bytes "a\xff" read back as "a\\xff").
std::string Quote(std::string_view s);

}  // namespace mamori::json

// A small JSON reader for our own line formats (replay files, spool records,
// config-like inputs). Strict RFC 8259: no comments, no trailing commas, no
// duplicate-key detection (the last one wins). Numbers are kept as their text
// and as a double; integers up to 2^63 convert exactly through AsInt64.
namespace mamori::json {

class Value {
 public:
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::kNull; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_number() const { return kind_ == Kind::kNumber; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_array() const { return kind_ == Kind::kArray; }
  bool is_object() const { return kind_ == Kind::kObject; }

  // REQUIRES: the matching kind.
  bool AsBool() const { return bool_; }
  const std::string& AsString() const { return text_; }  // also a number's text
  // Exact for integral numbers in range; kInvalidArgument otherwise.
  Result<int64_t> AsInt64() const;
  Result<uint64_t> AsUint64() const;
  const std::vector<Value>& items() const { return items_; }
  // Object members in source order.
  const std::vector<std::pair<std::string, Value>>& members() const { return members_; }
  // nullptr when absent (or not an object).
  const Value* Find(std::string_view key) const;

 private:
  friend class Parser;
  Kind kind_ = Kind::kNull;
  bool bool_ = false;
  std::string text_;
  std::vector<Value> items_;
  std::vector<std::pair<std::string, Value>> members_;
};

// Parses exactly one JSON value (surrounding whitespace allowed). Errors are
// kInvalidArgument "at column N: ..." (1-based byte column). Nesting deeper
// than 64 levels is refused.
Result<Value> Parse(std::string_view text);

}  // namespace mamori::json

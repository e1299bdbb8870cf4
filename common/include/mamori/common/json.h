// JSON string quoting for output that people pipe (--json). File names are
// arbitrary bytes: invalid UTF-8 is never passed through raw, so the output is
// always valid JSON. Thread-safe (pure functions).
#pragma once

#include <string>
#include <string_view>

namespace mamori::json {

// Returns `s` as a quoted JSON string. Valid UTF-8 passes through (control
// characters escaped); each byte of an invalid sequence is written as the
// four characters \\xHH inside the string (so bytes "a\xff" read back as "a\\xff").
std::string Quote(std::string_view s);

}  // namespace mamori::json

// Strict UTF-8 (RFC 3629): the one validator behind JSON output, telemetry
// conversion and the server's text columns. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string_view>

namespace mamori {

// Length (1..4) of the valid UTF-8 sequence starting at s[i], or 0 when the
// bytes there are not one: a stray continuation byte, a truncated sequence, an
// overlong encoding, a surrogate (U+D800..U+DFFF) or a code point above
// U+10FFFF. ASCII, NUL included, is length 1. REQUIRES: i < s.size().
size_t Utf8SequenceLength(std::string_view s, size_t i);

}  // namespace mamori

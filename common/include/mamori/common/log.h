// Minimal leveled logging to stderr. Thread-safe: each line is written with one
// write(2) call. Level is process-wide (set once at start-up).
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace mamori::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetLevel(Level level);
Level GetLevel();
// JSON lines ({"ts":...,"level":...,"msg":...}) instead of plain text.
void SetJson(bool json);
void Write(Level level, std::string_view message);

// Now as RFC 3339 UTC with milliseconds: "2026-11-26T20:48:14.123Z".
std::string NowTimestamp();

}  // namespace mamori::log

#define MAMORI_LOG(level, expr)                                                  \
  do {                                                                           \
    if (::mamori::log::Level::level >= ::mamori::log::GetLevel()) {              \
      std::ostringstream mamori_log_os_;                                         \
      mamori_log_os_ << expr;                                                    \
      ::mamori::log::Write(::mamori::log::Level::level, mamori_log_os_.str());   \
    }                                                                            \
  } while (0)

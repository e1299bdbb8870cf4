#include "mamori/common/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

#include "mamori/common/json.h"

namespace mamori::log {
namespace {
std::atomic<Level> g_level{Level::kInfo};
std::atomic<bool> g_json{false};

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarning: return "warning";
    case Level::kError: return "error";
  }
  return "info";
}
}  // namespace

void SetLevel(Level level) { g_level = level; }
Level GetLevel() { return g_level; }
void SetJson(bool json) { g_json = json; }

std::string NowTimestamp() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[64];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return ts;
}

void Write(Level level, std::string_view message) {
  const std::string ts = NowTimestamp();
  std::string line;
  if (g_json) {
    line = "{\"ts\":\"" + ts + "\",\"level\":\"" + LevelName(level) + "\",\"msg\":";
    line += json::Quote(message);
    line += "}\n";
  } else {
    line = ts + " " + LevelName(level) + " " + std::string(message) + "\n";
  }
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace mamori::log

#include "cron.h"

#include <sstream>
#include <vector>

namespace mamori::agent {
namespace {

bool FieldMatches(const std::string& field, int value, int lo, int hi) {
  std::stringstream parts(field);
  std::string part;
  while (std::getline(parts, part, ',')) {
    int step = 1;
    if (auto slash = part.find('/'); slash != std::string::npos) {
      step = std::stoi(part.substr(slash + 1));
      part = part.substr(0, slash);
    }
    int a = lo, b = hi;
    if (part != "*") {
      auto dash = part.find('-');
      a = std::stoi(part.substr(0, dash));
      b = dash == std::string::npos ? a : std::stoi(part.substr(dash + 1));
      if (dash == std::string::npos && step > 1) b = hi;  // "5/15" = from 5 every 15
    }
    if (value >= a && value <= b && step > 0 && (value - a) % step == 0) return true;
  }
  return false;
}

}  // namespace

bool CronMatches(const std::string& schedule, std::time_t t) {
  std::tm tm{};
  localtime_r(&t, &tm);
  std::stringstream ss(schedule);
  std::vector<std::string> f;
  std::string x;
  while (ss >> x) f.push_back(x);
  if (f.size() != 5) return false;
  try {
    int weekday = tm.tm_wday;
    bool dow = FieldMatches(f[4], weekday, 0, 7) || (weekday == 0 && FieldMatches(f[4], 7, 0, 7));
    return FieldMatches(f[0], tm.tm_min, 0, 59) && FieldMatches(f[1], tm.tm_hour, 0, 23) &&
           FieldMatches(f[2], tm.tm_mday, 1, 31) && FieldMatches(f[3], tm.tm_mon + 1, 1, 12) && dow;
  } catch (...) {  // std::stoi on a malformed field: never reached after validation
    return false;
  }
}

}  // namespace mamori::agent

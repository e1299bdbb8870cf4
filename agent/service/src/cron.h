// Cron schedules ("minute hour day-of-month month day-of-week", with *, a-b,
// */n, a-b/n and comma lists; weekday 0 and 7 are Sunday). Local time.
#pragma once

#include <ctime>
#include <string>

namespace mamori::agent {

// True when `schedule` matches the minute of `t` (local time). A schedule
// that does not parse matches nothing (the config loader validates first).
bool CronMatches(const std::string& schedule, std::time_t t);

}  // namespace mamori::agent

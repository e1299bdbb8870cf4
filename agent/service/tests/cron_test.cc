#include <catch2/catch.hpp>

#include <ctime>

#include "cron.h"

namespace mamori::agent {
namespace {

std::time_t At(int year, int mon, int day, int hour, int min) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_isdst = -1;
  return std::mktime(&tm);
}

TEST_CASE("Cron schedules match the minutes they name") {
  std::time_t mon_0330 = At(2026, 11, 23, 3, 30);  // a Monday
  CHECK(CronMatches("30 3 * * *", mon_0330));
  CHECK(CronMatches("30 3 * * 1-5", mon_0330));
  CHECK(!CronMatches("30 3 * * 0,6", mon_0330));
  CHECK(CronMatches("*/15 * * * *", mon_0330));
  CHECK(!CronMatches("*/7 * * * *", mon_0330));
  CHECK(CronMatches("0-59/30 1-5 23 11 *", mon_0330));
  CHECK(!CronMatches("31 3 * * *", mon_0330));
  std::time_t sun = At(2026, 11, 22, 12, 0);
  CHECK(CronMatches("0 12 * * 7", sun));
  CHECK(CronMatches("0 12 * * 0", sun));
  CHECK(!CronMatches("not a schedule", sun));
}

}  // namespace
}  // namespace mamori::agent

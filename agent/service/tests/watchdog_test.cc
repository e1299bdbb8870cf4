// The watchdog gate: pings only while healthy, gives up after a long stall.
#include "watchdog.h"

#include <catch2/catch.hpp>

namespace mamori::agent {
namespace {

using Action = WatchdogGate::Action;
using std::chrono::seconds;

TEST_CASE("Watchdog pings while healthy and withholds the ping while the loops stall then gives up") {
  WatchdogGate gate(seconds(60));
  const auto t0 = WatchdogGate::Clock::now();
  const Status stalled = UnavailableError("the on-access loops have not turned for 7 s");
  CHECK(gate.Tick(Status::Ok(), t0) == Action::kPing);
  CHECK(gate.Tick(stalled, t0 + seconds(5)) == Action::kWithhold);
  CHECK(gate.Tick(stalled, t0 + seconds(64)) == Action::kWithhold);  // 59 s into the stall
  CHECK(gate.Tick(stalled, t0 + seconds(65)) == Action::kGiveUp);
  // A recovery is reported once (the STATUS= line goes back) and starts the count again.
  CHECK(gate.Tick(Status::Ok(), t0 + seconds(66)) == Action::kRecovered);
  CHECK(gate.Tick(Status::Ok(), t0 + seconds(67)) == Action::kPing);
  CHECK(gate.Tick(stalled, t0 + seconds(100)) == Action::kWithhold);
  CHECK(gate.Tick(stalled, t0 + seconds(159)) == Action::kWithhold);
  CHECK(gate.Tick(stalled, t0 + seconds(160)) == Action::kGiveUp);
}

}  // namespace
}  // namespace mamori::agent

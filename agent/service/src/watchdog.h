// The agent's liveness gate for systemd's watchdog: a ping says "protecting",
// so it is sent only while the loops that answer the kernel turn. Internal
// to mamori_agent_core.
//
// Thread safety: one thread (the main signal loop).
#pragma once

#include <chrono>
#include <optional>

#include "mamori/common/status.h"

namespace mamori::agent {

class WatchdogGate {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Action {
    kPing,       // healthy: WATCHDOG=1
    kRecovered,  // healthy after unhealthy ticks: WATCHDOG=1, and the STATUS= line back to normal
    kWithhold,  // unhealthy: no ping (systemd restarts the agent at WatchdogSec)
    kGiveUp,    // unhealthy for give_up_after: exit, so the kernel releases the waiters
  };

  explicit WatchdogGate(std::chrono::milliseconds give_up_after) : give_up_after_(give_up_after) {}

  // `health`: OK, or why the agent cannot answer the kernel right now. Logs
  // the first unhealthy tick and the recovery.
  Action Tick(const Status& health, Clock::time_point now);

 private:
  const std::chrono::milliseconds give_up_after_;
  std::optional<Clock::time_point> unhealthy_since_;
};

}  // namespace mamori::agent

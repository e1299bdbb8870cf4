#include "watchdog.h"

#include "mamori/common/log.h"

namespace mamori::agent {

WatchdogGate::Action WatchdogGate::Tick(const Status& health, Clock::time_point now) {
  if (health.ok()) {
    if (!unhealthy_since_) return Action::kPing;
    MAMORI_LOG(kWarning, "watchdog: healthy again; pinging systemd again");
    unhealthy_since_.reset();
    return Action::kRecovered;
  }
  if (!unhealthy_since_) {
    unhealthy_since_ = now;
    MAMORI_LOG(kError, "watchdog: " << health.message() << "; not pinging systemd (it restarts the agent at "
                                                           "WatchdogSec); giving up in "
                                    << give_up_after_.count() / 1000 << " s if it lasts");
  }
  return now - *unhealthy_since_ >= give_up_after_ ? Action::kGiveUp : Action::kWithhold;
}

}  // namespace mamori::agent

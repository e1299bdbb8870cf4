// sd_notify without libsystemd: one datagram to $NOTIFY_SOCKET. A no-op when
// not started by systemd.
#pragma once

#include <chrono>
#include <string_view>

namespace mamori::agent {

void SdNotify(std::string_view state);  // e.g. "READY=1", "WATCHDOG=1", "STOPPING=1"
// Half of $WATCHDOG_USEC when systemd asks for watchdog pings; zero otherwise.
std::chrono::milliseconds SdWatchdogInterval();

}  // namespace mamori::agent

// OS-independent names for service_control.h and service_host.h.
#include "mamori/platform/service_control.h"
#include "mamori/platform/service_host.h"

namespace mamori::platform {

const char* ServiceStateName(ServiceState state) {
  switch (state) {
    case ServiceState::kStopped: return "stopped";
    case ServiceState::kStartPending: return "start_pending";
    case ServiceState::kStopPending: return "stop_pending";
    case ServiceState::kRunning: return "running";
    case ServiceState::kContinuePending: return "continue_pending";
    case ServiceState::kPausePending: return "pause_pending";
    case ServiceState::kPaused: return "paused";
  }
  return "unknown";
}

const char* StopReasonName(StopReason reason) {
  switch (reason) {
    case StopReason::kStop: return "stop";
    case StopReason::kShutdown: return "shutdown";
    case StopReason::kPreshutdown: return "preshutdown";
    case StopReason::kConsole: return "console";
    case StopReason::kSignal: return "signal";
  }
  return "unknown";
}

}  // namespace mamori::platform

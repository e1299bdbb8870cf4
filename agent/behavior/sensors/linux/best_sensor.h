// The choice MakeBestSensor makes, with the sensors injected (so tests can
// exercise the fallback on a machine where eBPF works).
#pragma once

#include <functional>
#include <memory>

#include "mamori/behavior/sensors.h"

namespace mamori::behavior::linux_sensors {

// Starts `first`; if that fails with kUnavailable, builds and starts the
// fallback. Errors as MakeBestSensor.
Result<BestSensor> PickSensor(std::unique_ptr<LinuxSensor> first,
                              const std::function<std::unique_ptr<LinuxSensor>()>& fallback);

}  // namespace mamori::behavior::linux_sensors

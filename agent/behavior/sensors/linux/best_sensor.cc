// MakeBestSensor: eBPF first, procconn when the kernel cannot run eBPF.
#include "best_sensor.h"

#include "mamori/common/log.h"

namespace mamori::behavior {
namespace linux_sensors {

Result<BestSensor> PickSensor(std::unique_ptr<LinuxSensor> first,
                              const std::function<std::unique_ptr<LinuxSensor>()>& fallback) {
  BestSensor best;
  best.sensor = std::move(first);
  best.ebpf_status = best.sensor->Start();
  if (best.ebpf_status.ok()) return best;
  if (best.ebpf_status.code() != StatusCode::kUnavailable) return best.ebpf_status;
  MAMORI_LOG(kWarning, "behavior sensor: " << best.sensor->name() << " unavailable (" << best.ebpf_status.message()
                                           << "); falling back");
  best.sensor = fallback();
  Status s = best.sensor->Start();
  if (!s.ok()) return s.WithContext("fallback sensor " + std::string(best.sensor->name()));
  return best;
}

}  // namespace linux_sensors

Result<BestSensor> MakeBestSensor(const LinuxSensorOptions& options) {
  return linux_sensors::PickSensor(MakeEbpfSensor(options), [&options] { return MakeProcConnSensor(options); });
}

}  // namespace mamori::behavior

// Owns the BPF object: opens the generated skeleton, writes the read-only
// configuration, chooses which programs load (event groups, kernel support),
// loads, fills the syscall dispatch tables and attaches. Everything that
// touches the skeleton lives in ebpf_loader.cc.
//
// Thread safety: Load and the destructor from one thread; ReadDrops and the
// accessors from any thread after Load.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mamori/behavior/sensors.h"
#include "mamori/common/status.h"

namespace mamori::behavior::linux_sensors {

struct BpfConfig {
  size_t ring_buffer_bytes = 8u << 20;  // power of two, >= page size
  std::vector<std::string> prefixes;    // normalised, validated
  uint32_t groups = kAllSensorGroups;
  int32_t ignore_tgid = 0;
  uint32_t max_argv_bytes = 32767;
  bool setid_chmod_anywhere = true;
  uint32_t wakeup_bytes = 0;  // 0: wake the reader on every record
};

class BpfLoader {
 public:
  // Errors: kUnavailable (no BTF, the kernel refused or lacks something),
  // kInternal (the skeleton does not match this build).
  static Result<std::unique_ptr<BpfLoader>> Load(const BpfConfig& config);
  ~BpfLoader();
  BpfLoader(const BpfLoader&) = delete;
  BpfLoader& operator=(const BpfLoader&) = delete;

  int ring_buffer_fd() const;
  // Records the ring buffer had no room for, summed over CPUs; monotonic.
  Result<uint64_t> ReadDrops() const;
  const std::vector<ProbeStatus>& probes() const { return probes_; }

 private:
  BpfLoader() = default;
  struct Skeleton;
  Skeleton* skel_ = nullptr;  // owned
  std::vector<ProbeStatus> probes_;
};

}  // namespace mamori::behavior::linux_sensors

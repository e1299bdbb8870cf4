// Ring-buffer records (ebpf/abi/mamori_bpf_abi.h) to Events. Pure functions,
// so the decoding is tested without root or BPF.
//
// Thread safety: stateless.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mamori/behavior/event.h"
#include "mamori/common/status.h"

namespace mamori::behavior::linux_sensors {

struct DecodedRecord {
  Event event;
  uint16_t flags = 0;         // MAMORI_BPF_F_* of the record
  bool syscall_path = false;  // file event whose paths are as named by the syscall (not resolved)
};

// Decodes one record. `boot_to_realtime_ns` is added to the kernel's
// CLOCK_BOOTTIME stamps. Errors: kDataLoss (truncated or inconsistent
// record), kUnimplemented (a record type this build does not know: skip it).
Status DecodeRecord(const void* data, size_t size, int64_t boot_to_realtime_ns, DecodedRecord* out);

// The exit status as Event::exit_code wants it: the exit code, or 128 +
// signal when killed. `raw` is task->exit_code ((code << 8) | signal).
int32_t DecodeExitStatus(int32_t raw);

// "pts3" -> "pts/3" (the kernel's tty name to the /dev path under /dev).
std::string TtyDevName(std::string_view kernel_name);

// argv as the kernel lays it out (NUL-separated, NUL-terminated unless cut).
void SplitArgv(std::string_view block, std::vector<std::string>* argv, std::string* command_line);

}  // namespace mamori::behavior::linux_sensors

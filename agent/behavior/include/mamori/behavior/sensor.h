// Sensor: where behavior events come from. Implementations: eBPF (Linux,
// CO-RE), the proc connector + fanotify fallback, replay from a JSON-lines
// file, and null. The pipeline only sees this interface, so tests run it with
// replayed events and no root.
//
// Lifetime: construct, Start() once, call Next() from one consumer thread until
// it returns kEnd, Stop() (from any thread; makes a blocked Next return),
// destroy. Next after Stop returns kEnd once buffered events are drained or
// discarded (implementation says which).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "mamori/behavior/event.h"
#include "mamori/common/status.h"

namespace mamori::behavior {

struct SensorStats {
  uint64_t delivered = 0;  // events returned by Next
  uint64_t dropped = 0;    // events the sensor knows it lost (also reported as kSensorDrops events)
};

class Sensor {
 public:
  enum class NextResult { kEvent, kTimeout, kEnd };

  virtual ~Sensor() = default;
  // "ebpf", "procconn", "replay", "null": reported in agent status.
  virtual std::string_view name() const = 0;
  // Attaches to its source. Errors: kUnavailable (kernel feature missing: try
  // the next sensor), kPermissionDenied, kInvalidArgument (bad config/file).
  virtual Status Start() = 0;
  // Thread-safe; idempotent.
  virtual void Stop() = 0;
  // REQUIRES: Start() succeeded; one consumer thread. Fills *out on kEvent.
  // kTimeout: nothing arrived within `timeout`. kEnd: the stream is over
  // (replay file exhausted, Stop called, or a fatal error: see status()).
  virtual NextResult Next(std::chrono::milliseconds timeout, Event* out) = 0;
  // OK unless the stream ended on an error.
  virtual Status status() const = 0;
  // Thread-safe snapshot.
  virtual SensorStats stats() const = 0;
};

// Events from a JSON-lines file (EventFromJson), in file order. A malformed
// line ends the stream with kInvalidArgument naming path:line.
std::unique_ptr<Sensor> MakeReplaySensor(std::string path);
// Never produces an event; Next sleeps for the timeout (or until Stop).
std::unique_ptr<Sensor> MakeNullSensor();

}  // namespace mamori::behavior

// Reconnect delays: exponential with jitter, reset after a healthy stream.
//
// Thread safety: used by the uplink thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace mamori::telemetry {

class Backoff {
 public:
  // REQUIRES: 0 < initial <= max, 0 <= jitter < 1.
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, double jitter, uint64_t seed);

  // The delay before the next attempt: initial * 2^failures, capped at max,
  // times a random factor in [1 - jitter, 1 + jitter] (never above max).
  // Counts one more failure.
  std::chrono::milliseconds Next();
  // After a healthy stream: the next delay is `initial` again.
  void Reset() { failures_ = 0; }
  uint32_t failures() const { return failures_; }

 private:
  const std::chrono::milliseconds initial_, max_;
  const double jitter_;
  uint32_t failures_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace mamori::telemetry

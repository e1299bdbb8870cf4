#include "backoff.h"

#include <algorithm>

namespace mamori::telemetry {

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, double jitter, uint64_t seed)
    : initial_(initial), max_(max), jitter_(jitter), rng_(seed) {}

std::chrono::milliseconds Backoff::Next() {
  double base = static_cast<double>(initial_.count());
  const double cap = static_cast<double>(max_.count());
  for (uint32_t i = 0; i < failures_ && base < cap; ++i) base *= 2;
  base = std::min(base, cap);
  if (failures_ < 64) ++failures_;
  std::uniform_real_distribution<double> dist(1.0 - jitter_, 1.0 + jitter_);
  const double d = std::min(cap, base * dist(rng_));
  return std::chrono::milliseconds(static_cast<int64_t>(std::max(1.0, d)));
}

}  // namespace mamori::telemetry

// Helpers shared by the uplink tests: spools in temp dirs, synthetic events
// that carry a marker, waiting with a deadline.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "mamori/telemetry/spool.h"
#include "mamori/v1/event.pb.h"

namespace mamori::telemetry::testing {

std::unique_ptr<Spool> OpenTestSpool(const std::string& dir, uint64_t max_bytes = uint64_t{1} << 30);

// An exec event of about 300 serialized bytes whose process.pid is `marker`
// (the tests use the sequence the event is expected to get).
v1::Event MarkedEvent(uint64_t marker);

// Appends `n` marked events (markers = the sequences they get: one producer);
// returns the last sequence.
uint64_t AppendMarked(Spool* spool, uint64_t n, Priority priority = Priority::kLow);

// Polls `pred` every 10 ms until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

}  // namespace mamori::telemetry::testing

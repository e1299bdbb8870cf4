#include "uplink_test_util.h"

#include <catch2/catch.hpp>
#include <thread>

#include "mamori/telemetry/convert.h"

namespace mamori::telemetry::testing {

std::unique_ptr<Spool> OpenTestSpool(const std::string& dir, uint64_t max_bytes) {
  SpoolOptions o;
  o.dir = dir;
  o.max_bytes = max_bytes;
  o.segment_bytes = std::min<uint64_t>(uint64_t{1} << 20, max_bytes / 8);
  o.sync_interval = std::chrono::milliseconds(10);
  auto s = Spool::Open(o);
  REQUIRE(s.ok());
  return std::move(*s);
}

v1::Event MarkedEvent(uint64_t marker) {
  v1::Event e;
  e.set_timestamp_ns(NowNs());
  v1::ProcessContext* p = e.mutable_process();
  p->set_pid(static_cast<int32_t>(marker));
  p->set_ppid(1);
  p->set_uid(1000);
  p->set_user("alice");
  p->set_image("/usr/bin/python3.11");
  p->add_argv("python3");
  p->add_argv("-m");
  p->add_argv("http.server");
  p->add_argv(std::to_string(marker));
  p->set_command_line("python3 -m http.server " + std::to_string(marker));
  p->set_cwd("/home/alice/projects/mamori");
  p->set_sha256("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  v1::ProcessContext* parent = e.mutable_parent();
  parent->set_pid(1);
  parent->set_image("/usr/bin/bash");
  parent->set_command_line("-bash");
  e.mutable_process_activity()->set_kind(v1::ProcessActivity::KIND_EXEC);
  return e;
}

uint64_t AppendMarked(Spool* spool, uint64_t n, Priority priority) {
  uint64_t last = 0;
  const uint64_t first = spool->GetStats().next_sequence;
  for (uint64_t i = 0; i < n; ++i) {
    auto seq = spool->Append(priority, EncodeSpoolPayload(MarkedEvent(first + i)));
    REQUIRE(seq.ok());
    REQUIRE(*seq == first + i);
    last = *seq;
  }
  return last;
}

bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace mamori::telemetry::testing

// ParserPool: containers and mail parsed in confined worker processes.
//
// libarchive and the MIME decoder read attacker-controlled bytes all day; in
// the agent that would be a parser bug away from code execution with the
// agent's capabilities. With a pool in ScanOptions, a Scanner sends each
// top-level container or mail to a worker process and only matches (hashes,
// YARA, allow-list) the members the worker sends back; plain files never leave
// the scanner. Workers are the calling executable re-run (`/proc/self/exe`, so
// never another version of the code) with a flag that main() hands to
// RunParserWorkerIfRequested(); each then drops every capability, sets
// no_new_privs and installs a seccomp filter (no open, no network, no exec, no
// fork, no kill: docs/least-privilege.md), and serves one request at a time
// over a socketpair.
//
// A worker that crashes, is killed by its filter, breaks the protocol, or
// overruns the scan's time budget is killed and replaced; the object it was
// parsing is reported incomplete ("parser-worker-crashed", "time",
// "parser-worker-protocol"), never clean. When no worker becomes free within
// `acquire_timeout`, the object is incomplete "parser-worker-unavailable".
//
// Thread safety: one pool is shared by any number of Scanners on any threads;
// each request holds one worker. Lifetime: the pool outlives its Scanners
// (they hold a shared_ptr); its destructor kills and reaps the workers.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::scanner {

struct ParserPoolOptions {
  int workers = 2;
  // The program re-run as a worker; its main() must call
  // RunParserWorkerIfRequested() first.
  std::string executable = "/proc/self/exe";
  // How long a scan waits for a free (or freshly started) worker.
  std::chrono::milliseconds acquire_timeout{10000};
  // How long a new worker may take to confine itself and say hello.
  std::chrono::milliseconds start_timeout{10000};
};

struct ParserPoolStats {
  uint64_t requests = 0;
  uint64_t workers_started = 0;
  uint64_t workers_lost = 0;  // crashed, killed by the filter, protocol breach, or killed on time-out
  uint64_t unavailable = 0;   // requests that found no worker within acquire_timeout
};

class ParserPool {
 public:
  // Starts `workers` processes and waits until each is confined (so a broken
  // executable or a kernel without seccomp is an error here, not at the first
  // archive).
  static Result<std::shared_ptr<ParserPool>> Start(ParserPoolOptions options = {});
  ~ParserPool();
  ParserPool(const ParserPool&) = delete;
  ParserPool& operator=(const ParserPool&) = delete;

  ParserPoolStats stats() const;
  // Process ids of the live workers (tests; excluding them from monitoring).
  std::vector<pid_t> worker_pids() const;

  class Impl;
  Impl& impl() { return *impl_; }

 private:
  explicit ParserPool(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Call first thing in main(): when this process was started as a parser
// worker, serves requests and returns the exit code; otherwise returns nullopt
// at once and does nothing.
std::optional<int> RunParserWorkerIfRequested(int argc, char** argv);

}  // namespace mamori::scanner

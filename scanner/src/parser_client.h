// Internal: the scanner's side of a parser worker request.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "budget.h"
#include "containers.h"
#include "expand.h"
#include "mamori/scanner/parser_pool.h"

namespace mamori::scanner::internal {

struct RemoteMember {
  int depth = 0;          // 1 for a member of the object itself
  const std::string& path;  // "object!name!..."
  std::string_view data;  // valid during the callback only
};

// Where the object's bytes come from: memory, or a descriptor of a regular file
// the worker reads itself (large top-level containers; `kind` then says what
// the scanner sniffed).
struct RemoteSource {
  std::string_view data;
  int fd = -1;
  uint64_t fd_size = 0;
  ContainerKind kind = ContainerKind::kNone;
};

// Expands `object` (depth 0) in a worker, recursively, calling `on_member` for
// every member in the order an in-process walk would scan them, and appending
// the worker's incomplete reasons to `budget` in that same order. `on_member`
// returns false to stop early (the caller's budget ran out): the worker is
// then killed and replaced. Worker failures are recorded in `budget`.
void RemoteExpand(ParserPool& pool, const RemoteSource& source, const std::string& object,
                  const ExpandOptions& options, Budget& budget,
                  const std::function<bool(const RemoteMember&)>& on_member);

// One request over a connected worker socket, without the pool: sends the
// request, reads and checks every frame of the reply. Exposed for the fuzzer
// of worker replies (fuzz/fuzz_parser_worker_replies.cc).
struct ExchangeOutcome {
  enum Kind { kDone, kAbandoned, kTimedOut, kSendFailed, kDied, kBreach } kind;
  const char* what;  // for the log: "died", "sent an unknown frame", ...
};
ExchangeOutcome ExpandOverSocket(int fd, const RemoteSource& source, const std::string& object,
                                 const ExpandOptions& options, Budget& budget,
                                 const std::function<bool(const RemoteMember&)>& on_member);

// The worker's main loop on `fd` (after confinement). Returns the exit code.
int ParserWorkerMain(int fd, pid_t parent);

}  // namespace mamori::scanner::internal

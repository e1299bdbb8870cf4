// The agent's record of the server commands it accepted, so each command_id
// runs at most once, across agent restarts (docs/agent-commands.md).
//
// File format (data_dir/commands.journal, 0600), one line per record,
// appended with one write(2) and fdatasync before the caller acts:
//   A <command_id> <accepted_at_ns>\n                 accepted (about to run)
//   D <command_id> <accepted_at_ns> <hex|->\n        finished; the serialized
//                                                     CommandResult, or "-" when
//                                                     too large to keep
// The last record of an id wins. A torn last line (crash mid-write) is
// ignored. Open rewrites the file (atomically) without records older than
// `retention`, and so does an append that finds the file over `max_bytes`.
//
// Thread safety: all methods are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::agent {

class CommandJournal {
 public:
  struct Entry {
    bool done = false;
    int64_t accepted_at_ns = 0;
    std::string result;  // serialized CommandResult when done (empty: not kept)
  };
  struct Options {
    std::chrono::seconds retention{30 * 24 * 3600};
    size_t max_bytes = 8u << 20;
    size_t max_result_bytes = 16u << 10;  // larger results are not kept (ack only on redelivery)
  };

  static Result<std::unique_ptr<CommandJournal>> Open(const std::string& path, Options options, int64_t now_ns);
  ~CommandJournal();

  // True for ids the journal can hold: 1..128 of [A-Za-z0-9_.-].
  static bool ValidId(const std::string& id);

  std::optional<Entry> Find(const std::string& id) const;
  // Durable when OK. kAlreadyExists when the id is known already.
  Status Accept(const std::string& id, int64_t now_ns);
  // Durable when OK. Also valid for an id never accepted (rejections).
  Status Finish(const std::string& id, const std::string& serialized_result, int64_t now_ns);
  // Accepted and never finished: interrupted by a restart (at Open time).
  std::vector<std::string> Unfinished() const;
  size_t size() const;

 private:
  CommandJournal(std::string path, Options options);
  Status AppendLocked(const std::string& line, int64_t now_ns);
  Status RewriteLocked(int64_t now_ns);

  const std::string path_;  // constant
  const Options options_;   // constant
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;  // guarded by mu_
  int fd_ = -1;                           // guarded by mu_: append descriptor
  size_t bytes_ = 0;                      // guarded by mu_: file size
};

}  // namespace mamori::agent

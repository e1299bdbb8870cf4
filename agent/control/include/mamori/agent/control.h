// The local control socket between `mamori` (CLI) and `mamori-agent`.
//
// Protocol (stream socket, one request per connection):
//   request:  one line, fields separated by TAB, '\\', TAB and newline escaped
//             as \\\\, \\t, \\n:  verb [args...]
//   response: lines "out <text>" (stdout) or "err <text>" (stderr), then
//             "exit <code>" last. Text is escaped the same way.
// The agent reads the request line (at most 64 KiB, 5 s) and checks the
// peer's uid (SO_PEERCRED) against its allowed list before acting on it; a
// refused peer gets "permission denied" and exit 77. Reading first matters:
// a Unix socket closed with the request unread resets the connection and the
// client would see a reset instead of the refusal. The socket file is 0600.
//
// Thread safety: ControlServer runs its own accept thread and serves one
// connection at a time per thread it spawns; the handler must be thread-safe.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::agent {

std::string EscapeField(std::string_view s);
std::string UnescapeField(std::string_view s);

// Where a handler writes its answer; each call sends one line at once (so a
// long scan streams its findings).
class ControlReply {
 public:
  explicit ControlReply(int fd) : fd_(fd) {}
  void Out(std::string_view line) { Send("out", line); }
  void Err(std::string_view line) { Send("err", line); }

 private:
  void Send(std::string_view kind, std::string_view line);
  int fd_;
};

struct ControlPeer {
  uid_t uid = 0;
  pid_t pid = 0;
};

// Returns the exit code for the client.
using ControlHandler = std::function<int(const ControlPeer&, const std::vector<std::string>& request, ControlReply&)>;

class ControlServer {
 public:
  ~ControlServer();
  // Binds `socket_path` (parent folder created 0755, stale socket replaced, socket 0600).
  static Result<std::unique_ptr<ControlServer>> Start(const std::string& socket_path, std::vector<uid_t> allowed_uids,
                                                      ControlHandler handler);
  void Stop();

 private:
  ControlServer() = default;
  void Serve();
  void Handle(int fd);

  std::string path_;
  std::vector<uid_t> allowed_;
  ControlHandler handler_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;
  std::atomic<bool> running_{false};
  std::thread thread_;
  std::atomic<int> active_{0};
};

// Client side: sends `request`, prints "out" lines to `out`, "err" lines to
// `err`, returns the exit code (UNAVAILABLE when no agent answers).
Result<int> ControlCall(const std::string& socket_path, const std::vector<std::string>& request,
                        const std::function<void(const std::string&)>& out,
                        const std::function<void(const std::string&)>& err);

}  // namespace mamori::agent

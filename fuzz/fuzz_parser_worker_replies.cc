// Fuzzes the agent's reading of a parser worker's replies: the worker parses
// attacker bytes, so after a parser bug its replies are attacker bytes too.
// The input is the whole reply stream (frames: member, incomplete, done, or
// anything), fed through a socketpair to the real ExpandOverSocket. Traps when
// a member that reaches the scanner breaks the request's limits.
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>

#include "budget.h"
#include "parser_client.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mamori::scanner;  // NOLINT(google-build-using-namespace): fuzzer
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 0;
  // The "worker": sends the input as its reply and closes; the request it was
  // sent stays unread in its buffer (it is small).
  std::thread worker([&] {
    size_t off = 0;
    while (off < size) {
      ssize_t n = ::send(sv[1], data + off, size - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::shutdown(sv[1], SHUT_WR);
  });
  ScanLimits limits;
  limits.max_depth = 4;
  limits.max_member_size = 64 << 10;
  limits.max_total_extracted = 256 << 10;
  limits.max_members = 50;
  limits.max_scan_time = std::chrono::seconds(5);
  internal::Budget budget(limits);
  const std::string object = "fuzz.zip";
  const std::string request_bytes = "PK\x03\x04 the object itself";
  uint64_t members = 0, bytes = 0;
  auto out = internal::ExpandOverSocket(sv[0], internal::RemoteSource{request_bytes}, object, {}, budget,
                                        [&](const internal::RemoteMember& m) {
                                          ++members;
                                          bytes += m.data.size();
                                          if (m.depth < 1 || m.depth > limits.max_depth) __builtin_trap();
                                          if (m.data.size() > limits.max_member_size) __builtin_trap();
                                          if (m.path.compare(0, object.size() + 1, object + "!") != 0) __builtin_trap();
                                          return true;
                                        });
  if (members > limits.max_members + 1 || bytes > limits.max_total_extracted + (1u << 20)) __builtin_trap();
  if (out.kind == internal::ExchangeOutcome::kTimedOut) __builtin_trap();  // EOF always comes first
  ::shutdown(sv[0], SHUT_RDWR);  // a reply read only in part: the sender must not block
  worker.join();
  ::close(sv[0]);
  ::close(sv[1]);
  return 0;
}

// Internal: the byte protocol between the scanner and a sandboxed parser
// worker (one SOCK_STREAM socketpair per worker, one request at a time).
//
// Every frame: type (1 byte), payload length (u64, little endian), payload.
// scanner -> worker
//   'X' expand: ExpandRequest header, then the object's bytes (the rest of the
//       payload); with `fd_source` the bytes are instead read by the worker from
//       a descriptor passed with the frame header (SCM_RIGHTS).
// worker -> scanner
//   'H' hello: the worker is confined and ready (sent once, after start-up).
//   'M' member: u32 depth, u32 path length, path, member bytes.
//   'I' incomplete: one "reason (object path)" line, in the order recorded.
//   'D' done: u8 exhausted; the request is over.
// The scanner trusts nothing a worker sends: lengths are checked against the
// request's own limits before anything is allocated.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "mamori/scanner/limits.h"

namespace mamori::scanner::internal {

constexpr char kFrameHello = 'H';
constexpr char kFrameExpand = 'X';
constexpr char kFrameMember = 'M';
constexpr char kFrameIncomplete = 'I';
constexpr char kFrameDone = 'D';
constexpr size_t kFrameHeaderSize = 9;
// Bounds on what a worker may claim (beyond the request's own limits).
constexpr uint32_t kMaxMemberPath = 1u << 20;
constexpr uint64_t kMaxIncompleteLine = 1u << 20;

// Copied as bytes: both ends are the same executable (/proc/self/exe).
struct ExpandRequest {
  uint8_t fd_source = 0;       // 1: bytes come from the passed descriptor
  uint8_t container_kind = 0;  // with fd_source: the ContainerKind sniffed by the scanner
  uint8_t open_containers = 1;
  uint8_t open_mail = 1;
  uint32_t object_length = 0;  // the object's display path follows the header
  ScanLimits limits;           // max_scan_time: what is left of the top-level scan's
  uint64_t fd_size = 0;        // with fd_source: the file's size (ratio limit)
};
static_assert(std::is_trivially_copyable_v<ExpandRequest>);

inline void PutU32(std::string& out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(b, 4);
}
inline void PutU64(std::string& out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(b, 8);
}
inline uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
inline uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
inline std::string FrameHeader(char type, uint64_t payload) {
  std::string h(1, type);
  PutU64(h, payload);
  return h;
}

// Full-length I/O on a blocking descriptor; false on EOF or error. WriteAll
// is the worker's (a dead scanner ends it by SIGPIPE, which is right);
// SendAll is the scanner's: MSG_NOSIGNAL, a dead worker is only an error.
bool WriteAll(int fd, std::string_view data);
bool SendAll(int fd, std::string_view data);
bool ReadAll(int fd, char* out, size_t n);

}  // namespace mamori::scanner::internal

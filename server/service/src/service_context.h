// What the AgentService handlers share. Internal to mamori_server_service.
//
// Thread safety: the pointers are constant after construction and point to
// thread-safe objects; the counters are atomic.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>

#include "mamori/common/status.h"
#include "mamori/server/ca.h"
#include "mamori/server/config.h"
#include "mamori/server/metrics.h"
#include "mamori/server/siem.h"
#include "mamori/server/store.h"

namespace mamori::server {

class SessionRegistry;
class WorkerPool;

struct ServiceContext {
  const ServerConfig* config = nullptr;
  Store* store = nullptr;
  const CertificateAuthority* ca = nullptr;
  ServerMetrics* metrics = nullptr;
  SiemForwarder* siem = nullptr;  // never null; may have no outputs
  WorkerPool* pool = nullptr;
  SessionRegistry* registry = nullptr;

  std::atomic<unsigned> streams{0};      // Connect streams admitted (bounded by config->max_streams)
  std::atomic<unsigned> enrollments{0};  // Enroll calls in progress
};

inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Same numbering on both sides (mamori::StatusCode follows gRPC).
inline grpc::Status ToGrpc(const Status& s) {
  return s.ok() ? grpc::Status::OK : grpc::Status(static_cast<grpc::StatusCode>(s.code()), s.message());
}

inline bool Retryable(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kAborted;
}

// Runs a store call up to 3 times while it fails with a retryable code
// (database busy, serialization conflict), backing off 50 ms then 200 ms.
template <typename F>
auto WithRetry(F&& f) -> decltype(f()) {
  for (int attempt = 0;; ++attempt) {
    auto r = f();
    if (r.ok() || attempt == 2 || !Retryable(::mamori::internal::ToStatus(r))) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(attempt == 0 ? 50 : 200));
  }
}

// The MAJOR of "MAJOR.MINOR.PATCH"; -1 when `v` is not of that form.
int ProtocolMajor(std::string_view v);

// OK when the peer's protocol_version has this server's MAJOR;
// INVALID_ARGUMENT when it is malformed, FAILED_PRECONDITION for another MAJOR.
grpc::Status CheckProtocolVersion(const std::string& version);

}  // namespace mamori::server

// A fixed set of threads running queued tasks: the blocking store work of the
// gRPC callback handlers (gRPC's own callback threads must not block).
//
// The queue is not bounded here: each Connect stream has at most one task
// queued or running (the task drains the stream's bounded inbox), and
// enrollments are capped by the service, so the queue stays below
// max_streams + max_concurrent_enrollments.
//
// Thread safety: Submit may be called from any thread; Stop from one.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mamori::server {

class WorkerPool {
 public:
  explicit WorkerPool(unsigned threads);
  ~WorkerPool();  // Stop()
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`. After Stop the task runs on the caller's thread, so a
  // callback that must finish an RPC is never dropped.
  void Submit(std::function<void()> task);
  // Runs every queued task, then joins the threads. Idempotent.
  void Stop();

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::vector<std::thread> threads_;         // constant after construction (joined by Stop)
};

}  // namespace mamori::server

// Group commit: concurrent writers queue up; the writer at the head of the
// queue becomes the leader, takes every request queued behind it (up to a
// total weight), runs them as one group — for the SQLite store, one
// transaction and so one fsync for many agents' batches — and marks them
// done. The others wait and return their result. The pattern of leveldb's
// DBImpl::Write. Internal.
//
// Thread safety: thread-safe. A Request must stay alive until Submit returns.
#pragma once

#include <cassert>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <span>
#include <vector>

namespace mamori::server::internal {

// Request: any type with `size_t weight` (e.g. its event count) and
// `bool done` (false when submitted).
template <typename Request>
class GroupCommit {
 public:
  explicit GroupCommit(size_t max_group_weight) : max_weight_(max_group_weight) {}

  // Returns once `r` has been run, by this thread or by a leader.
  // run_group(std::span<Request* const>) must set every request's result; it
  // runs on the leader's thread, without the queue lock, one group at a time.
  template <typename RunGroup>
  void Submit(Request* r, RunGroup&& run_group) {
    std::unique_lock<std::mutex> lock(mu_);
    queue_.push_back(r);
    cv_.wait(lock, [&] { return r->done || queue_.front() == r; });
    if (r->done) return;
    std::vector<Request*> group;
    size_t weight = 0;
    for (Request* q : queue_) {
      if (!group.empty() && weight + q->weight > max_weight_) break;
      group.push_back(q);
      weight += q->weight;
    }
    lock.unlock();
    run_group(std::span<Request* const>(group));
    lock.lock();
    for (Request* q : group) {
      assert(queue_.front() == q);
      queue_.pop_front();
      q->done = true;
    }
    cv_.notify_all();  // the finished followers, and the next leader
  }

 private:
  const size_t max_weight_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Request*> queue_;  // guarded by mu_; the head is the current leader
};

}  // namespace mamori::server::internal

// A bounded pool of database connections, each used by one thread at a time.
// Internal to server/store.
//
// Thread safety: thread-safe. A Lease must not outlive its pool.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "mamori/common/status.h"

namespace mamori::server::internal {

template <typename Conn>
class ConnectionPool {
 public:
  using Factory = std::function<Result<std::unique_ptr<Conn>>()>;

  // Exclusive use of one connection until destroyed; then it returns to the
  // pool, unless Discard() was called (a broken connection).
  class Lease {
   public:
    Lease(ConnectionPool* pool, std::unique_ptr<Conn> conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&& o) noexcept : pool_(std::exchange(o.pool_, nullptr)), conn_(std::move(o.conn_)) {}
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    ~Lease() {
      if (pool_ != nullptr) pool_->Return(std::move(conn_));
    }
    Conn& operator*() { return *conn_; }
    Conn* operator->() { return conn_.get(); }
    void Discard() { conn_.reset(); }

   private:
    ConnectionPool* pool_;
    std::unique_ptr<Conn> conn_;
  };

  ConnectionPool(unsigned max_connections, Factory factory)
      : max_(max_connections == 0 ? 1 : max_connections), factory_(std::move(factory)) {}

  // Adds an already open connection (counts against the maximum).
  void Add(std::unique_ptr<Conn> conn) {
    std::lock_guard<std::mutex> lock(mu_);
    ++open_;
    idle_.push_back(std::move(conn));
  }

  // Waits while every connection is leased; opens a new one when below the maximum.
  Result<Lease> Acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !idle_.empty() || open_ < max_; });
    if (!idle_.empty()) {
      std::unique_ptr<Conn> c = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(c));
    }
    ++open_;
    lock.unlock();
    Result<std::unique_ptr<Conn>> c = factory_();
    if (!c.ok()) {
      Return(nullptr);
      return c.status();
    }
    return Lease(this, std::move(*c));
  }

 private:
  void Return(std::unique_ptr<Conn> conn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (conn) {
        idle_.push_back(std::move(conn));
      } else {
        --open_;
      }
    }
    cv_.notify_one();
  }

  const unsigned max_;
  const Factory factory_;
  std::mutex mu_;
  std::condition_variable cv_;
  unsigned open_ = 0;                         // guarded by mu_: idle + leased
  std::vector<std::unique_ptr<Conn>> idle_;   // guarded by mu_
};

}  // namespace mamori::server::internal

// The Connect streams of this process, and the housekeeper thread that
// delivers pending commands to them, sweeps stuck or silent streams and
// expires old commands. Nothing here is needed for correctness across
// replicas: commands live in the store, and every replica delivers the ones
// for the agents connected to it.
//
// Thread safety: all methods are thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "service_context.h"

namespace mamori::server {

class Session;

class SessionRegistry {
 public:
  void Add(std::shared_ptr<Session> session);
  // Forgets the session (its OnDone) and its agent binding, if it is the bound one.
  void Remove(Session* session);
  // Makes `session` the agent's current stream; returns the one it replaces (or null).
  std::shared_ptr<Session> Bind(const std::string& agent_id, std::shared_ptr<Session> session);
  std::vector<std::shared_ptr<Session>> All() const;
  std::shared_ptr<Session> Find(const std::string& agent_id) const;
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<Session*, std::shared_ptr<Session>> sessions_;  // guarded by mu_
  std::unordered_map<std::string, Session*> by_agent_;               // guarded by mu_
};

class Housekeeper {
 public:
  explicit Housekeeper(ServiceContext* svc);
  ~Housekeeper();  // Stop()
  Housekeeper(const Housekeeper&) = delete;
  Housekeeper& operator=(const Housekeeper&) = delete;

  void Start();
  void Stop();  // idempotent
  // Delivers pending commands now (tests; the console after creating one).
  void PollCommandsNow();

 private:
  void Run();
  void DeliverCommands();

  ServiceContext* const svc_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;      // guarded by mu_
  bool poll_now_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace mamori::server

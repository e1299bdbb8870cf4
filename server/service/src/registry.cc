#include "registry.h"

#include "mamori/common/log.h"
#include "session.h"

namespace mamori::server {

void SessionRegistry::Add(std::shared_ptr<Session> session) {
  std::lock_guard<std::mutex> lock(mu_);
  Session* key = session.get();
  sessions_.emplace(key, std::move(session));
}

void SessionRegistry::Remove(Session* session) {
  std::shared_ptr<Session> keep;  // released outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  keep = std::move(it->second);
  sessions_.erase(it);
  auto b = by_agent_.find(session->agent_id());
  if (b != by_agent_.end() && b->second == session) by_agent_.erase(b);
}

std::shared_ptr<Session> SessionRegistry::Bind(const std::string& agent_id, std::shared_ptr<Session> session) {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<Session> old;
  auto b = by_agent_.find(agent_id);
  if (b != by_agent_.end() && b->second != session.get()) {
    auto it = sessions_.find(b->second);
    if (it != sessions_.end()) old = it->second;
  }
  by_agent_[agent_id] = session.get();
  return old;
}

std::vector<std::shared_ptr<Session>> SessionRegistry::All() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<Session>> out;
  out.reserve(sessions_.size());
  for (const auto& [_, s] : sessions_) out.push_back(s);
  return out;
}

std::shared_ptr<Session> SessionRegistry::Find(const std::string& agent_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto b = by_agent_.find(agent_id);
  if (b == by_agent_.end()) return nullptr;
  auto it = sessions_.find(b->second);
  return it == sessions_.end() ? nullptr : it->second;
}

size_t SessionRegistry::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sessions_.size();
}

Housekeeper::Housekeeper(ServiceContext* svc) : svc_(svc) {}

Housekeeper::~Housekeeper() { Stop(); }

void Housekeeper::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Housekeeper::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Housekeeper::PollCommandsNow() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    poll_now_ = true;
  }
  cv_.notify_all();
}

void Housekeeper::DeliverCommands() {
  std::vector<std::shared_ptr<Session>> sessions = svc_->registry->All();
  std::unordered_map<std::string, std::shared_ptr<Session>> by_agent;
  for (auto& s : sessions) {
    if (s->welcomed()) by_agent[s->agent_id()] = s;
  }
  if (by_agent.empty()) return;
  const int64_t now = NowNs();
  // One query for every pending command; when there are more than a page,
  // ask per connected agent instead.
  CommandQuery q;
  q.states = {CommandState::kPending};
  q.limit = kMaxEventLimit;
  Result<std::vector<CommandRecord>> all = svc_->store->ListCommands(q);
  if (!all.ok()) {
    MAMORI_LOG(kWarning, "pending commands: " << all.status().message());
    return;
  }
  auto offer = [&](const CommandRecord& c) {
    if (c.expires_at_ns != 0 && c.expires_at_ns <= now) return;
    auto it = by_agent.find(c.agent_id);
    if (it != by_agent.end()) it->second->OfferCommand(c);
  };
  if (all->size() < kMaxEventLimit) {
    // Newest first from the store; send oldest first.
    for (auto it = all->rbegin(); it != all->rend(); ++it) offer(*it);
    return;
  }
  for (const auto& [agent, session] : by_agent) {
    Result<std::vector<CommandRecord>> pending = svc_->store->PendingCommands(agent, now);
    if (!pending.ok()) continue;
    for (const auto& c : *pending) session->OfferCommand(c);
  }
}

void Housekeeper::Run() {
  using Clock = std::chrono::steady_clock;
  const auto poll = svc_->config->command_poll_interval;
  const auto sweep = std::chrono::milliseconds(1000);
  const auto expire = std::chrono::milliseconds(60000);
  auto next_poll = Clock::now() + poll, next_sweep = Clock::now() + sweep, next_expire = Clock::now() + expire;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_until(lock, std::min({next_poll, next_sweep, next_expire}), [this] { return stop_ || poll_now_; });
    if (stop_) break;
    const bool poll_now = poll_now_;
    poll_now_ = false;
    lock.unlock();
    const auto now = Clock::now();
    if (poll_now || now >= next_poll) {
      DeliverCommands();
      next_poll = now + poll;
    }
    if (now >= next_sweep) {
      const int64_t wall = NowNs();
      for (auto& s : svc_->registry->All()) s->Sweep(wall);
      next_sweep = now + sweep;
    }
    if (now >= next_expire) {
      Result<uint64_t> n = svc_->store->ExpireCommands(NowNs());
      if (n.ok() && *n > 0) MAMORI_LOG(kInfo, "expired " << *n << " commands");
      next_expire = now + expire;
    }
    lock.lock();
  }
}

}  // namespace mamori::server

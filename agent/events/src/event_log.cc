#include "mamori/agent/event_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <cstring>
#include <memory>

#include "mamori/common/json.h"
#include "mamori/common/log.h"

namespace mamori::agent {

std::string Event::ToJson() const {
  std::string out = "{\"ts\":\"" + log::NowTimestamp() + "\",\"type\":" + json::Quote(type_);
  for (const auto& [k, f] : fields_) {
    out += "," + json::Quote(k) + ":" + (f.number ? f.value : json::Quote(f.value));
  }
  out += "}";
  return out;
}

Result<std::unique_ptr<EventLog>> EventLog::Open(const std::string& path) {
  std::unique_ptr<EventLog> log(new EventLog());
  if (!path.empty()) {
    log->fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (log->fd_ < 0) return ErrnoError(errno, "open event log " + path);
  }
  return log;
}

EventLog::~EventLog() {
  if (fd_ >= 0) ::close(fd_);
}

void EventLog::Append(const Event& e) {
  std::string line = e.ToJson();
  if (e.type() == "behavior_event") {
    MAMORI_LOG(kDebug, "event " << line);
  } else {
    MAMORI_LOG(kInfo, "event " << line);
  }
  line.push_back('\n');
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (fd_ >= 0) {
      // O_APPEND + one write per line: concurrent lines never interleave.
      ssize_t n = ::write(fd_, line.data(), line.size());
      if (n != static_cast<ssize_t>(line.size())) MAMORI_LOG(kError, "event log write failed: " << std::strerror(errno));
    }
    ++appended_;
  }
  if (forward_) forward_(e);
}

uint64_t EventLog::appended() const {
  std::lock_guard<std::mutex> lock(mu_);
  return appended_;
}

}  // namespace mamori::agent

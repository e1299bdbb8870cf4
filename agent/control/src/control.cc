#include "mamori/agent/control.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "mamori/common/file_util.h"
#include "mamori/common/log.h"

namespace mamori::agent {
namespace {

constexpr size_t kMaxRequest = 64 * 1024;
constexpr int kRequestTimeoutSeconds = 5;

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::vector<std::string> SplitFields(std::string_view line) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t tab = line.find('\t', start);
    out.push_back(UnescapeField(line.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start)));
    if (tab == std::string_view::npos) return out;
    start = tab + 1;
  }
}

Result<sockaddr_un> Address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return InvalidArgumentError("control socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

}  // namespace

std::string EscapeField(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\t') out += "\\t";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
  return out;
}

std::string UnescapeField(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char n = s[++i];
      out.push_back(n == 't' ? '\t' : n == 'n' ? '\n' : n);
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

void ControlReply::Send(std::string_view kind, std::string_view line) {
  std::string msg(kind);
  msg += ' ';
  msg += EscapeField(line);
  msg += '\n';
  SendAll(fd_, msg);  // a client that went away just stops receiving
}

ControlServer::~ControlServer() { Stop(); }

Result<std::unique_ptr<ControlServer>> ControlServer::Start(const std::string& socket_path,
                                                            std::vector<uid_t> allowed_uids, ControlHandler handler) {
  auto addr = Address(socket_path);
  if (!addr.ok()) return addr.status();
  if (auto slash = socket_path.rfind('/'); slash != std::string::npos && slash > 0) {
    MAMORI_RETURN_IF_ERROR(MakeDirs(socket_path.substr(0, slash), 0755));
  }
  std::unique_ptr<ControlServer> s(new ControlServer());
  s->path_ = socket_path;
  s->allowed_ = std::move(allowed_uids);
  s->handler_ = std::move(handler);
  s->listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->listen_fd_ < 0) return ErrnoError(errno, "socket");
  struct stat st {};
  if (::lstat(socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return FailedPreconditionError(socket_path + " exists and is not a socket");
    ::unlink(socket_path.c_str());  // stale socket of a previous run
  }
  // The socket is created with 0600 from the start (umask), not chmod'ed afterwards.
  mode_t old = ::umask(0177);
  int rc = ::bind(s->listen_fd_, reinterpret_cast<sockaddr*>(&*addr), sizeof(sockaddr_un));
  ::umask(old);
  if (rc != 0) return ErrnoError(errno, "bind " + socket_path);
  if (::listen(s->listen_fd_, 16) != 0) return ErrnoError(errno, "listen " + socket_path);
  s->stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  s->running_ = true;
  s->thread_ = std::thread([p = s.get()] { p->Serve(); });
  return s;
}

void ControlServer::Stop() {
  if (!running_.exchange(false)) return;
  uint64_t one = 1;
  (void)!::write(stop_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  // Connections in progress finish on their own threads; wait for them.
  while (active_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ::close(listen_fd_);
  ::close(stop_fd_);
  ::unlink(path_.c_str());
}

void ControlServer::Serve() {
  pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  while (running_) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++active_;
    // One thread per connection: a long scan must not block `status`.
    std::thread([this, fd] {
      Handle(fd);
      ::close(fd);
      --active_;
    }).detach();
  }
}

void ControlServer::Handle(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  ControlReply reply(fd);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return;
  ControlPeer peer{cred.uid, cred.pid};
  // The request is read before anything is answered, also from peers about to be refused:
  // closing a Unix socket with the request still unread resets the connection, and the
  // client could then see "connection reset" instead of the refusal. A peer that never
  // finishes its line holds this thread for at most the receive timeout.
  timeval timeout{kRequestTimeoutSeconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string line;
  char buf[4096];
  bool too_long = false;
  while (line.find('\n') == std::string::npos) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
    if (line.size() > kMaxRequest) {
      too_long = true;
      break;
    }
  }
  if (std::find(allowed_.begin(), allowed_.end(), cred.uid) == allowed_.end()) {
    MAMORI_LOG(kWarning, "control socket: refused uid " << cred.uid << " (pid " << cred.pid << ")");
    reply.Err("permission denied: uid " + std::to_string(cred.uid) + " may not control the agent");
    SendAll(fd, "exit 77\n");
    return;
  }
  if (too_long) {
    reply.Err("request too long");
    SendAll(fd, "exit 64\n");
    return;
  }
  size_t end = line.find('\n');
  if (end == std::string::npos) return;  // the client went away or never finished its request
  line.resize(end);
  int code = handler_(peer, SplitFields(line), reply);
  SendAll(fd, "exit " + std::to_string(code) + "\n");
}

Result<int> ControlCall(const std::string& socket_path, const std::vector<std::string>& request,
                        const std::function<void(const std::string&)>& out,
                        const std::function<void(const std::string&)>& err) {
  auto addr = Address(socket_path);
  if (!addr.ok()) return addr.status();
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError(errno, "socket");
  if (::connect(fd, reinterpret_cast<sockaddr*>(&*addr), sizeof(sockaddr_un)) != 0) {
    Status s = UnavailableError("no agent answers on " + socket_path + ": " + std::strerror(errno));
    ::close(fd);
    return s;
  }
  std::string line;
  for (size_t i = 0; i < request.size(); ++i) line += (i ? "\t" : "") + EscapeField(request[i]);
  line += '\n';
  // A failed send is not the end: the agent may have answered (a refusal) and closed
  // before reading, and that answer is still waiting in our receive queue.
  bool sent = SendAll(fd, line);
  std::string pending;
  char buf[8192];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      std::string l = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      if (l.rfind("out ", 0) == 0) out(UnescapeField(l.substr(4)));
      else if (l.rfind("err ", 0) == 0) err(UnescapeField(l.substr(4)));
      else if (l.rfind("exit ", 0) == 0) {
        ::close(fd);
        return std::atoi(l.c_str() + 5);
      }
    }
  }
  ::close(fd);
  if (!sent) return UnavailableError("agent closed the control connection");
  return UnavailableError("the agent closed the connection before answering");
}

}  // namespace mamori::agent

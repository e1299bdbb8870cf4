// SIEM outputs: an append-only JSON-lines file, and syslog (RFC 5424) over
// UDP or a Unix datagram socket.
#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "mamori/common/file_util.h"
#include "mamori/common/log.h"
#include "mamori/server/siem.h"

namespace mamori::server {
namespace {

// Logs the first error and then every 1000th, so a dead output cannot flood the log.
void LogOutputError(const std::string& name, uint64_t errors_before, const std::string& what) {
  if (errors_before % 1000 == 0) {
    MAMORI_LOG(kError, "siem output " << name << ": " << what << " (" << errors_before + 1 << " errors so far)");
  }
}

class FileOutput final : public SiemOutput {
 public:
  explicit FileOutput(std::string path) : path_(std::move(path)), name_("file:" + path_) {}
  ~FileOutput() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Reopen() override {
    const size_t slash = path_.rfind('/');
    if (slash != std::string::npos && slash > 0) MAMORI_RETURN_IF_ERROR(MakeDirs(path_.substr(0, slash), 0750));
    const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) return ErrnoError(errno, "open " + path_);
    std::lock_guard<std::mutex> lock(mu_);
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
    return Status::Ok();
  }

  void Write(std::span<const SiemRecord> records) override {
    if (records.empty()) return;
    std::string buf;
    for (const SiemRecord& r : records) {
      buf += SiemJson(r);
      buf += '\n';
    }
    std::lock_guard<std::mutex> lock(mu_);  // one writer at a time: lines never interleave
    size_t off = 0;
    while (off < buf.size()) {
      const ssize_t n = ::write(fd_, buf.data() + off, buf.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = errno;
        LogOutputError(name_, errors_.fetch_add(records.size(), std::memory_order_relaxed),
                       std::string("write: ") + std::strerror(err));
        return;
      }
      off += static_cast<size_t>(n);
    }
    written_.fetch_add(records.size(), std::memory_order_relaxed);
  }

  const std::string& name() const override { return name_; }

 private:
  const std::string path_;
  const std::string name_;
  std::mutex mu_;
  int fd_ = -1;  // guarded by mu_
};

int SyslogSeverity(int event_severity) {
  switch (event_severity) {
    case mamori::v1::SEVERITY_CRITICAL:
      return 2;  // crit
    case mamori::v1::SEVERITY_HIGH:
      return 3;  // err
    case mamori::v1::SEVERITY_MEDIUM:
      return 4;  // warning
    case mamori::v1::SEVERITY_LOW:
      return 5;  // notice
    default:
      return 6;  // info
  }
}

// RFC 5424 field: printable ASCII without spaces, at most max chars, "-" when empty.
std::string HeaderField(std::string_view s, size_t max) {
  std::string out;
  for (char c : s) {
    if (out.size() == max) break;
    if (c > 32 && c < 127) out.push_back(c);
  }
  return out.empty() ? "-" : out;
}

class SyslogOutput final : public SiemOutput {
 public:
  explicit SyslogOutput(const SiemOutputConfig& c)
      : address_(c.address),
        facility_(c.facility),
        app_name_(HeaderField(c.app_name, 48)),
        max_bytes_(c.max_message_bytes),
        name_("syslog:" + c.address) {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    hostname_ = HeaderField(host, 255);
    procid_ = std::to_string(::getpid());
  }
  ~SyslogOutput() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Reopen() override {
    Result<int> fd = Connect();
    if (!fd.ok()) return fd.status();
    std::lock_guard<std::mutex> lock(mu_);
    if (fd_ >= 0) ::close(fd_);
    fd_ = *fd;
    return Status::Ok();
  }

  void Write(std::span<const SiemRecord> records) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const SiemRecord& r : records) {
      std::string header = "<" + std::to_string(facility_ * 8 + SyslogSeverity(r.event->severity())) + ">1 " +
                           Rfc3339(r.received_at_ns, 6) + " " + hostname_ + " " + app_name_ + " " + procid_ + " " +
                           HeaderField(r.type, 32) + " - ";
      std::string msg = header + SiemJson(r);
      if (msg.size() > max_bytes_) msg = header + SiemJson(r, /*with_details=*/false);
      if (!SendLocked(msg)) continue;
      written_.fetch_add(1, std::memory_order_relaxed);
    }
  }

  const std::string& name() const override { return name_; }

 private:
  Result<int> Connect() const {
    if (!address_.empty() && address_.front() == '/') {
      sockaddr_un sa{};
      sa.sun_family = AF_UNIX;
      if (address_.size() >= sizeof sa.sun_path) return InvalidArgumentError("socket path too long: " + address_);
      std::memcpy(sa.sun_path, address_.c_str(), address_.size() + 1);
      const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      if (fd < 0) return ErrnoError(errno, "socket");
      if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        const int err = errno;
        ::close(fd);
        return ErrnoError(err, "connect " + address_);
      }
      return fd;
    }
    Result<HostPort> hp = ParseHostPort(address_);
    if (!hp.ok()) return hp.status();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const int rc = ::getaddrinfo(hp->host.c_str(), std::to_string(hp->port).c_str(), &hints, &res);
    if (rc != 0) return UnavailableError("syslog address " + address_ + ": " + ::gai_strerror(rc));
    int fd = -1;
    int err = 0;
    for (addrinfo* ai = res; ai != nullptr && fd < 0; ai = ai->ai_next) {
      fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd >= 0 && ::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        err = errno;
        ::close(fd);
        fd = -1;
      }
    }
    ::freeaddrinfo(res);
    if (fd < 0) return ErrnoError(err != 0 ? err : EADDRNOTAVAIL, "connect " + address_);
    return fd;
  }

  // REQUIRES: mu_ held. One reconnect attempt when the receiver went away
  // (syslog daemon restarted). Never blocks: a full socket buffer drops.
  bool SendLocked(const std::string& msg) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (fd_ < 0) {
        Result<int> fd = Connect();
        if (!fd.ok()) {
          LogOutputError(name_, errors_.fetch_add(1, std::memory_order_relaxed), fd.status().message());
          return false;
        }
        fd_ = *fd;
      }
      if (::send(fd_, msg.data(), msg.size(), MSG_DONTWAIT | MSG_NOSIGNAL) == static_cast<ssize_t>(msg.size())) {
        return true;
      }
      const int err = errno;
      if (attempt == 0 && (err == ECONNREFUSED || err == ENOTCONN || err == ENOENT || err == EPIPE)) {
        ::close(fd_);
        fd_ = -1;
        continue;
      }
      LogOutputError(name_, errors_.fetch_add(1, std::memory_order_relaxed),
                     std::string("send: ") + std::strerror(err));
      return false;
    }
    return false;
  }

  const std::string address_;
  const int facility_;
  const std::string app_name_;
  const uint32_t max_bytes_;
  const std::string name_;
  std::string hostname_;  // constant after construction
  std::string procid_;    // constant after construction
  std::mutex mu_;
  int fd_ = -1;  // guarded by mu_
};

}  // namespace

Result<std::unique_ptr<SiemOutput>> OpenSiemOutput(const SiemOutputConfig& config) {
  std::unique_ptr<SiemOutput> out;
  if (config.kind == SiemOutputConfig::Kind::kFile) {
    if (config.path.empty()) return InvalidArgumentError("siem file output without a path");
    out = std::make_unique<FileOutput>(config.path);
  } else {
    if (config.address.empty()) return InvalidArgumentError("siem syslog output without an address");
    out = std::make_unique<SyslogOutput>(config);
  }
  Status s = out->Reopen();
  if (!s.ok()) {
    // A missing syslog receiver at start is not fatal (UDP has none to find;
    // /dev/log may come later): the output reconnects on each write.
    if (config.kind == SiemOutputConfig::Kind::kFile) return s.WithContext("siem output");
    MAMORI_LOG(kWarning, "siem output " << out->name() << ": " << s.message() << " (will retry on each write)");
  }
  return out;
}

Result<std::unique_ptr<SiemForwarder>> SiemForwarder::Open(const std::vector<SiemOutputConfig>& outputs) {
  auto f = std::unique_ptr<SiemForwarder>(new SiemForwarder());
  for (const auto& c : outputs) {
    Result<std::unique_ptr<SiemOutput>> o = OpenSiemOutput(c);
    if (!o.ok()) return o.status();
    f->outputs_.push_back(Entry{c.filter, std::move(*o)});
  }
  return f;
}

void SiemForwarder::Publish(std::span<const SiemRecord> records) {
  if (records.empty()) return;
  for (const Entry& e : outputs_) {
    if (e.filter == SiemOutputConfig::Filter::kAll) {
      e.output->Write(records);
      continue;
    }
    std::vector<SiemRecord> picked;
    for (const SiemRecord& r : records) {
      const SiemClass c = ClassOfType(r.type);
      if (c == SiemClass::kAlert || (c == SiemClass::kFinding && e.filter == SiemOutputConfig::Filter::kDetections)) {
        picked.push_back(r);
      }
    }
    e.output->Write(picked);
  }
}

Status SiemForwarder::Reopen() {
  Status first;
  for (const Entry& e : outputs_) {
    Status s = e.output->Reopen();
    if (!s.ok() && first.ok()) first = s.WithContext(e.output->name());
  }
  return first;
}

uint64_t SiemForwarder::records_written() const {
  uint64_t n = 0;
  for (const Entry& e : outputs_) n += e.output->records_written();
  return n;
}

uint64_t SiemForwarder::errors() const {
  uint64_t n = 0;
  for (const Entry& e : outputs_) n += e.output->errors();
  return n;
}

}  // namespace mamori::server

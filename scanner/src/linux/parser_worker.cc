// The parser worker process: confinement, then one expand request at a time.
#include <archive.h>
#include <archive_entry.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <sys/prctl.h>

#include "../expand.h"
#include "../mail.h"
#include "../parser_client.h"
#include "../parser_wire.h"
#include "mamori/scanner/parser_pool.h"
#include "parser_sandbox.h"

namespace mamori::scanner {
namespace internal {
namespace {

constexpr std::string_view kWorkerFlag = "--mamori-parser-worker=";

// Sends members and incomplete lines as the walk produces them.
class Reply {
 public:
  Reply(int fd, Budget& budget) : fd_(fd), budget_(budget) {}

  void FlushIncomplete() {
    for (; flushed_ < budget_.incomplete.size(); ++flushed_) {
      const std::string& line = budget_.incomplete[flushed_];
      Send(FrameHeader(kFrameIncomplete, line.size()) + line);
    }
  }
  void Member(int depth, const std::string& path, std::string_view data) {
    FlushIncomplete();
    std::string head = FrameHeader(kFrameMember, 8 + path.size() + data.size());
    PutU32(head, static_cast<uint32_t>(depth));
    PutU32(head, static_cast<uint32_t>(path.size()));
    head += path;
    Send(head);
    Send(data);
  }
  void Done() {
    FlushIncomplete();
    std::string d = FrameHeader(kFrameDone, 1);
    d.push_back(budget_.exhausted ? 1 : 0);
    Send(d);
  }

 private:
  // The scanner stopped listening (it gave up on this request and is about to
  // kill us, or it is gone): nothing useful is left to do.
  void Send(std::string_view bytes) {
    if (!WriteAll(fd_, bytes)) ::_exit(0);
  }
  int fd_;
  Budget& budget_;
  size_t flushed_ = 0;
};

void Expand(std::string_view data, const std::string& object, int depth, const ExpandOptions& options,
            Budget& budget, Reply& reply);

// Pre-order, like the in-process scan: a member is sent, then opened.
MemberFn SendThenOpen(const std::string& object, int member_depth, const ExpandOptions& options, Budget& budget,
                      Reply& reply) {
  return [&object, member_depth, &options, &budget, &reply](const std::string& name, std::string_view member) {
    const std::string path = object + "!" + name;
    reply.Member(member_depth, path, member);
    if (!budget.exhausted) Expand(member, path, member_depth, options, budget, reply);
  };
}

void Expand(std::string_view data, const std::string& object, int depth, const ExpandOptions& options,
            Budget& budget, Reply& reply) {
  ExpandOneLevel(data, object, depth, options, budget, SendThenOpen(object, depth + 1, options, budget, reply));
}

// libraries initialize lazily (zlib and liblzma state, libarchive's format
// tables, locale data for name conversion); doing it once before the filter is
// installed keeps those first-use paths out of the confined process.
void Prewarm() {
  std::string zip;
  std::string targz;
  auto write = [](std::string* out, int format, int filter) {
    archive* a = archive_write_new();
    archive_write_set_format(a, format);
    if (filter != ARCHIVE_FILTER_NONE) archive_write_add_filter(a, filter);
    std::vector<char> buf(1 << 16);
    size_t used = 0;
    archive_write_open_memory(a, buf.data(), buf.size(), &used);
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, "d\xc3\xa9j\xc3\xa0.txt");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, 5);
    archive_write_header(a, e);
    archive_write_data(a, "hello", 5);
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
    out->assign(buf.data(), used);
  };
  write(&zip, ARCHIVE_FORMAT_ZIP, ARCHIVE_FILTER_NONE);
  write(&targz, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_GZIP);
  std::string tarxz;
  write(&tarxz, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_XZ);
  ScanLimits limits;
  Budget budget(limits);
  ExpandOptions options;
  for (const std::string* sample : {&zip, &targz, &tarxz}) {
    ExpandOneLevel(*sample, "prewarm", 0, options, budget, [](const std::string&, std::string_view) {});
  }
  ParseMail("From: a@example.org\nTo: b@example.org\nSubject: x\nContent-Transfer-Encoding: base64\n\naGVsbG8=\n",
            MailLimits{});
}

bool ServeOne(int fd) {
  char header[kFrameHeaderSize];
  char control[CMSG_SPACE(sizeof(int))];
  iovec iov{header, sizeof header};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return false;  // the scanner closed our socket: pool shut down
  int passed_fd = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) std::memcpy(&passed_fd, CMSG_DATA(c), sizeof(int));
  }
  if (static_cast<size_t>(n) < sizeof header && !ReadAll(fd, header + n, sizeof header - static_cast<size_t>(n))) {
    return false;
  }
  const uint64_t length = GetU64(header + 1);
  if (header[0] != kFrameExpand || length < sizeof(ExpandRequest)) return false;
  std::string payload(length, '\0');
  if (!ReadAll(fd, payload.data(), payload.size())) return false;
  ExpandRequest req;
  std::memcpy(&req, payload.data(), sizeof req);
  if (sizeof req + req.object_length > length) return false;
  const std::string object = payload.substr(sizeof req, req.object_length);
  std::string_view data(payload);
  data.remove_prefix(sizeof req + req.object_length);

  const ScanLimits limits = req.limits;
  Budget budget(limits);
  ExpandOptions options{req.open_containers != 0, req.open_mail != 0};
  Reply reply(fd, budget);
  if (req.fd_source) {
    if (passed_fd < 0) return false;
    ContainerSource src{{}, passed_fd, req.fd_size};
    WalkContainer(src, static_cast<ContainerKind>(req.container_kind), object, budget,
                  SendThenOpen(object, 1, options, budget, reply));
  } else {
    Expand(data, object, 0, options, budget, reply);
  }
  if (passed_fd >= 0) ::close(passed_fd);
  reply.Done();
  return true;
}

}  // namespace

int ParserWorkerMain(int fd, pid_t parent) {
  // Die with the scanner's process, and not outlive one that died before this line.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (parent > 0 && ::getppid() != parent) return 0;
  // Only the request socket and stdio stay open: descriptors another thread of
  // the parent had open without O_CLOEXEC at spawn time are not ours to hold.
  ::syscall(SYS_close_range, static_cast<unsigned>(fd) + 1, ~0u, 0u);
  for (int other = 3; other < fd; ++other) ::close(other);
  // The kernel named the process after the executable's file ("exe", from
  // /proc/self/exe): give process listings and the behavior sensor a real name.
  ::prctl(PR_SET_NAME, "mamori-parser", 0, 0, 0);
  Status s = DropWorkerPrivileges();
  if (s.ok()) {
    Prewarm();
    s = InstallWorkerSeccompFilter();
  }
  if (!s.ok()) {
    std::fprintf(stderr, "mamori parser worker: cannot confine itself: %s\n", s.ToString().c_str());
    return 70;
  }
  if (!WriteAll(fd, FrameHeader(kFrameHello, 0))) ::_exit(0);
  while (ServeOne(fd)) {
  }
  // _exit: no atexit handlers or static destructors (the filter would kill a
  // leak checker's helper thread, and there is nothing to flush).
  ::_exit(0);
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool ReadAll(int fd, char* out, size_t n) {
  while (n > 0) {
    ssize_t r = ::read(fd, out, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    out += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

}  // namespace internal

std::optional<int> RunParserWorkerIfRequested(int argc, char** argv) {
  if (argc < 2 || std::string_view(argv[1]).substr(0, internal::kWorkerFlag.size()) != internal::kWorkerFlag) {
    return std::nullopt;
  }
  // "--mamori-parser-worker=FD:PARENT_PID"
  const char* spec = argv[1] + internal::kWorkerFlag.size();
  char* end = nullptr;
  long fd = std::strtol(spec, &end, 10);
  long parent = (end != nullptr && *end == ':') ? std::strtol(end + 1, nullptr, 10) : 0;
  if (fd < 3 || fd > 1024) {
    std::fprintf(stderr, "mamori parser worker: bad descriptor in %s\n", argv[1]);
    return 64;
  }
  return internal::ParserWorkerMain(static_cast<int>(fd), static_cast<pid_t>(parent));
}

}  // namespace mamori::scanner

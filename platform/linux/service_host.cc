// Linux: signals (SIGTERM, SIGINT) taken by a dedicated thread with sigwait,
// and, in service mode, sd_notify READY=1 / STOPPING=1 as one datagram to
// $NOTIFY_SOCKET (no libsystemd), as agent/service/src/systemd.cc does.
#include "mamori/platform/service_host.h"

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace mamori::platform {
namespace {

void Notify(const char* state) {
  const char* sock = std::getenv("NOTIFY_SOCKET");
  if (sock == nullptr || sock[0] == '\0') return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  size_t len = std::strlen(sock);
  if (len >= sizeof addr.sun_path) return;
  std::memcpy(addr.sun_path, sock, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  (void)::sendto(fd, state, std::strlen(state), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
                 static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len));
  ::close(fd);
}

Result<int> Run(ServiceApp& app, bool notify) {
  // Block the stop signals in this thread (and so in every thread it starts)
  // and take them on one thread. SIGUSR2 only wakes that thread at the end.
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR2);
  if (int rc = pthread_sigmask(SIG_BLOCK, &set, &old); rc != 0) return ErrnoError(rc, "service host: sigmask");
  std::atomic<bool> done{false};
  std::thread signals([&] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (done.load()) return;
      if (sig == SIGTERM || sig == SIGINT) {
        if (notify) Notify("STOPPING=1");
        app.RequestStop(StopReason::kSignal);
      }
    }
  });
  int code = 1;
  Status started = app.Start([notify] {
    if (notify) Notify("EXTEND_TIMEOUT_USEC=30000000");
  });
  if (started.ok()) {
    if (notify) Notify("READY=1");
    code = app.Run();
  }
  if (notify) Notify("STOPPING=1");
  done.store(true);
  pthread_kill(signals.native_handle(), SIGUSR2);
  signals.join();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (!started.ok()) return started.WithContext("service start");
  return code;
}

}  // namespace

Result<int> RunAsService(const ServiceHostOptions& /*options*/, ServiceApp& app) { return Run(app, true); }

Result<int> RunInConsole(const ServiceHostOptions& /*options*/, ServiceApp& app) { return Run(app, false); }

}  // namespace mamori::platform

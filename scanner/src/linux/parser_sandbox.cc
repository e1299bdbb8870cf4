#include "parser_sandbox.h"

#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

namespace mamori::scanner::internal {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// Room for the largest legitimate work: a 64 MiB object in memory, a mail's
// decoded parts (400 MiB by default) and libarchive's dictionaries.
constexpr rlim_t kWorkerAddressSpace = 4ull << 30;

Status Errno(const char* what) { return ErrnoError(errno, what); }

}  // namespace

Status DropWorkerPrivileges() {
  // The bounding set can only shrink while CAP_SETPCAP is held (a worker
  // started before the agent's own drop); afterwards it is already small and
  // permitted=0 plus no_new_privs make it moot.
  if (::prctl(PR_CAPBSET_READ, CAP_SETPCAP, 0, 0, 0) == 1) {
    for (int cap = 0; cap <= 63; ++cap) {
      if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) break;  // past the kernel's last capability
      ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
    }
  }
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capset, &header, data) != 0) return Errno("capset");
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return Errno("PR_SET_DUMPABLE");
  rlimit zero{0, 0};
  if (::setrlimit(RLIMIT_CORE, &zero) != 0) return Errno("RLIMIT_CORE");
  if (::setrlimit(RLIMIT_FSIZE, &zero) != 0) return Errno("RLIMIT_FSIZE");
  if (!kSanitized) {
    rlimit as{kWorkerAddressSpace, kWorkerAddressSpace};
    if (::setrlimit(RLIMIT_AS, &as) != 0) return Errno("RLIMIT_AS");
  }
  return Status::Ok();
}

Status InstallWorkerSeccompFilter() {
#if defined(__x86_64__)
  const auto self = static_cast<uint32_t>(::getpid());
  std::vector<sock_filter> f;
  auto stmt = [&](uint16_t code, uint32_t k) { f.push_back(sock_filter{code, 0, 0, k}); };
  auto jump = [&](uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) { f.push_back(sock_filter{code, jt, jf, k}); };
  auto ret = [&](uint32_t action) { stmt(BPF_RET | BPF_K, action); };
  auto allow = [&](uint32_t nr) {
    jump(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1);
    ret(SECCOMP_RET_ALLOW);
  };
  auto fail = [&](uint32_t nr, uint32_t err) {
    jump(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1);
    ret(SECCOMP_RET_ERRNO | err);
  };

  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch));
  jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
  ret(SECCOMP_RET_KILL_PROCESS);
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr));
  // x32 system calls share the x86-64 arch value with bit 30 set in nr.
  jump(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1);
  ret(SECCOMP_RET_KILL_PROCESS);
  for (uint32_t nr : {SYS_read, SYS_write, SYS_readv, SYS_writev, SYS_pread64, SYS_lseek, SYS_close, SYS_fstat,
                      SYS_newfstatat, SYS_statx, SYS_mmap, SYS_munmap, SYS_mprotect, SYS_brk, SYS_mremap,
                      SYS_madvise, SYS_futex, SYS_rt_sigreturn, SYS_rt_sigprocmask, SYS_rt_sigaction,
                      SYS_sigaltstack, SYS_exit, SYS_exit_group, SYS_clock_gettime, SYS_clock_nanosleep,
                      SYS_nanosleep, SYS_gettimeofday, SYS_getpid, SYS_gettid, SYS_getrandom, SYS_sched_yield,
                      SYS_sysinfo, SYS_uname, SYS_recvmsg}) {
    allow(nr);
  }
  // abort() signals the calling process only: tgkill(own pid, ...).
  jump(BPF_JMP | BPF_JEQ | BPF_K, SYS_tgkill, 0, 3);
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0]));
  jump(BPF_JMP | BPF_JEQ | BPF_K, self, 0, 1);
  ret(SECCOMP_RET_ALLOW);
  // (the accumulator may now hold args[0]; reload nr before the next test)
  stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr));
  for (uint32_t nr : {SYS_open, SYS_openat, SYS_openat2, SYS_creat, SYS_access, SYS_faccessat, SYS_faccessat2,
                      SYS_stat, SYS_lstat, SYS_readlink, SYS_readlinkat}) {
    fail(nr, EACCES);
  }
  ret(SECCOMP_RET_KILL_PROCESS);

  sock_fprog prog{static_cast<unsigned short>(f.size()), f.data()};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Errno("PR_SET_NO_NEW_PRIVS");
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) return Errno("seccomp");
  return Status::Ok();
#else
  return Status(StatusCode::kUnimplemented, "the parser sandbox's seccomp filter is written for x86-64 only");
#endif
}

}  // namespace mamori::scanner::internal

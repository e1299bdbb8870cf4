// What would it cost to parse archives in a seccomp-confined worker process?
// Scans the same in-memory zip corpus three ways and prints the time per
// archive (not a test; results in bench/results/hardening.md):
//   inprocess   Scanner::ScanBuffer in this process (today's path)
//   fork-each   fork per archive, seccomp filter in the child, scan, verdict
//               back over a pipe, waitpid
//   worker      one forked worker under the same filter, archives sent over a
//               pipe, verdicts back (a pre-forked pool, amortized)
// The filter allows memory, futex, signal handlers (YARA's SIGBUS guard),
// read/write on inherited descriptors and exit; open/openat fail with EACCES; anything else (socket, connect, execve,
// ptrace, ...) kills the worker.
//
//   mamori_parser_worker_bench [ARCHIVES [MEMBERS [SIGNATURE_DIR]]]
#include <archive.h>
#include <archive_entry.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mamori/scanner/scanner.h"
#include "mamori/scanner/signature_set.h"

namespace {

using mamori::scanner::Scanner;
using mamori::scanner::Verdict;

std::string Zip(const std::vector<std::string>& members) {
  std::vector<char> out(16u << 20);
  size_t used = 0;
  archive* a = archive_write_new();
  archive_write_set_format_zip(a);
  archive_write_open_memory(a, out.data(), out.size(), &used);
  for (size_t i = 0; i < members.size(); ++i) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, ("doc/part" + std::to_string(i) + ".txt").c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(members[i].size()));
    archive_write_header(a, e);
    archive_write_data(a, members[i].data(), members[i].size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return std::string(out.data(), used);
}

// Text-like member of 4-64 KiB from a fixed word list (deterministic).
std::string Member(uint64_t* seed) {
  static const char* kWords[] = {"invoice", "the", "payment", "of", "report", "quarterly", "and", "attached",
                                 "please", "find", "data", "42", "total", "EUR", "customer", "order"};
  auto next = [seed] {
    *seed ^= *seed << 13, *seed ^= *seed >> 7, *seed ^= *seed << 17;
    return *seed;
  };
  const size_t size = 4096 + next() % (60u << 10);
  std::string s;
  while (s.size() < size) (s += kWords[next() % 16]) += (next() % 12 == 0 ? '\n' : ' ');
  return s;
}

void InstallFilter() {
#define ALLOW(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define DENY(nr, err) \
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err))
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      ALLOW(SYS_read), ALLOW(SYS_write), ALLOW(SYS_readv), ALLOW(SYS_writev), ALLOW(SYS_close),
      ALLOW(SYS_fstat), ALLOW(SYS_newfstatat), ALLOW(SYS_lseek), ALLOW(SYS_pread64), ALLOW(SYS_mmap),
      ALLOW(SYS_munmap), ALLOW(SYS_mprotect), ALLOW(SYS_brk), ALLOW(SYS_mremap), ALLOW(SYS_madvise),
      ALLOW(SYS_futex), ALLOW(SYS_rt_sigreturn), ALLOW(SYS_rt_sigprocmask), ALLOW(SYS_rt_sigaction), ALLOW(SYS_exit),
      ALLOW(SYS_exit_group), ALLOW(SYS_sigaltstack),
      ALLOW(SYS_clock_gettime), ALLOW(SYS_getpid), ALLOW(SYS_gettid), ALLOW(SYS_getrandom), ALLOW(SYS_sched_yield),
      ALLOW(SYS_recvmsg),
      DENY(SYS_open, EACCES), DENY(SYS_openat, EACCES),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
  };
#undef ALLOW
#undef DENY
  sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    ::_exit(90);
  }
}

bool ReadAll(int fd, void* p, size_t n) {
  auto* c = static_cast<char*>(p);
  while (n > 0) {
    ssize_t r = ::read(fd, c, n);
    if (r <= 0) return false;
    c += r, n -= static_cast<size_t>(r);
  }
  return true;
}

bool WriteAll(int fd, const void* p, size_t n) {
  const auto* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t r = ::write(fd, c, n);
    if (r <= 0) return false;
    c += r, n -= static_cast<size_t>(r);
  }
  return true;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int archives = argc > 1 ? std::atoi(argv[1]) : 300;
  const int members = argc > 2 ? std::atoi(argv[2]) : 8;
  const std::string sig_dir = argc > 3 ? argv[3] : MAMORI_SOURCE_DIR "/signatures/default";
  auto sigs = mamori::scanner::LoadSignatureDir(sig_dir);
  if (!sigs.ok()) {
    std::fprintf(stderr, "%s: %s\n", sig_dir.c_str(), sigs.status().message().c_str());
    return 2;
  }
  auto scanner = Scanner::Create(*sigs);
  if (!scanner.ok()) return 2;
  uint64_t seed = 0x9E3779B97F4A7C15ull;
  std::vector<std::string> corpus;
  size_t bytes = 0;
  for (int i = 0; i < archives; ++i) {
    std::vector<std::string> m;
    for (int j = 0; j < members; ++j) m.push_back(Member(&seed));
    corpus.push_back(Zip(m));
    bytes += corpus.back().size();
  }
  std::printf("corpus: %d zips, %d members each, %.1f KiB per zip on average; %zu hashes, YARA from %s\n", archives,
              members, static_cast<double>(bytes) / archives / 1024, (*sigs)->hashes.size(), sig_dir.c_str());

  for (int i = 0; i < 3; ++i) (*scanner)->ScanBuffer(corpus[0], "warm-up.zip");  // YARA and libarchive warm
  std::vector<int> expected;
  auto t = std::chrono::steady_clock::now();
  for (const auto& z : corpus) expected.push_back(static_cast<int>((*scanner)->ScanBuffer(z, "a.zip").verdict));
  const double inprocess = Seconds(t);

  int mismatches = 0, failures = 0;
  t = std::chrono::steady_clock::now();
  for (size_t i = 0; i < corpus.size(); ++i) {
    int p[2];
    if (::pipe(p) != 0) return 2;
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(p[0]);
      InstallFilter();
      const char v = static_cast<char>((*scanner)->ScanBuffer(corpus[i], "a.zip").verdict);
      ::_exit(WriteAll(p[1], &v, 1) ? 0 : 91);
    }
    ::close(p[1]);
    char v = -1;
    if (!ReadAll(p[0], &v, 1)) ++failures;
    ::close(p[0]);
    int st = 0;
    ::waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) ++failures;
    mismatches += v != expected[i];
  }
  const double fork_each = Seconds(t);

  int to_worker[2], from_worker[2];
  if (::pipe(to_worker) != 0 || ::pipe(from_worker) != 0) return 2;
  t = std::chrono::steady_clock::now();
  pid_t worker = ::fork();
  if (worker == 0) {
    ::close(to_worker[1]), ::close(from_worker[0]);
    InstallFilter();
    std::string buf;
    uint64_t n = 0;
    while (ReadAll(to_worker[0], &n, sizeof n)) {
      buf.resize(n);
      if (!ReadAll(to_worker[0], buf.data(), n)) break;
      const char v = static_cast<char>((*scanner)->ScanBuffer(buf, "a.zip").verdict);
      if (!WriteAll(from_worker[1], &v, 1)) break;
    }
    ::_exit(0);
  }
  ::close(to_worker[0]), ::close(from_worker[1]);
  for (size_t i = 0; i < corpus.size(); ++i) {
    const uint64_t n = corpus[i].size();
    char v = -1;
    if (!WriteAll(to_worker[1], &n, sizeof n) || !WriteAll(to_worker[1], corpus[i].data(), n) ||
        !ReadAll(from_worker[0], &v, 1)) {
      ++failures;
      break;
    }
    mismatches += v != expected[i];
  }
  ::close(to_worker[1]);
  int st = 0;
  ::waitpid(worker, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) ++failures;
  const double pooled = Seconds(t);

  auto per = [&](double s) { return s / archives * 1e6; };
  std::printf("inprocess  %8.1f us/archive\n", per(inprocess));
  std::printf("fork-each  %8.1f us/archive  (+%.1f us, %.2fx)\n", per(fork_each), per(fork_each) - per(inprocess),
              fork_each / inprocess);
  std::printf("worker     %8.1f us/archive  (+%.1f us, %.2fx)\n", per(pooled), per(pooled) - per(inprocess),
              pooled / inprocess);
  std::printf("verdict mismatches %d, worker failures %d\n", mismatches, failures);
  return mismatches == 0 && failures == 0 ? 0 : 1;
}

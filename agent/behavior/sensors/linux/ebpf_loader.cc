// Loading the BPF object. The syscall numbers of the dispatch tables come
// from <sys/syscall.h> of the build architecture, so they live in one place.
#include "ebpf_loader.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <deque>
#include <mutex>

#include "ebpf/abi/mamori_bpf_abi.h"
#include "mamori/common/log.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverlength-strings"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "mamori_bpf.skel.h"
#pragma GCC diagnostic pop

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452  // x86_64, Linux 6.6; older <asm/unistd_64.h> lack it
#endif

namespace mamori::behavior::linux_sensors {

struct BpfLoader::Skeleton {
  mamori_bpf* skel = nullptr;
};

namespace {

// libbpf's messages: debug lines go to our debug log; warnings are also kept
// (the last few) so a load failure can say what the kernel said.
std::mutex g_libbpf_mu;
std::deque<std::string> g_libbpf_tail;  // guarded by g_libbpf_mu

int LibbpfPrint(enum libbpf_print_level level, const char* format, va_list args) {
  char buf[1024];
  int n = vsnprintf(buf, sizeof buf, format, args);
  if (n <= 0) return n;
  std::string line(buf, std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1));
  while (!line.empty() && line.back() == '\n') line.pop_back();
  if (level == LIBBPF_DEBUG) {
    MAMORI_LOG(kDebug, "libbpf: " << line);
    return n;
  }
  MAMORI_LOG(kDebug, "libbpf: " << line);
  std::lock_guard<std::mutex> lock(g_libbpf_mu);
  g_libbpf_tail.push_back(std::move(line));
  while (g_libbpf_tail.size() > 6) g_libbpf_tail.pop_front();
  return n;
}

std::string LibbpfTail() {
  std::lock_guard<std::mutex> lock(g_libbpf_mu);
  std::string out;
  for (const std::string& l : g_libbpf_tail) {
    if (!out.empty()) out += " | ";
    out += l;
  }
  return out;
}

void ClearLibbpfTail() {
  std::lock_guard<std::mutex> lock(g_libbpf_mu);
  g_libbpf_tail.clear();
}

// One syscall hooked through the dispatch table (all at syscall exit).
struct SyscallHook {
  long nr;
  const char* name;     // for ProbeStatus
  const char* program;  // handler in mamori.bpf.c
  uint32_t group;
};

constexpr SyscallHook kSyscallHooks[] = {
    {SYS_open, "open", "exit_open", kGroupFile},
    {SYS_creat, "creat", "exit_open", kGroupFile},
    {SYS_openat, "openat", "exit_open", kGroupFile},
    {SYS_openat2, "openat2", "exit_open", kGroupFile},
    {SYS_open_by_handle_at, "open_by_handle_at", "exit_open", kGroupFile},
    {SYS_unlink, "unlink", "exit_unlink", kGroupFile},
    {SYS_unlinkat, "unlinkat", "exit_unlinkat", kGroupFile},
    {SYS_rename, "rename", "exit_rename", kGroupFile},
    {SYS_renameat, "renameat", "exit_renameat", kGroupFile},
    {SYS_renameat2, "renameat2", "exit_renameat", kGroupFile},
    {SYS_chmod, "chmod", "exit_chmod", kGroupFile},
    {SYS_fchmod, "fchmod", "exit_fchmod", kGroupFile},
    {SYS_fchmodat, "fchmodat", "exit_fchmodat", kGroupFile},
    {SYS_fchmodat2, "fchmodat2", "exit_fchmodat", kGroupFile},
    {SYS_chown, "chown", "exit_chown", kGroupFile},
    {SYS_lchown, "lchown", "exit_chown", kGroupFile},
    {SYS_fchown, "fchown", "exit_fchown", kGroupFile},
    {SYS_fchownat, "fchownat", "exit_fchownat", kGroupFile},
    {SYS_connect, "connect", "exit_connect", kGroupNetwork},
    {SYS_accept, "accept", "exit_accept", kGroupNetwork},
    {SYS_accept4, "accept4", "exit_accept", kGroupNetwork},
    {SYS_bind, "bind", "exit_bind", kGroupNetwork},
    {SYS_setuid, "setuid", "exit_setuid", kGroupCredentials},
    {SYS_setreuid, "setreuid", "exit_setreuid", kGroupCredentials},
    {SYS_setresuid, "setresuid", "exit_setresuid", kGroupCredentials},
    {SYS_setgid, "setgid", "exit_setgid", kGroupCredentials},
    {SYS_setregid, "setregid", "exit_setregid", kGroupCredentials},
    {SYS_setresgid, "setresgid", "exit_setresgid", kGroupCredentials},
    {SYS_ptrace, "ptrace", "exit_ptrace", kGroupPtrace},
};

constexpr uint32_t kSyscallGroups = kGroupFile | kGroupNetwork | kGroupCredentials | kGroupPtrace;

// Tracepoint programs: which group, which BTF type proves the kernel has it.
struct TracepointProgram {
  const char* program;
  const char* probe;
  uint32_t group;
  const char* btf_type;  // typedef btf_trace_<tracepoint>
};

constexpr TracepointProgram kTracepoints[] = {
    {"on_exec", "exec", kGroupProcess, "btf_trace_sched_process_exec"},
    {"on_fork", "fork", kGroupProcess, "btf_trace_sched_process_fork"},
    {"on_exit", "exit", kGroupProcess, "btf_trace_sched_process_exit"},
    {"on_module_load", "module_load", kGroupModule, "btf_trace_module_load"},
    {"sys_exit", "sys_exit", kSyscallGroups, "btf_trace_sys_exit"},
};

Status Unavailable(const std::string& what, int err) {
  std::string msg = what + ": " + std::strerror(err);
  std::string tail = LibbpfTail();
  if (!tail.empty()) msg += " (libbpf: " + tail + ")";
  return UnavailableError(std::move(msg));
}

}  // namespace

Result<std::unique_ptr<BpfLoader>> BpfLoader::Load(const BpfConfig& config) {
  static std::once_flag print_once;
  std::call_once(print_once, [] { libbpf_set_print(LibbpfPrint); });
  ClearLibbpfTail();

  btf* vmlinux = btf__load_vmlinux_btf();
  if (vmlinux == nullptr) {
    return UnavailableError("the kernel has no BTF (/sys/kernel/btf/vmlinux): " + std::string(std::strerror(errno)));
  }
  auto has_type = [&](const char* name) { return btf__find_by_name_kind(vmlinux, name, BTF_KIND_TYPEDEF) > 0; };

  std::unique_ptr<BpfLoader> loader(new BpfLoader());
  loader->skel_ = new Skeleton();
  mamori_bpf* skel = mamori_bpf__open();
  if (skel == nullptr) {
    int err = errno;
    btf__free(vmlinux);
    return Unavailable("opening the BPF object", err);
  }
  loader->skel_->skel = skel;

  mamori_bpf_config& cfg = skel->rodata->cfg;
  if (cfg.abi_version != MAMORI_BPF_API_VERSION_CODE) {
    btf__free(vmlinux);
    return InternalError("the BPF object was built for ABI " + std::to_string(cfg.abi_version) + ", user space for " +
                         std::to_string(MAMORI_BPF_API_VERSION_CODE) + ": stale skeleton");
  }
  cfg.ignore_tgid = config.ignore_tgid;
  cfg.max_argv_bytes = std::min<uint32_t>(config.max_argv_bytes, MAMORI_BPF_ARGV_MAX);
  cfg.setid_chmod_anywhere = config.setid_chmod_anywhere ? 1 : 0;
  cfg.wakeup_bytes = config.wakeup_bytes;
  cfg.prefix_count = static_cast<uint32_t>(config.prefixes.size());
  for (size_t i = 0; i < config.prefixes.size() && i < MAMORI_BPF_MAX_PREFIXES; ++i) {
    const std::string& p = config.prefixes[i];
    cfg.prefixes[i].length = static_cast<uint32_t>(std::min<size_t>(p.size(), MAMORI_BPF_PREFIX_CHARS));
    std::memcpy(cfg.prefixes[i].path, p.data(), cfg.prefixes[i].length);
  }
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) {
    btf__free(vmlinux);
    return Unavailable("counting possible CPUs", -cpus);
  }
  bpf_map__set_max_entries(skel->maps.scratch, static_cast<uint32_t>(cpus));
  bpf_map__set_max_entries(skel->maps.events, static_cast<uint32_t>(config.ring_buffer_bytes));

  // Which programs load: tracepoints by group and kernel support; syscall
  // handlers when some hook of an enabled group uses them.
  bpf_object* obj = skel->obj;
  bpf_program* prog;
  bpf_object__for_each_program(prog, obj) bpf_program__set_autoload(prog, false);
  for (const TracepointProgram& tp : kTracepoints) {
    ProbeStatus st{tp.probe, false, ""};
    if ((config.groups & tp.group) == 0) {
      st.reason = "event group disabled";
    } else if (!has_type(tp.btf_type)) {
      st.reason = std::string("the kernel has no ") + (tp.btf_type + std::strlen("btf_trace_")) + " tracepoint" +
                  (std::strcmp(tp.program, "on_module_load") == 0 ? " (built without module support)" : "");
    } else {
      bpf_program__set_autoload(bpf_object__find_program_by_name(obj, tp.program), true);
      st.attached = true;  // until attach says otherwise
    }
    loader->probes_.push_back(std::move(st));
  }
  const bool dispatch = loader->probes_.back().attached;  // sys_exit, last of kTracepoints
  for (const SyscallHook& h : kSyscallHooks) {
    bpf_program* handler = bpf_object__find_program_by_name(obj, h.program);
    bpf_program__set_autoattach(handler, false);  // reached through the dispatch tables only
    if ((config.groups & h.group) != 0 && dispatch) bpf_program__set_autoload(handler, true);
  }
  btf__free(vmlinux);

  int err = mamori_bpf__load(skel);
  if (err != 0) {
    const char* why = err == -EPERM    ? "the kernel refused them: lockdown, LSM policy or a disabled program type"
                      : err == -EACCES ? "the verifier rejected them"
                                       : "kernel support missing";
    return Unavailable(std::string("loading the BPF programs (") + why + ")", -err);
  }

  // Dispatch table: syscall number -> handler.
  for (const SyscallHook& h : kSyscallHooks) {
    if (!dispatch || (config.groups & h.group) == 0) continue;
    bpf_program* handler = bpf_object__find_program_by_name(obj, h.program);
    int prog_fd = bpf_program__fd(handler);
    uint32_t key = static_cast<uint32_t>(h.nr);
    if (bpf_map_update_elem(bpf_map__fd(skel->maps.sys_exit_progs), &key, &prog_fd, BPF_ANY) != 0) {
      return Unavailable(std::string("installing the ") + h.name + " handler", errno);
    }
  }
  for (const SyscallHook& h : kSyscallHooks) {
    ProbeStatus st{std::string("syscall:") + h.name, false, ""};
    if ((config.groups & h.group) == 0) {
      st.reason = "event group disabled";
    } else if (!dispatch) {
      st.reason = "the kernel has no sys_exit tracepoint";
    } else {
      st.attached = true;
    }
    loader->probes_.push_back(std::move(st));
  }

  err = mamori_bpf__attach(skel);
  if (err != 0) return Unavailable("attaching the BPF programs", -err);
  return loader;
}

BpfLoader::~BpfLoader() {
  if (skel_ != nullptr) {
    mamori_bpf__destroy(skel_->skel);
    delete skel_;
  }
}

int BpfLoader::ring_buffer_fd() const { return bpf_map__fd(skel_->skel->maps.events); }

Result<uint64_t> BpfLoader::ReadDrops() const {
  static_assert(MAMORI_BPF_DROP_SLOTS == 1);
  int cpus = libbpf_num_possible_cpus();
  std::vector<uint64_t> per_cpu(static_cast<size_t>(std::max(cpus, 1)));
  uint64_t total = 0;
  uint32_t slot = MAMORI_BPF_DROP_RINGBUF;
  if (bpf_map_lookup_elem(bpf_map__fd(skel_->skel->maps.drops), &slot, per_cpu.data()) != 0) {
    return ErrnoError(errno, "reading the drop counters");
  }
  for (uint64_t n : per_cpu) total += n;
  return total;
}

}  // namespace mamori::behavior::linux_sensors

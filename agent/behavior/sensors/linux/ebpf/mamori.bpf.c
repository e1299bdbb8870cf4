// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Mamori behavior sensor: the BPF side. One object, one skeleton; user space
 * (ebpf_loader.cc) decides which programs load and fills the syscall
 * dispatch table.
 *
 * Attach points use only what every BTF kernel offers to BPF: BTF-typed
 * tracepoints (tp_btf), the raw syscall-exit tracepoint among them. Not
 * kprobes (CONFIG_KPROBES may be off), not fentry/fexit or BPF-LSM (refused
 * with EPERM on some kernels, including the 6.18 build we test on), not
 * tracefs-based per-syscall tracepoints (tracefs is often not mounted).
 *   process  tp_btf/sched_process_exec, _fork, _exit
 *   module   tp_btf/module_load (present only if the kernel has modules)
 *   syscalls tp_btf/sys_exit tail-calls, by syscall number, into the
 *            handlers below (the table is filled by user space, so syscall
 *            numbers live in one place: <sys/syscall.h>). An unhandled
 *            syscall costs one program run and a missed tail call.
 * See docs/behavior-sensors.md.
 */
#include "helpers.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SYSCALL_SLOTS 512

struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(max_entries, SYSCALL_SLOTS);
  __type(key, u32);
  __type(value, u32);
} sys_exit_progs SEC(".maps");

static __always_inline u32 current_tgid(void) { return (u32)(bpf_get_current_pid_tgid() >> 32); }
/* Trusted by the verifier: fields may be read directly (see fill_task). */
static __always_inline struct task_struct* current_task(void) { return bpf_get_current_task_btf(); }

/* ---- process ---------------------------------------------------------- */

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct* task, pid_t old_pid, struct linux_binprm* bprm) {
  if (ignored_tgid(BPF_CORE_READ(task, tgid))) return 0;
  struct scratch* s = get_scratch();
  if (!s) return 0;
  struct mamori_bpf_record* r = begin_record(s, MAMORI_BPF_EXEC, task);
  u32 off = 0;
  u16 flags = 0;
  bool truncated;

  struct file* file = BPF_CORE_READ(bprm, file);
  u32 pos = walk_path(s, BPF_CORE_READ(file, f_path.dentry), BPF_CORE_READ(file, f_path.mnt), &truncated);
  if (truncated) flags |= MAMORI_BPF_F_IMAGE_TRUNCATED;
  put_path(s, &r->body.exec.image, &off, pos, PATH_END - pos);

  struct fs_struct* fs = BPF_CORE_READ(task, fs);
  if (fs) {
    pos = walk_path(s, BPF_CORE_READ(fs, pwd.dentry), BPF_CORE_READ(fs, pwd.mnt), &truncated);
    if (truncated) flags |= MAMORI_BPF_F_CWD_TRUNCATED;
    put_path(s, &r->body.exec.cwd, &off, pos, PATH_END - pos);
  }

  struct tty_struct* tty = BPF_CORE_READ(task, signal, tty);
  if (tty) put_kernel_str(s, &r->body.exec.tty, &off, tty->name, MAMORI_BPF_TTY_MAX);

  u64 cgroup_id = 0;
  pos = walk_cgroup(s, task, &cgroup_id, &truncated);
  u32 len = PATH_END - pos;
  if (len > MAMORI_BPF_CGROUP_MAX) {
    len = MAMORI_BPF_CGROUP_MAX;
    truncated = true;
  }
  if (truncated) flags |= MAMORI_BPF_F_CGROUP_TRUNCATED;
  put_path(s, &r->body.exec.cgroup, &off, pos, len);
  r->body.exec.cgroup_id = cgroup_id;

  /* argv: the new image's argument block, as the kernel just copied it. */
  struct mm_struct* mm = BPF_CORE_READ(task, mm);
  unsigned long arg_start = BPF_CORE_READ(mm, arg_start);
  unsigned long arg_end = BPF_CORE_READ(mm, arg_end);
  u64 total = arg_end > arg_start ? arg_end - arg_start : 0;
  u32 cap = cfg.max_argv_bytes;
  if (cap > MAMORI_BPF_ARGV_MAX) cap = MAMORI_BPF_ARGV_MAX;
  u32 argv_len = total > cap ? cap : (u32)total;
  if (total > cap) flags |= MAMORI_BPF_F_ARGV_TRUNCATED;
  u32 o = off;
  opaque(o);
  o &= DATA_MASK;
  if (argv_len > MAMORI_BPF_ARGV_MAX) argv_len = MAMORI_BPF_ARGV_MAX;
  if (argv_len > 0 && bpf_probe_read_user(&s->rec[REC_FIXED + o], argv_len, (const void*)arg_start) != 0) {
    flags |= MAMORI_BPF_F_ARGV_UNREADABLE;
    argv_len = 0;
  }
  r->body.exec.argv.offset = (u16)o;
  r->body.exec.argv.length = (u16)argv_len;
  off = o + argv_len;
  r->body.exec.argv_total_bytes = total > 0xffffffffull ? 0xffffffffu : (u32)total;
  r->body.exec.argc = BPF_CORE_READ(bprm, argc);
  r->header.flags = flags;
  emit(s, off);
  return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct* parent, struct task_struct* child) {
  if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid)) return 0; /* a new thread, not a process */
  if (ignored_tgid(BPF_CORE_READ(parent, tgid))) return 0;
  struct scratch* s = get_scratch();
  if (!s) return 0;
  begin_record(s, MAMORI_BPF_FORK, child);
  emit(s, 0);
  return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct* task) {
  /* signal->live reaches 0 when the last thread of the group exits, before
   * this tracepoint on every kernel version. */
  if (BPF_CORE_READ(task, signal, live.counter) != 0) return 0;
  if (ignored_tgid(BPF_CORE_READ(task, tgid))) return 0;
  struct scratch* s = get_scratch();
  if (!s) return 0;
  struct mamori_bpf_record* r = begin_record(s, MAMORI_BPF_EXIT, task);
  r->body.exit.exit_code = BPF_CORE_READ(task, exit_code);
  emit(s, 0);
  return 0;
}

SEC("tp_btf/module_load")
int BPF_PROG(on_module_load, struct module* mod) {
  if (ignored_tgid(current_tgid())) return 0;
  struct scratch* s = get_scratch();
  if (!s) return 0;
  struct mamori_bpf_record* r = begin_record(s, MAMORI_BPF_MODULE_LOAD, current_task());
  u32 off = 0;
  put_kernel_str(s, &r->body.module.name, &off, mod->name, MAMORI_BPF_MODULE_NAME_MAX);
  emit(s, off);
  return 0;
}

/* ---- syscall dispatch --------------------------------------------------- */

/* Every syscall handler runs at syscall exit, when the result is known and
 * the arguments are still in the saved registers: one probe per syscall
 * instead of two. Handlers are tp_btf programs of the dispatcher's own
 * tracepoint (the kernel allows tail calls only between programs of one
 * hook), loaded but not attached. Their arguments: the syscall's saved
 * registers (trusted: read directly) and its return value. */
#define EXIT_HANDLER(name) SEC("tp_btf/sys_exit") int BPF_PROG(name, struct pt_regs* regs, long ret)

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs* regs, long ret) {
  u64 id = regs->orig_ax;
  if (id < SYSCALL_SLOTS) bpf_tail_call(ctx, &sys_exit_progs, (u32)id);
  return 0;
}

/* Handlers run for the calling task. A 32-bit task's syscall numbers are
 * another table: skip them (documented gap). */
static __always_inline bool skip_task(struct task_struct* task) {
  if (ignored_tgid(current_tgid())) return true;
  if (bpf_core_field_exists(struct thread_info, status)) {
    if (BPF_CORE_READ(task, thread_info.status) & TS_COMPAT) return true;
  }
  return false;
}

#define ARG1(regs) PT_REGS_PARM1_SYSCALL(regs)
#define ARG2(regs) PT_REGS_PARM2_SYSCALL(regs)
#define ARG3(regs) PT_REGS_PARM3_SYSCALL(regs)
#define ARG4(regs) PT_REGS_PARM4_SYSCALL(regs)

/* REQUIRES: `task` trusted (current_task()). */
static __always_inline struct file* file_of_fd(struct task_struct* task, int fd) {
  if (fd < 0) return 0;
  struct files_struct* files = task->files;
  if (!files) return 0;
  struct fdtable* fdt = files->fdt;
  if (!fdt || (unsigned int)fd >= fdt->max_fds) return 0;
  struct file** fds = fdt->fd;
  struct file* f = 0;
  bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
  return f;
}

/* ---- file: open for write, create (at exit, from the new descriptor) ---- */

EXIT_HANDLER(exit_open) {
  long fd = ret;
  if (fd < 0) return 0;
  struct task_struct* task = current_task();
  struct file* file = file_of_fd(task, (int)fd);
  if (!file) return 0;
  fmode_t fmode = BPF_CORE_READ(file, f_mode);
  if (!(fmode & (FMODE_WRITE | FMODE_CREATED))) return 0; /* the common case: a read-only open */
  struct file_fields ff;
  read_file(file, &ff);
  struct inode* inode = ff.inode; /* a plain local: CO-RE relocates from here */
  umode_t imode = BPF_CORE_READ(inode, i_mode);
  if ((imode & S_IFMT) != S_IFREG) return 0; /* regular files only (not /dev/null, pipes...) */
  if (skip_task(task)) return 0;
  struct scratch* s = get_scratch();
  if (!s) return 0;
  bool truncated;
  u32 pos = walk_path(s, ff.dentry, ff.mnt, &truncated);
  if (!under_watched_prefix(s, PATH_AT(pos), PATH_END - pos)) return 0;
  struct mamori_bpf_record* r =
      begin_record(s, (fmode & FMODE_CREATED) ? MAMORI_BPF_FILE_CREATE : MAMORI_BPF_FILE_OPEN_WRITE, task);
  u32 off = 0;
  put_path(s, &r->body.file.target, &off, pos, PATH_END - pos);
  if (truncated) r->header.flags |= MAMORI_BPF_F_PATH_TRUNCATED;
  r->body.file.mode = imode & S_IALLUGO;
  emit(s, off);
  return 0;
}

/* ---- file: unlink, rename, chmod, chown (at exit, when they succeeded) -- */

struct scan_ctx {
  struct scratch* s;
  u32 start;
  u32 len;
  bool odd;
};

static long scan_step(u32 i, struct scan_ctx* c) {
  if (i >= c->len) return 1;
  char ch = c->s->rec[REC_FIXED + ((c->start + i) & DATA_MASK)];
  char prev = i == 0 ? '/' : c->s->rec[REC_FIXED + ((c->start + i - 1) & DATA_MASK)];
  if (prev == '/' && (ch == '.' || ch == '/')) {
    c->odd = true;
    return 1;
  }
  return 0;
}

/* Does data[start .. start+len) have "." or ".." components or "//"?
 * Such a name only user space can normalise before matching prefixes. */
static __always_inline bool odd_name(struct scratch* s, u32 start, u32 len) {
  if (len == 0) return false;
  struct scan_ctx c = {.s = s, .start = start, .len = len, .odd = false};
  bpf_loop(MAMORI_BPF_PATH_MAX, scan_step, &c, 0);
  return c.odd;
}

/* A path as a syscall named it, written to the data area. */
struct syscall_path {
  struct mamori_bpf_str str; /* the whole absolute form */
  u32 user_start;            /* the caller's part: data offset and length */
  u32 user_len;
  bool truncated;
};

/* Writes the absolute form of the path a syscall named -- `upath` relative
 * to `dfd` (or the cwd), or the file open on `dfd` when upath is NULL or
 * empty -- into the data area at *off. Not resolved: symlinks and "."/".."
 * stay as given. Returns false for a bad descriptor (the syscall fails too). */
static __always_inline bool put_syscall_path(struct scratch* s, struct task_struct* task, struct syscall_path* out,
                                             u32* off, int dfd, const char* upath) {
  u32 o = *off;
  opaque(o);
  o &= DATA_MASK;
  out->truncated = false;
  out->user_start = 0;
  out->user_len = 0;
  /* The caller's name first, straight into place: absolute names (the
   * common case) need nothing else. */
  long n = upath ? bpf_probe_read_user_str(&s->rec[REC_FIXED + o], MAMORI_BPF_PATH_MAX, upath) : 0;
  u32 ulen = n > 1 ? (u32)(n - 1) : 0;
  ulen &= MAMORI_BPF_PATH_MAX - 1;
  u32 len = ulen;
  if (ulen > 0 && s->rec[REC_FIXED + o] == '/') {
    out->user_start = o;
    out->user_len = ulen;
  } else {
    /* Relative (or empty: the descriptor's own file). Park the name past
     * the walk's end of the path scratch, put the base, then the name. */
    if (ulen > 0) bpf_probe_read_kernel(&s->path[PATH_END], ulen, &s->rec[REC_FIXED + o]);
    struct dentry* dentry;
    struct vfsmount* mnt;
    if (dfd == AT_FDCWD) {
      /* Probe reads, not direct loads: walk_path takes plain numbers. */
      dentry = BPF_CORE_READ(task, fs, pwd.dentry);
      mnt = BPF_CORE_READ(task, fs, pwd.mnt);
    } else {
      struct file* f = file_of_fd(task, dfd);
      if (!f) return false;
      struct file_fields ff;
      read_file(f, &ff);
      dentry = ff.dentry;
      mnt = ff.mnt;
    }
    u32 pos = walk_path(s, dentry, mnt, &out->truncated);
    len = PATH_END - pos;
    if (len > MAMORI_BPF_PATH_MAX) len = MAMORI_BPF_PATH_MAX;
    bpf_probe_read_kernel(&s->rec[REC_FIXED + o], len, &s->path[pos & (PATH_END - 1)]);
    if (ulen > 0) {
      if (len > 1) { /* "/base" + "/" + "rel"; the root is just "/" */
        s->rec[REC_FIXED + ((o + len) & DATA_MASK)] = '/';
        len++;
      }
      u32 uo = (o + len) & DATA_MASK;
      bpf_probe_read_kernel(&s->rec[REC_FIXED + uo], ulen, &s->path[PATH_END]);
      out->user_start = uo;
      out->user_len = ulen;
      len += ulen;
    }
  }
  if (len > MAMORI_BPF_PATH_MAX) {
    len = MAMORI_BPF_PATH_MAX;
    out->truncated = true;
  }
  out->str.offset = (u16)o;
  out->str.length = (u16)len;
  *off = o + len;
  return true;
}

/* A file syscall that succeeded: report it if it concerns a watched path.
 * The names are read from the caller's memory at exit (they are still
 * there; reading them at entry would be no safer against a caller that
 * rewrites them concurrently, and would cost a probe on every syscall). */
static __always_inline void report_file_op(u16 type, int dfd, const char* upath, int src_dfd, const char* src_upath,
                                           bool has_source, u32 mode, u32 owner_uid, u32 owner_gid) {
  struct task_struct* task = current_task();
  if (skip_task(task)) return;
  struct scratch* s = get_scratch();
  if (!s) return;
  struct syscall_path target = {}, source = {};
  u32 off = 0;
  if (!put_syscall_path(s, task, &target, &off, dfd, upath)) return;
  bool watched = under_watched_prefix(s, DATA_AT(target.str.offset), target.str.length);
  if (has_source) {
    if (!put_syscall_path(s, task, &source, &off, src_dfd, src_upath)) return;
    watched = watched || under_watched_prefix(s, DATA_AT(source.str.offset), source.str.length);
  }
  if (type == MAMORI_BPF_FILE_CHMOD && cfg.setid_chmod_anywhere && (mode & (S_ISUID | S_ISGID))) watched = true;
  if (!watched) {
    watched = odd_name(s, target.user_start, target.user_len) ||
              (has_source && odd_name(s, source.user_start, source.user_len));
    if (!watched) return;
  }
  struct mamori_bpf_record* r = begin_record(s, type, task);
  if (target.truncated || source.truncated) r->header.flags |= MAMORI_BPF_F_PATH_TRUNCATED;
  r->body.file.target = target.str;
  r->body.file.source = source.str;
  r->body.file.mode = mode;
  r->body.file.owner_uid = owner_uid;
  r->body.file.owner_gid = owner_gid;
  emit(s, off);
}

EXIT_HANDLER(exit_unlink) {
  if (ret == 0) report_file_op(MAMORI_BPF_FILE_UNLINK, AT_FDCWD, (const char*)ARG1(regs), 0, 0, false, 0, 0, 0);
  return 0;
}

EXIT_HANDLER(exit_unlinkat) {
  if (ret != 0 || ((int)ARG3(regs) & AT_REMOVEDIR)) return 0; /* failed, or rmdir */
  report_file_op(MAMORI_BPF_FILE_UNLINK, (int)ARG1(regs), (const char*)ARG2(regs), 0, 0, false, 0, 0, 0);
  return 0;
}

EXIT_HANDLER(exit_rename) {
  if (ret == 0) {
    report_file_op(MAMORI_BPF_FILE_RENAME, AT_FDCWD, (const char*)ARG2(regs), AT_FDCWD, (const char*)ARG1(regs), true,
                   0, 0, 0);
  }
  return 0;
}

/* renameat and renameat2 */
EXIT_HANDLER(exit_renameat) {
  if (ret == 0) {
    report_file_op(MAMORI_BPF_FILE_RENAME, (int)ARG3(regs), (const char*)ARG4(regs), (int)ARG1(regs),
                   (const char*)ARG2(regs), true, 0, 0, 0);
  }
  return 0;
}

EXIT_HANDLER(exit_chmod) {
  if (ret == 0) {
    report_file_op(MAMORI_BPF_FILE_CHMOD, AT_FDCWD, (const char*)ARG1(regs), 0, 0, false, (u32)ARG2(regs) & S_IALLUGO,
                   0, 0);
  }
  return 0;
}

EXIT_HANDLER(exit_fchmod) {
  if (ret == 0) {
    report_file_op(MAMORI_BPF_FILE_CHMOD, (int)ARG1(regs), 0, 0, 0, false, (u32)ARG2(regs) & S_IALLUGO, 0, 0);
  }
  return 0;
}

/* fchmodat and fchmodat2 */
EXIT_HANDLER(exit_fchmodat) {
  if (ret == 0) {
    report_file_op(MAMORI_BPF_FILE_CHMOD, (int)ARG1(regs), (const char*)ARG2(regs), 0, 0, false,
                   (u32)ARG3(regs) & S_IALLUGO, 0, 0);
  }
  return 0;
}

/* chown and lchown */
EXIT_HANDLER(exit_chown) {
  if (ret == 0) {
    report_file_op(MAMORI_BPF_FILE_CHOWN, AT_FDCWD, (const char*)ARG1(regs), 0, 0, false, 0, (u32)ARG2(regs),
                   (u32)ARG3(regs));
  }
  return 0;
}

EXIT_HANDLER(exit_fchown) {
  if (ret == 0) {
    report_file_op(MAMORI_BPF_FILE_CHOWN, (int)ARG1(regs), 0, 0, 0, false, 0, (u32)ARG2(regs), (u32)ARG3(regs));
  }
  return 0;
}

EXIT_HANDLER(exit_fchownat) {
  if (ret == 0) {
    report_file_op(MAMORI_BPF_FILE_CHOWN, (int)ARG1(regs), (const char*)ARG2(regs), 0, 0, false, 0, (u32)ARG3(regs),
                   (u32)ARG4(regs));
  }
  return 0;
}

/* ---- network (at exit, from the socket the call worked on) -------------- */

static __always_inline struct sock* sock_of_fd(struct task_struct* task, int fd) {
  struct file* f = file_of_fd(task, fd);
  if (!f) return 0;
  struct file_fields ff;
  read_file(f, &ff);
  struct inode* inode = ff.inode;
  if ((BPF_CORE_READ(inode, i_mode) & S_IFMT) != S_IFSOCK) return 0;
  struct socket* sock = ff.private_data;
  return BPF_CORE_READ(sock, sk);
}

/* Local end as source, remote end as destination, for every kind. */
static __always_inline void emit_socket(u16 type, struct task_struct* task, struct sock* sk, bool any_protocol) {
  u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
  if (family != AF_INET && family != AF_INET6) return;
  u16 protocol = BPF_CORE_READ(sk, sk_protocol);
  if (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP) return;
  struct scratch* s = get_scratch();
  if (!s) return;
  struct mamori_bpf_record* r = begin_record(s, type, task);
  struct mamori_bpf_net_body* n = &r->body.net;
  n->family = family;
  n->protocol = (u8)protocol;
  n->source_port = BPF_CORE_READ(sk, __sk_common.skc_num);
  n->destination_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
  if (family == AF_INET) {
    bpf_core_read(n->source_addr, 4, &sk->__sk_common.skc_rcv_saddr);
    bpf_core_read(n->destination_addr, 4, &sk->__sk_common.skc_daddr);
  } else {
    bpf_core_read(n->source_addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
    bpf_core_read(n->destination_addr, 16, &sk->__sk_common.skc_v6_daddr);
  }
  emit(s, 0);
}

/* connect(): done (0) or under way (-EINPROGRESS): the socket then holds
 * both ends. Failed attempts are not reported. */
EXIT_HANDLER(exit_connect) {
  if (ret != 0 && ret != -EINPROGRESS) return 0;
  struct task_struct* task = current_task();
  if (skip_task(task)) return 0;
  struct sock* sk = sock_of_fd(task, (int)ARG1(regs));
  if (!sk || BPF_CORE_READ(sk, __sk_common.skc_dport) == 0) return 0; /* AF_UNSPEC: a disconnect */
  emit_socket(MAMORI_BPF_NET_CONNECT, task, sk, false);
  return 0;
}

/* accept() and accept4(): the new descriptor's socket. */
EXIT_HANDLER(exit_accept) {
  long fd = ret;
  if (fd < 0) return 0;
  struct task_struct* task = current_task();
  if (skip_task(task)) return 0;
  struct sock* sk = sock_of_fd(task, (int)fd);
  if (sk) emit_socket(MAMORI_BPF_NET_ACCEPT, task, sk, false);
  return 0;
}

EXIT_HANDLER(exit_bind) {
  if (ret != 0) return 0;
  struct task_struct* task = current_task();
  if (skip_task(task)) return 0;
  struct sock* sk = sock_of_fd(task, (int)ARG1(regs));
  if (sk) emit_socket(MAMORI_BPF_NET_BIND, task, sk, false);
  return 0;
}

/* ---- credentials (at exit, when the call succeeded) --------------------- */

static __always_inline void emit_cred(long ret, u16 type, u32 new_id, u32 kind) {
  if (ret != 0) return;
  struct task_struct* task = current_task();
  if (skip_task(task)) return;
  struct scratch* s = get_scratch();
  if (!s) return;
  /* The task's credentials are already the new ones. */
  struct mamori_bpf_record* r = begin_record(s, type, task);
  r->body.cred.new_id = new_id;
  r->body.cred.syscall = kind;
  emit(s, 0);
}

/* setre*id/setres*id: the effective id if given, else the real, else the saved. */
static __always_inline u32 pick_id(u32 real, u32 effective, u32 saved) {
  if (effective != (u32)-1) return effective;
  if (real != (u32)-1) return real;
  return saved;
}

EXIT_HANDLER(exit_setuid) {
  emit_cred(ret, MAMORI_BPF_SETUID, (u32)ARG1(regs), 1);
  return 0;
}

EXIT_HANDLER(exit_setreuid) {
  emit_cred(ret, MAMORI_BPF_SETUID, pick_id((u32)ARG1(regs), (u32)ARG2(regs), (u32)-1), 2);
  return 0;
}

EXIT_HANDLER(exit_setresuid) {
  emit_cred(ret, MAMORI_BPF_SETUID, pick_id((u32)ARG1(regs), (u32)ARG2(regs), (u32)ARG3(regs)), 3);
  return 0;
}

EXIT_HANDLER(exit_setgid) {
  emit_cred(ret, MAMORI_BPF_SETGID, (u32)ARG1(regs), 1);
  return 0;
}

EXIT_HANDLER(exit_setregid) {
  emit_cred(ret, MAMORI_BPF_SETGID, pick_id((u32)ARG1(regs), (u32)ARG2(regs), (u32)-1), 2);
  return 0;
}

EXIT_HANDLER(exit_setresgid) {
  emit_cred(ret, MAMORI_BPF_SETGID, pick_id((u32)ARG1(regs), (u32)ARG2(regs), (u32)ARG3(regs)), 3);
  return 0;
}

/* ---- ptrace (attempts, whatever the outcome) ---------------------------- */

/* Requests that take control of or write into another process; reads and
 * PTRACE_CONT-style stepping are not reported (a debugger issues thousands). */
EXIT_HANDLER(exit_ptrace) {
  long request = (long)ARG1(regs);
  switch (request) {
    case PTRACE_TRACEME:
    case PTRACE_POKETEXT:
    case PTRACE_POKEDATA:
    case PTRACE_POKEUSR:
    case PTRACE_SETREGS:
    case PTRACE_SETFPREGS:
    case PTRACE_ATTACH:
    case PTRACE_SETREGSET:
    case PTRACE_SEIZE:
      break;
    default:
      return 0;
  }
  struct task_struct* task = current_task();
  if (skip_task(task)) return 0;
  struct scratch* s = get_scratch();
  if (!s) return 0;
  struct mamori_bpf_record* r = begin_record(s, MAMORI_BPF_PTRACE, task);
  r->body.ptrace.request = request;
  r->body.ptrace.target_pid = (s32)ARG2(regs);
  emit(s, 0);
  return 0;
}

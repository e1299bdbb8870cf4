/* Mamori eBPF ABI: the records the BPF programs write into the ring buffer and
 * the configuration user space hands to them. Shared, byte for byte, by
 * mamori.bpf.c (clang -target bpf) and user space (ebpf_loader.cc writes the
 * configuration, record_decoder.cc reads the records).
 *
 * Rules (see README.VERSION.md for when to bump which number):
 *   - fixed-width types only, every struct padded explicitly to a multiple of
 *     8 bytes; user space static_asserts each size (record_decoder.cc);
 *   - a record starts with mamori_bpf_header; `size` covers the whole record
 *     so a reader can skip a type it does not know;
 *   - strings live in the record's trailing data area and are referenced by
 *     mamori_bpf_str {offset, length}; they are not NUL-terminated;
 *   - MAMORI_BPF_API_VERSION_* must equal the API_VERSION file next to this
 *     header (CMake checks at configure time).
 */
#ifndef MAMORI_BPF_ABI_H_
#define MAMORI_BPF_ABI_H_

#if defined(__bpf__)
/* kernel_types.h provides the fixed-width types for BPF. */
#else
#include <stdint.h>
#endif

#define MAMORI_BPF_API_VERSION_MAJOR 1
#define MAMORI_BPF_API_VERSION_MINOR 0
#define MAMORI_BPF_API_VERSION_PATCH 0
#define MAMORI_BPF_API_VERSION_CODE \
  ((MAMORI_BPF_API_VERSION_MAJOR << 16) | (MAMORI_BPF_API_VERSION_MINOR << 8) | MAMORI_BPF_API_VERSION_PATCH)

/* Capture limits (bytes). A string longer than its limit is cut and the
 * record's `flags` says which. */
#define MAMORI_BPF_PATH_MAX 4096   /* image, cwd, file paths */
#define MAMORI_BPF_CGROUP_MAX 1024 /* cgroup v2 path */
#define MAMORI_BPF_TTY_MAX 64
#define MAMORI_BPF_MODULE_NAME_MAX 64
#define MAMORI_BPF_ARGV_MAX 32767   /* argv as NUL-separated bytes; hard cap of max_argv_bytes */
#define MAMORI_BPF_RECORD_MAX 65536 /* no record is larger */

#define MAMORI_BPF_MAX_PREFIXES 16
#define MAMORI_BPF_PREFIX_CHARS 248 /* longest watched prefix */

enum mamori_bpf_event_type {
  MAMORI_BPF_EXEC = 1,
  MAMORI_BPF_FORK = 2,
  MAMORI_BPF_EXIT = 3,
  MAMORI_BPF_FILE_OPEN_WRITE = 4,
  MAMORI_BPF_FILE_CREATE = 5,
  MAMORI_BPF_FILE_RENAME = 6,
  MAMORI_BPF_FILE_UNLINK = 7,
  MAMORI_BPF_FILE_CHMOD = 8,
  MAMORI_BPF_FILE_CHOWN = 9,
  MAMORI_BPF_NET_CONNECT = 10,
  MAMORI_BPF_NET_ACCEPT = 11,
  MAMORI_BPF_NET_BIND = 12,
  MAMORI_BPF_SETUID = 13,
  MAMORI_BPF_SETGID = 14,
  MAMORI_BPF_MODULE_LOAD = 15,
  MAMORI_BPF_PTRACE = 16,
};

/* mamori_bpf_header.flags */
#define MAMORI_BPF_F_ARGV_TRUNCATED (1u << 0)  /* argv longer than max_argv_bytes */
#define MAMORI_BPF_F_IMAGE_TRUNCATED (1u << 1) /* path deeper/longer than the walk allows */
#define MAMORI_BPF_F_CWD_TRUNCATED (1u << 2)
#define MAMORI_BPF_F_PATH_TRUNCATED (1u << 3) /* file events: target (or source) path cut */
#define MAMORI_BPF_F_CGROUP_TRUNCATED (1u << 4)
#define MAMORI_BPF_F_ARGV_UNREADABLE (1u << 5) /* reading argv from the new image failed */

struct mamori_bpf_str {
  uint16_t offset; /* from the start of the record's data area */
  uint16_t length; /* bytes, no terminating NUL */
};

/* Who acted: the current task, except for fork (the child) and exit (the
 * exiting task, which is current too). 64 bytes. */
struct mamori_bpf_task {
  int32_t pid; /* tgid */
  int32_t tid;
  int32_t ppid; /* real_parent's tgid */
  uint32_t uid;
  uint32_t euid;
  uint32_t gid;
  uint32_t egid;
  uint32_t pad0;
  uint64_t start_boottime_ns; /* task start, CLOCK_BOOTTIME */
  char comm[16];
  uint64_t pad1;
};

/* 16 bytes. */
struct mamori_bpf_header {
  uint32_t size;  /* whole record: header + task + body + data */
  uint16_t type;  /* enum mamori_bpf_event_type */
  uint16_t flags; /* MAMORI_BPF_F_* */
  uint64_t timestamp_boottime_ns;
};

struct mamori_bpf_exec_body {
  struct mamori_bpf_str image; /* resolved path of the executed file */
  struct mamori_bpf_str cwd;
  struct mamori_bpf_str tty;    /* kernel tty name, e.g. "pts3"; empty when none */
  struct mamori_bpf_str cgroup; /* cgroup v2 path, "/" for the root */
  struct mamori_bpf_str argv;   /* NUL-separated, as in /proc/pid/cmdline */
  uint32_t argv_total_bytes;    /* arg_end - arg_start: > argv.length when truncated */
  int32_t argc;                 /* from the binprm */
  uint32_t pad0;
  uint64_t cgroup_id; /* kernfs id of the cgroup v2 directory */
};

struct mamori_bpf_exit_body {
  int32_t exit_code; /* task->exit_code: (status << 8) | signal, as wait() */
  uint32_t pad0;
};

/* Paths: open-for-write and create carry the kernel's resolved path of the
 * opened file. Unlink, rename, chmod and chown carry the name the syscall
 * was given, made absolute with the cwd or the directory descriptor, NOT
 * normalised ("." "..", "//" and symlinks stay): the reader normalises and
 * applies the exact prefix match (the kernel lets such names through its
 * prefix pre-filter). */
struct mamori_bpf_file_body {
  struct mamori_bpf_str target; /* the file (rename: the new path) */
  struct mamori_bpf_str source; /* rename: the old path */
  uint32_t mode;                /* chmod: new mode; create: the new inode's mode */
  uint32_t owner_uid;           /* chown; (uint32_t)-1 = unchanged */
  uint32_t owner_gid;
  uint32_t pad0;
};

struct mamori_bpf_net_body {
  uint16_t family;  /* AF_INET (2) or AF_INET6 (10) */
  uint8_t protocol; /* IPPROTO_TCP (6) or IPPROTO_UDP (17) */
  uint8_t pad0;
  uint16_t source_port; /* host byte order */
  uint16_t destination_port;
  uint8_t source_addr[16]; /* IPv4: first 4 bytes, network order */
  uint8_t destination_addr[16];
};

struct mamori_bpf_cred_body {
  uint32_t new_id;  /* the id asked for (effective if given, else real, else saved) */
  uint32_t syscall; /* 1 setuid/setgid, 2 setre*id, 3 setres*id */
};

struct mamori_bpf_ptrace_body {
  int64_t request;
  int32_t target_pid;
  uint32_t pad0;
};

struct mamori_bpf_module_body {
  struct mamori_bpf_str name;
  uint32_t pad0;
};

/* The fixed part of every record: 16 + 64 + 48 = 128 bytes. */
struct mamori_bpf_record {
  struct mamori_bpf_header header;
  struct mamori_bpf_task task;
  union {
    struct mamori_bpf_exec_body exec;
    struct mamori_bpf_exit_body exit;
    struct mamori_bpf_file_body file;
    struct mamori_bpf_net_body net;
    struct mamori_bpf_cred_body cred;
    struct mamori_bpf_ptrace_body ptrace;
    struct mamori_bpf_module_body module;
    uint8_t raw[48];
  } body;
  /* data area follows: header.size - sizeof(struct mamori_bpf_record) bytes */
};

/* One watched path prefix (file events), in the `prefixes` array map. */
struct mamori_bpf_prefix {
  uint32_t length; /* 0: unused slot */
  uint32_t pad0;
  char path[MAMORI_BPF_PREFIX_CHARS]; /* not NUL-terminated; no trailing '/' */
};

/* Read-only configuration (the BPF object's .rodata, written by user space
 * before load; the verifier then prunes disabled paths). */
struct mamori_bpf_config {
  uint32_t abi_version;          /* MAMORI_BPF_API_VERSION_CODE the BPF side was built with */
  int32_t ignore_tgid;           /* events whose actor is this process are not emitted; 0: none */
  uint32_t max_argv_bytes;       /* <= MAMORI_BPF_ARGV_MAX */
  uint32_t prefix_count;         /* used slots of `prefixes`; 0: every path */
  uint32_t setid_chmod_anywhere; /* 1: chmod adding S_ISUID/S_ISGID is reported outside the prefixes too */
  uint32_t wakeup_bytes;         /* wake the reader once this much is queued; 0: on every record */
  struct mamori_bpf_prefix prefixes[MAMORI_BPF_MAX_PREFIXES];
};

/* Index of the per-CPU `drops` counters. */
#define MAMORI_BPF_DROP_RINGBUF 0 /* ring buffer full: the record was lost */
#define MAMORI_BPF_DROP_SLOTS 1

#endif /* MAMORI_BPF_ABI_H_ */

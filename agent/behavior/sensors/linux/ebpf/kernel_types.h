/* The kernel structures and fields Mamori's BPF programs read, declared by
 * hand instead of a generated vmlinux.h.
 *
 * Every struct is marked preserve_access_index: clang records each field
 * access as a CO-RE relocation and libbpf resolves it against the running
 * kernel's BTF (/sys/kernel/btf/vmlinux) at load time. Only the fields used
 * are declared; their order and the struct sizes here mean nothing.
 *
 * Why not `bpftool btf dump file /sys/kernel/btf/vmlinux format c`:
 *   - the build would depend on the build machine's kernel (a container or CI
 *     runner without BTF could not build, and two machines would produce two
 *     different headers of ~130k lines);
 *   - this file is the complete list of kernel internals we depend on, which
 *     is what a reviewer needs when a kernel release renames something (see
 *     the ___flavor structs below for renames already handled).
 * The cost: a new field must be added here by hand.
 *
 * Kernel constants that are not in BTF (#defines) are at the end, each with
 * the kernel header it comes from.
 */
#ifndef MAMORI_KERNEL_TYPES_H_
#define MAMORI_KERNEL_TYPES_H_

/* Tells bpf_tracing.h to use the kernel's pt_regs field names. */
#define __VMLINUX_H__

#include <linux/bpf.h>   /* map types, flags, helper ids (uapi) */
#include <linux/types.h> /* __u8 .. __u64, __be16, __be32 (uapi) */

typedef __u8 uint8_t;
typedef __u16 uint16_t;
typedef __u32 uint32_t;
typedef __u64 uint64_t;
typedef __s32 int32_t;
typedef __s64 int64_t;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;
typedef _Bool bool;
#define true 1
#define false 0
typedef int pid_t;
typedef unsigned short umode_t;
typedef unsigned int fmode_t;

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

typedef struct {
  int counter;
} atomic_t;

typedef struct {
  unsigned int val;
} kuid_t;

typedef struct {
  unsigned int val;
} kgid_t;

struct pt_regs { /* x86_64 */
  unsigned long r10;
  unsigned long r8;
  unsigned long ax;
  unsigned long cx;
  unsigned long dx;
  unsigned long si;
  unsigned long di;
  unsigned long orig_ax;
  unsigned long ip;
  unsigned long sp;
  unsigned long bp;
};

struct cred {
  kuid_t uid;
  kgid_t gid;
  kuid_t euid;
  kgid_t egid;
};

struct qstr {
  union {
    struct {
      u32 hash;
      u32 len;
    };
    u64 hash_len;
  };
  const unsigned char* name;
};

struct dentry {
  struct dentry* d_parent;
  struct qstr d_name;
};

struct vfsmount {
  struct dentry* mnt_root;
};

/* fs/mount.h: the vfsmount is embedded in struct mount. */
struct mount {
  struct mount* mnt_parent;
  struct dentry* mnt_mountpoint;
  struct vfsmount mnt;
};

struct path {
  struct vfsmount* mnt;
  struct dentry* dentry;
};

struct inode {
  umode_t i_mode;
};

struct file {
  fmode_t f_mode;
  struct inode* f_inode;
  struct path f_path;
  void* private_data; /* struct socket * for socket files */
};

struct fdtable {
  unsigned int max_fds;
  struct file** fd;
};

struct files_struct {
  struct fdtable* fdt;
};

struct fs_struct {
  struct path pwd;
};

struct mm_struct {
  unsigned long arg_start;
  unsigned long arg_end;
};

struct tty_struct {
  char name[64];
};

struct signal_struct {
  atomic_t live;
  struct tty_struct* tty;
};

struct kernfs_node {
  struct kernfs_node* __parent; /* 6.15+ */
  const char* name;
  u64 id;
};

/* Before 6.15 the parent pointer was called `parent`. */
struct kernfs_node___pre615 {
  struct kernfs_node* parent;
};

struct cgroup {
  struct kernfs_node* kn;
};

struct css_set {
  struct cgroup* dfl_cgrp;
};

/* x86: thread_info is embedded at the start of task_struct. */
struct thread_info {
  u32 status; /* TS_COMPAT while in a 32-bit syscall */
};

struct task_struct {
  struct thread_info thread_info;
  unsigned int flags;
  struct mm_struct* mm;
  int exit_code;
  pid_t pid;
  pid_t tgid;
  struct task_struct* real_parent;
  struct task_struct* group_leader;
  u64 start_boottime;
  const struct cred* cred;
  char comm[16];
  struct fs_struct* fs;
  struct files_struct* files;
  struct signal_struct* signal;
  struct css_set* cgroups;
};

struct linux_binprm {
  struct file* file;
  int argc;
  const char* filename;
};

struct in6_addr {
  union {
    __u8 u6_addr8[16];
  } in6_u;
};

struct sock_common {
  union {
    struct {
      __be32 skc_daddr;
      __be32 skc_rcv_saddr;
    };
  };
  union {
    struct {
      __be16 skc_dport;
      __u16 skc_num;
    };
  };
  unsigned short skc_family;
  struct in6_addr skc_v6_daddr;
  struct in6_addr skc_v6_rcv_saddr;
};

struct sock {
  struct sock_common __sk_common;
  u16 sk_protocol;
};

struct socket {
  struct sock* sk;
};

struct module {
  char name[56];
};

#pragma clang attribute pop

/* include/linux/fs.h */
#define FMODE_WRITE 0x2u
#define FMODE_CREATED 0x100000u
/* include/uapi/linux/stat.h */
#define S_ISUID 04000
#define S_ISGID 02000
#define S_IALLUGO 07777
/* include/linux/socket.h, include/uapi/linux/in.h */
#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
/* arch/x86/include/asm/thread_info.h */
#define TS_COMPAT 0x0002
/* include/uapi/linux/fcntl.h */
#define AT_FDCWD -100
#define AT_REMOVEDIR 0x200
#define S_IFMT 0170000
#define S_IFREG 0100000
#define S_IFSOCK 0140000
#define EINPROGRESS 115
/* include/linux/err.h */
#define MAX_ERRNO 4095
/* include/uapi/linux/ptrace.h */
#define PTRACE_TRACEME 0
#define PTRACE_POKETEXT 4
#define PTRACE_POKEDATA 5
#define PTRACE_POKEUSR 6
#define PTRACE_SETREGS 13
#define PTRACE_SETFPREGS 15
#define PTRACE_ATTACH 16
#define PTRACE_SETREGSET 0x4205
#define PTRACE_SEIZE 0x4206

#endif /* MAMORI_KERNEL_TYPES_H_ */

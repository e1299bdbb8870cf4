/* Maps, configuration and helpers shared by the probes in mamori.bpf.c:
 * filling the actor, walking a dentry chain into a path, matching watched
 * prefixes, and emitting a record (or counting it as dropped).
 *
 * Buffers: a record is built in this CPU's slot of the `scratch` array (too
 * big for the 512-byte BPF stack), then copied into the ring buffer with
 * bpf_ringbuf_output. Tracing programs do not migrate while running; a
 * preempting program on the same CPU could in theory reuse the slot (every
 * per-CPU-buffer tracer shares this limitation).
 */
#ifndef MAMORI_HELPERS_BPF_H_
#define MAMORI_HELPERS_BPF_H_

/* kernel_types.h must come before libbpf's headers. */
/* clang-format off */
#include "kernel_types.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "abi/mamori_bpf_abi.h"
/* clang-format on */

#define REC_FIXED ((u32)sizeof(struct mamori_bpf_record))
/* Data-area offsets are masked with DATA_MASK and string lengths with at
 * most DATA_MASK, so offset + length stays inside the 64 KiB data buffer. */
#define DATA_MASK 0x7fff
#define DATA_BUF 0x10000
/* Path walk: built backwards from PATH_END; a component is at most 255 bytes. */
#define PATH_END MAMORI_BPF_PATH_MAX
#define PATH_BUF (2 * MAMORI_BPF_PATH_MAX)
#define PATH_DEPTH 48   /* path components followed (more: truncated) */
#define CGROUP_DEPTH 16 /* cgroup nesting followed */
#define NAME_MASK 0xff

/* Hides a value from clang's range reasoning so a mask stays in the code
 * (clang drops masks it can prove redundant, then the verifier cannot). */
#define opaque(x) asm volatile("" : "+r"(x))

struct scratch {
  u8 rec[REC_FIXED + DATA_BUF]; /* record under construction */
  char path[PATH_BUF];          /* path walk output, at path[pos .. PATH_END) */
};

const volatile struct mamori_bpf_config cfg = {
    .abi_version = MAMORI_BPF_API_VERSION_CODE,
    .max_argv_bytes = MAMORI_BPF_ARGV_MAX,
};

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 23); /* user space sets the size before load */
} events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, MAMORI_BPF_DROP_SLOTS);
  __type(key, u32);
  __type(value, u64);
} drops SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1); /* user space sets the number of possible CPUs */
  __type(key, u32);
  __type(value, struct scratch);
} scratch SEC(".maps");

static __always_inline void count_drop(u32 slot) {
  u64* n = bpf_map_lookup_elem(&drops, &slot);
  if (n) *n += 1;
}

static __always_inline struct scratch* get_scratch(void) {
  u32 cpu = bpf_get_smp_processor_id();
  return bpf_map_lookup_elem(&scratch, &cpu);
}

static __always_inline bool ignored_tgid(u32 tgid) { return cfg.ignore_tgid != 0 && tgid == (u32)cfg.ignore_tgid; }

static __always_inline struct mamori_bpf_record* rec_of(struct scratch* s) { return (struct mamori_bpf_record*)s->rec; }

/* REQUIRES: `task` is a BTF-typed pointer the verifier trusts (a tp_btf
 * argument or bpf_get_current_task_btf()): the fields are read with direct
 * loads, an order of magnitude cheaper than bpf_probe_read per field. */
static __always_inline void fill_task(struct mamori_bpf_task* t, struct task_struct* task) {
  t->pid = task->tgid;
  t->tid = task->pid;
  t->ppid = task->real_parent->tgid;
  const struct cred* cred = task->cred;
  t->uid = cred->uid.val;
  t->euid = cred->euid.val;
  t->gid = cred->gid.val;
  t->egid = cred->egid.val;
  t->pad0 = 0;
  t->start_boottime_ns = task->group_leader->start_boottime;
  __builtin_memcpy(t->comm, task->comm, sizeof t->comm);
  t->pad1 = 0;
}

/* Starts a record of `type` for `task` in the scratch slot; the data area is empty. */
static __always_inline struct mamori_bpf_record* begin_record(struct scratch* s, u16 type, struct task_struct* task) {
  struct mamori_bpf_record* r = rec_of(s);
  r->header.type = type;
  r->header.flags = 0;
  r->header.size = REC_FIXED;
  r->header.timestamp_boottime_ns = bpf_ktime_get_boot_ns();
  fill_task(&r->task, task);
  __builtin_memset(&r->body, 0, sizeof(r->body));
  return r;
}

/* Copies path[pos .. pos+len) into the data area at `*off` and records it
 * in `str`. REQUIRES: pos < PATH_END, len <= MAMORI_BPF_PATH_MAX. */
static __always_inline void put_path(struct scratch* s, struct mamori_bpf_str* str, u32* off, u32 pos, u32 len) {
  u32 o = *off;
  opaque(o);
  o &= DATA_MASK;
  opaque(pos);
  pos &= PATH_END - 1;
  if (len > MAMORI_BPF_PATH_MAX) len = MAMORI_BPF_PATH_MAX;
  bpf_probe_read_kernel(&s->rec[REC_FIXED + o], len, &s->path[pos]);
  str->offset = (u16)o;
  str->length = (u16)len;
  *off = o + len;
}

/* Copies a NUL-terminated kernel string of at most `limit` (<= 1024) bytes
 * into the data area. */
static __always_inline void put_kernel_str(struct scratch* s, struct mamori_bpf_str* str, u32* off, const void* src,
                                           u32 limit) {
  u32 o = *off;
  opaque(o);
  o &= DATA_MASK;
  long n = bpf_probe_read_kernel_str(&s->rec[REC_FIXED + o], limit & 0x7ff, src);
  str->offset = (u16)o;
  str->length = 0;
  if (n <= 1) return; /* error or empty (n counts the NUL) */
  str->length = (u16)(n - 1);
  *off = o + (u32)(n - 1);
}

/* Walks dentry -> root, crossing mounts, writing "/a/b/c" backwards so that
 * it ends at path[PATH_END]. Returns the start position (< PATH_END), with
 * WALK_TRUNCATED or'ed in when the walk gave up (too deep or too long: the
 * result is then the tail of the path, still starting with '/').
 *
 * A global (not inlined) function: the verifier checks it once instead of
 * once per call site, which keeps programs with two walks under its limits. */
#define WALK_TRUNCATED 0x10000
/* The three fields of struct mount the walk needs. They are neighbours
 * (mnt_parent, mnt_mountpoint, mnt.mnt_root) in every kernel we know; one
 * read for all when CO-RE agrees, one each otherwise. */
struct mount_fields {
  struct mount* parent;
  struct dentry* mountpoint;
  struct dentry* root;
};

static __always_inline void read_mount(struct mount* mnt, struct mount_fields* m) {
  const u32 parent_off = bpf_core_field_offset(struct mount, mnt_parent);
  if (bpf_core_field_offset(struct mount, mnt_mountpoint) == parent_off + 8 &&
      bpf_core_field_offset(struct mount, mnt) + bpf_core_field_offset(struct vfsmount, mnt_root) ==
          parent_off + 16) {
    bpf_probe_read_kernel(m, sizeof *m, (void*)mnt + parent_off);
  } else {
    m->parent = BPF_CORE_READ(mnt, mnt_parent);
    m->mountpoint = BPF_CORE_READ(mnt, mnt_mountpoint);
    m->root = BPF_CORE_READ(mnt, mnt.mnt_root);
  }
}

__noinline int mamori_walk_path(struct scratch* s, u64 dentry_ptr, u64 vfsmnt_ptr) {
  if (!s) return PATH_END - 1;
  struct dentry* dentry = (struct dentry*)dentry_ptr;
  struct mount* mnt = (struct mount*)(vfsmnt_ptr - bpf_core_field_offset(struct mount, mnt));
  u32 pos = PATH_END;
  int truncated = 0;
  struct mount_fields m;
  read_mount(mnt, &m);
  /* d_parent and d_name are neighbours too: one read for both. */
  const u32 parent_off = bpf_core_field_offset(struct dentry, d_parent);
  const bool adjacent = bpf_core_field_offset(struct dentry, d_name) == parent_off + 8 &&
                        bpf_core_field_size(struct dentry, d_name) == 16;
  int i;
  for (i = 0; i < PATH_DEPTH; i++) {
    struct {
      struct dentry* parent;
      u64 hash_len;
      const unsigned char* name;
    } d;
    if (adjacent) {
      bpf_probe_read_kernel(&d, sizeof d, (void*)dentry + parent_off);
    } else {
      d.parent = BPF_CORE_READ(dentry, d_parent);
      d.hash_len = BPF_CORE_READ(dentry, d_name.hash_len);
      d.name = BPF_CORE_READ(dentry, d_name.name);
    }
    if (dentry == m.root || dentry == d.parent) {
      if (dentry != m.root) break; /* a detached tree: stop at its root */
      if (m.parent == mnt) break;  /* the root of the mount tree */
      dentry = m.mountpoint;
      mnt = m.parent;
      read_mount(mnt, &m);
      continue;
    }
    u32 len = (u32)(d.hash_len >> 32) & NAME_MASK; /* qstr: hash low, len high (little endian) */
    if (len + 1 > pos) {
      truncated = WALK_TRUNCATED;
      break;
    }
    pos -= len + 1;
    pos &= PATH_END - 1;
    bpf_probe_read_kernel(&s->path[pos + 1], len, d.name);
    s->path[pos] = '/';
    dentry = d.parent;
  }
  if (i == PATH_DEPTH) truncated = WALK_TRUNCATED;
  if (pos >= PATH_END) { /* the root itself */
    pos = PATH_END - 1;
    s->path[pos] = '/';
  }
  return (int)pos | truncated;
}

/* The fields of struct file the probes need, read in one go when they lie
 * in the first 128 bytes (they do, in every kernel we know). */
struct file_fields {
  fmode_t mode;
  struct inode* inode;
  struct dentry* dentry;
  struct vfsmount* mnt;
  void* private_data;
};

static __always_inline void read_file(struct file* f, struct file_fields* out) {
  const u32 mode_off = bpf_core_field_offset(struct file, f_mode);
  const u32 inode_off = bpf_core_field_offset(struct file, f_inode);
  const u32 dentry_off = bpf_core_field_offset(struct file, f_path.dentry);
  const u32 mnt_off = bpf_core_field_offset(struct file, f_path.mnt);
  const u32 private_off = bpf_core_field_offset(struct file, private_data);
  if (mode_off <= 124 && inode_off <= 120 && dentry_off <= 120 && mnt_off <= 120 && private_off <= 120) {
    u8 head[128];
    bpf_probe_read_kernel(head, sizeof head, f);
    out->mode = *(fmode_t*)(head + mode_off);
    out->inode = *(struct inode**)(head + inode_off);
    out->dentry = *(struct dentry**)(head + dentry_off);
    out->mnt = *(struct vfsmount**)(head + mnt_off);
    out->private_data = *(void**)(head + private_off);
  } else {
    out->mode = BPF_CORE_READ(f, f_mode);
    out->inode = BPF_CORE_READ(f, f_inode);
    out->dentry = BPF_CORE_READ(f, f_path.dentry);
    out->mnt = BPF_CORE_READ(f, f_path.mnt);
    out->private_data = BPF_CORE_READ(f, private_data);
  }
}

static __always_inline u32 walk_path(struct scratch* s, struct dentry* dentry, struct vfsmount* vfsmnt,
                                     bool* truncated) {
  int r = mamori_walk_path(s, (u64)dentry, (u64)vfsmnt);
  *truncated = (r & WALK_TRUNCATED) != 0;
  return (u32)r & (PATH_END - 1);
}

/* cgroup v2 path of `task` ("/user.slice/..."), built backwards like
 * walk_path: each kernfs name is read into path[PATH_END..] first (its
 * length is unknown until read), then copied into place. */
static __always_inline u32 walk_cgroup(struct scratch* s, struct task_struct* task, u64* id, bool* truncated) {
  struct kernfs_node* kn = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn);
  u32 pos = PATH_END;
  *truncated = false;
  *id = BPF_CORE_READ(kn, id);
  int i;
  for (i = 0; i < CGROUP_DEPTH && kn; i++) {
    struct kernfs_node* parent;
    if (bpf_core_field_exists(struct kernfs_node, __parent)) {
      parent = BPF_CORE_READ(kn, __parent);
    } else {
      parent = BPF_CORE_READ((struct kernfs_node___pre615*)kn, parent);
    }
    if (!parent) break; /* the root's own name is not part of the path */
    const char* name = BPF_CORE_READ(kn, name);
    long n = bpf_probe_read_kernel_str(&s->path[PATH_END], NAME_MASK + 1, name);
    if (n <= 1) break;
    u32 len = (u32)(n - 1) & NAME_MASK;
    if (len + 1 > pos) {
      *truncated = true;
      break;
    }
    pos -= len + 1;
    pos &= PATH_END - 1;
    bpf_probe_read_kernel(&s->path[pos + 1], len, &s->path[PATH_END]);
    s->path[pos] = '/';
    kn = parent;
  }
  if (i == CGROUP_DEPTH) *truncated = true;
  if (pos >= PATH_END) {
    pos = PATH_END - 1;
    s->path[pos] = '/';
  }
  return pos;
}

/* Is the string at ((u8*)s)[off .. off+len) at or under one of the watched
 * prefixes? `off` is DATA_AT(o) for the record's data area or PATH_AT(pos)
 * for the path scratch. Prefixes come without a trailing '/' (except "/"
 * itself), so "/tmp/a" watches "/tmp/a" and "/tmp/a/x" but not "/tmp/ab". */
#define DATA_AT(o) (REC_FIXED + (o))
#define PATH_AT(pos) ((u32) __builtin_offsetof(struct scratch, path) + (pos))
__noinline int mamori_under_prefix(struct scratch* s, u32 off, u32 len) {
  if (cfg.prefix_count == 0) return true;
  if (!s) return false;
  const u8* bytes = (const u8*)s;
  if (off > sizeof(struct scratch) - MAMORI_BPF_PREFIX_CHARS - 8) return false;
  for (u32 p = 0; p < MAMORI_BPF_MAX_PREFIXES; p++) {
    if (p >= cfg.prefix_count) break;
    u32 plen = cfg.prefixes[p].length;
    if (plen == 0 || plen > MAMORI_BPF_PREFIX_CHARS || plen > len) continue;
    if (plen == 1) return true; /* "/" */
    /* Eight bytes at a time, then the tail. */
    bool match = true;
    u32 j = 0;
    for (; j + 8 <= MAMORI_BPF_PREFIX_CHARS; j += 8) {
      if (j + 8 > plen) break;
      u32 i = off + j;
      opaque(i);
      if (i > sizeof(struct scratch) - 8) return false;
      if (*(const u64*)(bytes + i) != *(const u64*)&cfg.prefixes[p].path[j]) {
        match = false;
        break;
      }
    }
    for (; match && j < MAMORI_BPF_PREFIX_CHARS; j++) {
      if (j >= plen) break;
      u32 i = off + j;
      opaque(i);
      if (i >= sizeof(struct scratch) || bytes[i] != cfg.prefixes[p].path[j]) match = false;
    }
    if (!match) continue;
    if (plen == len) return true;
    u32 next = off + plen;
    opaque(next);
    if (next < sizeof(struct scratch) && bytes[next] == '/') return true;
  }
  return false;
}

static __always_inline bool under_watched_prefix(struct scratch* s, u32 off, u32 len) {
  return mamori_under_prefix(s, off, len) != 0;
}

/* Wakeups are batched: the reader is woken when wakeup_bytes are queued
 * and otherwise polls on a short timer, so a burst of events costs a few
 * context switches instead of one per record. */
static __always_inline u64 wakeup_flag(void) {
  if (cfg.wakeup_bytes == 0) return 0;
  return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= cfg.wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/* Copies `size` bytes at `rec` into the ring buffer; a full ring buffer is counted. */
static __always_inline void output(void* rec, u32 size) {
  if (bpf_ringbuf_output(&events, rec, size, wakeup_flag()) != 0) count_drop(MAMORI_BPF_DROP_RINGBUF);
}

/* Emits the record in the scratch slot. */
static __always_inline void emit(struct scratch* s, u32 data_len) {
  struct mamori_bpf_record* r = rec_of(s);
  u32 size = REC_FIXED + (data_len & (DATA_BUF - 1));
  r->header.size = size;
  if (size > sizeof(s->rec)) return;
  output(s->rec, size);
}

#endif /* MAMORI_HELPERS_BPF_H_ */
